"""The key-value backends under a `Store`: the interface, and choosing one from a setting.

A backend keeps ordered byte keys and byte values, and offers what the store needs of it:
single reads and writes, atomic batches, ordered range scans from a consistent snapshot and a
count. Two implement it: LevelDB (node/store/leveldb.py, plyvel, a directory; the default) and
PostgreSQL (node/store/postgres.py, psycopg, one table). Everything above it (encryption,
counters, tokens, the audit trail, the layout) is the same code on both.

`--store` (`Store`'s first argument) chooses: a path or `leveldb:PATH` is LevelDB;
`postgresql://...` or `postgres://...` (a libpq URI) or `postgresql:` followed by a libpq
conninfo (`postgresql:host=db1,db2 dbname=sijill`) is PostgreSQL. `describe_store` names a
location for messages and logs; it never shows a password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from node.errors import StoreError

_URI_SCHEMES = ("postgresql://", "postgres://")
_CONNINFO_PREFIX = "postgresql:"
_LEVELDB_PREFIX = "leveldb:"


class RawBatch(Protocol):
    """Writes a backend applies together or not at all, when `write()` is called; `discard()`
    drops them (and frees what `lock` holds)."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def write(self) -> None: ...

    def discard(self) -> None: ...

    def lock(self, name: int) -> None:
        """Shared backends: begin the batch's transaction now and take the database-wide lock
        `name` in it, held until the batch is written or discarded."""
        ...

    def read(self, key: bytes) -> bytes | None:
        """Shared backends: the value at `key`, read in the batch's transaction (after `lock`)."""
        ...

    def last_under(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        """Shared backends: the last key under `prefix` and its value, read in the batch's
        transaction (after `lock`, so it is the latest any process committed)."""
        ...


class OneProcessBatch:
    """What a batch of a store only one process opens (LevelDB) refuses: that process's own
    locks serve, and it reads outside the batch. Shared by the LevelDB batch and the group
    commit's op log (node/store/database.py)."""

    __slots__ = ()

    def lock(self, name: int) -> None:
        raise StoreError("a LevelDB store is one process's: its locks are the process's own")

    def read(self, key: bytes) -> bytes | None:
        raise StoreError("a LevelDB store is one process's: read it outside the batch")

    def last_under(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        raise StoreError("a LevelDB store is one process's: read its head from the process")


class Backend(Protocol):
    """An ordered byte key-value store. `where` names it in messages (never with a password).

    `shared`: several processes may open it at once (PostgreSQL). The store then takes counter
    numbers from the database (`increment`) and appends to the audit trail under a database
    lock (`RawBatch.lock`) instead of under its process's locks and caches alone."""

    where: str
    shared: bool

    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """The value of each key (None where missing), in order: one round trip per few
        thousand keys on PostgreSQL."""
        ...

    def put(self, key: bytes, value: bytes, *, sync: bool) -> None: ...

    def delete(self, key: bytes, *, sync: bool) -> None: ...

    def batch(self, *, sync: bool) -> RawBatch: ...

    def scan(
        self,
        start: bytes,
        stop: bytes | None,
        *,
        reverse: bool = False,
        include_stop: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for start <= key < stop (<= with `include_stop`; stop None: the end),
        ascending or descending, from one snapshot, `limit` at most. Close the iterator (or
        exhaust it) to free what it holds."""
        ...

    def count(self, start: bytes, stop: bytes | None) -> int: ...

    def increment(self, key: bytes, by: int = 1) -> int:
        """Shared backends: add `by` to the decimal counter at `key` (0 if missing), committed
        at once, and return the new value: no two callers in any process get the same."""
        ...

    def is_empty(self) -> bool: ...

    def keep_open_lock(self) -> None:
        """Shared backends: take the lock of the open store again if the session that held it
        ended (a failover); nothing on LevelDB, whose lock is a file."""
        ...

    def close(self) -> None: ...


def is_postgresql(location: str | os.PathLike[str]) -> bool:
    """Whether a `--store` value names a PostgreSQL database."""
    return isinstance(location, str) and location.startswith((*_URI_SCHEMES, _CONNINFO_PREFIX))


def leveldb_path(location: str | os.PathLike[str]) -> Path:
    """The directory of a LevelDB `--store` value (`leveldb:PATH` or a plain path)."""
    if isinstance(location, str) and location.startswith(_LEVELDB_PREFIX):
        location = location[len(_LEVELDB_PREFIX) :]
    if not str(location):
        raise StoreError("the store location is empty: give leveldb:PATH or postgresql://...")
    return Path(location)


def conninfo_of(location: str) -> str:
    """The libpq connection string of a PostgreSQL `--store` value."""
    return location if location.startswith(_URI_SCHEMES) else location[len(_CONNINFO_PREFIX) :].strip()


def describe_store(location: str | os.PathLike[str]) -> str:
    """A store location as messages and logs may show it: the password replaced by `***`."""
    if not is_postgresql(location):
        return str(leveldb_path(location))
    return redact_password(str(location))


def redact_password(text: str) -> str:
    """`text` with the password of any libpq URI or conninfo in it replaced by `***`."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", text, flags=re.IGNORECASE)
    return text


def open_backend(
    location: str | os.PathLike[str], *, create: bool, sync: bool, exclusive: bool = True
) -> Backend:
    """The backend a `--store` value names, opened (made if missing when `create`). `exclusive`:
    no other opener at the same time (LevelDB always is); without it (PostgreSQL only), other
    non-exclusive openers may share it: the node processes of one agency."""
    if isinstance(location, str) and is_postgresql(location):
        from node.store.postgres import PostgresBackend

        return PostgresBackend(conninfo_of(location), create=create, sync=sync, exclusive=exclusive)
    from node.store.leveldb import LevelDBBackend

    if not exclusive:
        raise StoreError(f"the LevelDB store at {leveldb_path(location)} admits one process at a time")
    return LevelDBBackend(leveldb_path(location), create=create)
