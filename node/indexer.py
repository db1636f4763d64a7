"""The indexer: follows the RecordLedger's events into the store, for local look-ups.

It reads `BatchAnchored`, `LeafRevoked` and `LeafSuperseded` of every agency with
`eth_getLogs`, in ranges of at most `span` blocks from the last processed block, which it
checkpoints (`chain/checkpoint`, with the block's hash) in the same write batch as what it
learnt. So it catches up after downtime, never processes a block twice, and a restart of the
RPC endpoint only delays it (errors are retried). A chain that lost blocks (the checkpoint's
block gone, or another block under its number) is indexed again from the deployment block.
QBFT has immediate finality, so no reorganisation handling is needed beyond that; on a chain
that can reorganise, `confirmations` keeps the indexer that many blocks behind. When several
processes share the store, only the lease holder (node/lease.py) indexes, its writes fenced.

`IndexedChainView` answers `ledger.verify`'s batch and leaf-status questions from this index,
and the rare agency and signer questions from the chain.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound

from ledger.chainview import AgencyStatus, BatchInfo, LeafState, LeafStatusInfo
from ledger.codes import decode_code
from node.chain.views import Web3ChainView
from node.lease import Lease, LeaseLost
from node.store import Store

log = logging.getLogger("sijill.indexer")


class Indexer:
    def __init__(
        self,
        store: Store,
        w3: Web3,
        ledger: Any,
        *,
        start_block: int,
        span: int = 2_000,
        confirmations: int = 0,
        lease: Lease,
    ) -> None:
        self.store = store
        self.lease = lease  # when several processes share the store, its holder indexes
        self.w3 = w3
        self.ledger = ledger
        self.start_block = start_block
        self.span = span
        self.confirmations = confirmations
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._events = {
            "BatchAnchored": ledger.events.BatchAnchored(),
            "LeafRevoked": ledger.events.LeafRevoked(),
            "LeafSuperseded": ledger.events.LeafSuperseded(),
        }
        self._topics = {
            Web3.keccak(text=_signature(e.abi)).hex().removeprefix("0x"): e for e in self._events.values()
        }
        # The events that change a leaf's state (`unindexed_leaf_changes` asks for these alone).
        self._leaf_topics = ["0x" + t for t, e in self._topics.items() if e.event_name != "BatchAnchored"]

    @property
    def checkpoint(self) -> int:
        saved = self.store.get_json(b"chain/checkpoint")
        return int(saved["block"]) if saved else self.start_block - 1

    def lag(self) -> int | None:
        try:
            return max(0, self.w3.eth.block_number - self.checkpoint)
        except Exception:
            return None

    def run(self, poll: float = 0.5) -> None:
        while not self._stop.is_set():
            if not self.lease.held():
                self.last_error = None  # another process of the agency indexes (node/lease.py)
                self._stop.wait(poll)
                continue
            try:
                with self.store.fenced(self.lease.fence):
                    caught_up = self.step()
                self.last_error = None
            except LeaseLost:
                caught_up = True
            except Exception as exc:  # the endpoint is away or restarting: try again shortly
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("indexer: %s", self.last_error)
                caught_up = True
                self._stop.wait(2.0)
            if caught_up:
                self._stop.wait(poll)

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> bool:
        """Index the next range of blocks; whether the index has caught up."""
        latest = self.w3.eth.block_number - self.confirmations
        if not self._checkpoint_on_chain():
            # The chain lost blocks (a dev chain killed before it saved them, a network restored
            # from a backup): the indexed block is gone, or another stands under its number. What
            # was learnt from the lost blocks may be false now, and the blocks mined again under
            # their numbers hold events not read yet: forget the index and read it all again.
            self._forget_everything()
            return False
        first = self.checkpoint + 1
        if first > latest:
            return True
        last = min(latest, first + self.span - 1)
        logs = self.w3.eth.get_logs({"address": self.ledger.address, "fromBlock": first, "toBlock": last})
        blocks: dict[int, int] = {}
        with self.store.write_batch() as wb:
            for entry in logs:
                event = self._topics.get(bytes(entry["topics"][0]).hex().removeprefix("0x"))
                if event is None:
                    continue
                args = event.process_log(entry)["args"]
                agency = decode_code(args["agency"])
                if event.event_name == "BatchAnchored":
                    number = entry["blockNumber"]
                    if number not in blocks:
                        blocks[number] = self.w3.eth.get_block(number)["timestamp"]
                    self.store.put_json(
                        wb,
                        f"chain/batch/{agency}/{args['root'].hex()}".encode(),
                        {
                            "recordType": decode_code(args["recordType"]),
                            "seq": args["seq"],
                            "block": number,
                            "timestamp": blocks[number],
                            "count": args["count"],
                            "signer": args["signer"].lower(),
                        },
                    )
                else:
                    revoked = event.event_name == "LeafRevoked"
                    self.store.put_json(
                        wb,
                        f"chain/leaf/{agency}/{args['leaf'].hex()}".encode(),
                        {
                            "state": "revoked" if revoked else "superseded",
                            "reason": args["reason"],
                            "block": entry["blockNumber"],
                            "successor": "00" * 32 if revoked else args["successor"].hex(),
                        },
                    )
            checkpoint = {"block": last, "hash": bytes(self.w3.eth.get_block(last)["hash"]).hex()}
            self.store.put_json(wb, b"chain/checkpoint", checkpoint)
        return last >= latest

    def unindexed_leaf_changes(self) -> frozenset[tuple[str, str]] | None:
        """The leaves revoked or superseded in blocks the index has not read yet, as (agency,
        leaf hex): what a reader of the index must ask the chain about rather than trust the
        index's "current". Empty when the index has caught up; None when it cannot be told in one
        `eth_getLogs` (the index trails by more than `span` blocks, or the chain does not answer)."""
        try:
            latest = self.w3.eth.block_number
            first = self.checkpoint + 1
            if first > latest:
                return frozenset()
            if latest - first >= self.span:
                return None
            logs = self.w3.eth.get_logs(
                {
                    "address": self.ledger.address,
                    "fromBlock": first,
                    "toBlock": latest,
                    "topics": [self._leaf_topics],
                }
            )
            changed = set()
            for entry in logs:
                event = self._topics.get(bytes(entry["topics"][0]).hex().removeprefix("0x"))
                if event is not None:
                    args = event.process_log(entry)["args"]
                    changed.add((decode_code(args["agency"]), bytes(args["leaf"]).hex()))
            return frozenset(changed)
        except Exception:  # the endpoint is away: the reader asks the chain itself, or fails there
            return None

    def _checkpoint_on_chain(self) -> bool:
        """Whether the chain still has the last indexed block (its hash as it was indexed)."""
        saved = self.store.get_json(b"chain/checkpoint")
        if saved is None or "hash" not in saved:  # nothing indexed yet, or by a node before hashes
            return True
        try:
            block = self.w3.eth.get_block(saved["block"])
        except BlockNotFound:
            return False
        return bool(bytes(block["hash"]).hex() == saved["hash"])

    def _forget_everything(self) -> None:
        log.warning(
            "the chain no longer has block %d as indexed: it lost blocks; indexing again from block %d",
            self.checkpoint,
            self.start_block,
        )
        for prefix in (b"chain/batch/", b"chain/leaf/"):
            while keys := [key for key, _ in self.store.iter_prefix(prefix, limit=10_000)]:
                with self.store.write_batch() as wb:
                    for key in keys:
                        self.store.delete(wb, key)
        self.store.delete(None, b"chain/checkpoint")


class IndexedChainView:
    """A `ChainView` whose batch and leaf answers come from the local index."""

    def __init__(self, store: Store, live: Web3ChainView) -> None:
        self.store = store
        self.live = live
        self.chain_id = live.chain_id
        self.ledger = live.ledger
        self.registry = live.registry

    def batch(self, agency: str, root: bytes) -> BatchInfo | None:
        info = self.store.get_json(f"chain/batch/{agency}/{root.hex()}".encode())
        if info is None:
            return None
        return BatchInfo(info["recordType"], info["seq"], info["block"], info["timestamp"], info["count"])

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo:
        info = self.store.get_json(f"chain/leaf/{agency}/{leaf.hex()}".encode())
        if info is None:
            return LeafStatusInfo()
        state = LeafState.REVOKED if info["state"] == "revoked" else LeafState.SUPERSEDED
        return LeafStatusInfo(state, info["reason"], info["block"], bytes.fromhex(info["successor"]))

    def agency_status(self, agency: str) -> AgencyStatus:
        return self.live.agency_status(agency)

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool:
        return self.live.signer_valid_at(agency, signer, block)

    def latest_block(self) -> int:
        return self.live.latest_block()


def _signature(abi: dict[str, Any]) -> str:
    return f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
