"""Counters and the intake queues: numbers handed out without duplicates, leaves kept in order.

A counter (`next_sequence`) gives 1, 2, ... under a lock and is persisted when the caller's
batch commits (`seq/<name>`), so two callers never get the same number and an abandoned batch
leaves a gap, never a duplicate. On a shared database (PostgreSQL, which several processes may
open) the database hands the number out and persists it at once, in one atomic statement; a
queue's numbers (`queue/<type>`, which only order leaves) a block of `QUEUE_BLOCK` at a time,
so a process numbers its leaves in order and a restart skips what its block had left.

The intake queues (`queue/<type>/<seq>`) hold leaves waiting for a batch; the store keeps their
total count (`queued_leaves`) with every commit that changes them, so /metrics and /readyz read
it at no cost (on a shared database, counted again once a second at most).
"""

from __future__ import annotations

import threading
import time

from node.errors import StoreError
from node.store.database import Database, WriteBatch
from node.store.layout import QUEUE_PREFIX, make_key, prefix_end, show_key

QUEUE_BLOCK = 64
"""Queue numbers a process reserves at a time on a shared database (one round trip each)."""
QUEUE_RECOUNT = 1.0
"""Seconds a shared database's queue count is trusted before it is counted again."""


class Counters(Database):
    """`next_sequence` and the intake queues (the locks and counts set by `Store.__init__`)."""

    _seq_lock: threading.Lock  # allocation of counter numbers
    _seq_taken: dict[str, int]
    _seq_blocks: dict[str, tuple[int, int]]  # shared database: a queue's numbers reserved, (next, last)
    _queued_counted_at: float  # time.monotonic() of the last count of a shared database's queues

    def next_sequence(self, wb: WriteBatch | None, name: str) -> int:
        """The next number (1, 2, ...) of counter `name` ('/'-separated ASCII parts, such as
        `queue/title`), persisted with `wb` (at once if None).

        Numbers are taken under a lock and written when the batch commits: two callers never
        get the same number; an abandoned batch leaves a gap, never a duplicate."""
        key = make_key("seq", *name.split("/"))
        if wb is not None:
            wb._check_open()
        if self._db.shared:  # several processes: the database hands the numbers out, at once
            if not name.startswith("queue/"):
                return self._db.increment(key)
            with self._seq_lock:  # a queue's numbers: a block at a time
                low, high = self._seq_blocks.get(name, (1, 0))
                if low > high:
                    high = self._db.increment(key, QUEUE_BLOCK)
                    low = high - QUEUE_BLOCK + 1
                self._seq_blocks[name] = (low + 1, high)
                return low
        with self._seq_lock:
            if name not in self._seq_taken:
                stored = self._read_json(key)
                self._seq_taken[name] = int(stored) if stored is not None else 0
            number = self._seq_taken[name] + 1
            self._seq_taken[name] = number
        if wb is None:
            with self._seq_commit_lock:
                value = max(number, self._seq_persisted.get(name, 0))
                self._db.put(key, str(value).encode(), sync=self.sync)
                self._seq_persisted[name] = value
        else:
            wb._sequences[name] = max(number, wb._sequences.get(name, 0))
        return number

    # -- intake queues ------------------------------------------------------------------------

    def enqueue(self, wb: WriteBatch, record_type: str, leaf: bytes) -> None:
        """Put `leaf` at the end of `record_type`'s queue of leaves waiting for a batch."""
        seq = self.next_sequence(wb, f"queue/{record_type}")
        self.put(wb, QUEUE_PREFIX + f"{record_type}/{seq:016x}".encode(), leaf)
        wb._queued += 1

    def dequeue(self, wb: WriteBatch, key: bytes) -> None:
        """Take the queue entry `key` (one `iter_prefix(QUEUE_PREFIX)` gave) out of its queue."""
        if not key.startswith(QUEUE_PREFIX):
            raise StoreError(f"{show_key(key)} is not a queue entry")
        self.delete(wb, key)
        wb._queued -= 1

    @property
    def queued_leaves(self) -> int:
        """Leaves in the intake queues now (every type), kept up to date by each commit; on a
        shared database (PostgreSQL) also counted again when a second has passed, to take in
        other processes' commits."""
        if self._db.shared and time.monotonic() - self._queued_counted_at > QUEUE_RECOUNT:
            with self._queue_lock:
                self._queued_leaves = self._db.count(QUEUE_PREFIX, prefix_end(QUEUE_PREFIX))
                self._queued_counted_at = time.monotonic()
        return self._queued_leaves
