"""Personal data encrypted at rest: the operator's KEK, the store's data keys, sealed secrets.

Secrets (`put_secret`) are allowed only under `SECRET_PREFIXES` (record fields and their salts,
shares): `0x01 ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`, under the node's data key,
with the LevelDB key as associated data, so a blob moved to another key no longer decrypts.

The data key is random (256 bits), kept in `meta/datakey` wrapped by the operator's
key-encryption key (KEK), beside the KEK's id (first 8 bytes of its SHA-256, hex) so that a wrong
KEK is named as such. Rotating the KEK re-wraps the data key only (`rewrap_data_key`); rotating
the data key re-encrypts every secret (`rotate_data_key`), resumably.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.errors import NodeError, StoreError
from node.store.database import Database, WriteBatch
from node.store.layout import (
    DATAKEY_KEY,
    SECRET_PREFIXES,
    check_writable,
    dump_json,
    is_secret_key,
    show_key,
)

KEK_SIZE = 32

_SECRET_FORMAT = 1
_NONCE_SIZE = 12
_TAG_SIZE = 16
_DATAKEY_FORMAT = 1


def load_kek(kek_hex: str | None, kek_file: Path | None = None) -> bytes:
    """The 32-byte key-encryption key: `SIJILL_KEK` (hex), or a file holding it."""
    if kek_hex:
        text: str | None = kek_hex
    elif kek_file is not None:  # a flag wins over the environment
        try:
            text = kek_file.read_text().strip()
        except OSError as exc:
            raise NodeError(f"cannot read the key-encryption key file {kek_file}: {exc.strerror}") from None
    else:
        text = os.environ.get("SIJILL_KEK")
    if not text:
        raise NodeError("no key-encryption key: set SIJILL_KEK (64 hex digits) or give --kek-file")
    try:
        kek = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise NodeError("the key-encryption key is not hexadecimal") from None
    if len(kek) != 32:
        raise NodeError(f"the key-encryption key must be 32 bytes, got {len(kek)}")
    return kek


def kek_id(kek: bytes) -> str:
    """The id of a key-encryption key, safe to show and log: first 8 bytes of SHA-256, hex."""
    check_kek(kek)
    return hashlib.sha256(kek).digest()[:8].hex()


def check_kek(kek: bytes) -> None:
    """Refuse anything but a `KEK_SIZE`-byte key-encryption key."""
    if not isinstance(kek, bytes) or len(kek) != KEK_SIZE:
        raise StoreError(f"the key-encryption key must be {KEK_SIZE} bytes")


class DataKeys:
    """The data key, and the next one while a rotation is under way (read: both; write: the
    newer, so that a rotation never has to come back for what was written meanwhile)."""

    __slots__ = ("current", "pending", "readers", "writer")

    def __init__(self, current: bytes, pending: bytes | None = None) -> None:
        self.current = current
        self.pending = pending
        self.readers = [AESGCM(k) for k in (current, pending) if k is not None]
        self.writer = self.readers[-1]


class Secrets(Database):
    """The store's secret values and its key material (set by `Store.__init__`)."""

    _kek: bytes
    _keys: DataKeys
    _key_lock: threading.Lock

    def put_secret(self, wb: WriteBatch | None, key: bytes, value: bytes) -> None:
        """Encrypt `value` under the data key and store it at `key` (under `SECRET_PREFIXES`)."""
        check_writable(key)
        if not is_secret_key(key):
            raise StoreError(f"{show_key(key)} is not under a secret prefix {SECRET_PREFIXES}")
        self._put(wb, key, _seal(self._keys.writer, key, value))

    def get_secret(self, key: bytes) -> bytes | None:
        """The decrypted secret at `key`, or None if there is none."""
        blob = self._db.get(key)
        if blob is None:
            return None
        plain = _open_sealed(self._keys.readers, key, blob)
        if plain is None and self._db.shared:
            # Another process of the node may have rotated the data key: read the keys again.
            with self._key_lock:
                self._keys = self._unwrap_data_keys()
            plain = _open_sealed(self._keys.readers, key, blob)
        if plain is None:
            raise StoreError(
                f"the secret at {show_key(key)} does not decrypt with this store's data key: "
                "it was written under another key (moved or copied) or is corrupted"
            )
        return plain

    def rewrap_data_key(self, new_kek: bytes) -> str:
        """Rotate the KEK: wrap the data key under `new_kek` (one atomic write, no secret is
        re-encrypted). From then on the store opens only with `new_kek`; returns its id."""
        check_kek(new_kek)
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
                self._keys = DataKeys(self._keys.current, AESGCM.generate_key(bit_length=256))
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
            self._keys = DataKeys(keys.pending)
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
                        f"the secret at {show_key(key)} does not decrypt: data key rotation stopped"
                    )
                wb._put(key, _seal(new, key, plain))
                count += 1
        return count

    def _unwrap_data_keys(self) -> DataKeys:
        doc = self._read_json(DATAKEY_KEY)
        if not isinstance(doc, dict) or doc.get("format") != _DATAKEY_FORMAT:
            raise StoreError(f"the store at {self.where} has no usable data key (meta/datakey)")
        if not hmac.compare_digest(str(doc.get("kekId")).encode(), kek_id(self._kek).encode()):
            raise StoreError(
                f"the key-encryption key does not match this store (expected kek id {doc.get('kekId')})"
            )
        kek = AESGCM(self._kek)
        try:
            slots = {s: _unwrap(kek, s, doc[s]) for s in ("current", "pending") if doc.get(s) is not None}
            return DataKeys(slots["current"], slots.get("pending"))
        except (InvalidTag, KeyError, TypeError, ValueError):
            raise StoreError(f"the data key of the store at {self.where} is corrupted") from None

    def _write_data_keys(self, keys: DataKeys, kek: bytes) -> None:
        self._db.put(DATAKEY_KEY, wrap_data_keys(keys, kek), sync=True)


def wrap_data_keys(keys: DataKeys, kek: bytes) -> bytes:
    """The `meta/datakey` value: the data keys wrapped under `kek`, beside its id."""
    cipher = AESGCM(kek)
    doc: dict[str, Any] = {"format": _DATAKEY_FORMAT, "kekId": kek_id(kek)}
    doc["current"] = _wrap(cipher, "current", keys.current)
    if keys.pending is not None:
        doc["pending"] = _wrap(cipher, "pending", keys.pending)
    return dump_json(doc)


def _seal(cipher: AESGCM, key: bytes, plain: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return bytes([_SECRET_FORMAT]) + nonce + cipher.encrypt(nonce, plain, key)


def _open_sealed(ciphers: list[AESGCM], key: bytes, blob: bytes) -> bytes | None:
    """The plaintext of a sealed secret, or None if none of the keys opens it."""
    if len(blob) < 1 + _NONCE_SIZE + _TAG_SIZE or blob[0] != _SECRET_FORMAT:
        raise StoreError(f"the secret at {show_key(key)} has an unknown format (first byte {blob[:1].hex()})")
    nonce, sealed = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
    for cipher in ciphers:
        try:
            return cipher.decrypt(nonce, sealed, key)
        except InvalidTag:
            continue
    return None


def _wrap(kek: AESGCM, slot: str, data_key: bytes) -> str:
    nonce = os.urandom(_NONCE_SIZE)
    return (nonce + kek.encrypt(nonce, data_key, DATAKEY_KEY + b"/" + slot.encode())).hex()


def _unwrap(kek: AESGCM, slot: str, wrapped: str) -> bytes:
    blob = bytes.fromhex(wrapped)
    return kek.decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], DATAKEY_KEY + b"/" + slot.encode())
