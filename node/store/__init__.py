"""The node's store: an ordered key-value database per agency node, personal data encrypted at rest.

The keys and values live in a backend (`backend`), chosen by `--store`: LevelDB (`leveldb`,
plyvel, a directory; the default) or PostgreSQL (`postgres`, psycopg, one table). A node opens
its `Store` once and shares it between its threads (API, batcher, indexer). A second process
(a CLI command while the node runs) gets `StoreError("... is in use by another process")`. The
key layout is in docs/node-store.md, the backends in docs/storage.md.

`Store` is the one class the rest of the node uses; it is built from one module per concern:
- `layout`: the key layout (`make_key`, the prefixes, which are secret or managed) and the
  JSON encoding of clear values;
- `backend`: the backend interface and choosing one from a `--store` value (`leveldb`,
  `postgres`: the two implementations);
- `database`: atomic write batches (`WriteBatch`), clear values, prefix scans, over a backend;
- `encryption`: the operator's KEK, the data keys it wraps, sealing and opening secrets, and
  rotating either key;
- `counters`: counters (`next_sequence`) and the intake queues with their running count;
- `tokens`: officer tokens, kept as their SHA-256 only;
- `audit`: the append-only, hash-chained audit trail and `verify_audit_chain`;
- `store`: `Store`, joining them, opening a store and migrating its schema (`SCHEMA_VERSION`,
  `MIGRATIONS`);
- `migrate`: moving a stopped node's LevelDB store into an empty PostgreSQL database
  (`sijill node migrate-store`), checked by counts and a digest of both sides.

May import `ledger`, `node.errors`, the standard library, plyvel, psycopg, psycopg_pool and
cryptography; never `node.chain`, the rest of the node, `api` or `cli`.
"""

from node.store.audit import AUDIT_GENESIS, verify_audit_chain
from node.store.database import WriteBatch
from node.store.encryption import KEK_SIZE, kek_id, load_kek
from node.store.layout import QUEUE_PREFIX, SECRET_PREFIXES, make_key
from node.store.store import Store
from node.store.tokens import MIN_TOKEN_LENGTH, TOKEN_ID_LENGTH, hash_token

__all__ = [
    "AUDIT_GENESIS",
    "KEK_SIZE",
    "MIN_TOKEN_LENGTH",
    "QUEUE_PREFIX",
    "SECRET_PREFIXES",
    "TOKEN_ID_LENGTH",
    "Store",
    "WriteBatch",
    "hash_token",
    "kek_id",
    "load_kek",
    "make_key",
    "verify_audit_chain",
]
