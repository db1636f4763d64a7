"""Salted field hashes, record digests and leaves: what makes selective disclosure work.

A record (a JSON object validated by `ledger.records`) is flattened into *fields*: every scalar
value, and every empty list or object, addressed by its RFC 6901 JSON Pointer (`/owners/0/name`).
Each field gets its own random 128-bit salt, and its hash binds the salt, the path and the
canonical value (RFC 8785 bytes, see `ledger.canonical`):

    field_hash = keccak256("sijill/field/v1" ‖ salt[16] ‖ len(path)[2] ‖ path ‖ jcs(value))

The record digest binds the agency, record type, record id and version to every field, in the
order of their paths (by UTF-8 bytes), path and hash together:

    digest = keccak256("sijill/record/v1" ‖ agency[32] ‖ type[32] ‖ id[32] ‖ version[4] ‖ n[4]
                       ‖ for each field: len(path)[2] ‖ path ‖ field_hash[32])

and the leaf anchored in a batch is `keccak256(digest)`: its preimage is 32 bytes while an inner
node's is 64, so a leaf can never be passed off as an inner node of the tree.

A holder who hides a field keeps its path and hash, and the digest still recomputes; nobody can
guess a hidden value from its hash, because of the salt. Hidden paths do show the record's shape
(for example how many owners there are). Integers are big-endian; lengths are byte counts.

Limits: at most `MAX_FIELDS` fields, paths of at most `MAX_PATH_BYTES` bytes, canonical values of
at most `MAX_VALUE_BYTES` bytes, versions 1 to 2^32-1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_json
from ledger.codes import Bytes32, agency_code, record_id, record_type
from ledger.errors import LedgerError
from ledger.hashing import keccak256, keccak256_many
from ledger.merkle import Hash32

FIELD_TAG = b"sijill/field/v1"
RECORD_TAG = b"sijill/record/v1"
SALT_BYTES = 16
MAX_FIELDS = 1024
MAX_PATH_BYTES = 256
MAX_VALUE_BYTES = 8192
MAX_VERSION = 2**32 - 1

Scalar = str | int | bool | None


class FieldError(LedgerError):
    """A record, path, salt or value that cannot be hashed as a field."""


def escape_token(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901: `~` -> `~0`, `/` -> `~1`)."""
    return key.replace("~", "~0").replace("/", "~1")


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a record: JSON Pointer -> scalar, or an empty list / object."""
    if not isinstance(record, Mapping):
        raise FieldError("a record is a JSON object")
    fields: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", record)]
    while stack:  # depth-first, children in order: the same order as a recursive walk
        path, value = stack.pop()
        kind = type(value)
        if kind is str or kind is int or value is None or kind is bool:
            fields[path] = value
        elif kind is dict or (kind is not list and isinstance(value, Mapping)):
            if not value:
                fields[path] = {}
            prefix = path + "/"
            stack.extend(reversed([(prefix + _token(str(k)), v) for k, v in value.items()]))
        elif kind is list:
            if not value:
                fields[path] = []
            prefix = path + "/"
            stack.extend(reversed([(prefix + str(i), v) for i, v in enumerate(value)]))
        else:
            fields[path] = value  # not JSON: canonical_json names it when the field is hashed
    if "" in fields:
        raise FieldError("a record must have at least one field")
    if len(fields) > MAX_FIELDS:
        raise FieldError(f"a record has at most {MAX_FIELDS} fields, this one {len(fields)}")
    return fields


_token_cache: dict[str, str] = {}


def _token(key: str) -> str:
    token = _token_cache.get(key)
    if token is None:
        token = escape_token(key)
        if len(_token_cache) < 65_536:
            _token_cache[key] = token
    return token


def field_hash(path: str, salt: bytes, value: Any) -> Hash32:
    """The salted hash of one field (see the module docstring)."""
    if len(salt) != SALT_BYTES:
        raise FieldError(f"the salt of {path} must be {SALT_BYTES} bytes, got {len(salt)}")
    return _field_hash(_path_bytes(path), salt, value, path)


def _field_hash(path_bytes: bytes, salt: bytes, value: Any, path: str) -> Hash32:
    encoded_value = canonical_json(value)
    if len(encoded_value) > MAX_VALUE_BYTES:
        raise FieldError(f"the value of {path} is over {MAX_VALUE_BYTES} bytes")
    return Hash32(keccak256(FIELD_TAG + salt + path_bytes + encoded_value))


_path_cache: dict[str, bytes] = {}


def _path_bytes(path: str) -> bytes:
    """`len(path)[2] ‖ path` in UTF-8, checked; cached, since records of a type share their paths."""
    cached = _path_cache.get(path)
    if cached is None:
        encoded = path.encode()
        if not path.startswith("/") or len(encoded) > MAX_PATH_BYTES:
            raise FieldError(f"field path {path!r} must start with '/' and be at most {MAX_PATH_BYTES} bytes")
        cached = len(encoded).to_bytes(2, "big") + encoded
        if len(_path_cache) < 65_536:
            _path_cache[path] = cached
    return cached


@dataclass(frozen=True, slots=True)
class RecordKey:
    """What a record digest binds besides its fields."""

    agency: str
    record_type: str
    record_id: str
    version: int

    def words(self) -> tuple[Bytes32, Bytes32, Bytes32]:
        if not 1 <= self.version <= MAX_VERSION:
            raise FieldError(f"version must be 1 to {MAX_VERSION}, got {self.version}")
        return agency_code(self.agency), record_type(self.record_type), record_id(self.record_id)


def record_digest(key: RecordKey, field_hashes: Mapping[str, bytes]) -> Hash32:
    """The digest of a record from the hashes of all its fields (disclosed or not)."""
    agency, kind, rid = key.words()
    count = len(field_hashes)
    if not 1 <= count <= MAX_FIELDS:
        raise FieldError(f"a record has 1 to {MAX_FIELDS} fields, got {count}")
    entries = sorted((_path_bytes(path), digest) for path, digest in field_hashes.items())
    # Sorting by len(path)[2] ‖ path is not sorting by path: order by the path bytes themselves.
    entries.sort(key=lambda entry: entry[0][2:])
    header = RECORD_TAG + agency + kind + rid + key.version.to_bytes(4, "big") + count.to_bytes(4, "big")
    return Hash32(keccak256(header + b"".join(p + h for p, h in entries)))


def leaf_of(digest: bytes) -> Hash32:
    """The batch leaf of a record digest: keccak256 of the 32-byte digest."""
    return Hash32(keccak256(digest))


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record with everything needed to anchor it and to prove any part of it."""

    key: RecordKey
    fields: dict[str, Any]
    salts: dict[str, bytes]
    field_hashes: dict[str, Hash32]
    digest: Hash32
    leaf: Hash32


def new_salts(paths: Iterable[str], random_bytes: Callable[[int], bytes] = os.urandom) -> dict[str, bytes]:
    """A fresh 128-bit salt from the OS for every path; never reused (one read for all of them)."""
    ordered = list(paths)
    pool = random_bytes(SALT_BYTES * len(ordered))
    return {path: pool[i * SALT_BYTES : (i + 1) * SALT_BYTES] for i, path in enumerate(ordered)}


def seal_record(
    key: RecordKey, record: Mapping[str, Any], salts: Mapping[str, bytes] | None = None
) -> SealedRecord:
    """Flatten, salt and hash a validated record into its digest and leaf.

    `salts` (path -> 16 bytes) is for re-sealing a stored record and for test vectors; by default
    every field gets a fresh salt.
    """
    fields = flatten(record)
    salt_map = dict(salts) if salts is not None else new_salts(fields)
    if salt_map.keys() != fields.keys():
        missing = sorted(fields.keys() - salt_map.keys())
        extra = sorted(salt_map.keys() - fields.keys())
        raise FieldError(f"salts do not match the fields (missing {missing[:3]}, extra {extra[:3]})")
    if salts is not None and any(len(salt) != SALT_BYTES for salt in salt_map.values()):
        raise FieldError(f"every salt must be {SALT_BYTES} bytes")
    preimages = []
    for path, value in fields.items():
        encoded = canonical_json(value)
        if len(encoded) > MAX_VALUE_BYTES:
            raise FieldError(f"the value of {path} is over {MAX_VALUE_BYTES} bytes")
        preimages.append(FIELD_TAG + salt_map[path] + _path_bytes(path) + encoded)
    hashes = dict(zip(fields, map(Hash32, keccak256_many(preimages)), strict=True))
    digest = record_digest(key, hashes)
    return SealedRecord(key, fields, salt_map, hashes, digest, leaf_of(digest))


def unflatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the (partial) record a set of fields describes; list gaps are kept as None."""
    root: dict[str, Any] = {}
    for path in sorted(fields, key=_path_sort_key):
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
        node: Any = root
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            child: Any = fields[path] if last else ({} if not tokens[i + 1].isdigit() else [])
            if isinstance(node, list):
                index = int(token)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = child
                node = node[index]
            else:
                if token not in node or last:
                    node[token] = child
                node = node[token]
    return root


def _path_sort_key(path: str) -> list[Any]:
    return [(0, int(t)) if t.isdigit() else (1, t) for t in path.split("/")[1:]]
