"""ledger/ unit tests: short codes and Merkle trees (no chain)."""

import os

import pytest
from eth_hash.auto import keccak

from ledger.codes import agency_code, decode_code, record_type
from ledger.errors import InvalidCode
from ledger.merkle import MerkleError, build_tree, hash_pair, verify_proof


def test_codes_are_zero_padded_ascii_like_ethers() -> None:
    assert agency_code("REPD") == b"REPD" + b"\0" * 28
    assert record_type("title") == b"title".ljust(32, b"\0")
    assert decode_code(agency_code("CSO")) == "CSO"
    assert decode_code(record_type("commercial")) == "commercial"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("repd", "agency code 'repd'"),
        ("R", "agency code 'R'"),
        ("A" * 32, "at most 31"),
        ("RÉPD", "agency code"),
    ],
)
def test_bad_agency_codes_name_the_rule(text: str, fragment: str) -> None:
    with pytest.raises(InvalidCode, match=fragment):
        agency_code(text)


@pytest.mark.parametrize("text", ["Title", "", "1title", "ti tle", "t" * 32])
def test_bad_record_types_are_rejected(text: str) -> None:
    with pytest.raises(InvalidCode, match="record type"):
        record_type(text)


def test_decode_rejects_words_that_are_not_codes() -> None:
    with pytest.raises(InvalidCode, match="32 bytes"):
        decode_code(b"REPD")
    with pytest.raises(InvalidCode, match="zero-padded"):
        decode_code(b"RE\0PD".ljust(32, b"\0"))
    with pytest.raises(InvalidCode, match="zero-padded"):
        decode_code(b"\0" * 32)
    with pytest.raises(InvalidCode, match="neither"):
        decode_code(b"Mixed".ljust(32, b"\0"))


def test_pairs_are_sorted_so_order_does_not_matter() -> None:
    a, b = keccak(b"a"), keccak(b"b")
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 100, 257])
def test_every_leaf_proves_into_the_root(size: int) -> None:
    leaves = [os.urandom(32) for _ in range(size)]
    tree = build_tree(leaves)
    assert tree.root == build_tree(list(reversed(leaves))).root  # the set decides the root
    for leaf in leaves:
        assert verify_proof(leaf, tree.proof(leaf), tree.root)
    stranger = os.urandom(32)
    assert not verify_proof(stranger, tree.proof(leaves[0]), tree.root)
    with pytest.raises(MerkleError, match="not in the tree"):
        tree.proof(stranger)


def test_single_leaf_tree_is_the_leaf() -> None:
    leaf = os.urandom(32)
    tree = build_tree([leaf])
    assert tree.root == leaf and tree.proof(leaf) == []


def test_bad_batches_are_rejected_by_name() -> None:
    with pytest.raises(MerkleError, match="1 to"):
        build_tree([])
    with pytest.raises(MerkleError, match="leaf 1 must be 32 bytes"):
        build_tree([os.urandom(32), b"short"])
    leaf = os.urandom(32)
    with pytest.raises(MerkleError, match="appears twice"):
        build_tree([leaf, os.urandom(32), leaf])
