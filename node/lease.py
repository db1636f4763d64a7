"""Which of an agency's node processes batches, anchors and indexes: the lease.

On LevelDB a node is one process, and it always holds the lease. On PostgreSQL several
`sijill serve` processes of one agency share the database: any of them takes intake and answers
reads, and exactly one at a time, the lease holder, runs the batcher, the transaction manager
and the indexer.

The lease is a row in the store (`lease/batcher`: holder, epoch, beat). Its holder renews it
(`beat` + 1) every `ttl / 3` seconds. A process that sees the row unchanged for `ttl` seconds of
its own clock takes it over with the next epoch, in a transaction under the row's database lock,
so two never both take it. No clocks are compared between machines: each process measures only
how long it has itself seen the row unchanged.

Two things keep a holder that stopped (paused, cut off from the database) from doing harm once
another has taken over:
- `held()` is false from `ttl` seconds after the start of its last successful renewal, by its
  own monotonic clock (which runs on while a process is paused). The batcher sends a
  transaction only while `held()`, and another process takes over only after seeing the row
  unchanged for `ttl` from a moment no earlier than that renewal's commit.
- The fencing number: every write of the batcher and indexer threads runs `fenced`
  (node/store/database.py), and `fence(wb)` checks, in the write's own transaction under the
  row's lock, that the row still names this holder and epoch; otherwise `LeaseLost`, and
  nothing of that write commits.
The chain is the last guard: `anchor` names the batch's sequence number and the previous root,
so a batch sent twice is anchored once (docs/storage.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from node.errors import NodeError, StoreError
from node.store import Store, WriteBatch
from node.store.layout import dump_json, load_json

log = logging.getLogger("sijill.lease")

LEASE_KEY = b"lease/batcher"
LEASE_TTL = 5.0
"""Seconds a lease holder may go without renewing before another process takes over."""


class LeaseLost(NodeError):
    """This process's writes as batcher or indexer were refused: another process holds the lease."""


class Lease:
    """The batcher lease of one agency's store, as one process sees it."""

    def __init__(
        self, store: Store, *, ttl: float = LEASE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.epoch = 0 if store.shared else 1
        self._clock = clock
        self._valid_until = float("-inf")
        self._seen: tuple[bytes | None, float] | None = None  # the row as last read, and since when
        self.takeovers = 0  # times this process took the lease (first start included)
        self.last_error: str | None = None
        self._stop = threading.Event()

    def held(self) -> bool:
        """Whether this process may batch, send and index now."""
        return not self.store.shared or self._clock() < self._valid_until

    def holder_now(self) -> dict[str, Any] | None:
        """The lease row as stored (holder, epoch, beat); None before anyone took it (and always
        on LevelDB, where the one process holds it without a row)."""
        value = self.store.get(LEASE_KEY)
        return None if value is None else load_json(LEASE_KEY, value)

    def claim(self) -> bool:
        """Renew the lease if this process holds it, take it if its holder has not renewed it
        for `ttl` seconds (or nobody holds it); whether this process holds it now."""
        if not self.store.shared:
            return True
        started = self._clock()
        try:
            held = self._claim(started)
        except StoreError as exc:
            self.last_error = str(exc)
            log.warning("cannot renew or take the batcher lease: %s", exc)
            return self.held()
        self.last_error = None
        return held

    def _claim(self, started: float) -> bool:
        with self.store.write_batch() as wb:
            raw = self.store.locked_get(wb, LEASE_KEY)
            row = None if raw is None else load_json(LEASE_KEY, raw)
            if row is not None and row["holder"] == self.holder and row["epoch"] == self.epoch:
                self.store.put(wb, LEASE_KEY, dump_json({**row, "beat": row["beat"] + 1}))
                renewed = True
            elif row is None or row.get("released") or self._stale(raw, started):
                epoch = (row["epoch"] if row is not None else 0) + 1
                self.store.put(wb, LEASE_KEY, dump_json({"holder": self.holder, "epoch": epoch, "beat": 0}))
                renewed = False
            else:
                self._valid_until = float("-inf")  # another holds it (it may have taken it from us)
                return False
        if not renewed:
            self.epoch = epoch
            self.takeovers += 1
            previous = "nobody" if row is None else f"{row['holder']} (epoch {row['epoch']})"
            log.info("took the batcher lease, epoch %d, from %s", epoch, previous)
        self._seen = None
        self._valid_until = started + self.ttl
        return True

    def _stale(self, raw: bytes | None, now: float) -> bool:
        """Whether the row has stayed `raw` for `ttl` seconds of this process's clock."""
        if self._seen is None or self._seen[0] != raw:
            self._seen = (raw, now)
            return False
        return now - self._seen[1] >= self.ttl

    def fence(self, wb: WriteBatch) -> None:
        """Refuse `wb` (`LeaseLost`) unless the lease row names this holder and epoch, read in
        `wb`'s transaction under the row's lock."""
        if not self.store.shared:
            return
        raw = self.store.locked_get(wb, LEASE_KEY)
        row = None if raw is None else load_json(LEASE_KEY, raw)
        if row is None or row["holder"] != self.holder or row["epoch"] != self.epoch:
            self._valid_until = float("-inf")
            who = "nobody" if row is None else f"{row['holder']} (epoch {row['epoch']})"
            raise LeaseLost(f"the batcher lease (epoch {self.epoch}) is now held by {who}")

    def run(self, on_change: Callable[[bool], None]) -> None:
        """Renew (or wait to take) the lease until `stop()`, calling `on_change(held)` when this
        process gains or loses it."""
        was = False
        while not self._stop.is_set():
            try:
                self.store.keep_open_lock()  # after a failover: the store's shared lock again
            except StoreError as exc:
                log.warning("%s", exc)
            now = self.claim()
            if now != was:
                on_change(now)
                was = now
            self._stop.wait(self.ttl / 3 if now else min(1.0, self.ttl / 3))

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Hand the lease back at a clean stop, so another process takes over at once."""
        if not self.store.shared or not self.held():
            return
        try:
            with self.store.write_batch() as wb:
                raw = self.store.locked_get(wb, LEASE_KEY)
                row = None if raw is None else load_json(LEASE_KEY, raw)
                if row is not None and row["holder"] == self.holder and row["epoch"] == self.epoch:
                    self.store.put(wb, LEASE_KEY, dump_json({**row, "holder": "", "released": True}))
        except StoreError as exc:
            log.warning("could not hand the batcher lease back (another takes it in %gs): %s", self.ttl, exc)
        self._valid_until = float("-inf")
