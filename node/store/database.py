"""The LevelDB database under a `Store`: opening it, atomic write batches, clear values, scans.

LevelDB is an ordered key-value store that one process at a time may open (`open_db` names the
process that holds it). A node opens its `Store` once and shares it between its threads (API,
batcher, indexer): plyvel's reads, writes and write batches are thread-safe.

Writes that belong together go in one `write_batch()`: all or nothing, synced to disk by default.
Counters and audit entries taken in a batch are persisted when it commits (`Database._commit`),
so an abandoned batch writes nothing. `Database` is the base the store's other parts (secrets,
counters, tokens, the audit trail) build on; `Store` (node/store/store.py) joins them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import plyvel

from node.errors import StoreError
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

    __slots__ = ("_audit", "_open", "_queued", "_raw", "_sequences")

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._open = True
        self._sequences: dict[str, int] = {}  # counter name -> highest number taken in this batch
        self._queued = 0  # leaves this batch adds to the intake queues (negative: takes out)
        self._audit: tuple[int, str] | None = None  # (seq, hash) of this batch's last audit entry

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("this write batch is finished; open a new one with store.write_batch()")

    def _put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        self._raw.put(key, value)

    def _delete(self, key: bytes) -> None:
        self._check_open()
        self._raw.delete(key)


class Database:
    """Write batches, clear values and prefix scans over the store's LevelDB database.

    `Store.__init__` sets the attributes; a batch's commit also persists the counters it took
    and moves the audit trail's head and the queue count, under their locks."""

    path: Path
    sync: bool
    _db: Any
    _seq_commit_lock: threading.Lock  # persisting counter numbers, in order
    _seq_persisted: dict[str, int]
    _audit_lock: threading.Lock  # held from audit() to the end of its batch
    _audit_owner: int | None
    _audit_head: tuple[int, str]
    _queue_lock: threading.Lock  # a queue-changing commit and the count move together
    _queued_leaves: int

    # -- atomic writes ----------------------------------------------------------------------

    @contextmanager
    def write_batch(self) -> Iterator[WriteBatch]:
        """`with store.write_batch() as wb:` - pass `wb` to the put/delete methods; the writes are
        committed together when the block ends, and dropped if it raises."""
        # Not plyvel's transaction=True: the commit is ours, to run under the counters' lock.
        wb = WriteBatch(self._db.write_batch(sync=self.sync))
        try:
            yield wb
            self._commit(wb)
        finally:
            wb._open = False
            if wb._audit is not None:
                self._audit_owner = None
                self._audit_lock.release()

    def _commit(self, wb: WriteBatch) -> None:
        if wb._queued:
            with self._queue_lock:
                self._commit_counted(wb)
                self._queued_leaves += wb._queued
        else:
            self._commit_counted(wb)

    def _commit_counted(self, wb: WriteBatch) -> None:
        if wb._sequences:
            # Batches may commit in another order than they took their numbers: persist the
            # highest number committed so far, so that a restart never hands one out again.
            with self._seq_commit_lock:
                persisted = {n: max(v, self._seq_persisted.get(n, 0)) for n, v in wb._sequences.items()}
                for name, value in persisted.items():
                    wb._raw.put(b"seq/" + name.encode(), str(value).encode())
                wb._raw.write()
                self._seq_persisted.update(persisted)
        else:
            wb._raw.write()
        if wb._audit is not None:
            self._audit_head = wb._audit

    def _put(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        if wb is None:
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
        value: bytes | None = self._db.get(key)
        return value

    def get_json(self, key: bytes) -> Any | None:
        """The JSON value at `key`, or None if there is none."""
        if is_secret_key(key):
            raise StoreError(f"{show_key(key)} holds secrets: read it with get_secret")
        return self._read_json(key)

    def delete(self, wb: WriteBatch | None, key: bytes) -> None:
        """Delete `key` (in `wb`, or at once when None). Audit entries cannot be deleted."""
        check_writable(key)
        if wb is None:
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
            it = self._db.iterator(start=prefix, stop=stop, include_stop=start is not None, reverse=True)
        else:
            it = self._db.iterator(start=start if start is not None else prefix, stop=end)
        return _drain(it, limit)

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
        call are not in it; a batch is in it whole or not at all."""
        snapshot = self._db.snapshot()
        try:
            with snapshot.iterator() as it:
                yield from it
        finally:
            snapshot.close()


def write_raw(path: Path, items: Iterable[tuple[bytes, bytes]], *, chunk: int = 10_000) -> int:
    """Write raw (key, value) pairs, as `iter_snapshot` gave them, into a new LevelDB database
    at `path`, synced at the end; return how many. For `sijill node restore` (node/backup.py)."""
    if path.exists() and any(path.iterdir()):
        raise StoreError(f"{path} is not empty: restore into a new directory")
    db = open_db(path, create=True)
    count = 0
    try:
        wb = db.write_batch()
        for key, value in items:
            wb.put(key, value)
            count += 1
            if count % chunk == 0:
                wb.write()
                wb = db.write_batch()
        wb.write()
        db.write_batch(sync=True).write()  # one synced write makes everything before it durable
    finally:
        db.close()
    return count


def open_db(path: Path, create: bool) -> Any:
    """Open the LevelDB database at `path` (made if missing when `create`), naming what went wrong."""
    if not create and not (path / "CURRENT").is_file():
        raise StoreError(f"there is no store at {path} (create one with create=True)")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True)
    except plyvel.IOError as exc:
        detail = _plyvel_detail(exc)
        if "already held by process" in detail:
            raise StoreError(
                f"the store at {path} is already open in this process: share one Store"
            ) from None
        if "lock " in detail:
            raise StoreError(f"the store at {path} is in use by another process (a running node?)") from None
        raise StoreError(f"the store at {path} cannot be opened: {detail}") from None
    except plyvel.CorruptionError as exc:
        raise StoreError(
            f"the store at {path} is corrupted ({_plyvel_detail(exc)}): restore a backup"
        ) from None
    except (plyvel.Error, OSError) as exc:
        raise StoreError(f"the store at {path} cannot be opened: {_plyvel_detail(exc)}") from None


def _plyvel_detail(exc: Exception) -> str:
    # plyvel's messages are bytes
    arg = exc.args[0] if exc.args else None
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(exc)


def _drain(it: Any, limit: int | None) -> Iterator[tuple[bytes, bytes]]:
    with it:
        yield from it if limit is None else islice(it, limit)
