"""Stored proofs: each batch tree once, and per leaf where it sits in which tree.

`tree/<root>` holds every level of a batch tree, leaves first (sorted), 32 bytes a node: about
64 bytes a leaf. `proof/<leaf>` holds the root (32 bytes) and the leaf's index (4 bytes). A
proof is read out of the levels: the sibling at each level, as `ledger.merkle` builds it.
"""

from __future__ import annotations

from ledger.merkle import MerkleTree
from node.store import Store


def pack_levels(tree: MerkleTree) -> bytes:
    return b"".join(b"".join(level) for level in tree.levels)


def unpack_level(packed: bytes, depth: int, count: int) -> list[bytes]:
    offset, size = 0, count
    for _ in range(depth):
        offset += size * 32
        size = (size + 1) // 2
    return [packed[offset + 32 * i : offset + 32 * (i + 1)] for i in range(size)]


def read_proof(store: Store, leaf: bytes) -> tuple[bytes, list[bytes]] | None:
    """The (root, proof) of an anchored leaf from the stored tree levels; None if not anchored."""
    entry = store.get(b"proof/" + leaf.hex().encode())
    if entry is None:
        return None
    root, index = entry[:32], int.from_bytes(entry[32:36], "big")
    batch = store.get_json(f"batch/{root.hex()}".encode())
    packed = store.get(f"tree/{root.hex()}".encode())
    if batch is None or packed is None:
        return None
    proof: list[bytes] = []
    offset, size = 0, batch["count"]
    while size > 1:
        sibling = index ^ 1
        if sibling < size:
            proof.append(packed[offset + 32 * sibling : offset + 32 * sibling + 32])
        offset += size * 32
        size = (size + 1) // 2
        index //= 2
    return root, proof
