"""Counters and the intake queues: numbers handed out without duplicates, leaves kept in order.

A counter (`next_sequence`) gives 1, 2, ... under a lock and is persisted when the caller's
batch commits (`seq/<name>`), so two callers never get the same number and an abandoned batch
leaves a gap, never a duplicate. The intake queues (`queue/<type>/<seq>`) hold leaves waiting
for a batch; the store keeps their total count (`queued_leaves`) with every commit that changes
them, so /metrics and /readyz read it at no cost.
"""

from __future__ import annotations

import threading

from node.errors import StoreError
from node.store.database import Database, WriteBatch
from node.store.layout import QUEUE_PREFIX, make_key, show_key


class Counters(Database):
    """`next_sequence` and the intake queues (the locks and counts set by `Store.__init__`)."""

    _seq_lock: threading.Lock  # allocation of counter numbers
    _seq_taken: dict[str, int]

    def next_sequence(self, wb: WriteBatch | None, name: str) -> int:
        """The next number (1, 2, ...) of counter `name` ('/'-separated ASCII parts, such as
        `queue/title`), persisted with `wb` (at once if None).

        Numbers are taken under a lock and written when the batch commits: two callers never
        get the same number; an abandoned batch leaves a gap, never a duplicate."""
        key = make_key("seq", *name.split("/"))
        if wb is not None:
            wb._check_open()
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
        """Leaves in the intake queues now (every type), kept up to date by each commit."""
        return self._queued_leaves
