"""After a restore: what the chain holds that the restored store lacks, and what can be taken back.

A backup taken while the node runs may hold leaves still queued for a batch. The running node
then closed them into batches after the backup; the restored store lacks those batches. When
such a batch held exactly the backup's queued leaves of its type (it closed before any newer
record arrived), the restored node would build the very same tree and its anchor would revert
for ever (the contract refuses a root twice). `adopt_queued_batches` asks the chain for the
root of each type's queued leaves first: a batch the chain has is written back as built, with
the chain's seq and previous root, and the batcher's start-up (node/batcher/lineup.py,
`recover`) finalises it like any batch the chain already holds, proofs and all. Leaves that
went into a batch together with newer ones cannot be matched (the newer leaves are not in the
store): they are anchored again in a new batch, under another root.

`restore_gap` words what the node logs at each start after a restore (docs/node.md,
"Restored from a backup").
"""

from __future__ import annotations

import time
from typing import Any

from ledger.codes import agency_code
from ledger.merkle import build_tree
from node.errors import ChainError
from node.proofs import pack_levels
from node.store import QUEUE_PREFIX, Store


def adopt_queued_batches(store: Store, ledger: Any, agency: str, batch_size: int) -> list[int]:
    """Write back as built every batch the chain holds that is made of the next queued leaves
    of a type (as many as the batcher would take); return their seqs."""
    word = agency_code(agency)
    adopted: list[int] = []
    for kind in _queued_types(store):
        while True:
            entries = list(store.iter_prefix(f"queue/{kind}/".encode(), limit=batch_size))
            if not entries:
                break
            leaves = [bytes(value) for _, value in entries]
            tree = build_tree(leaves)
            try:
                _, seq, block, _, count = ledger.functions.batch(word, tree.root).call()
            except Exception as exc:
                raise ChainError(f"cannot read a batch from the chain: {type(exc).__name__}") from None
            if seq == 0 or count != len(leaves):
                break
            root = tree.root.hex()
            with store.write_batch() as wb:
                store.put(wb, f"tree/{root}".encode(), pack_levels(tree))
                batch = {"type": kind, "seq": seq, "prev": _prev_root(ledger, word, tree.root, block)}
                store.put_json(
                    wb,
                    f"batch/{root}".encode(),
                    {
                        **batch,
                        "count": count,
                        "status": "built",
                        "builtAt": time.time(),
                        **_promises(store, leaves),
                    },
                )
                store.put_json(wb, f"log/{seq:016x}".encode(), {"root": root})
                for key, _ in entries:
                    store.dequeue(wb, key)
            adopted.append(int(seq))
    return adopted


def restore_gap(first: int, last: int, queued: int = 0, adopted: tuple[int, ...] = ()) -> str | None:
    """What a store restored from a backup lacks: the agency's batches `first` to `last` but
    `adopted`, anchored after the backup (the chain holds them, the store does not), and the
    `queued` leaves that waited for a batch at backup time and are anchored again; a sentence
    for the node's log, or None."""
    if last < first:
        return None
    taken = f" (but {', '.join(map(str, adopted))}, made of leaves queued in the backup and taken back)"
    again = (
        f"; the {queued} leaves that waited for a batch at backup time and went into a batch with "
        "newer ones are anchored again in new batches, so that this node can prove them (the chain "
        "holds them already, in those batches)"
        if queued
        else ""
    )
    return (
        f"this store was restored from a backup: batches {first} to {last}{taken if adopted else ''} "
        "of the agency were anchored after the backup and are not in it; their records, salts and "
        "proofs are lost here unless re-ingested from their source, and `sijill audit` reports them "
        f"as batch-missing{again}"
    )


def _queued_types(store: Store) -> list[str]:
    kinds: set[str] = set()
    for key, _ in store.iter_prefix(QUEUE_PREFIX):
        kinds.add(key[len(QUEUE_PREFIX) :].split(b"/")[0].decode())
    return sorted(kinds)


def _prev_root(ledger: Any, word: bytes, root: bytes, block: int) -> str:
    """The previous root named by the `BatchAnchored` event of `root`, in block `block`."""
    event = ledger.events.BatchAnchored()
    for entry in ledger.w3.eth.get_logs({"address": ledger.address, "fromBlock": block, "toBlock": block}):
        try:
            args = event.process_log(entry)["args"]
        except Exception:  # another event of the ledger
            continue
        if bytes(args["agency"]) == word and bytes(args["root"]) == root:
            return bytes(args["prevRoot"]).hex()
    raise ChainError(f"no BatchAnchored event of {root.hex()} in block {block}")


def _promises(store: Store, leaves: list[bytes]) -> dict[str, float]:
    """The soonest `anchorBy` and earliest intake time of `leaves`, as the batcher keeps them."""
    infos = [store.get_json(b"leaf/" + leaf.hex().encode()) for leaf in leaves]
    known = [info for info in infos if info is not None]
    if not known:
        return {}
    return {
        "anchorBy": min(info["anchorBy"] for info in known),
        "intakeTime": min(info["intakeTime"] for info in known),
    }
