"""The PostgreSQL backend: the store as one key-value table in a PostgreSQL database.

The table is `sijill_store (key bytea PRIMARY KEY, value bytea NOT NULL)`; bytea compares byte
by byte, so its order is LevelDB's and a prefix scan is a key range (`key >= prefix AND key <
successor ORDER BY key`), read through a server-side cursor a page at a time (one query: one
snapshot, and bounded memory). Keys and values travel in PostgreSQL's binary format both ways
(`%b`, `binary=True`): no escaping or hex text for bytea. A write batch is one transaction, its
keys written in key order (so two batches never wait on each other in a cycle);
`synchronous_commit` is on when the store syncs, so a committed batch survives a crash of the
server.

Several processes may open the database (`shared`): counters come from the database
(`increment`), and a batch that appends to the audit trail takes a transaction-level advisory
lock (`PostgresBatch.lock`) and reads the trail's head in that transaction. Whoever opens it holds
a session advisory lock on a connection of its own for as long as the store is open: shared for
node processes (several `sijill serve` of one agency; node/lease.py says which one batches and
anchors), exclusive for the tools that need the database alone (`node init`, `migrate-store`),
so a tool refuses while a node runs and a node while a tool runs. The other connections come
from pools (psycopg_pool), shared by the process's threads. Messages name the database without
its password.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import groupby
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from node.errors import StoreError
from node.store.backend import redact_password
from node.store.layout import prefix_end

TABLE = "sijill_store"
LOCK_KEY = 0x53494A494C4C  # b"SIJILL": the advisory lock the open store holds
POOL_SIZE = 16  # connections at most: API threads, batcher, indexer, and open scans
COUNTER_POOL_SIZE = 4  # connections that hand out counter numbers
POOL_TIMEOUT = 10.0  # seconds a call waits for a connection (the server down, or all in use)
LOCK_TIMEOUT = 30.0  # seconds a batch waits for the audit trail's database lock
IDLE_TIMEOUT = 10.0  # seconds a batch holding database locks may sit between two statements
PAGE = 500  # rows a scan fetches per round trip

_UPSERT = (
    f"INSERT INTO {TABLE} (key, value) SELECT * FROM unnest(%b::bytea[], %b::bytea[]) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
)
_DELETE = f"DELETE FROM {TABLE} WHERE key = ANY(%b::bytea[])"

_open_here: set[str] = set()  # the databases this process has open, to name a second open
_open_lock = threading.Lock()


class PostgresBatch:
    """Writes kept until `write()`, then applied in one transaction (the last write to a key
    wins). After `lock` the transaction is open from then on, on a connection of its own; the
    writes kept until then are applied in it before the lock is taken (`read` sees them)."""

    __slots__ = ("_backend", "_conn", "_ops", "_sync")

    def __init__(self, backend: PostgresBackend, sync: bool) -> None:
        self._backend, self._sync = backend, sync
        self._ops: dict[bytes, bytes | None] = {}
        self._conn: psycopg.Connection[Any] | None = None  # the open transaction, after lock()

    def put(self, key: bytes, value: bytes) -> None:
        self._ops[key] = value

    def delete(self, key: bytes) -> None:
        self._ops[key] = None

    def lock(self, name: int) -> None:
        backend = self._backend
        with backend._errors("lock failed"):
            if self._conn is None:
                self._conn = backend._getconn()
                self._conn.execute("BEGIN")
                # A process that holds the lock and hangs fails the others, not stalls them; one
                # that stops between statements (paused, cut off) loses its session after
                # IDLE_TIMEOUT, and the locks with it: a paused lease holder, say.
                self._conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT:g}s'")
                self._conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_TIMEOUT:g}s'")
            if self._ops:
                # The writes made so far go in before the lock is waited for, not while it is
                # held: an audited batch (the lock comes with its audit entry, written last)
                # holds the trail's lock for its entry and commit only, so that two processes'
                # bulk chunks write their rows at once instead of one after the other.
                backend._write_ops(self._conn, self._ops, self._sync)
                self._ops = {}
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (name,))

    def last_under(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        if self._conn is None:
            raise StoreError("last_under needs the batch's transaction: call lock() first")
        query = f"SELECT key, value FROM {TABLE} WHERE key >= %b AND key < %b ORDER BY key DESC LIMIT 1"
        with self._backend._errors("read failed"):
            row = self._conn.execute(
                query, (prefix, prefix_end(prefix) or b"\xff" * 64), binary=True
            ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def read(self, key: bytes) -> bytes | None:
        if self._conn is None:
            raise StoreError("read needs the batch's transaction: call lock() first")
        with self._backend._errors("read failed"):
            row = self._conn.execute(
                f"SELECT value FROM {TABLE} WHERE key = %b", (key,), binary=True
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write(self) -> None:
        if self._conn is None:
            if self._ops:
                self._backend._apply(self._ops, self._sync)
            return
        conn, self._conn = self._conn, None
        try:
            with self._backend._errors("write failed"):
                self._backend._write_ops(conn, self._ops, self._sync)
                conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        finally:
            self._backend._putconn(conn)

    def discard(self) -> None:
        self._ops.clear()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            _rollback(conn)
            self._backend._putconn(conn)


class PostgresBackend:
    """The store's keys in the table `sijill_store` of the database `conninfo` names."""

    shared = True

    def __init__(self, conninfo: str, *, create: bool, sync: bool, exclusive: bool = True) -> None:
        self.where = describe_conninfo(conninfo)
        self._sync = sync
        self._exclusive = exclusive
        self._identity = _identity(conninfo) if exclusive else ""
        with _open_lock:
            if exclusive and self._identity in _open_here:
                raise StoreError(
                    f"the store at {self.where} is already open in this process: share one Store"
                )
            if exclusive:
                _open_here.add(self._identity)
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._locked = False  # holds the node's advisory lock
        self._pool: ConnectionPool | None = None
        self._counters: ConnectionPool | None = None  # increments, synchronous_commit off
        try:
            self._open(conninfo, create)
        except BaseException:
            self.close()
            raise

    def _take_open_lock(self) -> None:
        """Connect the lock's own session and take the open store's lock in it (shared for node
        processes, exclusive for tools)."""
        self._lock_conn = psycopg.connect(self._conninfo, autocommit=True, **_connect_kwargs(self._conninfo))
        take = "pg_try_advisory_lock" if self._exclusive else "pg_try_advisory_lock_shared"
        locked = self._lock_conn.execute(f"SELECT {take}(%s)", (LOCK_KEY,)).fetchone()
        if not locked or not locked[0]:
            if self._exclusive:
                raise StoreError(f"the store at {self.where} is in use by another process (a running node?)")
            raise StoreError(
                f"the store at {self.where} is held exclusively by another process "
                "(node init or migrate-store?): wait until it has finished"
            )
        self._locked = True

    def keep_open_lock(self) -> None:
        """Take the open store's lock again if its session ended (the server restarted or failed
        over): one round trip to see that it lives. `StoreError` if it cannot be had again."""
        conn = self._lock_conn
        if conn is None:
            return
        try:
            conn.execute("SELECT 1")
            return
        except psycopg.Error:
            pass
        with suppress(psycopg.Error):
            conn.close()
        self._locked = False
        with self._errors("lost its lock and cannot take it again"):
            self._take_open_lock()

    def _open(self, conninfo: str, create: bool) -> None:
        kwargs = _connect_kwargs(conninfo)
        self._conninfo = conninfo
        with self._errors("cannot be opened"):
            self._take_open_lock()
            assert self._lock_conn is not None
            if create:
                self._lock_conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (key bytea PRIMARY KEY, value bytea NOT NULL)"
                )
            else:
                found = self._lock_conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
                if not found or found[0] is None:
                    raise StoreError(f"there is no store at {self.where} (create one with create=True)")
            # The store's pool commits as the store syncs; the counters' pool never waits for
            # the WAL flush (see `increment`).
            self._pool = _pool(conninfo, kwargs, "sijill-store", POOL_SIZE, "on" if self._sync else "off")
            self._counters = _pool(conninfo, kwargs, "sijill-counters", COUNTER_POOL_SIZE, "off")

    # -- the backend interface --------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        with self._errors("read failed"), self._connection() as conn:
            row = conn.execute(f"SELECT value FROM {TABLE} WHERE key = %b", (key,), binary=True).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, value: bytes, *, sync: bool) -> None:
        self._apply({key: value}, sync)

    def delete(self, key: bytes, *, sync: bool) -> None:
        self._apply({key: None}, sync)

    def batch(self, *, sync: bool) -> PostgresBatch:
        return PostgresBatch(self, sync)

    def scan(
        self,
        start: bytes,
        stop: bytes | None,
        *,
        reverse: bool = False,
        include_stop: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        where, params = "key >= %b", [start]
        if stop is not None:
            where += " AND key <= %b" if include_stop else " AND key < %b"
            params.append(stop)
        query = f"SELECT key, value FROM {TABLE} WHERE {where} ORDER BY key {'DESC' if reverse else 'ASC'}"
        if limit is not None:
            query += f" LIMIT {max(0, int(limit))}"
            if limit <= PAGE:  # small: one round trip, the connection back before the first row
                with self._errors("scan failed"), self._connection() as conn:
                    rows = conn.execute(query, params, binary=True).fetchall()
                yield from ((bytes(k), bytes(v)) for k, v in rows)
                return
        stopped = False  # the caller closed the scan before its end
        try:
            with (
                self._errors("scan failed"),
                self._connection() as conn,
                conn.transaction(),
                conn.cursor(name="sijill_scan", binary=True) as cursor,
            ):
                cursor.itersize = PAGE
                cursor.execute(query, params)
                try:
                    for key, value in cursor:
                        yield bytes(key), bytes(value)
                except GeneratorExit:
                    stopped = True
                    raise
        except StoreError:
            if not stopped:
                raise
            # Closing the cursor of a scan nobody reads any more failed (the server went away
            # meanwhile): nothing was lost, and the pool replaces the connection.

    def count(self, start: bytes, stop: bytes | None) -> int:
        where, params = "key >= %b", [start]
        if stop is not None:
            where, params = where + " AND key < %b", [start, stop]
        with self._errors("count failed"), self._connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    def increment(self, key: bytes, by: int = 1) -> int:
        query = (
            f"INSERT INTO {TABLE} (key, value) VALUES (%b, %b) ON CONFLICT (key) DO UPDATE SET value = "
            f"convert_to((convert_from({TABLE}.value, 'UTF8')::bigint + %s)::text, 'UTF8') RETURNING value"
        )
        # On connections of their own that commit without waiting for the WAL flush: a batch
        # that uses the number commits with synchronous_commit on, which flushes the WAL up to
        # it, this increment included; a number lost with a crash was never used by a commit.
        if self._counters is None:
            raise StoreError(f"the store at {self.where} is closed")
        with self._errors("counter failed"), self._counters.connection() as conn:
            row = conn.execute(query, (key, str(by).encode(), by)).fetchone()
        assert row is not None
        return int(bytes(row[0]))

    def is_empty(self) -> bool:
        with self._errors("read failed"), self._connection() as conn:
            row = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {TABLE})").fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        try:
            for pool in (self._pool, self._counters):
                if pool is not None:
                    pool.close()
            if self._lock_conn is not None:
                if self._locked:  # at once: the session's end frees it only when the server gets to it
                    unlock = "pg_advisory_unlock" if self._exclusive else "pg_advisory_unlock_shared"
                    with suppress(psycopg.Error):
                        self._lock_conn.execute(f"SELECT {unlock}(%s)", (LOCK_KEY,))
                self._lock_conn.close()
        finally:
            self._pool = self._counters = self._lock_conn = None
            self._locked = False
            with _open_lock:
                _open_here.discard(self._identity)

    # -- inside -------------------------------------------------------------------------------

    def _apply(self, ops: dict[bytes, bytes | None], sync: bool) -> None:
        with self._errors("write failed"), self._connection() as conn, conn.transaction():
            self._write_ops(conn, ops, sync)

    def _write_ops(self, conn: psycopg.Connection[Any], ops: dict[bytes, bytes | None], sync: bool) -> None:
        """The writes of a batch, in the transaction open on `conn`."""
        if sync != self._sync:
            conn.execute(f"SET LOCAL synchronous_commit = {'on' if sync else 'off'}")
        # In key order (each key once: put or deleted), a run of one kind in one statement,
        # its keys and values as two arrays (one round trip, whatever the run's length).
        for is_put, run in groupby(sorted(ops.items()), key=lambda op: op[1] is not None):
            items = list(run)
            if is_put:
                conn.execute(_UPSERT, ([k for k, _ in items], [v for _, v in items]))
            else:
                conn.execute(_DELETE, ([k for k, _ in items],))

    def _getconn(self) -> psycopg.Connection[Any]:
        if self._pool is None:
            raise StoreError(f"the store at {self.where} is closed")
        return self._pool.getconn()

    def _putconn(self, conn: psycopg.Connection[Any]) -> None:
        if self._pool is not None:
            self._pool.putconn(conn)
        else:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is None:
            raise StoreError(f"the store at {self.where} is closed")
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except PoolTimeout:
            raise StoreError(
                f"the store at {self.where}: no database connection free or reachable "
                f"within {POOL_TIMEOUT:g} s"
            ) from None
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                self._check_idle()
            text = str(exc).strip()
            detail = redact_password(text.splitlines()[0] if text else type(exc).__name__)
            raise StoreError(f"the store at {self.where} {what}: {detail}") from None

    def _check_idle(self) -> None:
        """A connection broke (the server restarted, a failover): test the idle ones and replace
        those that broke too, now, rather than let each fail a later call. Checking every
        connection as it is taken would cost a round trip on every call (60 us here)."""
        for pool in (self._pool, self._counters):
            if pool is not None:
                with suppress(Exception):
                    pool.check()

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        found: dict[bytes, bytes] = {}
        with self._errors("read failed"), self._connection() as conn:
            for start in range(0, len(keys), PAGE * 10):
                chunk = keys[start : start + PAGE * 10]
                query = f"SELECT key, value FROM {TABLE} WHERE key = ANY(%b::bytea[])"
                rows = conn.execute(query, (chunk,), binary=True)
                found.update((bytes(k), bytes(v)) for k, v in rows.fetchall())
        return [found.get(key) for key in keys]


def _pool(
    conninfo: str, kwargs: dict[str, Any], name: str, size: int, synchronous_commit: str
) -> ConnectionPool:
    """An open pool of up to `size` autocommit connections with `synchronous_commit` set."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET synchronous_commit = {synchronous_commit}")

    return ConnectionPool(
        conninfo,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, **kwargs},
        configure=configure,
        name=name,
        timeout=POOL_TIMEOUT,
        open=True,
    )


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End the transaction open on `conn` without its writes (the lock it took goes with it)."""
    with suppress(psycopg.Error):  # a broken connection: the pool replaces it
        conn.execute("ROLLBACK")


def describe_conninfo(conninfo: str) -> str:
    """`postgresql://user@host:port/dbname` for a conninfo or URI, without its password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgresql (an unreadable connection string)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or params.get('user') or ''}"


def _identity(conninfo: str) -> str:
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return conninfo
    return "|".join(str(params.get(k) or "") for k in ("host", "hostaddr", "port", "dbname", "user"))


def _connect_kwargs(conninfo: str) -> dict[str, Any]:
    """Defaults the connection string does not set: a name in pg_stat_activity, a time limit."""
    try:
        given = conninfo_to_dict(conninfo)
    except psycopg.Error:
        given = {}
    defaults = {"application_name": "sijill-node", "connect_timeout": 10}
    return {k: v for k, v in defaults.items() if k not in given}
