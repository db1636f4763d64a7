"""`Store`, the one class the node uses: its parts joined, opened once, and the schema version.

`Store` is the database (node/store/database.py, over the LevelDB or PostgreSQL backend that
node/store/backend.py opens) with its secrets and key material
(encryption.py), counters and intake queues (counters.py), officer tokens (tokens.py) and audit
trail (audit.py); this module opens it and keeps its layout version. `meta/schema` holds that
version; an older store is migrated on open through `MIGRATIONS`, a newer one is refused.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.errors import StoreError
from node.store.audit import AuditTrail
from node.store.backend import describe_store, open_backend
from node.store.counters import Counters
from node.store.database import WriteBatch
from node.store.encryption import DataKeys, Secrets, check_kek, kek_id, wrap_data_keys
from node.store.layout import DATAKEY_KEY, QUEUE_PREFIX, SCHEMA_KEY, dump_json, prefix_end
from node.store.tokens import OfficerTokens

SCHEMA_VERSION = 1
"""Version of the key layout this node reads and writes."""

MIGRATIONS: dict[int, Callable[[Store], None]] = {}
"""from-version -> function bringing an open store to from-version + 1. The version is bumped
after the function returns, so a migration interrupted by a crash runs again: make it
idempotent (or do all of it in one write batch)."""


class Store(AuditTrail, OfficerTokens, Counters, Secrets):
    """An agency node's store. Open once per process, share between threads, `close()`."""

    def __init__(
        self,
        location: str | os.PathLike[str],
        kek: bytes,
        *,
        create: bool = False,
        sync: bool = True,
        exclusive: bool = True,
    ) -> None:
        """Open the store at `location` (a LevelDB directory, `leveldb:PATH`, or a PostgreSQL
        URI or `postgresql:` conninfo: node/store/backend.py) with the operator's 32-byte KEK;
        `create` a fresh one if missing. `sync=True` makes every committed write survive a
        crash or power loss. `exclusive` (a node): no other exclusive opener at once; False (a
        tool beside a running node, PostgreSQL only) shares the database with it."""
        check_kek(kek)
        self.where = describe_store(location)
        self.sync = sync
        self.schema_version = 0  # the store's layout version, once open
        self.migrated_from: int | None = None  # schema version before this open's migrations
        self._kek = kek
        self._key_lock = threading.Lock()
        self._seq_lock = threading.Lock()  # allocation of counter numbers
        self._seq_commit_lock = threading.Lock()  # persisting them, in order
        self._seq_taken: dict[str, int] = {}
        self._seq_persisted: dict[str, int] = {}
        self._seq_blocks: dict[str, tuple[int, int]] = {}
        self._audit_lock = threading.Lock()  # held from audit() until its batch is queued
        self._audit_owner: int | None = None
        self._audit_epoch = 0
        self._group = threading.Condition()  # group commit (LevelDB): node/store/database.py
        self._group_pending: list[WriteBatch] = []
        self._group_leading = False
        self._queue_lock = threading.Lock()  # a queue-changing commit and the count move together
        self._fences = threading.local()
        self._db = open_backend(location, create=create, sync=sync, exclusive=exclusive)
        self.where = self._db.where
        try:
            self._keys, version = self._open_schema(create)
            self._audit_head = self._audit_tail = self._load_audit_head()
            self._migrate(version)
            # Counted once here (about a second per million keys), then kept by every commit
            # that enqueues or dequeues: /metrics and /readyz read it at no cost.
            self._queued_leaves = self._db.count(QUEUE_PREFIX, prefix_end(QUEUE_PREFIX))
            self._queued_counted_at = time.monotonic()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def kek_id(self) -> str:
        """The id of the KEK the data key is wrapped under."""
        return kek_id(self._kek)

    # -- schema and key material ------------------------------------------------------------

    def _open_schema(self, create: bool) -> tuple[DataKeys, int]:
        version = self._read_json(SCHEMA_KEY)
        if version is None:
            if not self._db.is_empty():
                raise StoreError(f"{self.where} holds a database but not a Sijill store (no meta/schema)")
            if not create:
                raise StoreError(f"there is no store at {self.where} (create one with create=True)")
            keys = DataKeys(AESGCM.generate_key(bit_length=256))
            raw = self._db.batch(sync=True)
            raw.put(SCHEMA_KEY, dump_json(SCHEMA_VERSION))
            raw.put(DATAKEY_KEY, wrap_data_keys(keys, self._kek))
            raw.write()
            return keys, SCHEMA_VERSION
        if not isinstance(version, int) or version < 1:
            raise StoreError(f"the store at {self.where} has an invalid schema version {version!r}")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.where} has schema version {version}, newer than this node's "
                f"{SCHEMA_VERSION}: run a node release that knows version {version}"
            )
        return self._unwrap_data_keys(), version

    def _migrate(self, version: int) -> None:
        start = self.schema_version = version
        while version < SCHEMA_VERSION:
            migration = MIGRATIONS.get(version)
            if migration is None:
                raise StoreError(f"no migration from schema version {version} to {version + 1}")
            migration(self)
            version += 1
            self._db.put(SCHEMA_KEY, dump_json(version), sync=True)
            self.schema_version = version
        if version != start:
            self.migrated_from = start
