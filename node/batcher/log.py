"""The batcher's ground floor: its settings and state, the agency's batch log in the store, the
chain's answers about it, and finalising a batch once the chain has it.

A batch goes through persisted states, each stored before the next step:

    built --send--> sent(tx) --receipt--> anchored (proof of every leaf stored)

The log (`log/<seq>` -> root) orders the batches (`batch/<root>`); `meta/head` is the local head.
Proofs are stored compactly: the levels of each batch tree once (`tree/<root>`, 64 bytes a
leaf), and per leaf its root and index (`proof/<leaf>`); a proof is read out of the levels.

Each batch keeps the soonest `anchorBy` and the earliest intake time of its leaves (`_promises`),
and every round notes the open batches (`_take_stock`), so that `unanchored()`
(node/batcher/waiting.py) can say how close the oldest promise is without reading every leaf.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.codes import agency_code
from node.authority import Authority, Refusal
from node.errors import ChainError, NodeError
from node.failpoints import failpoint
from node.lease import Lease, LeaseLost
from node.proofs import unpack_level
from node.store import Store


@dataclass(frozen=True, slots=True)
class BatcherSettings:
    batch_size: int = 10_000
    max_age: float = 5.0
    max_in_flight: int = 4
    receipt_timeout: float = 120.0
    #: seconds between two comparisons of the node's log with the chain's, when nothing (a
    #: revert, a restart) prompts one sooner: the chain may have lost blocks (see `line_up`)
    chain_check_interval: float = 10.0


class BatchLog:
    """The state of the batcher of one agency and its reading of the batch log, the store's and
    the chain's; the layers above (operations, lining up, what waits, the loop) build on it."""

    def __init__(
        self,
        store: Store,
        *,
        agency: str,
        ledger: Any,
        tx: Any,
        authority: Authority,
        settings: BatcherSettings = BatcherSettings(),
        clock: Callable[[], float] = time.time,
        lease: Lease,
    ) -> None:
        self.store = store
        #: who batches and sends when several processes share the store (node/lease.py)
        self.lease = lease
        self.agency = agency
        self._agency_word = agency_code(agency)
        self.ledger = ledger
        self.tx = tx
        self.settings = settings
        self.authority = authority
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        # One worker at a time: the loop thread and a caller of drain() must never both close
        # batches from the same queue (they would build the same root twice).
        self._work = threading.RLock()
        self.last_error: str | None = None
        self.last_anchor_at: float | None = None
        self._log_from: bytes | None = None  # see _open_log
        self.holds: list[str] = []  # what waits because the registry refuses it now, and why
        self.held_leaves = 0
        self.held_operations = 0
        self._held: set[str] = set()  # record types held ("*": everything), to log changes
        self.anchored_batches = 0
        self.anchored_leaves = 0
        self.anchor_seconds_total = 0.0
        self.resent_batches = 0  # batches the chain lost (it went backwards) and this process resent
        # Anchoring progresses while a batch is finalised now and then, or while nothing waits:
        # the later of the two is when it last made progress (for `unanchored()`).
        self._progress_at = clock()
        self._open_batches: list[tuple[int, float | None, float | None, float]] = []
        self._checked_at = float("-inf")  # when the log was last lined up with the chain's
        self._receipts: dict[str | None, Any] = {}
        self._take_stock()

    def _open_log(self) -> Iterator[tuple[bytes, str, dict[str, Any] | None]]:
        """(root, batch) of the log from its first batch not yet anchored on, in log order.

        The leading run of anchored batches is skipped once and for all (`_log_from` moves past
        it), so a pass costs what is in flight, not the node's whole history."""
        leading = True
        for key, entry in self.store.iter_json(b"log/", start=self._log_from):
            root = entry["root"]
            batch = self.store.get_json(f"batch/{root}".encode())
            if leading and (batch is None or batch["status"] == "anchored"):
                self._log_from = key + b"\x00"  # the least key after this one
                continue
            leading = False
            yield key, root, batch

    def _unanchored(self) -> Iterator[tuple[bytes, str, dict[str, Any]]]:
        """(log key, root, batch) of each batch not yet anchored, in log order."""
        for key, root, batch in self._open_log():
            if batch is not None and batch["status"] != "anchored":
                yield key, root, batch

    def unfinished(self) -> bool:
        for _, entry in self.store.iter_json(
            b"log/", reverse=True, limit=self.settings.max_in_flight * 4 + 8
        ):
            batch = self.store.get_json(f"batch/{entry['root']}".encode())
            if batch is not None and batch["status"] != "anchored":
                return True
        if any(True for _ in self.store.iter_prefix(b"queue/", limit=1)):
            return True
        return any(op["status"] != "done" for _, op in self.store.iter_json(b"op/"))

    def _chain_head(self) -> tuple[bytes, int]:
        try:
            root, seq = self.ledger.functions.head(self._agency_word).call()
        except Exception as exc:
            raise ChainError(f"cannot read the agency's head from the chain: {type(exc).__name__}") from None
        return bytes(root), int(seq)

    def _on_chain(self, root: str) -> bool:
        try:
            info = self.ledger.functions.batch(self._agency_word, bytes.fromhex(root)).call()
        except Exception as exc:  # transport errors: the caller retries later
            raise ChainError(f"cannot read batch {root} from the chain: {type(exc).__name__}") from None
        return bool(info[1] != 0)

    def _in_pool(self, batch: dict[str, Any]) -> bool:
        try:
            return bool(self.tx.w3.eth.get_transaction(batch["tx"]))
        except Exception:  # TransactionNotFound, or the node is away
            return False

    def _queued_types(self) -> list[str]:
        kinds: list[str] = []
        start = b"queue/"
        while True:
            entry = next(iter(self.store.iter_prefix(b"queue/", start=start, limit=1)), None)
            if entry is None:
                return kinds
            kind = entry[0].split(b"/")[1].decode()
            kinds.append(kind)
            start = f"queue/{kind}0".encode()  # '0' sorts right after '/': the next type

    def _may_send(self, what: str) -> None:
        """Refuse to send `what` unless this process holds the lease now (node/lease.py)."""
        if not self.lease.held():
            raise LeaseLost(f"not sending {what}: this process no longer holds the batcher lease")

    def _refusal(self, kind: str) -> Refusal | None:
        return self.authority.refusal(kind)

    def _finalise(
        self, root: str, batch: dict[str, Any], *, tx_hash: str | None, block: int | None = None
    ) -> None:
        levels = self.store.get(f"tree/{root}".encode())
        if levels is None:
            raise NodeError(f"the tree of batch {root} is missing from the store")
        leaves = unpack_level(levels, 0, batch["count"])
        index_bytes = bytes.fromhex(root)
        chunk = 20_000
        for start in range(0, len(leaves), chunk):
            with self.store.write_batch() as wb:
                for index in range(start, min(start + chunk, len(leaves))):
                    self.store.put(
                        wb, b"proof/" + leaves[index].hex().encode(), index_bytes + index.to_bytes(4, "big")
                    )
        failpoint("proofs-stored")
        self._mark(root, {**batch, "tx": tx_hash, "block": block}, "anchored")
        self.last_anchor_at = self._progress_at = self._clock()
        # For /metrics: batches and leaves anchored by this process, and how long each batch
        # took from closing to its proofs being stored.
        self.anchored_batches += 1
        self.anchored_leaves += len(leaves)
        self.anchor_seconds_total += max(0.0, self.last_anchor_at - batch.get("builtAt", self.last_anchor_at))

    def _mark(self, root: str, batch: dict[str, Any], status: str) -> None:
        self.store.put_json(None, f"batch/{root}".encode(), {**batch, "status": status})

    def _promises(self, leaves: list[bytes]) -> dict[str, float]:
        """The soonest `anchorBy` and the earliest intake time of `leaves` (from their receipts):
        kept in the batch, so the node can say how close its oldest promise is without reading
        every leaf again."""
        by: float | None = None
        intake: float | None = None
        for info in self.store.get_many_json([b"leaf/" + leaf.hex().encode() for leaf in leaves]):
            if info is None:
                continue
            by = info["anchorBy"] if by is None else min(by, info["anchorBy"])
            intake = info["intakeTime"] if intake is None else min(intake, info["intakeTime"])
        return {} if by is None or intake is None else {"anchorBy": by, "intakeTime": intake}

    def _take_stock(self) -> None:
        """Note the open batches (leaves, soonest promise, oldest intake, when built) for
        `unanchored()`, which other threads call; and that anchoring progresses while nothing
        waits."""
        batches = []
        for _, root, batch in self._unanchored():
            if "anchorBy" not in batch:  # a batch built before batches kept their promise
                first = unpack_level(self.store.get(f"tree/{root}".encode()) or b"", 0, 1)
                batch = {**batch, **self._promises(first)}
            batches.append((batch["count"], batch.get("anchorBy"), batch.get("intakeTime"), batch["builtAt"]))
        self._open_batches = batches
        if not batches and self.store.queued_leaves == 0:
            self._progress_at = self._clock()
