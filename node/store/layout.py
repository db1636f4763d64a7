"""The store's key layout and value encoding: what a key looks like, which prefixes hold what.

Keys are ASCII, with '/' between parts, binary parts in lower-case hex and numbers in fixed-width
hex, so that LevelDB's byte order is numeric order and a prefix scan lists one kind of thing
(`make_key` builds them; the layout is in docs/node-store.md). Clear values are compact UTF-8
JSON (`dump_json`, `load_json`) or raw bytes; secrets live only under `SECRET_PREFIXES`
(node/store/encryption.py seals them). Some prefixes are written only through the store's own
methods (`MANAGED_PREFIXES`): tokens, counters, the audit trail and the key material.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.jsontext import loads
from node.errors import StoreError

SECRET_PREFIXES: tuple[bytes, ...] = (b"record/", b"share/")
"""The only prefixes that hold secrets, and where nothing is stored in the clear: record fields
and salts, and shares (which record a certificate's token opens, node/shares.py)."""
QUEUE_PREFIX = b"queue/"  # queue/<type>/<seq>: leaves waiting for a batch, written by enqueue()

SCHEMA_KEY = b"meta/schema"
DATAKEY_KEY = b"meta/datakey"
# Written only through their own methods: tokens, counters, the audit trail, the key material.
MANAGED_PREFIXES = (b"audit/", b"seq/", b"token/", SCHEMA_KEY, DATAKEY_KEY)


def make_key(*parts: str) -> bytes:
    """A store key: the parts joined with '/', each non-empty printable ASCII without '/'."""
    for part in parts:
        if not part or "/" in part or not (part.isascii() and part.isprintable()):
            raise StoreError(f"key part {part!r} must be non-empty printable ASCII without '/'")
    return "/".join(parts).encode()


def audit_key(seq: int) -> bytes:
    """The key of audit entry `seq`."""
    return b"audit/%016x" % seq


def check_writable(key: bytes) -> None:
    """Refuse a key that only the store's own methods write, or that is not ASCII."""
    if key.startswith(MANAGED_PREFIXES):
        raise StoreError(f"{show_key(key)} is written only through the store's own methods")
    if not key.isascii():
        raise StoreError(f"store keys are ASCII, not {key!r}")


def is_secret_key(key: bytes) -> bool:
    """Whether `key` lies under a secret prefix."""
    return key.startswith(SECRET_PREFIXES)


def prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with `prefix` (None: the end of the store)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1]) if trimmed else None


def show_key(key: bytes) -> str:
    """A key as text for a message."""
    return key.decode("ascii", errors="replace")


def dump_json(obj: Any) -> bytes:
    """`obj` as a clear value: compact UTF-8 JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def load_json(key: bytes, value: bytes) -> Any:
    """The clear JSON value read at `key` (by `ledger.jsontext.loads`); `StoreError` if it is
    not JSON."""
    try:
        return loads(value)
    except ValueError:
        raise StoreError(f"the value at {show_key(key)} is not JSON: the store is corrupted") from None
