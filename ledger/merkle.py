"""Merkle trees of batch leaves, verifiable by OpenZeppelin's `MerkleProof`.

A batch's root is a keccak-256 tree over 32-byte leaves with *sorted pairs*: a parent is
`keccak256(min(a, b) ‖ max(a, b))`, so a proof is just the list of siblings, with no left/right
flags, exactly what `MerkleProof.verify(proof, root, leaf)` checks on-chain.

Leaves are sorted before the tree is built, so a batch's root depends only on its set of leaves.
Each level pairs neighbours; an odd node at the end of a level moves up unchanged.

The leaves given here must already be leaf hashes computed so that no leaf can also be read as
an inner node (the record digest is hashed again into the leaf; see docs/), which is what makes
second-preimage tricks with 64-byte inner nodes impossible.

Limits: 1 to 2**32 - 1 leaves (the contract's `count` is uint32); every leaf 32 bytes, no duplicates.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, pairwise, repeat
from typing import NewType, cast

from ledger.errors import LedgerError
from ledger.hashing import keccak256 as keccak
from ledger.hashing import keccak256_many

_keccak = keccak

Hash32 = NewType("Hash32", bytes)

MAX_LEAVES = 2**32 - 1


class MerkleError(LedgerError):
    """A tree or proof that cannot be built or does not hold."""


def hash_pair(a: bytes, b: bytes) -> Hash32:
    """The parent of two nodes: keccak256 of the smaller then the larger."""
    return Hash32(keccak(a + b) if a <= b else keccak(b + a))


@dataclass(frozen=True, slots=True)
class MerkleTree:
    """A built tree: `levels[0]` are the sorted leaves, `levels[-1]` is `[root]`."""

    levels: tuple[tuple[Hash32, ...], ...]

    @property
    def root(self) -> Hash32:
        return self.levels[-1][0]

    @property
    def leaves(self) -> tuple[Hash32, ...]:
        return self.levels[0]

    def proof(self, leaf: bytes) -> list[Hash32]:
        """The siblings from `leaf` up to the root; `MerkleError` if the leaf is not in the tree."""
        index = _find(self.leaves, leaf)
        path: list[Hash32] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path

    def all_proofs(self) -> list[tuple[Hash32, ...]]:
        """The proof of every leaf, in `leaves` order, built a level at a time (not a walk per leaf).

        At depth d, leaf j's sibling is node (j >> d) ^ 1: each level's siblings, repeated 2^d
        times, make a column, and the columns zipped together are the proofs. An odd last node
        has no sibling; only the leaves below it (the right edge) get shorter proofs.
        """
        count = len(self.leaves)
        columns: list[list[Hash32 | None]] = []
        edge = count  # first leaf below an odd last node
        for depth, level in enumerate(self.levels[:-1]):
            size = len(level)
            siblings: list[Hash32 | None] = [level[i ^ 1] for i in range(size - (size & 1))]
            if size & 1:
                siblings.append(None)
                edge = min(edge, (size - 1) << depth)
            span = 1 << depth
            if span == 1:
                column = siblings
            elif span < 8:
                column = [siblings[j >> depth] for j in range(count)]
            else:
                column = list(chain.from_iterable(repeat(node, span) for node in siblings))[:count]
            columns.append(column)
        if not columns:
            return [() for _ in range(count)]
        proofs: list[tuple[Hash32, ...]] = list(zip(*columns, strict=True))
        for j in range(edge, count):
            proofs[j] = tuple(node for node in proofs[j] if node is not None)
        return proofs


def build_tree(leaves: Sequence[bytes]) -> MerkleTree:
    """Build the tree of a batch; `MerkleError` names the leaf or limit that is wrong."""
    if not 1 <= len(leaves) <= MAX_LEAVES:
        raise MerkleError(f"a batch has 1 to {MAX_LEAVES} leaves, got {len(leaves)}")
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, bytes) or len(leaf) != 32:
            raise MerkleError(f"leaf {i} must be 32 bytes")
    level: tuple[Hash32, ...] = tuple(sorted(leaves))  # type: ignore[arg-type]
    for a, b in pairwise(level):
        if a == b:
            raise MerkleError(f"leaf 0x{a.hex()} appears twice in the batch")
    levels = [level]
    while len(level) > 1:
        # hash_pair inlined, the hashes taken in one C-level loop: this is the whole cost of a big tree
        paired = cast(
            "list[Hash32]",
            keccak256_many(
                [a + b if a <= b else b + a for a, b in zip(level[0::2], level[1::2], strict=False)]
            ),
        )
        if len(level) % 2:
            paired.append(level[-1])
        level = tuple(paired)
        levels.append(level)
    return MerkleTree(tuple(levels))


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` leads from `leaf` to `root` (OpenZeppelin `MerkleProof.verify`)."""
    node = bytes(leaf)
    for sibling in proof:  # hash_pair inlined: a proof is a dozen levels, each checked per bundle
        node = _keccak(node + sibling if node <= sibling else sibling + node)
    return node == root


def _find(sorted_leaves: tuple[Hash32, ...], leaf: bytes) -> int:
    from bisect import bisect_left

    index = bisect_left(sorted_leaves, leaf)
    if index == len(sorted_leaves) or sorted_leaves[index] != leaf:
        raise MerkleError(f"leaf 0x{bytes(leaf).hex()} is not in the tree")
    return index
