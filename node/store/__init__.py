"""The node's store (node/store/database.py, to be split into one module per concern)."""

from node.store.database import (
    AUDIT_GENESIS,
    KEK_SIZE,
    MIN_TOKEN_LENGTH,
    QUEUE_PREFIX,
    SECRET_PREFIXES,
    TOKEN_ID_LENGTH,
    Store,
    WriteBatch,
    hash_token,
    kek_id,
    make_key,
    verify_audit_chain,
)

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
    "make_key",
    "verify_audit_chain",
]
