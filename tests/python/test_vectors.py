"""The published test vectors (tests/vectors/) hold for this implementation, and are current.

The browser verifier runs the same files, so both implementations agree byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.bundle import load_bundle
from ledger.canonical import (
    REFUSED_RANGES,
    canonical_json,
    is_canonical_text,
    normalize_text,
    refused_character,
)
from ledger.chainview import MemoryChain
from ledger.fields import (
    RecordKey,
    field_hash,
    flatten,
    leaf_of,
    record_digest,
    seal_record,
    seal_record_reference,
)
from ledger.merkle import build_tree, verify_proof
from ledger.receipts import Receipt, ReceiptDomain, receipt_digest, recover_signer
from ledger.verify import verify

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def unhex(text: str) -> bytes:
    return bytes.fromhex(text[2:])


@pytest.mark.parametrize(
    "name",
    ["canonical.json", "fields.json", "merkle.json", "receipts.json", "bundles.json", "characters.json"],
)
def test_vector_files_are_what_the_generator_writes(name: str) -> None:
    sys.path.insert(0, str(VECTORS))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(VECTORS))
    assert (VECTORS / name).read_text() == generate.render(name), f"regenerate: python tests/vectors/{name}"


def test_canonical_vectors() -> None:
    data = load("canonical.json")
    for case in data["text"]:
        assert normalize_text(case["input"]) == case["output"]
    for case in data["jcs"]:
        assert "0x" + canonical_json(case["value"]).hex() == case["jcs"]


def test_character_vectors() -> None:
    data = load("characters.json")
    ranges = [(int(r["first"][2:], 16), int(r["last"][2:], 16), r["kind"]) for r in data["refusedRanges"]]
    assert tuple(ranges) == REFUSED_RANGES
    assert data["refused"] and data["accepted"]
    for case in data["refused"]:
        text = case["text"]
        assert normalize_text(text) == text and not is_canonical_text(text), case
        refused = refused_character(text)
        assert refused is not None and (refused.label, refused.kind) == (case["codePoint"], case["kind"])
    for text in data["accepted"]:
        assert is_canonical_text(text), text


def test_field_vectors() -> None:
    for vector in load("fields.json")["records"]:
        fields = flatten(vector["record"])
        assert [f["path"] for f in vector["fields"]] == sorted(fields, key=str.encode)
        hashes = {}
        for f in vector["fields"]:
            assert fields[f["path"]] == f["value"]
            hashes[f["path"]] = field_hash(f["path"], unhex(f["salt"]), f["value"])
            assert "0x" + hashes[f["path"]].hex() == f["hash"]
        key = RecordKey(vector["agency"], vector["recordType"], vector["recordId"], vector["version"])
        digest = record_digest(key, hashes)
        assert "0x" + digest.hex() == vector["digest"]
        assert "0x" + leaf_of(digest).hex() == vector["leaf"]


def test_field_vectors_through_seal_record_and_its_reference() -> None:
    """Sealing with the vectors' salts, by the fast path and the plain one, gives every field
    hash, the digest and the leaf of the vectors."""
    for vector in load("fields.json")["records"]:
        key = RecordKey(vector["agency"], vector["recordType"], vector["recordId"], vector["version"])
        salts = {f["path"]: unhex(f["salt"]) for f in vector["fields"]}
        for seal in (seal_record, seal_record_reference):
            sealed = seal(key, vector["record"], salts)
            assert {p: "0x" + h.hex() for p, h in sealed.field_hashes.items()} == {
                f["path"]: f["hash"] for f in vector["fields"]
            }
            assert ("0x" + sealed.digest.hex(), "0x" + sealed.leaf.hex()) == (
                vector["digest"],
                vector["leaf"],
            )


def test_merkle_vectors() -> None:
    for vector in load("merkle.json")["trees"]:
        tree = build_tree([unhex(x) for x in vector["leaves"]])
        assert "0x" + tree.root.hex() == vector["root"]
        for case in vector["proofs"]:
            proof = [unhex(p) for p in case["proof"]]
            assert tree.proof(unhex(case["leaf"])) == proof
            assert verify_proof(unhex(case["leaf"]), proof, tree.root)


def test_receipt_vectors() -> None:
    for vector in load("receipts.json")["receipts"]:
        m, d = vector["message"], vector["domain"]
        receipt = Receipt(
            m["agency"],
            m["recordType"],
            m["recordId"],
            m["version"],
            unhex(m["leaf"]),
            m["intakeTime"],
            m["anchorBy"],
        )
        digest = receipt_digest(receipt, ReceiptDomain(d["chainId"], d["verifyingContract"]))
        assert "0x" + digest.hex() == vector["digest"]
        assert recover_signer(digest, unhex(vector["signature"])) == vector["signer"]


def test_bundle_vectors() -> None:
    data = load("bundles.json")
    chain = MemoryChain.from_json(data["chain"])
    assert chain.to_json() == data["chain"]
    for case in data["cases"]:
        report = verify(json.dumps(case["bundle"], ensure_ascii=False), chain, now=case["now"]).to_json()
        got = {"verdict": report["verdict"], "checks": {c["name"]: c["outcome"] for c in report["checks"]}}
        assert got == case["expected"], case["name"]
        load_bundle(json.dumps(case["bundle"]))  # every vector bundle is well-formed
