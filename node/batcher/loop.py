"""The batcher's loop: pending leaves become anchored batches, crash-safely.

Each record type has a queue of pending leaves. A batch closes when its queue holds
`batch_size` leaves or its oldest leaf has waited `max_age` seconds. Closing a batch is one write
batch: the tree's levels, the batch (seq = local head + 1, prev = local head root), the log
entry and the new local head are stored, and the leaves leave the queue. Only then is `anchor`
sent. Every step is persisted before the next (node/batcher/log.py has the states), so a node
killed at any instant resumes where it was (node/batcher/lineup.py).

Each round also sends revocations and supersessions (node/batcher/ops.py) and reports what
waits (node/batcher/waiting.py).

When several processes share the store, only the holder of the lease (node/lease.py) works the
loop, every write of it fenced by the lease; the others only take stock, so that their /readyz
says what waits too, and take over where the holder stopped when they get the lease.
"""

from __future__ import annotations

import logging
import time

from ledger.codes import record_type
from ledger.merkle import build_tree
from node.batcher.waiting import WhatWaits
from node.chain.limits import ANCHOR_GAS
from node.errors import ChainError, ContractRevert, StoreError
from node.failpoints import failpoint
from node.lease import LeaseLost
from node.proofs import pack_levels

log = logging.getLogger("sijill.batcher")


class Batcher(WhatWaits):
    """Closes, anchors and finalises batches for one agency."""

    # ------------------------------------------------------------------------- the loop

    def run(self, poll: float = 0.2) -> None:
        """Work until `stop()`: close, send, finalise; errors are retried, never fatal."""
        recovered = False
        while not self._stop.is_set():
            try:
                if not self.lease.held():
                    recovered = False  # line up with what the holder did when we take over
                    self._follow()
                else:
                    with self.store.fenced(self.lease.fence):
                        if not recovered:  # inside the retry loop: the chain may be away at start
                            with self._work:
                                self._take_over()
                                self.recover()
                            recovered = True
                        self.step()
                self.last_error = None
            except LeaseLost as exc:
                recovered = False
                log.warning("%s: following", exc)
            except (ChainError, ContractRevert) as exc:
                self.last_error = str(exc)
                log.warning("chain unavailable or refused, retrying: %s", exc)
                self._stop.wait(2.0)
            except StoreError as exc:  # the database away (a failover, say): nothing was half done
                self.last_error = str(exc)
                log.warning("store unavailable, retrying: %s", exc)
                self._stop.wait(1.0)
            except Exception as exc:
                # Never end the thread: intake would go on signing receipts that nothing anchors,
                # with nothing to show for it. The error stays in health() and /readyz.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("batcher step failed, retrying")
                self._stop.wait(2.0)
            self._wake.wait(poll)
            self._wake.clear()

    def _take_over(self) -> None:
        """Start from the store and the chain as the previous lease holder left them."""
        self._log_from = None
        self._checked_at = float("-inf")
        self._receipts.clear()
        if self.store.shared:
            self.tx.resync()  # the previous holder's transactions took nonces

    def _follow(self) -> None:
        """Another process holds the lease: keep what waits counted, for /readyz."""
        with self._work:
            self._take_stock()
            self._progress_at = self._clock()  # not ours to stall: the holder's /readyz says so

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
                if not self.lease.claim():  # another process anchors: wait until it is done
                    recovered = False
                    if not self.unfinished():
                        break
                    time.sleep(0.2)
                    continue
                with self._work, self.store.fenced(self.lease.fence):
                    if not recovered:
                        self._take_over()
                        self.recover()
                        recovered = True
                    if not self._round(force=True):
                        break
                self.last_error = None
            except LeaseLost as exc:
                recovered = False
                log.warning("%s: waiting for its holder", exc)
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
        prefix = f"queue/{kind}/".encode()
        if not force and not self._may_be_due(prefix, limit):
            return False
        entries = list(self.store.iter_prefix(prefix, limit=limit))
        if not entries:
            return False
        if not force and len(entries) < limit and not self._old_enough(entries[0][1]):
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

    def _may_be_due(self, prefix: bytes, limit: int) -> bool:
        """Whether the queue under `prefix` may hold a due batch, read from its first and last
        entries instead of a scan of `limit` of them: not when it is empty, nor when its oldest
        leaf is young and the numbers of its first and last entries are fewer than `limit` apart
        (a queue holds at most one leaf per number: gaps only make it smaller). True when in
        doubt (a key not numbered as `enqueue` numbers them): the scan then decides."""
        first = next(iter(self.store.iter_prefix(prefix, limit=1)), None)
        if first is None:
            return False
        if self._old_enough(first[1]):
            return True
        last = next(iter(self.store.iter_prefix(prefix, reverse=True, limit=1)))
        try:
            span = int(last[0][len(prefix) :], 16) - int(first[0][len(prefix) :], 16) + 1
        except ValueError:
            return True
        return span >= limit

    def _old_enough(self, leaf: bytes) -> bool:
        """Whether `leaf` (the oldest of a queue) has waited `max_age` seconds since its intake."""
        oldest = self.store.get_json(b"leaf/" + leaf.hex().encode())
        return oldest is not None and self._clock() - oldest["intakeTime"] >= self.settings.max_age

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
            self._may_send(f"anchor batch {batch['seq']}")
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
