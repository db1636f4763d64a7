"""The node's store: one LevelDB database per agency node, personal data encrypted at rest.

LevelDB is an ordered key-value store that one process at a time may open. A node opens its
`Store` once and shares it between its threads (API, batcher, indexer): plyvel's reads, writes
and write batches are thread-safe. A second process (a CLI command while the node runs) gets
`StoreError("... is in use by another process")`.

Keys are ASCII, with '/' between parts, binary parts in lower-case hex and numbers in fixed-width
hex, so that LevelDB's byte order is numeric order and a prefix scan lists one kind of thing
(`make_key` builds them; the layout is in docs/node-store.md). Values are of two kinds:

- clear JSON (`put_json`): hashes, batches, proofs, chain state - nothing that names a person;
- secrets (`put_secret`), allowed only under `SECRET_PREFIXES` (record fields and their salts):
  `0x01 ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`, under the node's data key, with
  the LevelDB key as associated data, so a blob moved to another key no longer decrypts.

The data key is random (256 bits), kept in `meta/datakey` wrapped by the operator's
key-encryption key (KEK), beside the KEK's id (first 8 bytes of its SHA-256, hex) so that a wrong
KEK is named as such. Rotating the KEK re-wraps the data key only (`rewrap_data_key`); rotating
the data key re-encrypts every secret (`rotate_data_key`), resumably.

Writes that belong together go in one `write_batch()`: all or nothing, synced to disk by default.
Counters (`next_sequence`) and audit entries (`audit`) are allocated under a lock and persisted in
the caller's batch, so an abandoned batch writes nothing. The audit trail is append-only and
hash-chained: each entry carries the SHA-256 of the previous entry's canonical JSON.

`meta/schema` holds the layout version; an older store is migrated on open through `MIGRATIONS`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import plyvel
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.canonical import NotCanonical, canonical_json
from node.errors import StoreError

SCHEMA_VERSION = 1
"""Version of the key layout this node reads and writes."""

MIGRATIONS: dict[int, Callable[[Store], None]] = {}
"""from-version -> function bringing an open store to from-version + 1. The version is bumped
after the function returns, so a migration interrupted by a crash runs again: make it
idempotent (or do all of it in one write batch)."""

SECRET_PREFIXES: tuple[bytes, ...] = (b"record/", b"share/")
QUEUE_PREFIX = b"queue/"  # queue/<type>/<seq>: leaves waiting for a batch, written by enqueue()
"""The only prefixes that hold secrets, and where nothing is stored in the clear: record fields
and salts, and shares (which record a certificate's token opens, node/shares.py)."""

KEK_SIZE = 32
MIN_TOKEN_LENGTH = 32
AUDIT_GENESIS = "0" * 64
"""The `prev` of the first audit entry."""

_SECRET_FORMAT = 1
_NONCE_SIZE = 12
_TAG_SIZE = 16
_SCHEMA_KEY = b"meta/schema"
_DATAKEY_KEY = b"meta/datakey"
_DATAKEY_FORMAT = 1
# Written only through their own methods: tokens, counters, the audit trail, the key material.
_MANAGED = (b"audit/", b"seq/", b"token/", _SCHEMA_KEY, _DATAKEY_KEY)


def make_key(*parts: str) -> bytes:
    """A store key: the parts joined with '/', each non-empty printable ASCII without '/'."""
    for part in parts:
        if not part or "/" in part or not (part.isascii() and part.isprintable()):
            raise StoreError(f"key part {part!r} must be non-empty printable ASCII without '/'")
    return "/".join(parts).encode()


def kek_id(kek: bytes) -> str:
    """The id of a key-encryption key, safe to show and log: first 8 bytes of SHA-256, hex."""
    _check_kek(kek)
    return hashlib.sha256(kek).digest()[:8].hex()


def hash_token(token: str) -> str:
    """What is stored of an officer token: its SHA-256, hex. Its first `TOKEN_ID_LENGTH` digits
    are the token's id, which names the officer in the audit trail and in `sijill officer list`."""
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_ID_LENGTH = 16


def verify_audit_chain(entries: Iterable[dict[str, Any]], *, head: str | None = None) -> int:
    """Check an exported audit trail link by link; return the number of entries.

    Each entry must follow the previous one (next `seq`) and carry its hash as `prev`; an entry
    with seq 1 must start from `AUDIT_GENESIS`. A trail exported from a later `start_seq` is
    checked from its first entry on. Altering entry k breaks the link at k+1; the last entry
    is covered only when `head` (the hash from `Store.audit_head()`, kept elsewhere) is given.
    """
    count, last_seq, last_hash = 0, 0, ""
    for entry in entries:
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise StoreError(f"audit entry #{count + 1} of the export has no sequence number")
        if count == 0:
            if seq == 1 and entry.get("prev") != AUDIT_GENESIS:
                raise StoreError("audit entry 1 does not start the chain (its prev is not the genesis)")
        elif seq != last_seq + 1:
            raise StoreError(f"audit entry {seq} follows entry {last_seq}: entries are missing or reordered")
        elif entry.get("prev") != last_hash:
            raise StoreError(
                f"audit entry {seq} does not chain to entry {last_seq}: one of the two was altered "
                f"(prev is {entry.get('prev')!r}, entry {last_seq} hashes to {last_hash})"
            )
        try:
            last_hash = hashlib.sha256(canonical_json(entry)).hexdigest()
        except NotCanonical as exc:
            raise StoreError(f"audit entry {seq} is not valid canonical JSON: {exc}") from None
        count, last_seq = count + 1, seq
    if head is not None and last_hash != head:
        raise StoreError(f"the last audit entry ({last_seq}) does not hash to the expected head {head}")
    return count


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


class _DataKeys:
    """The data key, and the next one while a rotation is under way (read: both; write: the
    newer, so that a rotation never has to come back for what was written meanwhile)."""

    __slots__ = ("current", "pending", "readers", "writer")

    def __init__(self, current: bytes, pending: bytes | None = None) -> None:
        self.current = current
        self.pending = pending
        self.readers = [AESGCM(k) for k in (current, pending) if k is not None]
        self.writer = self.readers[-1]


class Store:
    """An agency node's LevelDB store. Open once per process, share between threads, `close()`."""

    def __init__(
        self, path: str | os.PathLike[str], kek: bytes, *, create: bool = False, sync: bool = True
    ) -> None:
        """Open the store at `path` with the operator's 32-byte KEK; `create` a fresh one if
        missing. `sync=True` makes every committed write survive a crash or power loss."""
        _check_kek(kek)
        self.path = Path(path)
        self.sync = sync
        self.schema_version = 0  # the store's layout version, once open
        self.migrated_from: int | None = None  # schema version before this open's migrations
        self._kek = kek
        self._key_lock = threading.Lock()
        self._seq_lock = threading.Lock()  # allocation of counter numbers
        self._seq_commit_lock = threading.Lock()  # persisting them, in order
        self._seq_taken: dict[str, int] = {}
        self._seq_persisted: dict[str, int] = {}
        self._audit_lock = threading.Lock()  # held from audit() to the end of its batch
        self._audit_owner: int | None = None
        self._queue_lock = threading.Lock()  # a queue-changing commit and the count move together
        self._db = _open_db(self.path, create)
        try:
            self._keys, version = self._open_schema(create)
            self._audit_head = self._load_audit_head()
            self._migrate(version)
            # Counted once here (about a second per million keys), then kept by every commit
            # that enqueues or dequeues: /metrics and /readyz read it at no cost.
            self._queued_leaves = sum(1 for _ in self._db.iterator(prefix=QUEUE_PREFIX, include_value=False))
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
        _check_writable(key)
        if _is_secret_key(key):
            raise StoreError(f"{_show(key)} holds secrets: write it with put_secret")
        self._put(wb, key, _dump(obj))

    def put(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        """Store clear binary `value` at `key` (queue leaves, tree levels, proofs)."""
        _check_writable(key)
        if _is_secret_key(key):
            raise StoreError(f"{_show(key)} holds secrets: write it with put_secret")
        self._put(wb, key, value)

    def get(self, key: bytes) -> bytes | None:
        """The clear bytes at `key`, or None if there is none."""
        if _is_secret_key(key):
            raise StoreError(f"{_show(key)} holds secrets: read it with get_secret")
        value: bytes | None = self._db.get(key)
        return value

    def get_json(self, key: bytes) -> Any | None:
        """The JSON value at `key`, or None if there is none."""
        if _is_secret_key(key):
            raise StoreError(f"{_show(key)} holds secrets: read it with get_secret")
        return self._read_json(key)

    def delete(self, wb: WriteBatch | None, key: bytes) -> None:
        """Delete `key` (in `wb`, or at once when None). Audit entries cannot be deleted."""
        _check_writable(key)
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
            raise StoreError(f"start key {_show(start)} is not under the prefix {_show(prefix)}")
        end = _prefix_end(prefix)
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
            raise StoreError(f"prefix {_show(prefix)} covers secrets: read them with get_secret")
        for key, value in self.iter_prefix(prefix, reverse=reverse, start=start, limit=limit):
            yield key, _load(key, value)

    def _read_json(self, key: bytes) -> Any | None:
        value = self._db.get(key)
        return None if value is None else _load(key, value)

    # -- secrets ------------------------------------------------------------------------------

    def put_secret(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        """Encrypt `value` under the data key and store it at `key` (under `SECRET_PREFIXES`)."""
        _check_writable(key)
        if not _is_secret_key(key):
            raise StoreError(f"{_show(key)} is not under a secret prefix {SECRET_PREFIXES}")
        self._put(wb, key, _seal(self._keys.writer, key, value))

    def get_secret(self, key: bytes) -> bytes | None:
        """The decrypted secret at `key`, or None if there is none."""
        blob = self._db.get(key)
        if blob is None:
            return None
        plain = _open_sealed(self._keys.readers, key, blob)
        if plain is None:
            raise StoreError(
                f"the secret at {_show(key)} does not decrypt with this store's data key: "
                "it was written under another key (moved or copied) or is corrupted"
            )
        return plain

    def rewrap_data_key(self, new_kek: bytes) -> str:
        """Rotate the KEK: wrap the data key under `new_kek` (one atomic write, no secret is
        re-encrypted). From then on the store opens only with `new_kek`; returns its id."""
        _check_kek(new_kek)
        with self._key_lock:
            self._write_data_keys(self._keys, new_kek)
            self._kek = new_kek
        return kek_id(new_kek)

    def rotate_data_key(self, *, chunk_size: int = 1000) -> int:
        """Re-encrypt every secret under a new data key, `chunk_size` per write batch; return
        how many were re-encrypted. Resumable: the new key is recorded before the first chunk
        and both keys read until the last, so after a crash, run it again. Run it with the
        node's writers stopped (a concurrent put_secret may be overwritten by the old value)."""
        if chunk_size < 1:
            raise StoreError(f"chunk_size must be at least 1, not {chunk_size}")
        with self._key_lock:
            if self._keys.pending is None:
                self._keys = _DataKeys(self._keys.current, AESGCM.generate_key(bit_length=256))
                self._write_data_keys(self._keys, self._kek)
            keys = self._keys
        old, new = keys.readers
        rotated = 0
        for prefix in SECRET_PREFIXES:
            chunk: list[tuple[bytes, bytes]] = []
            for item in self.iter_prefix(prefix):
                chunk.append(item)
                if len(chunk) == chunk_size:
                    rotated += self._reencrypt(chunk, old, new)
                    chunk = []
            rotated += self._reencrypt(chunk, old, new)
        with self._key_lock:
            assert keys.pending is not None
            self._keys = _DataKeys(keys.pending)
            self._write_data_keys(self._keys, self._kek)
        return rotated

    def _reencrypt(self, chunk: list[tuple[bytes, bytes]], old: AESGCM, new: AESGCM) -> int:
        count = 0
        with self.write_batch() as wb:
            for key, blob in chunk:
                if _open_sealed([new], key, blob) is not None:
                    continue  # done before an interruption, or written since
                plain = _open_sealed([old], key, blob)
                if plain is None:
                    raise StoreError(
                        f"the secret at {_show(key)} does not decrypt: data key rotation stopped"
                    )
                wb._put(key, _seal(new, key, plain))
                count += 1
        return count

    # -- counters -----------------------------------------------------------------------------

    def next_sequence(self, wb: WriteBatch | None, name: str) -> int:
        """The next number (1, 2, ...) of counter `name` ('/'-separated ASCII parts, such as
        `queue/title`), persisted with `wb` (at once if None).

        Numbers are taken under a lock and written when the batch commits: two callers never
        get the same number; an abandoned batch leaves a gap, never a duplicate."""
        key = make_key("seq", *name.split("/"))
        if wb is not None:
            wb._check_open()
        with self._seq_lock:
            if name not in self._seq_taken:
                stored = self._read_json(key)
                self._seq_taken[name] = int(stored) if stored is not None else 0
            number = self._seq_taken[name] + 1
            self._seq_taken[name] = number
        if wb is None:
            with self._seq_commit_lock:
                value = max(number, self._seq_persisted.get(name, 0))
                self._db.put(key, str(value).encode(), sync=self.sync)
                self._seq_persisted[name] = value
        else:
            wb._sequences[name] = max(number, wb._sequences.get(name, 0))
        return number

    # -- intake queues ------------------------------------------------------------------------

    def enqueue(self, wb: WriteBatch, record_type: str, leaf: bytes) -> None:
        """Put `leaf` at the end of `record_type`'s queue of leaves waiting for a batch."""
        seq = self.next_sequence(wb, f"queue/{record_type}")
        self.put(wb, QUEUE_PREFIX + f"{record_type}/{seq:016x}".encode(), leaf)
        wb._queued += 1

    def dequeue(self, wb: WriteBatch, key: bytes) -> None:
        """Take the queue entry `key` (one `iter_prefix(QUEUE_PREFIX)` gave) out of its queue."""
        if not key.startswith(QUEUE_PREFIX):
            raise StoreError(f"{_show(key)} is not a queue entry")
        self.delete(wb, key)
        wb._queued -= 1

    @property
    def queued_leaves(self) -> int:
        """Leaves in the intake queues now (every type), kept up to date by each commit."""
        return self._queued_leaves

    # -- officer tokens -----------------------------------------------------------------------

    def add_token(
        self, token: str, officer: dict[str, Any], expires_at: int | None, *, wb: WriteBatch | None = None
    ) -> str:
        """Register an officer's bearer token (stored as its SHA-256 only); return that hash.
        Tokens are random and at least `MIN_TOKEN_LENGTH` characters (`secrets.token_urlsafe(32)`)."""
        if len(token) < MIN_TOKEN_LENGTH:
            raise StoreError(f"an officer token must be at least {MIN_TOKEN_LENGTH} random characters")
        digest = hash_token(token)
        key = make_key("token", digest)
        # The id names the officer everywhere (audit trail, rate limit, idempotency keys): unique.
        if any(True for _ in self.iter_prefix(make_key("token", digest[:TOKEN_ID_LENGTH]))):
            raise StoreError(f"token {digest[:TOKEN_ID_LENGTH]} is already registered; issue a fresh token")
        entry = {"officer": officer, "expiresAt": expires_at, "revoked": False}
        self._put(wb, key, _dump(entry))
        return digest

    def find_token(self, token: str, *, now: int) -> dict[str, Any] | None:
        """The officer a token belongs to, or None if unknown, revoked or expired at `now`.

        The entry is looked up by the token's id (the first digits of its SHA-256) and taken only
        if its whole stored hash equals the token's, compared in constant time. Nothing the store
        compares is the token itself: how long a look-up takes depends at most on how many leading
        digits of the presented token's hash some stored hash shares, and that says nothing about
        any token (working back from a hash to a token is a SHA-256 preimage). docs/api.md says
        the same for every secret the API takes."""
        digest = hash_token(token)
        entry = None
        for key, value in self.iter_prefix(make_key("token", digest[:TOKEN_ID_LENGTH])):
            if hmac.compare_digest(key, make_key("token", digest)):
                entry = _load(key, value)
        if entry is None or entry["revoked"]:
            return None
        if entry["expiresAt"] is not None and now >= entry["expiresAt"]:
            return None
        officer: dict[str, Any] = entry["officer"]
        return officer

    def revoke_token(self, token_hash: str, *, wb: WriteBatch | None = None) -> str:
        """Revoke the token whose hash is `token_hash` or starts with it (8 hex digits at least,
        as `list_tokens` shows); return the full hash."""
        if not 8 <= len(token_hash) <= 64 or not set(token_hash) <= set("0123456789abcdef"):
            raise StoreError(f"{token_hash!r} is not a token hash (8 to 64 lower-case hex digits)")
        matches = list(self.iter_prefix(make_key("token", token_hash)))
        if len(matches) != 1:
            problem = "no token" if not matches else f"{len(matches)} tokens"
            raise StoreError(f"{problem} match {token_hash}; give more digits of the hash")
        key, value = matches[0]
        entry = _load(key, value)
        entry["revoked"] = True
        self._put(wb, key, _dump(entry))
        return key.decode().removeprefix("token/")

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every registered token: `tokenId` (first 16 hex digits of its hash), `officer`,
        `expiresAt`, `revoked`. Never the token itself: the store does not have it."""
        tokens = []
        for key, value in self.iter_prefix(b"token/"):
            token_id = key.decode().removeprefix("token/")[:TOKEN_ID_LENGTH]
            tokens.append({"tokenId": token_id, **_load(key, value)})
        return tokens

    # -- audit trail --------------------------------------------------------------------------

    def audit(
        self,
        wb: WriteBatch | None,
        *,
        actor: str,
        action: str,
        request_id: str,
        subject: str,
        at: int,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append an audit entry with the batch's writes (at once when `wb` is None); return
        its sequence number. `details` never holds record field values (names, ID numbers).

        From this call to the end of the batch the trail is locked, so that entries are numbered
        without gaps and chained in commit order: call it last, just before the batch ends."""
        entry: dict[str, Any] = {
            "seq": 0,
            "at": at,
            "actor": actor,
            "action": action,
            "requestId": request_id,
            "subject": subject,
            "details": details if details is not None else {},
            "prev": "",
        }
        try:
            canonical_json(entry)  # refuse a bad entry before taking the lock
        except NotCanonical as exc:
            raise StoreError(f"audit entry for {action!r} is not canonical JSON: {exc}") from None
        if wb is None:
            with self.write_batch() as direct:
                return self._append_audit(direct, entry)
        return self._append_audit(wb, entry)

    def _append_audit(self, wb: WriteBatch, entry: dict[str, Any]) -> int:
        wb._check_open()
        if wb._audit is None:
            if self._audit_owner == threading.get_ident():
                raise StoreError("this thread already has an audit entry in another open write batch")
            self._audit_lock.acquire()
            self._audit_owner = threading.get_ident()
            last_seq, last_hash = self._audit_head
        else:
            last_seq, last_hash = wb._audit
        entry["seq"], entry["prev"] = last_seq + 1, last_hash
        data = canonical_json(entry)
        wb._audit = (last_seq + 1, hashlib.sha256(data).hexdigest())
        wb._raw.put(_audit_key(last_seq + 1), data)
        return last_seq + 1

    def export_audit(self, start_seq: int = 0) -> Iterator[dict[str, Any]]:
        """The audit entries from `start_seq` on, in order (check them with `verify_audit_chain`)."""
        for key, value in self.iter_prefix(b"audit/", start=_audit_key(start_seq)):
            yield _load(key, value)

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed audit entry ((0, AUDIT_GENESIS) when empty): keep
        it outside the node to make the last entries tamper-evident too."""
        return self._audit_head

    def _load_audit_head(self) -> tuple[int, str]:
        for key, value in self.iter_prefix(b"audit/", reverse=True):
            return int(key[len(b"audit/") :], 16), hashlib.sha256(value).hexdigest()
        return 0, AUDIT_GENESIS

    # -- schema and key material ------------------------------------------------------------

    def _open_schema(self, create: bool) -> tuple[_DataKeys, int]:
        version = self._read_json(_SCHEMA_KEY)
        if version is None:
            if next(self.iter_prefix(b""), None) is not None:
                raise StoreError(f"{self.path} is a LevelDB database but not a Sijill store (no meta/schema)")
            if not create:
                raise StoreError(f"there is no store at {self.path} (create one with create=True)")
            keys = _DataKeys(AESGCM.generate_key(bit_length=256))
            with self._db.write_batch(sync=True) as raw:
                raw.put(_SCHEMA_KEY, _dump(SCHEMA_VERSION))
                raw.put(_DATAKEY_KEY, _wrap_data_keys(keys, self._kek))
            return keys, SCHEMA_VERSION
        if not isinstance(version, int) or version < 1:
            raise StoreError(f"the store at {self.path} has an invalid schema version {version!r}")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.path} has schema version {version}, newer than this node's "
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
            self._db.put(_SCHEMA_KEY, _dump(version), sync=True)
            self.schema_version = version
        if version != start:
            self.migrated_from = start

    def _unwrap_data_keys(self) -> _DataKeys:
        doc = self._read_json(_DATAKEY_KEY)
        if not isinstance(doc, dict) or doc.get("format") != _DATAKEY_FORMAT:
            raise StoreError(f"the store at {self.path} has no usable data key (meta/datakey)")
        if not hmac.compare_digest(str(doc.get("kekId")).encode(), kek_id(self._kek).encode()):
            raise StoreError(
                f"the key-encryption key does not match this store (expected kek id {doc.get('kekId')})"
            )
        kek = AESGCM(self._kek)
        try:
            slots = {s: _unwrap(kek, s, doc[s]) for s in ("current", "pending") if doc.get(s) is not None}
            return _DataKeys(slots["current"], slots.get("pending"))
        except (InvalidTag, KeyError, TypeError, ValueError):
            raise StoreError(f"the data key of the store at {self.path} is corrupted") from None

    def _write_data_keys(self, keys: _DataKeys, kek: bytes) -> None:
        self._db.put(_DATAKEY_KEY, _wrap_data_keys(keys, kek), sync=True)


def _open_db(path: Path, create: bool) -> Any:
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


def _check_kek(kek: bytes) -> None:
    if not isinstance(kek, bytes) or len(kek) != KEK_SIZE:
        raise StoreError(f"the key-encryption key must be {KEK_SIZE} bytes")


def _check_writable(key: bytes) -> None:
    if key.startswith(_MANAGED):
        raise StoreError(f"{_show(key)} is written only through the store's own methods")
    if not key.isascii():
        raise StoreError(f"store keys are ASCII, not {key!r}")


def _is_secret_key(key: bytes) -> bool:
    return key.startswith(SECRET_PREFIXES)


def _audit_key(seq: int) -> bytes:
    return b"audit/%016x" % seq


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with `prefix` (None: the end of the store)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1]) if trimmed else None


def _drain(it: Any, limit: int | None) -> Iterator[tuple[bytes, bytes]]:
    with it:
        yield from it if limit is None else islice(it, limit)


def _show(key: bytes) -> str:
    return key.decode("ascii", errors="replace")


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _load(key: bytes, value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise StoreError(f"the value at {_show(key)} is not JSON: the store is corrupted") from None


def _seal(cipher: AESGCM, key: bytes, plain: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return bytes([_SECRET_FORMAT]) + nonce + cipher.encrypt(nonce, plain, key)


def _open_sealed(ciphers: list[AESGCM], key: bytes, blob: bytes) -> bytes | None:
    """The plaintext of a sealed secret, or None if none of the keys opens it."""
    if len(blob) < 1 + _NONCE_SIZE + _TAG_SIZE or blob[0] != _SECRET_FORMAT:
        raise StoreError(f"the secret at {_show(key)} has an unknown format (first byte {blob[:1].hex()})")
    nonce, sealed = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
    for cipher in ciphers:
        try:
            return cipher.decrypt(nonce, sealed, key)
        except InvalidTag:
            continue
    return None


def _wrap(kek: AESGCM, slot: str, data_key: bytes) -> str:
    nonce = os.urandom(_NONCE_SIZE)
    return (nonce + kek.encrypt(nonce, data_key, _DATAKEY_KEY + b"/" + slot.encode())).hex()


def _unwrap(kek: AESGCM, slot: str, wrapped: str) -> bytes:
    blob = bytes.fromhex(wrapped)
    return kek.decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], _DATAKEY_KEY + b"/" + slot.encode())


def _wrap_data_keys(keys: _DataKeys, kek: bytes) -> bytes:
    cipher = AESGCM(kek)
    doc: dict[str, Any] = {"format": _DATAKEY_FORMAT, "kekId": kek_id(kek)}
    doc["current"] = _wrap(cipher, "current", keys.current)
    if keys.pending is not None:
        doc["pending"] = _wrap(cipher, "pending", keys.pending)
    return _dump(doc)
