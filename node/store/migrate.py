"""Moving a stopped node's store from LevelDB to an empty PostgreSQL database (`sijill node
migrate-store`).

Every raw key and value is copied from one LevelDB snapshot, secrets sealed as stored (the copy
needs no KEK; the KEK given is checked against the store's, so that a node can open the copy).
The LevelDB store is opened as a node opens it, so a running node (which holds its lock) is
refused. The target must be empty: it is opened as a node opens it (its lock keeps a node out
while the copy runs), and the rows go in through one transaction, a chunk of `CHUNK` rows per
statement (bounded memory): a copy that fails leaves the table empty.

Counters need no translation: both backends keep `seq/<name>` as the decimal last number handed
out. A node on PostgreSQL adds to it in the database (`increment`), so the next op, share or
queue number follows the last one LevelDB gave; `check_counters` refuses a store whose counters
are not decimal or lag behind a queue entry. The queue count is counted when the store opens.

Afterwards both sides are read again: the number of keys under each first key part (`audit/`,
`record/`, ...) and a SHA-256 over every key and value, in key order, must be equal; when they
are, the copy's audit trail gets an entry `node.migrate-store` (actor `cli:node`, the source's
path, its key count and digest) after the entries it brought along.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from node.errors import StoreError
from node.store.backend import Backend, conninfo_of, describe_store, is_postgresql, leveldb_path
from node.store.layout import QUEUE_PREFIX, show_key

CHUNK = 2_000
"""Rows per INSERT statement of the copy."""


@dataclass(frozen=True, slots=True)
class Tally:
    """What one side of a migration holds: keys per first key part, and a digest of them all."""

    counts: dict[str, int]
    digest: str

    @property
    def keys(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Migration:
    """The outcome: the source's and the target's tallies (equal when the copy is right)."""

    source: str
    target: str
    before: Tally
    after: Tally

    @property
    def ok(self) -> bool:
        return self.before == self.after


class Tallier:
    """Builds a `Tally` one key at a time: keys per first key part (`audit/`, `meta/`, ...) and
    the SHA-256 of every key and value (each length-prefixed), in the order given."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._digest = hashlib.sha256()
        self._pack = struct.Struct(">II").pack

    def add(self, key: bytes, value: bytes) -> None:
        prefix = show_key(key[: key.find(b"/") + 1] or key)
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        self._digest.update(self._pack(len(key), len(value)))
        self._digest.update(key)
        self._digest.update(value)

    def result(self) -> Tally:
        return Tally(dict(sorted(self.counts.items())), self._digest.hexdigest())


def tally(items: Iterable[tuple[bytes, bytes]]) -> Tally:
    """The `Tally` of `items`, in the order given."""
    tallier = Tallier()
    for key, value in items:
        tallier.add(key, value)
    return tallier.result()


def check_counters(items: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse counters a PostgreSQL node could not continue: `seq/` values that are not decimal,
    and a queue whose counter is below a number its entries already use."""
    counters: dict[str, int] = {}
    highest: dict[str, int] = {}
    for key, value in items:
        if key.startswith(b"seq/"):
            if not value.isdigit():
                raise StoreError(f"the counter {show_key(key)} holds {value[:40]!r}, not a decimal number")
            counters[show_key(key[4:])] = int(value)
        elif key.startswith(QUEUE_PREFIX):
            name, _, number = show_key(key).rpartition("/")
            highest[name] = max(highest.get(name, 0), int(number, 16))
    for name, used in highest.items():
        if counters.get(name, 0) < used:
            raise StoreError(
                f"the counter seq/{name} ({counters.get(name, 0)}) is below its queue's entry {used}"
            )


def migrate_store(source: str | Path, target: str, kek: bytes) -> Migration:
    """Copy the stopped node's LevelDB store at `source` into the empty PostgreSQL store
    `target` (its table made if missing), tally both sides and open the copy with `kek` as a
    node would; see the module's docstring."""
    from node.store.backend import open_backend
    from node.store.store import Store

    if isinstance(source, str) and is_postgresql(source):
        raise StoreError(f"--from must be a LevelDB store (leveldb:PATH), not {describe_store(source)}")
    if not is_postgresql(target):
        raise StoreError(f"--to must be a PostgreSQL database (postgresql://...), not {target}")
    path = leveldb_path(source)
    # Opened as a node opens it: its lock refuses a running node, and the KEK must unwrap its
    # data key (the key the copy is sealed under), or the node could not open the copy.
    with Store(path, kek) as store:
        check_counters(store.iter_snapshot())
        backend = open_backend(target, create=True, sync=True)  # its lock keeps a node out
        try:
            if not backend.is_empty():
                keys = backend.count(b"", None)
                raise StoreError(
                    f"the target {backend.where} is not empty ({keys} keys): "
                    "migrate into a new, empty database"
                )
            source_tally = Tallier()
            _copy(backend, conninfo_of(target), _tallied(store.iter_snapshot(), source_tally))
            before = source_tally.result()
            after = tally(backend.scan(b"", None))
        finally:
            backend.close()
    with Store(target, kek) as copy:  # as the node will open it
        if before == after:  # the copy's first entry of its own: where it came from
            copy.audit(
                None,
                actor="cli:node",
                action="node.migrate-store",
                request_id=secrets.token_hex(8),
                subject=str(path),
                at=int(time.time()),
                details={"keys": before.keys, "contentDigest": before.digest},
            )
    return Migration(str(path), describe_store(target), before, after)


def _tallied(items: Iterator[tuple[bytes, bytes]], tallier: Tallier) -> Iterator[tuple[bytes, bytes]]:
    for key, value in items:
        tallier.add(key, value)
        yield key, value


def _copy(backend: Backend, conninfo: str, items: Iterator[tuple[bytes, bytes]]) -> int:
    """Insert `items` into the target's table in one transaction, `CHUNK` rows a statement."""
    import psycopg

    from node.store.backend import redact_password
    from node.store.postgres import TABLE

    insert = f"INSERT INTO {TABLE} (key, value) SELECT * FROM unnest(%s::bytea[], %s::bytea[])"
    copied = 0
    try:
        with psycopg.connect(conninfo, application_name="sijill-migrate") as conn, conn.transaction():
            while chunk := list(islice(items, CHUNK)):
                conn.execute(insert, ([k for k, _ in chunk], [v for _, v in chunk]))
                copied += len(chunk)
    except psycopg.Error as exc:
        text = str(exc).strip()
        detail = redact_password(text.splitlines()[0] if text else type(exc).__name__)
        raise StoreError(f"the copy into {backend.where} failed (nothing was kept): {detail}") from None
    return copied
