"""The batcher: pending leaves become anchored batches, and queued amendments and revocations
reach the chain, crash-safely.

Each record type has a queue of pending leaves. A batch closes when its queue holds
`batch_size` leaves or its oldest leaf has waited `max_age` seconds. Closing a batch is one write
batch: the tree's levels, the batch (seq = local head + 1, prev = local head root), the log
entry and the new local head are stored, and the leaves leave the queue. Only then is `anchor`
sent. Every step is persisted before the next, so a node killed at any instant resumes:

    built --send--> sent(tx) --receipt--> anchored (proof of every leaf stored)

On start, and for any batch not yet anchored, the chain is asked first (`batch(agency, root)`):
a batch the chain already has is finalised, never sent again; one it lacks is (re)sent with the
same seq and prev root. The contract refuses a root an agency anchored before and any break in
the seq/prev chain, so nothing is anchored twice even if a resend races the first send.

Proofs are stored compactly: the levels of each batch tree once (`tree/<root>`, 64 bytes a
leaf), and per leaf its root and index (`proof/<leaf>`); a proof is read out of the levels.

Amendments and revocations (`op/<seq>`) are sent as bulk `supersede` / `revoke` calls (up to
1,024 leaves each) once every leaf they name is anchored, with the same persisted states. One
that changes the successor of an earlier, unfinished supersession waits for it (the contract
takes only a current successor), and one whose transaction was lost is sent again.

What the registry would refuse is not sent (node/authority.py): leaves of a record type the
agency may no longer anchor stay in their queue, and while the agency is suspended (or the
node's signer retired) nothing is sent at all. Nothing is dropped: it all goes once the council
allows it again, and meanwhile `holds` says what waits and why (in `/readyz`, `/metrics` and
the log). A batch built just before its type was disallowed would block the agency's whole log
(every later batch names it as its predecessor); once no transaction of it or after it is in
flight, those batches are dissolved and their leaves requeued, so other types anchor on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from web3.exceptions import BlockNotFound

from ledger.codes import agency_code, record_type
from ledger.merkle import build_tree
from node.authority import Authority, Refusal
from node.chain.limits import ANCHOR_GAS, MAX_LEAVES_PER_CALL
from node.errors import ChainError, ContractRevert, NodeError
from node.failpoints import failpoint
from node.proofs import pack_levels, unpack_level
from node.store import Store

log = logging.getLogger("sijill.batcher")

LAST_EFFECT = b"meta/last-effect"  # {"block", "hash"}: where the latest operation done took effect
COUNT_LIMIT = 1_000_000  # leaves counted per queue when reporting what waits


@dataclass(frozen=True, slots=True)
class BatcherSettings:
    batch_size: int = 10_000
    max_age: float = 5.0
    max_in_flight: int = 4
    receipt_timeout: float = 120.0
    #: seconds between two comparisons of the node's log with the chain's, when nothing (a
    #: revert, a restart) prompts one sooner: the chain may have lost blocks (see `line_up`)
    chain_check_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class Unanchored:
    """What the node accepted and has not anchored yet: the receipts' promises still to keep.

    `queued` leaves wait in the intake queues, `in_batches` in batches built or sent (or held
    back because the registry refuses them). `earliest_anchor_by` is the soonest `anchorBy`
    promised to any of them, `oldest_intake` the intake time of the one waiting longest (unix
    seconds; None when nothing waits). `stalled_for` is how long anchoring has made no progress
    (no batch anchored) although leaves wait: since the later of the last batch anchored and the
    oldest waiting leaf's intake (seconds; 0 when nothing waits)."""

    queued: int
    in_batches: int
    batches: int
    earliest_anchor_by: float | None
    oldest_intake: float | None
    stalled_for: float

    @property
    def leaves(self) -> int:
        return self.queued + self.in_batches


class Batcher:
    """Closes, anchors and finalises batches for one agency."""

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
    ) -> None:
        self.store = store
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

    # ------------------------------------------------------------------------- the loop

    def run(self, poll: float = 0.2) -> None:
        """Work until `stop()`: close, send, finalise; errors are retried, never fatal."""
        recovered = False
        while not self._stop.is_set():
            try:
                if not recovered:  # inside the retry loop: the chain may be away at start
                    with self._work:
                        self.recover()
                    recovered = True
                self.step()
                self.last_error = None
            except (ChainError, ContractRevert) as exc:
                self.last_error = str(exc)
                log.warning("chain unavailable or refused, retrying: %s", exc)
                self._stop.wait(2.0)
            except Exception as exc:
                # Never end the thread: intake would go on signing receipts that nothing anchors,
                # with nothing to show for it. The error stays in health() and /readyz.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("batcher step failed, retrying")
                self._stop.wait(2.0)
            self._wake.wait(poll)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def step(self) -> None:
        """One round: close ready batches, send built ones, finalise sent ones, send ops."""
        with self._work:
            self._round(force=False)

    def _round(self, *, force: bool) -> bool:
        """A round of `step`, closing every queue's batch now if `force`; False when `force`
        found nothing left to do (`drain` is done)."""
        try:
            return self._round_of_work(force=force)
        finally:
            self._take_stock()  # also when the chain is away: what waits is still counted

    def _round_of_work(self, *, force: bool) -> bool:
        self.authority.refresh()
        if time.monotonic() - self._checked_at >= self.settings.chain_check_interval:
            self.line_up()
        for kind in self._queued_types():
            while self.close_batch(kind, force=force):
                pass
        if force and not self.unfinished():
            return False
        self.send_built()
        self.finish_sent()
        self.requeue_refused()
        self.send_ops()
        self.report_holds()
        return True

    def drain(self, timeout: float = 600.0) -> None:
        """Anchor everything queued now, whatever the size and age limits (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        recovered = False
        while time.monotonic() < deadline:
            try:
                with self._work:
                    if not recovered:
                        self.recover()
                        recovered = True
                    if not self._round(force=True):
                        break
                self.last_error = None
            except (ChainError, ContractRevert) as exc:  # the chain is away: wait for it
                self.last_error = str(exc)
                log.warning("chain unavailable or refused, retrying: %s", exc)
                time.sleep(2.0)
            time.sleep(0.2)
        if self.unfinished():
            why = f": {'; '.join(self.holds)}" if self.holds else ""
            raise ChainError(f"batches or operations still unfinished after {timeout:g}s{why}")

    # ------------------------------------------------------------------------- batches

    def close_batch(self, kind: str, *, force: bool) -> bool:
        """Close one batch of `kind` if it is due and the registry lets the agency anchor `kind`;
        whether one was closed."""
        if self._refusal(kind) is not None:
            return False  # its leaves wait in the queue, where nothing blocks the other types
        limit = self.settings.batch_size
        entries = list(self.store.iter_prefix(f"queue/{kind}/".encode(), limit=limit))
        if not entries:
            return False
        if not force and len(entries) < limit:
            oldest = self.store.get_json(b"leaf/" + entries[0][1].hex().encode())
            if oldest is None or self._clock() - oldest["intakeTime"] < self.settings.max_age:
                return False
        leaves = [bytes(value) for _, value in entries]
        promises = self._promises(leaves)
        tree = build_tree(leaves)
        head = self.store.get_json(b"meta/head") or {"seq": 0, "root": "00" * 32}
        seq = head["seq"] + 1
        with self.store.write_batch() as wb:
            self.store.put(wb, f"tree/{tree.root.hex()}".encode(), pack_levels(tree))
            self.store.put_json(
                wb,
                f"batch/{tree.root.hex()}".encode(),
                {
                    "type": kind,
                    "seq": seq,
                    "prev": head["root"],
                    "count": len(leaves),
                    "status": "built",
                    "builtAt": self._clock(),
                    **promises,
                },
            )
            self.store.put_json(wb, f"log/{seq:016x}".encode(), {"root": tree.root.hex()})
            self.store.put_json(wb, b"meta/head", {"seq": seq, "root": tree.root.hex()})
            for key, _ in entries:
                self.store.dequeue(wb, key)
        failpoint("batch-built")
        return True

    def send_built(self) -> None:
        """Send `anchor` for built batches, in log order, keeping a few in flight."""
        in_flight = 0
        for _, root, batch in self._unanchored():
            if batch["status"] == "sent":
                in_flight += 1
                continue
            if in_flight >= self.settings.max_in_flight:
                return
            if self._on_chain(root):
                self._finalise(root, batch, tx_hash=batch.get("tx"))
                continue
            if self._refusal(batch["type"]) is not None:
                return  # the chain would refuse it, and every later batch names it: hold them all
            call = self.ledger.functions.anchor(
                record_type(batch["type"]),
                bytes.fromhex(root),
                batch["count"],
                batch["seq"],
                bytes.fromhex(batch["prev"]),
            )
            # A fixed gas limit, not an estimate: an estimate runs against the latest block, where
            # the previous batch (still pending) is not yet the head, and would fail the seq check.
            pending = self.tx.send_call(call, label=f"anchor batch {batch['seq']}", gas=ANCHOR_GAS)
            failpoint("anchor-sent")
            self.store.put_json(
                None, f"batch/{root}".encode(), {**batch, "status": "sent", "tx": pending.tx_hash_hex}
            )
            in_flight += 1

    def finish_sent(self) -> None:
        """Finalise sent batches whose transaction is mined; resend those the chain lost."""
        for _, root, batch in self._unanchored():
            if batch["status"] != "sent":
                continue
            receipt = self.tx.find_receipt(batch["tx"])
            if receipt is None:
                if self._clock() - batch.get(
                    "builtAt", 0
                ) > self.settings.receipt_timeout and not self._in_pool(batch):
                    self._mark(root, batch, "built")  # dropped: send again (the chain is asked first)
                return  # later batches chain on this one: wait for it
            if self._on_chain(root):
                failpoint("anchor-mined")
                self._finalise(root, batch, tx_hash=batch["tx"], block=receipt["blockNumber"])
            else:
                # Mined but reverted without anchoring: nothing changed on chain. If the chain's
                # log moved past this batch, rebase; if it lost batches this one follows, send
                # those again first; otherwise send it again.
                log.warning("anchor of batch %s reverted; checking the chain's log", batch["seq"])
                self._mark(root, batch, "built")
                self.authority.refresh(force=True)  # the registry may have changed: ask it now
                self.line_up()
                return

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

    def recover(self) -> None:
        """After a restart: settle every batch that is not anchored against the chain, and line
        the local log up with the chain's (a fresh store for an agency with history starts at
        the chain's head)."""
        for _, root, batch in self._unanchored():
            if self._on_chain(root):
                self._finalise(root, batch, tx_hash=batch.get("tx"))
        self.line_up()

    def line_up(self) -> None:
        """Line the local log up with the chain's, whichever of them is ahead.

        The chain behind (it lost blocks: a dev chain killed before it saved its last ones, a
        network restored from a backup): batches the node holds as anchored are no longer on it,
        and every later anchor reverts, as its seq no longer follows the chain's head. They are
        sent again (`_resend_what_the_chain_lost`). The chain ahead (another process signed for
        the agency, or the store is new): the node's open batches are rebased after it
        (`_rebase_if_behind`). Each reads the chain's head afresh. Revocations and supersessions
        carry no seq: the block where the latest took effect is kept (`meta/last-effect`, number
        and hash), and when the chain no longer has that block, those it lost are redone."""
        self._checked_at = time.monotonic()
        self._resend_what_the_chain_lost()
        self._redo_ops_if_their_blocks_are_gone()
        self._rebase_if_behind()

    def _resend_what_the_chain_lost(self) -> None:
        """If the chain's head is below batches the node holds as anchored, and the chain's log
        is a prefix of the node's (the batch after its head names its head root as predecessor),
        set every batch above the chain's head back to built, with its proofs withdrawn, so they
        are sent again in log order with their own seq and prev root: the same roots, so every
        receipt's leaf and proof stays what it was once they are on the chain again. A batch
        the chain has is never sent again (each is asked first, and the contract refuses a root
        twice); revocations and supersessions the chain lost with them are queued again."""
        chain_root, chain_seq = self._chain_head()
        local = self.store.get_json(b"meta/head") or {"seq": 0, "root": "00" * 32}
        if local["seq"] <= chain_seq:
            return
        above = list(self.store.iter_json(b"log/", start=f"log/{chain_seq + 1:016x}".encode()))
        if not above:
            return  # the log begins later (a store started at the chain's head): nothing of ours lost
        lost: list[tuple[str, dict[str, Any]]] = []
        for position, (_, entry) in enumerate(above):
            batch = self.store.get_json(f"batch/{entry['root']}".encode())
            if batch is None:
                return
            if position == 0 and batch["prev"] != chain_root.hex():
                log.error(
                    "the chain's log of %s (seq %d, root %s) is not a prefix of the node's: batch %d "
                    "names %s; not resending anything",
                    self.agency,
                    chain_seq,
                    chain_root.hex(),
                    batch["seq"],
                    batch["prev"],
                )
                return
            if batch["status"] == "anchored" and not self._on_chain(entry["root"]):
                lost.append((entry["root"], batch))
            elif batch["status"] == "sent" and self._tx_lost(batch) and not self._on_chain(entry["root"]):
                lost.append((entry["root"], batch))  # its transaction went with the lost blocks
        if not lost:
            return
        for root, batch in lost:
            levels = self.store.get(f"tree/{root}".encode()) or b""
            with self.store.write_batch() as wb:
                for leaf in unpack_level(levels, 0, batch["count"]):
                    self.store.delete(wb, b"proof/" + leaf.hex().encode())
                kept = {k: v for k, v in batch.items() if k not in ("tx", "block")}
                self.store.put_json(wb, f"batch/{root}".encode(), {**kept, "status": "built"})
        self._log_from = None  # the leading anchored run is shorter now
        self.resent_batches += len(lost)
        log.warning(
            "the chain's log of %s went back to seq %d: %d batches the node held as anchored or "
            "sent (seq %d to %d) are not on it and are sent again",
            self.agency,
            chain_seq,
            len(lost),
            lost[0][1]["seq"],
            lost[-1][1]["seq"],
        )
        if any(batch["status"] == "anchored" for _, batch in lost):
            self._redo_lost_ops()

    def _tx_lost(self, batch: dict[str, Any]) -> bool:
        """Whether the chain neither mined nor holds the batch's transaction."""
        return self.tx.find_receipt(batch["tx"]) is None and not self._in_pool(batch)

    def _redo_ops_if_their_blocks_are_gone(self) -> None:
        """If the block of the latest revocation or supersession done is no longer the chain's
        (missing, or another block under its number), the chain lost blocks: redo what it lost."""
        mark = self.store.get_json(LAST_EFFECT)
        if mark is None:
            return
        try:
            block = self.tx.w3.eth.get_block(mark["block"])
            still = bytes(block["hash"]).hex() == mark["hash"]
        except BlockNotFound:
            still = False
        except Exception as exc:  # transport errors: the caller retries later
            what = f"cannot read block {mark['block']} from the chain"
            raise ChainError(f"{what}: {type(exc).__name__}") from None
        if not still:
            log.warning("block %d, where the last operation done took effect, is gone", mark["block"])
            self._redo_lost_ops()

    def _redo_lost_ops(self) -> None:
        """Queue again every revocation and supersession held as done that the chain no longer
        shows (lost with the blocks that held it): one chain question per operation done."""
        redone = 0
        for key, op in self.store.iter_json(b"op/"):
            if op["status"] == "done" and not self._op_done_on_chain(op):
                kept = {k: v for k, v in op.items() if k not in ("tx", "block")}
                self.store.put_json(None, key, {**kept, "status": "queued"})
                redone += 1
        self.store.delete(None, LAST_EFFECT)  # the ops still done are in blocks the chain has
        if redone:
            log.warning("%d revocations or supersessions lost by the chain are queued again", redone)

    def _rebase_if_behind(self) -> None:
        """If the chain's log has moved past a batch not yet anchored (another process signed
        for this agency, or the store is new), requeue those batches' leaves after the chain's head."""
        chain_root, chain_seq = self._chain_head()
        local = self.store.get_json(b"meta/head") or {"seq": 0, "root": "00" * 32}
        stale: list[tuple[bytes, str, dict[str, Any]]] = []
        for key, root, batch in self._unanchored():
            if stale:
                stale.append((key, root, batch))  # it names a stale batch as its predecessor
            elif batch["seq"] <= chain_seq:
                # The head was read first, so this batch is on the chain now or never will be. It
                # may be: a transaction sent before a restart, mined since recover() asked.
                # Dissolving it would anchor its leaves a second time.
                if self._on_chain(root):
                    self._finalise(root, batch, tx_hash=batch.get("tx"))
                else:
                    stale.append((key, root, batch))
        if not stale and local["seq"] >= chain_seq:
            return
        self._dissolve(stale, chain_root, chain_seq)
        if stale:
            log.warning(
                "the chain's log of %s is ahead: %d unanchored batches requeued", self.agency, len(stale)
            )

    def requeue_refused(self) -> None:
        """Dissolve the open batches when the first of them has a record type the registry no
        longer allows this agency and none of them has a transaction in flight (a transaction
        sent may still be mined; one mined and reverted never will). Their leaves go back to
        their queues: the allowed types' are batched anew after the chain's head, the refused
        type's wait. While the whole agency is refused nothing could go ahead: nothing is done."""
        if self.authority.standing.agency_refusal is not None:
            return
        open_batches = list(self._unanchored())
        refusal = self._refusal(open_batches[0][2]["type"]) if open_batches else None
        if refusal is None:
            return
        if any(batch["status"] == "sent" for _, _, batch in open_batches):
            return  # wait for their receipts
        chain_root, chain_seq = self._chain_head()
        if chain_seq != open_batches[0][2]["seq"] - 1:
            return  # the chain's log moved: recover() and _rebase_if_behind() settle that
        self._dissolve(open_batches, chain_root, chain_seq)
        log.warning(
            "%d batches of %s dissolved, their leaves requeued: %s",
            len(open_batches),
            self.agency,
            refusal.message_en,
        )

    def _dissolve(
        self, stale: list[tuple[bytes, str, dict[str, Any]]], chain_root: bytes, chain_seq: int
    ) -> None:
        """Delete batches that are not on chain, requeue their leaves, and set the local head to
        the chain's, in one write batch."""
        with self.store.write_batch() as wb:
            for key, root, batch in stale:
                packed = self.store.get(f"tree/{root}".encode()) or b""
                for leaf in unpack_level(packed, 0, batch["count"]):
                    self.store.enqueue(wb, batch["type"], leaf)
                self.store.delete(wb, key)
                self.store.delete(wb, f"batch/{root}".encode())
            self.store.put_json(wb, b"meta/head", {"seq": chain_seq, "root": chain_root.hex()})

    # ------------------------------------------------------------------------- what waits

    def _promises(self, leaves: list[bytes]) -> dict[str, float]:
        """The soonest `anchorBy` and the earliest intake time of `leaves` (from their receipts):
        kept in the batch, so the node can say how close its oldest promise is without reading
        every leaf again."""
        by: float | None = None
        intake: float | None = None
        for leaf in leaves:
            info = self.store.get_json(b"leaf/" + leaf.hex().encode())
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

    def unanchored(self) -> Unanchored:
        """What is accepted and not anchored yet (see `Unanchored`); cheap: the queues' count is
        the store's, the open batches are those of the batcher's last round, and only the head
        of each queue is read (a queue is in intake order, so its head waited longest)."""
        batches = self._open_batches
        by = [b for _, b, _, _ in batches if b is not None]
        intake = [t for _, _, t, _ in batches if t is not None]
        for kind in self._queued_types():
            head = next(iter(self.store.iter_prefix(f"queue/{kind}/".encode(), limit=1)), None)
            info = self.store.get_json(b"leaf/" + bytes(head[1]).hex().encode()) if head else None
            if info is not None:
                by.append(info["anchorBy"])
                intake.append(info["intakeTime"])
        now = self._clock()
        stalled = 0.0
        if intake:  # something waits: since when has anchoring made no progress?
            stalled = max(0.0, now - max(self._progress_at, min(intake)))
        return Unanchored(
            queued=self.store.queued_leaves,
            in_batches=sum(count for count, _, _, _ in batches),
            batches=len(batches),
            earliest_anchor_by=min(by, default=None),
            oldest_intake=min(intake, default=None),
            stalled_for=stalled,
        )

    def _refusal(self, kind: str) -> Refusal | None:
        return self.authority.refusal(kind)

    def report_holds(self) -> None:
        """Set `holds` (and `held_leaves`) to what waits because the registry refuses it now,
        and log each hold when it starts and when it ends."""
        holds: dict[str, tuple[int, str]] = {}  # record type, or "*" for everything -> (leaves, text)
        ops = 0
        refusal = self.authority.standing.agency_refusal
        if refusal is not None:
            leaves = sum(1 for _ in self.store.iter_prefix(b"queue/", limit=COUNT_LIMIT))
            leaves += sum(batch["count"] for _, _, batch in self._unanchored())
            ops = sum(1 for _, op in self.store.iter_json(b"op/") if op["status"] == "queued")
            holds["*"] = (
                leaves,
                f"{_leaves(leaves)} and {ops} revocation{'' if ops == 1 else 's'} or "
                f"supersession{'' if ops == 1 else 's'} wait: {refusal.message_en}",
            )
        else:
            waiting: dict[str, int] = {}
            for kind in self._queued_types():
                if self._refusal(kind) is not None:
                    prefix = f"queue/{kind}/".encode()
                    waiting[kind] = sum(1 for _ in self.store.iter_prefix(prefix, limit=COUNT_LIMIT))
            for _, _, batch in self._unanchored():
                if self._refusal(batch["type"]) is not None:
                    waiting[batch["type"]] = waiting.get(batch["type"], 0) + batch["count"]
            for kind, count in sorted(waiting.items()):
                why = self._refusal(kind)
                message = why.message_en if why is not None else ""
                holds[kind] = (count, f"{_leaves(count)} of {kind} wait, kept until allowed again: {message}")
        for what in sorted(holds.keys() - self._held):
            log.warning("holding %s: %s", "everything" if what == "*" else what, holds[what][1])
        for what in sorted(self._held - holds.keys()):
            log.warning(
                "no longer holding %s: the registry allows it again", "anything" if what == "*" else what
            )
        self._held = set(holds)
        self.holds = [text for _, text in holds.values()]
        self.held_leaves = sum(count for count, _ in holds.values())
        self.held_operations = ops

    def _chain_head(self) -> tuple[bytes, int]:
        try:
            root, seq = self.ledger.functions.head(self._agency_word).call()
        except Exception as exc:
            raise ChainError(f"cannot read the agency's head from the chain: {type(exc).__name__}") from None
        return bytes(root), int(seq)

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

    # ------------------------------------------------------------------------- operations

    def send_ops(self) -> None:
        """Send queued revocations and supersessions whose leaves are all anchored, in bulk
        (none while the registry refuses the agency: they wait).

        An operation on a leaf that an earlier, unfinished supersession names as its successor
        waits until that supersession is on the chain: the contract takes only a current leaf
        as a successor, so a record amended (v1 by v2) and then revoked (v2), or amended twice,
        must reach the chain in that order, whatever the grouping by kind and reason and
        whichever transaction is mined first."""
        self._receipts = {}  # receipts read this round, by transaction
        ready: dict[tuple[str, int], list[tuple[bytes, dict[str, Any]]]] = {}
        successors: set[str] = set()  # of the supersessions not yet done, in queue order so far
        for key, op in self.store.iter_json(b"op/"):
            if op["status"] == "sent":
                op = self._settle_op(key, op)
            if op["status"] == "done":
                continue
            held = op["leaf"] in successors
            if op["kind"] == "supersede":
                successors.add(op["successor"])
            if op["status"] != "queued" or held:
                continue
            leaves = [op["leaf"]] + ([op["successor"]] if op["kind"] == "supersede" else [])
            if all(self.store.get(b"proof/" + leaf.encode()) is not None for leaf in leaves):
                ready.setdefault((op["kind"], op["reason"]), []).append((key, op))
        if self.authority.standing.agency_refusal is not None:
            return
        for (kind, reason), ops in ready.items():
            for start in range(0, len(ops), MAX_LEAVES_PER_CALL):
                group = ops[start : start + MAX_LEAVES_PER_CALL]
                pending: list[tuple[bytes, dict[str, Any]]] = []
                effective: list[tuple[bytes, dict[str, Any]]] = []
                for key, op in group:
                    (effective if self._op_done_on_chain(op) else pending).append((key, op))
                if effective:  # an earlier send took effect, its answer lost: record which one
                    self._record_effective(effective)
                if pending:
                    old = [bytes.fromhex(op["leaf"]) for _, op in pending]
                    if kind == "revoke":
                        call = self.ledger.functions.revoke(old, reason)
                    else:
                        call = self.ledger.functions.supersede(
                            old, [bytes.fromhex(op["successor"]) for _, op in pending], reason
                        )
                    sent = self.tx.send_call(call, label=f"{kind} {len(old)} leaves")
                    sent_at = self._clock()
                    with self.store.write_batch() as wb:
                        for key, op in pending:
                            self.store.put_json(
                                wb, key, {**op, "status": "sent", "tx": sent.tx_hash_hex, "sentAt": sent_at}
                            )

    def _settle_op(self, key: bytes, op: dict[str, Any]) -> dict[str, Any]:
        """A sent operation done on the chain is done; one whose transaction was mined without
        effect, or was lost (not mined, and the node no longer holds it, `receipt_timeout` after
        sending: a pool emptied by a restart, a process killed before it could resend), is
        queued again. The operation as it is now."""
        if self._op_done_on_chain(op):
            return self._record_effective([(key, op)])[0]
        elif op.get("tx") and self.tx.find_receipt(op["tx"]) is not None:
            settled = {**op, "status": "queued"}  # mined but not effective: retry
        elif self._clock() - op.get("sentAt", 0) > self.settings.receipt_timeout and not self._in_pool(op):
            log.warning(
                "the %s of leaf %s was lost before it was mined: sending it again", op["kind"], op["leaf"]
            )
            settled = {**op, "status": "queued"}
        else:
            return op
        self.store.put_json(None, key, settled)
        return settled

    def _record_effective(self, ops: list[tuple[bytes, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Mark operations the chain shows in effect as done, each with the transaction and block
        that made it so (read from its `LeafRevoked` / `LeafSuperseded` event: not necessarily the
        node's last send of it, whose answer may have been lost), with an audit entry naming
        them; the operations as stored."""
        done = []
        mark = self.store.get_json(LAST_EFFECT)
        for key, op in ops:  # the chain first, then one write batch
            tx_hash, block, block_hash = self._effect_on_chain(op)
            done.append((key, {**op, "status": "done", "tx": tx_hash, "block": block}))
            if block_hash is not None and (mark is None or block > mark["block"]):
                mark = {"block": block, "hash": block_hash}
        with self.store.write_batch() as wb:
            for key, settled in done:
                self.store.put_json(wb, key, settled)
            if mark is not None:
                self.store.put_json(wb, LAST_EFFECT, mark)
            for key, settled in done:
                record = self.store.get_json(b"leaf/" + settled["leaf"].encode()) or {}
                self.store.audit(
                    wb,
                    actor=f"node:{self.agency}",
                    action=f"record.{settled['kind']}.effective",
                    request_id=key.decode(),
                    subject=f"{record.get('type', '?')}/{record.get('id', '?')}",
                    at=int(self._clock()),
                    details={"leaf": settled["leaf"], "tx": settled["tx"], "block": settled["block"]},
                )
        return [settled for _, settled in done]

    def _effect_on_chain(self, op: dict[str, Any]) -> tuple[str | None, int, str | None]:
        """(transaction hash, block, block hash) of the event by which the chain put `op` in
        effect; (None, block, None) if that block holds no such event of this leaf (it cannot,
        unless the chain went back and forth since `leafStatus` was read)."""
        leaf = bytes.fromhex(op["leaf"])
        try:
            block = int(self.ledger.functions.leafStatus(self._agency_word, leaf).call()[2])
            own = self._receipts.get(op.get("tx"))
            if own is None and op.get("tx"):
                own = self._receipts[op["tx"]] = self.tx.find_receipt(op["tx"])
            if own is not None and own["status"] == 1 and own["blockNumber"] == block:
                return op["tx"], block, bytes(own["blockHash"]).hex()  # its own, mined in that block
            events = self.ledger.events
            event = events.LeafRevoked if op["kind"] == "revoke" else events.LeafSuperseded
            found = event().get_logs(
                argument_filters={"agency": self._agency_word, "leaf": leaf}, from_block=block, to_block=block
            )
        except Exception as exc:  # transport errors: the caller retries later
            raise ChainError(f"cannot read the event of leaf {op['leaf']}: {type(exc).__name__}") from None
        if not found:
            return None, block, None
        return "0x" + bytes(found[-1]["transactionHash"]).hex(), block, bytes(found[-1]["blockHash"]).hex()

    def _op_done_on_chain(self, op: dict[str, Any]) -> bool:
        try:
            state = self.ledger.functions.leafStatus(self._agency_word, bytes.fromhex(op["leaf"])).call()[0]
        except Exception as exc:  # transport errors: the caller retries later
            raise ChainError(f"cannot read leaf {op['leaf']} from the chain: {type(exc).__name__}") from None
        return bool(state == (2 if op["kind"] == "revoke" else 1))


def _leaves(count: int) -> str:
    return f"{count} leaf" if count == 1 else f"{count} leaves"
