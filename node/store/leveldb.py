"""The LevelDB backend: the store as a plyvel database in one directory (the default).

LevelDB is an ordered key-value store that one process at a time may open: a second process
gets `StoreError("... is in use by another process")`, a second open in the same process
"already open in this process". plyvel's reads, writes, batches and iterators are thread-safe;
an iterator reads a snapshot; `sync=True` writes reach the disk before they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import plyvel

from node.errors import StoreError
from node.store.backend import OneProcessBatch


class LevelDBBatch(OneProcessBatch):
    """A plyvel write batch: `write()` applies it atomically."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def put(self, key: bytes, value: bytes) -> None:
        self._raw.put(key, value)

    def delete(self, key: bytes) -> None:
        self._raw.delete(key)

    def write(self) -> None:
        self._raw.write()

    def discard(self) -> None:
        self._raw.clear()


class LevelDBBackend:
    """The store's keys in a LevelDB database at `path`."""

    shared = False

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.where = str(path)
        self._db = open_db(path, create)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return [self._db.get(key) for key in keys]

    def keep_open_lock(self) -> None:
        return None  # LevelDB's lock is its LOCK file, held as long as the database is open

    def put(self, key: bytes, value: bytes, *, sync: bool) -> None:
        self._db.put(key, value, sync=sync)

    def delete(self, key: bytes, *, sync: bool) -> None:
        self._db.delete(key, sync=sync)

    def batch(self, *, sync: bool) -> LevelDBBatch:
        return LevelDBBatch(self._db.write_batch(sync=sync))

    def scan(
        self,
        start: bytes,
        stop: bytes | None,
        *,
        reverse: bool = False,
        include_stop: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._db.iterator(start=start, stop=stop, include_stop=include_stop, reverse=reverse) as it:
            yield from it if limit is None else islice(it, limit)

    def count(self, start: bytes, stop: bytes | None) -> int:
        with self._db.iterator(start=start, stop=stop, include_value=False) as it:
            return sum(1 for _ in it)

    def increment(self, key: bytes, by: int = 1) -> int:
        raise StoreError("a LevelDB store is one process's: its counters are kept by the process")

    def is_empty(self) -> bool:
        with self._db.iterator(include_value=False) as it:
            return next(it, None) is None

    def snapshot_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value from one LevelDB snapshot, in key order (for a backup)."""
        snapshot = self._db.snapshot()
        try:
            with snapshot.iterator() as it:
                yield from it
        finally:
            snapshot.close()

    def close(self) -> None:
        self._db.close()


def write_raw(path: Path, items: Iterable[tuple[bytes, bytes]], *, chunk: int = 10_000) -> int:
    """Write raw (key, value) pairs, as a snapshot gave them, into a new LevelDB database at
    `path`, synced at the end; return how many. For `sijill node restore` (node/backup.py)."""
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
