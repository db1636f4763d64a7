"""The database under a `Store`: atomic write batches, clear values, prefix scans.

The keys and values live in a backend (node/store/backend.py): LevelDB or PostgreSQL. A node
opens its `Store` once and shares it between its threads (API, batcher, indexer); both backends'
reads, writes and batches are thread-safe.

Writes that belong together go in one `write_batch()`: all or nothing (one LevelDB write batch,
one PostgreSQL transaction), durable by default. Counters and audit entries taken in a batch are
persisted when it commits (`Database._commit`), so an abandoned batch writes nothing. `Database`
is the base the store's other parts (secrets, counters, tokens, the audit trail) build on;
`Store` (node/store/store.py) joins them.

Group commit (LevelDB, one process): a batch's writes are kept in order until it commits; the
committing batches then wait in a queue, and one of them (the leader) writes every batch queued
so far in one durable backend batch, in queue order, while the others wait for it: one fsync
for all the writers that came while the previous one was on the disk. A batch is acknowledged
(its `with` block returns) only once its group is durable, and nothing of it is visible before.
The audit trail's lock is held from `audit()` until the batch is queued, not until it is on the
disk: the next batch chains to the last queued entry (`_audit_tail`), and since groups are
written one after another in queue order, the chain on the disk is always a gap-free prefix of
the queue. If a group's write fails, the entries queued after it chained to entries that are
not there: those batches fail too, and the tail goes back to the durable head (`_audit_epoch`
marks a batch that read the tail before that). PostgreSQL commits each batch in its own
transaction under the trail's database lock, as several processes share the chain there.

When several processes share the database (PostgreSQL), a read-check-write that must not
interleave with another process's takes the key's database lock in its batch (`hold`,
`locked_get`), and a thread whose writes only a lease holder may make runs them `fenced`: each
write batch it opens is checked against the lease in the batch's own transaction.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from node.errors import StoreError
from node.store.backend import Backend, OneProcessBatch, RawBatch
from node.store.layout import (
    SECRET_PREFIXES,
    check_writable,
    dump_json,
    is_secret_key,
    load_json,
    prefix_end,
    show_key,
)


class WriteBatch:
    """Writes applied together or not at all; see `Store.write_batch`. Reads do not see them
    before the batch is committed."""

    __slots__ = ("_audit", "_audit_locked", "_epoch", "_open", "_queued", "_raw", "_result", "_sequences")

    def __init__(self, raw: RawBatch) -> None:
        self._raw = raw
        self._open = True
        self._sequences: dict[str, int] = {}  # counter name -> highest number taken in this batch
        self._queued = 0  # leaves this batch adds to the intake queues (negative: takes out)
        self._audit: tuple[int, str] | None = None  # (seq, hash) of this batch's last audit entry
        self._audit_locked = False  # this batch holds the audit trail's lock
        self._epoch = 0  # group commit: the `_audit_epoch` its first audit entry was chained in
        self._result: BaseException | bool | None = None  # group commit: True once durable

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("this write batch is finished; open a new one with store.write_batch()")

    def _put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        self._raw.put(key, value)

    def _delete(self, key: bytes) -> None:
        self._check_open()
        self._raw.delete(key)


class _OpLog(OneProcessBatch):
    """The writes of a batch on an unshared backend (LevelDB), kept in order until its group is
    written in one backend batch (`Database._write_group`)."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append((key, None))

    def write(self) -> None:
        raise StoreError("a grouped write batch is written by its group commit")

    def discard(self) -> None:
        self.ops.clear()


class Database:
    """Write batches, clear values and prefix scans over the store's backend.

    `Store.__init__` sets the attributes; a batch's commit also persists the counters it took
    and moves the audit trail's head and the queue count, under their locks."""

    where: str  # the store's location for messages (never a password)
    sync: bool
    _db: Backend
    _seq_commit_lock: threading.Lock  # persisting counter numbers, in order
    _seq_persisted: dict[str, int]
    _audit_lock: threading.Lock  # held from audit() until its batch is queued (or committed)
    _audit_owner: int | None
    _audit_head: tuple[int, str]  # of the last durable entry
    _audit_tail: tuple[int, str]  # group commit: of the last queued entry
    _audit_epoch: int  # group commit: moves when queued entries are dropped (a failed write)
    _group: threading.Condition  # group commit: guards the queue, the tail and the epoch
    _group_pending: list[WriteBatch]
    _group_leading: bool  # a leader is writing a group now
    _queue_lock: threading.Lock  # a queue-changing commit and the count move together
    _queued_leaves: int
    _fences: threading.local  # .check: the fence of the current thread's writes, if any

    def keep_open_lock(self) -> None:
        """Take the store's open lock again if a failover ended the session that held it (so
        that a tool needing the database alone is refused again while this process runs)."""
        self._db.keep_open_lock()

    @property
    def shared(self) -> bool:
        """Whether several processes may have the database open at once (PostgreSQL)."""
        return self._db.shared

    # -- atomic writes ----------------------------------------------------------------------

    @contextmanager
    def write_batch(self) -> Iterator[WriteBatch]:
        """`with store.write_batch() as wb:` - pass `wb` to the put/delete methods; the writes are
        committed together when the block ends, and dropped if it raises."""
        # The commit is ours, to run under the counters' lock (or grouped with others').
        wb = WriteBatch(self._db.batch(sync=self.sync) if self._db.shared else _OpLog())
        committed = False
        try:
            fence = getattr(self._fences, "check", None)
            if fence is not None:
                fence(wb)  # in the batch's transaction: LeaseLost if this thread may not write
            yield wb
            self._commit(wb)
            committed = True
        finally:
            wb._open = False
            if not committed:
                wb._raw.discard()  # frees the database lock an audit entry took (PostgreSQL)
            self._release_audit(wb)

    def _release_audit(self, wb: WriteBatch) -> None:
        if wb._audit_locked:
            wb._audit_locked = False
            self._audit_owner = None
            self._audit_lock.release()

    def _commit(self, wb: WriteBatch) -> None:
        if not self._db.shared:
            self._commit_grouped(wb)
        elif wb._queued:
            with self._queue_lock:
                self._commit_counted(wb)
                self._queued_leaves += wb._queued
        else:
            self._commit_counted(wb)

    def _commit_counted(self, wb: WriteBatch) -> None:
        self._write_counted(wb._raw, wb._sequences)
        if wb._audit is not None:
            self._audit_head = wb._audit

    def _write_counted(self, raw: RawBatch, sequences: dict[str, int]) -> None:
        """Write `raw` with the counters' highest numbers it took (`sequences`)."""
        if sequences:
            # Batches may commit in another order than they took their numbers: persist the
            # highest number committed so far, so that a restart never hands one out again.
            with self._seq_commit_lock:
                persisted = {n: max(v, self._seq_persisted.get(n, 0)) for n, v in sequences.items()}
                for name, value in persisted.items():
                    raw.put(b"seq/" + name.encode(), str(value).encode())
                raw.write()
                self._seq_persisted.update(persisted)
        else:
            raw.write()

    # -- group commit (unshared backends) ----------------------------------------------------

    def _commit_grouped(self, wb: WriteBatch) -> None:
        """Queue `wb`, let the next batch chain to its audit entries, and return once a leader
        (this thread or another) has written it durably with the batches queued beside it."""
        with self._group:
            if wb._audit is not None and wb._epoch != self._audit_epoch:
                raise StoreError(
                    "an earlier store write failed, so this batch's audit entry would not chain: "
                    "nothing of it was written, try again"
                )
            self._group_pending.append(wb)
            if wb._audit is not None:
                self._audit_tail = wb._audit
        self._release_audit(wb)
        group: list[WriteBatch] | None = None
        with self._group:
            while wb._result is None and group is None:
                if self._group_leading:
                    self._group.wait()
                else:
                    group, self._group_pending = self._group_pending, []
                    self._group_leading = True
        if group is not None:
            self._lead(group)
        if wb._result is not True:
            assert isinstance(wb._result, BaseException)
            raise wb._result

    def _lead(self, group: list[WriteBatch]) -> None:
        error: BaseException | None = None
        try:
            self._write_group(group)
        except BaseException as exc:
            error = exc
        with self._group:
            for batch in group:
                batch._result = True if error is None else error
            audited = [batch._audit for batch in group if batch._audit is not None]
            if error is None and audited:
                self._audit_head = audited[-1]
            elif error is not None and audited:
                # The batches queued since chained to entries that are not on the disk.
                self._audit_epoch += 1
                self._audit_tail = self._audit_head
                dropped = StoreError(
                    f"an earlier store write failed ({error}), so this batch's audit entry would "
                    "not chain: nothing of it was written, try again"
                )
                for batch in self._group_pending:
                    if batch._audit is not None:
                        batch._result = dropped
                self._group_pending = [b for b in self._group_pending if b._audit is None]
            self._group_leading = False
            self._group.notify_all()

    def _write_group(self, group: list[WriteBatch]) -> None:
        """Write `group`'s batches in one backend batch, in order, then the counters they took."""
        raw = self._db.batch(sync=self.sync)
        sequences: dict[str, int] = {}
        for batch in group:
            assert isinstance(batch._raw, _OpLog)
            for key, value in batch._raw.ops:
                if value is None:
                    raw.delete(key)
                else:
                    raw.put(key, value)
            for name, number in batch._sequences.items():
                sequences[name] = max(number, sequences.get(name, 0))
        queued = any(batch._queued for batch in group)
        with self._queue_lock if queued else nullcontext():
            self._write_counted(raw, sequences)
            if queued:
                self._queued_leaves += sum(batch._queued for batch in group)

    @contextmanager
    def fenced(self, check: Callable[[WriteBatch], None]) -> Iterator[None]:
        """Inside the block, every write of this thread (a batch, or a single put or delete)
        commits only if `check(wb)`, run first in the batch's transaction, does not raise: the
        lease of node/lease.py fences the batcher and indexer threads of a process this way."""
        self._fences.check = check
        try:
            yield
        finally:
            self._fences.check = None

    def hold(self, wb: WriteBatch, key: bytes) -> None:
        """Lock `key` in `wb`'s transaction until it ends, on a shared database: another
        process's batch that holds the same key waits, so what this one reads of the key after
        `hold` stays true until it commits. LevelDB (one process): nothing, the caller's own
        thread lock does it."""
        wb._check_open()
        if self._db.shared:
            wb._raw.lock(key_lock(key))

    def locked_get(self, wb: WriteBatch, key: bytes) -> bytes | None:
        """`hold` the clear `key`, then read it in `wb`'s transaction (LevelDB: read it)."""
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: read it with get_secret")
        self.hold(wb, key)
        return wb._raw.read(key) if self._db.shared else self._db.get(key)

    def _put(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        if wb is None and getattr(self._fences, "check", None) is not None:
            with self.write_batch() as fenced:
                fenced._put(key, value)
        elif wb is None:
            self._db.put(key, value, sync=self.sync)
        else:
            wb._put(key, value)

    # -- clear JSON ---------------------------------------------------------------------------

    def put_json(self, wb: WriteBatch | None, key: bytes, obj: Any) -> None:
        """Store `obj` as compact UTF-8 JSON at `key` (in `wb`, or at once when None). Never
        personal data: that goes in `put_secret`."""
        check_writable(key)
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: write it with put_secret")
        self._put(wb, key, dump_json(obj))

    def put(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        """Store clear binary `value` at `key` (queue leaves, tree levels, proofs)."""
        check_writable(key)
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: write it with put_secret")
        self._put(wb, key, value)

    def get(self, key: bytes) -> bytes | None:
        """The clear bytes at `key`, or None if there is none."""
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: read it with get_secret")
        return self._db.get(key)

    def get_json(self, key: bytes) -> Any | None:
        """The JSON value at `key`, or None if there is none."""
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: read it with get_secret")
        return self._read_json(key)

    def get_many_json(self, keys: list[bytes]) -> list[Any | None]:
        """The JSON values at `keys` (None where missing), in order, read together."""
        if any(is_secret_key(key) for key in keys):
            raise StoreError("secrets are read one by one with get_secret")
        return [
            None if v is None else load_json(k, v) for k, v in zip(keys, self._db.get_many(keys), strict=True)
        ]

    def delete(self, wb: WriteBatch | None, key: bytes) -> None:
        """Delete `key` (in `wb`, or at once when None). Audit entries cannot be deleted."""
        check_writable(key)
        if wb is None and getattr(self._fences, "check", None) is not None:
            with self.write_batch() as fenced:
                fenced._delete(key)
        elif wb is None:
            self._db.delete(key, sync=self.sync)
        else:
            wb._delete(key)

    def iter_prefix(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, raw value) of every key under `prefix`, in key order (or reverse), from a
        consistent snapshot; from `start` on (inclusive, backwards when `reverse`) if given;
        at most `limit` of them if given."""
        if start is not None and not start.startswith(prefix):
            raise StoreError(f"start key {show_key(start)} is not under the prefix {show_key(prefix)}")
        end = prefix_end(prefix)
        if reverse:
            stop = start if start is not None else end
            return self._db.scan(prefix, stop, include_stop=start is not None, reverse=True, limit=limit)
        return self._db.scan(start if start is not None else prefix, end, limit=limit)

    def iter_json(
        self, prefix: bytes, *, reverse: bool = False, start: bytes | None = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any]]:
        """Like `iter_prefix`, with the values decoded from JSON. Not for secret prefixes."""
        if any(p.startswith(prefix) or prefix.startswith(p) for p in SECRET_PREFIXES):
            raise StoreError(f"prefix {show_key(prefix)} covers secrets: read them with get_secret")
        for key, value in self.iter_prefix(prefix, reverse=reverse, start=start, limit=limit):
            yield key, load_json(key, value)

    def _read_json(self, key: bytes) -> Any | None:
        value = self._db.get(key)
        return None if value is None else load_json(key, value)

    # -- backup and restore (node/backup.py) --------------------------------------------------

    def iter_snapshot(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and raw value (secrets as sealed) from one consistent snapshot, in key
        order, while writes go on: what `sijill node backup` copies. Commits made after the
        call are not in it; a batch is in it whole or not at all. LevelDB only: a PostgreSQL
        store is backed up with PostgreSQL's tools (docs/storage.md)."""
        snapshot = getattr(self._db, "snapshot_items", None)
        if snapshot is None:
            raise StoreError(
                f"sijill node backup copies a LevelDB store; back up the PostgreSQL store "
                f"{self._db.where} with pg_basebackup and WAL archiving (docs/storage.md)"
            )
        yield from snapshot()


def key_lock(key: bytes) -> int:
    """The database lock (a signed 64-bit advisory lock key) that `Database.hold` takes for
    `key`: from a hash, so two keys may share one (they then wait on each other, no more)."""
    return int.from_bytes(hashlib.sha256(b"sijill-key-lock/" + key).digest()[:8], "big", signed=True)
