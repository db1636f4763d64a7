"""A node's backup: one file holding a consistent snapshot of its store and a manifest.

`write_backup` copies every key of the store from one LevelDB snapshot (`Store.iter_snapshot`)
while the node goes on taking records: secrets stay sealed as stored (AES-GCM under the data
key, itself wrapped under the operator's KEK), so the file holds no personal data in the clear
and is useless without the KEK. The file, version `BACKUP_FORMAT`:

    b"SIJILL-BACKUP" 0x00 <format byte>            the head (14 bytes)
    (u32 key length, u32 value length, key, value)*  every key in key order (big-endian)
    0xFFFFFFFF                                       the end of the keys
    manifest JSON, u64 its length, b"SIJBKEND"       the manifest, found from the file's end

The manifest (`Manifest`) names the agency, the time, the counts (records, leaves, batches,
tokens, keys), the node's last anchored batch (seq and root), the chain's head for the agency
when the node knew it, the store's audit head, and the SHA-256 of the key section
(`contentDigest`), which `read_backup` checks before a restore writes anything.

`restore_backup` writes the keys into a new store directory; the node lines its log up with
the chain when it starts (node/batcher/lineup.py), and node/backup_gap.py says what the backup
lacks: batches the chain holds beyond the backup's (docs/node.md, "Restored from a backup").
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from node.errors import NodeError
from node.store import Store
from node.store.leveldb import write_raw

BACKUP_FORMAT = 1
"""Version of the backup file; `read_backup` refuses any other."""

_HEAD = b"SIJILL-BACKUP\x00" + bytes([BACKUP_FORMAT])
_TAIL = b"SIJBKEND"
_END_OF_KEYS = 0xFFFFFFFF
_MAX_MANIFEST = 1 << 20
_COUNTED = {b"head/": "records", b"leaf/": "leaves", b"batch/": "batches", b"token/": "tokens"}


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds. `chainHead` is None when the node did not ask the chain."""

    format: int
    agency: str | None
    createdAt: int
    counts: dict[str, int]
    lastAnchored: dict[str, Any] | None  # {"seq", "root"} of the node's last anchored batch
    chainHead: dict[str, Any] | None  # {"seq", "root"} of the agency's log on the chain
    auditHead: dict[str, Any]  # {"seq", "hash"} of the store's audit trail in the backup
    contentDigest: str  # SHA-256 of the key section, hex
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def write_backup(
    store: Store, out: Path, *, agency: str | None, chain_head: tuple[int, str] | None = None
) -> Manifest:
    """Write a backup of `store` to `out` (a new file, mode 0600, replaced atomically); return
    its manifest. Runs beside the node's other threads: it reads one snapshot."""
    by_prefix: dict[bytes, int] = {}
    log: dict[int, str] = {}
    anchored: set[str] = set()
    last_audit: tuple[bytes, bytes] | None = None
    digest = hashlib.sha256()
    partial = out.with_name(out.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pack = struct.Struct(">II").pack
    with os.fdopen(fd, "wb") as handle:
        handle.write(_HEAD)
        size = len(_HEAD)
        buffer = bytearray()  # written and hashed a megabyte at a time: fewer calls under the GIL
        for key, value in store.iter_snapshot():
            buffer += pack(len(key), len(value))
            buffer += key
            buffer += value
            prefix = key[: key.find(b"/") + 1]
            by_prefix[prefix] = by_prefix.get(prefix, 0) + 1
            if prefix == b"log/":
                log[int(key[4:], 16)] = json.loads(value)["root"]
            elif prefix == b"batch/" and b'"anchored"' in value and json.loads(value)["status"] == "anchored":
                anchored.add(key[6:].decode())
            elif prefix == b"audit/":
                last_audit = key, value
            if len(buffer) >= 1 << 20:
                size += _flush(buffer, digest, handle)
        size += _flush(buffer, digest, handle)
        counts = {name: by_prefix.get(prefix, 0) for prefix, name in _COUNTED.items()}
        counts["keys"] = sum(by_prefix.values())
        last = max((seq for seq, root in log.items() if root in anchored), default=None)
        audit_head = {"seq": 0, "hash": "0" * 64}
        if last_audit is not None:
            audit_head = {
                "seq": int(last_audit[0][6:], 16),
                "hash": hashlib.sha256(last_audit[1]).hexdigest(),
            }
        manifest = Manifest(
            format=BACKUP_FORMAT,
            agency=agency,
            createdAt=int(time.time()),
            counts=counts,
            lastAnchored=None if last is None else {"seq": last, "root": log[last]},
            chainHead=None if chain_head is None else {"seq": chain_head[0], "root": chain_head[1]},
            auditHead=audit_head,
            contentDigest=digest.hexdigest(),
            bytes=size + 4,
        )
        handle.write(struct.pack(">I", _END_OF_KEYS))
        text = json.dumps(manifest.to_json(), sort_keys=True).encode()
        handle.write(text + struct.pack(">Q", len(text)) + _TAIL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, out)
    return manifest


def read_manifest(path: Path) -> Manifest:
    """The manifest at the end of the backup file `path` (the keys are not read)."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(_HEAD)) != _HEAD:
                raise NodeError(f"{path} is not a Sijill backup of format {BACKUP_FORMAT}")
            handle.seek(-(8 + len(_TAIL)), os.SEEK_END)
            (length,) = struct.unpack(">Q", handle.read(8))
            if handle.read() != _TAIL or not 0 < length <= _MAX_MANIFEST:
                raise NodeError(f"{path} is cut short: the backup has no manifest at its end")
            handle.seek(-(8 + len(_TAIL) + length), os.SEEK_END)
            doc = json.loads(handle.read(length))
    except OSError as exc:
        raise NodeError(f"cannot read the backup {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise NodeError(f"{path} is cut short or altered: its manifest is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise NodeError(f"{path} has a manifest of an unknown format")
    try:
        return Manifest(**doc)
    except TypeError:
        raise NodeError(f"{path} has a manifest this node does not read (fields {sorted(doc)})") from None


def check_backup(path: Path) -> Manifest:
    """The manifest, once every key has been read and the digest of the key section is the
    manifest's; `NodeError` naming what is wrong otherwise."""
    manifest = read_manifest(path)
    digest = hashlib.sha256()
    count = 0
    with path.open("rb") as handle:
        for key, value in _read_keys(handle, path):
            digest.update(struct.pack(">II", len(key), len(value)) + key + value)
            count += 1
    if digest.hexdigest() != manifest.contentDigest or count != manifest.counts.get("keys"):
        raise NodeError(
            f"{path} does not match its manifest (content digest {digest.hexdigest()[:16]}…, "
            f"{count} keys; the manifest says {manifest.contentDigest[:16]}…, "
            f"{manifest.counts.get('keys')} keys): the file is damaged or altered"
        )
    return manifest


def restore_backup(path: Path, store_dir: Path) -> Manifest:
    """Check the backup `path`, then write its keys into a new store at `store_dir` (which
    must not exist or be empty); return its manifest."""
    manifest = check_backup(path)
    with path.open("rb") as handle:
        write_raw(store_dir, _read_keys(handle, path))
    return manifest


def _flush(buffer: bytearray, digest: Any, handle: BinaryIO) -> int:
    size = len(buffer)
    digest.update(buffer)
    handle.write(buffer)
    buffer.clear()
    return size


def _read_keys(handle: BinaryIO, path: Path) -> Iterator[tuple[bytes, bytes]]:
    if handle.read(len(_HEAD)) != _HEAD:
        raise NodeError(f"{path} is not a Sijill backup of format {BACKUP_FORMAT}")
    while True:
        size = handle.read(4)
        if len(size) < 4:
            raise NodeError(f"{path} is cut short in its key section")
        (key_length,) = struct.unpack(">I", size)
        if key_length == _END_OF_KEYS:
            return
        (value_length,) = struct.unpack(">I", handle.read(4))
        key, value = handle.read(key_length), handle.read(value_length)
        if len(key) != key_length or len(value) != value_length:
            raise NodeError(f"{path} is cut short in its key section")
        yield key, value
