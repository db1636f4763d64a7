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
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from ledger.canonical import MAX_EXACT_INTEGER, canonical_json
from ledger.codes import Bytes32, agency_code, record_id, record_type
from ledger.errors import LedgerError
from ledger.hashing import keccak256, keccak256_chain, keccak256_many
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
    """The fields of a record: JSON Pointer -> scalar, or an empty list / object.

    Records as intake holds them (dicts, lists, text, integers, booleans and nulls, text keys,
    a few levels deep) take a recursive walk (`_walk`); anything else, and every error, the
    plain walk of `flatten_reference`, which gives the same fields in the same order."""
    fields = _plain_fields(record)
    return fields if fields is not None else flatten_reference(record)


def _plain_fields(record: Any) -> dict[str, Any] | None:
    """The fields of a record made only of dict, list, str, int, bool and None (exactly those
    types, no subclass), or None for any other record or one `flatten_reference` refuses."""
    if type(record) is not dict or not record or len(record) > MAX_FIELDS:
        return None
    fields: dict[str, Any] = {}
    try:
        _walk(record, "", fields, 0)
    except (_Unsure, ValueError):  # ValueError: zip(strict=True), never expected
        return None
    return fields if len(fields) <= MAX_FIELDS else None


class _Unsure(Exception):
    """Raised inside a fast path for what only the reference path handles."""


_WALK_DEPTH = 32
_INDEX_TOKENS = tuple(f"/{i}" for i in range(MAX_FIELDS + 1))


def _walk(node: dict[str, Any], prefix: str, fields: dict[str, Any], depth: int) -> None:
    """Add the fields under the object `node` (at `prefix`) in document order, as
    `flatten_reference` does; `_Unsure` for whatever only it handles."""
    paths = _child_paths.get((prefix, *node)) or _children_of((prefix, *node), node, prefix)
    for path, key, value in zip(paths, node, node.values(), strict=True):
        kind = type(value)
        if type(key) is not str:  # checked here, not by the cache: a str subclass equals its text
            raise _Unsure  # flatten_reference names a member by str(key)
        if kind is str or value is None or kind is bool:
            fields[path] = value
        elif kind is dict:
            if not value:
                fields[path] = {}
            elif depth < _WALK_DEPTH:
                _walk(value, path, fields, depth + 1)
            else:
                raise _Unsure
        elif kind is list:
            if not value:
                fields[path] = []
            elif depth < _WALK_DEPTH and len(value) <= MAX_FIELDS:
                _walk_list(value, path, fields, depth + 1)
            else:
                raise _Unsure
        elif kind is int and -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
            fields[path] = value
        else:  # not JSON, or an integer canonical_json refuses
            raise _Unsure


def _walk_list(node: list[Any], prefix: str, fields: dict[str, Any], depth: int) -> None:
    """`_walk` for a list of at most MAX_FIELDS items (one loop each, for speed)."""
    paths = _child_paths.get((len(node), prefix)) or _children_of((len(node), prefix), node, prefix)
    for path, value in zip(paths, node, strict=True):
        kind = type(value)
        if kind is str or value is None or kind is bool:
            fields[path] = value
        elif kind is dict:
            if not value:
                fields[path] = {}
            elif depth < _WALK_DEPTH:
                _walk(value, path, fields, depth + 1)
            else:
                raise _Unsure
        elif kind is list:
            if not value:
                fields[path] = []
            elif depth < _WALK_DEPTH and len(value) <= MAX_FIELDS:
                _walk_list(value, path, fields, depth + 1)
            else:
                raise _Unsure
        elif kind is int and -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
            fields[path] = value
        else:
            raise _Unsure


#: (the path of an object, its keys) or (the length of a list, its path) -> the paths of its
#: members: records of a type share them, and a path string made once keeps its hash.
_child_paths: dict[tuple[Any, ...], list[str]] = {}


def _children_of(shape: tuple[Any, ...], node: dict[str, Any] | list[Any], prefix: str) -> list[str]:
    if type(node) is list:
        paths = [prefix + token for token in _INDEX_TOKENS[: len(node)]]
    elif all(type(key) is str for key in node):
        paths = [prefix + "/" + escape_token(key) for key in node]
    else:
        raise _Unsure
    # Kept only for what a record of the schemas looks like: some thousands of short paths.
    if len(_child_paths) < 4096 and len(paths) <= 64 and max(map(len, paths)) <= MAX_PATH_BYTES:
        _child_paths[shape] = paths
    return paths


def flatten_reference(record: Mapping[str, Any]) -> dict[str, Any]:
    """`flatten` written plainly: the definition `_walk` must match, and the errors."""
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
    """The digest of a record from the hashes of all its fields (disclosed or not).

    The layout of the preimage (the paths in order, gaps for the hashes) is kept per set of
    paths (`_Shape`), so a verifier's bundles of one kind of record sort their paths once; any
    error is raised by `record_digest_reference`, which defines the digest."""
    try:
        shape = _shape_of(tuple(field_hashes))
        parts = shape.template.copy()
        parts[0] = _record_header(key, len(field_hashes))
        parts[2::2] = shape.pick(list(field_hashes.values()))
        return Hash32(keccak256(b"".join(parts)))
    except Exception:  # the reference raises the error the caller must see
        return record_digest_reference(key, field_hashes)


def record_digest_reference(key: RecordKey, field_hashes: Mapping[str, bytes]) -> Hash32:
    """`record_digest` as the module docstring writes it, one field at a time."""
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
    ordered = paths if type(paths) is dict else list(paths)
    pool = random_bytes(SALT_BYTES * len(ordered))
    if type(pool) is not bytes or len(pool) != SALT_BYTES * len(ordered):  # not os.urandom's
        return {path: pool[i * SALT_BYTES : (i + 1) * SALT_BYTES] for i, path in enumerate(ordered)}
    split = _salt_splitters.get(len(ordered))
    if split is None:
        split = struct.Struct(f"{SALT_BYTES}s" * len(ordered)).unpack
        if len(ordered) <= MAX_FIELDS:
            _salt_splitters[len(ordered)] = split
    return dict(zip(ordered, split(pool), strict=True))


#: Number of salts -> the cut of a pool of that many into 16-byte salts, in one C call.
_salt_splitters: dict[int, Callable[[bytes], tuple[bytes, ...]]] = {}


def seal_record(
    key: RecordKey, record: Mapping[str, Any], salts: Mapping[str, bytes] | None = None
) -> SealedRecord:
    """Flatten, salt and hash a validated record into its digest and leaf.

    `salts` (path -> 16 bytes) is for re-sealing a stored record and for test vectors; by default
    every field gets a fresh salt (one read of the OS's random source for all of them).

    Intake's hot path: the fields' preimages are built and hashed in one pass of C-level calls
    (see `_seal_fast`). Whatever that pass is not sure of, an error above all, is done again by
    `seal_record_reference`, the plain reading of the module docstring, which gives the same
    bytes (a test compares the two on generated records) and the same errors.
    """
    fields = _plain_fields(record)
    if fields is None:
        return seal_record_reference(key, record, salts)
    salt_map = dict(salts) if salts is not None else new_salts(fields)
    try:
        sealed = _seal_fast(key, fields, salt_map, salts is not None)
    except Exception:  # the plain path raises the error the caller must see
        sealed = None
    return sealed if sealed is not None else _seal(key, fields, salt_map, salts is not None)


def seal_record_reference(
    key: RecordKey, record: Mapping[str, Any], salts: Mapping[str, bytes] | None = None
) -> SealedRecord:
    """`seal_record` written plainly, one field at a time: the definition the fast path must
    match, and the path that names what is wrong with a record that cannot be sealed."""
    fields = flatten(record)
    return _seal(key, fields, dict(salts) if salts is not None else new_salts(fields), salts is not None)


def _seal(key: RecordKey, fields: dict[str, Any], salt_map: dict[str, bytes], given: bool) -> SealedRecord:
    if salt_map.keys() != fields.keys():
        missing = sorted(fields.keys() - salt_map.keys())
        extra = sorted(salt_map.keys() - fields.keys())
        raise FieldError(f"salts do not match the fields (missing {missing[:3]}, extra {extra[:3]})")
    if given and any(len(salt) != SALT_BYTES for salt in salt_map.values()):
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


class _Shape:
    """What every record with the same paths shares: each path's `len(path)[2] ‖ path`, and the
    digest's preimage laid out in path order, with a gap for the header and for each hash."""

    __slots__ = ("path_bytes", "pick", "template")

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.path_bytes = tuple(map(_path_bytes, paths))
        order = sorted(range(len(paths)), key=lambda i: self.path_bytes[i][2:])
        self.template: list[bytes] = [b""] * (2 * len(paths) + 1)  # header, then path ‖ hash pairs
        self.template[1::2] = [self.path_bytes[i] for i in order]
        self.pick: Callable[[Sequence[bytes]], Iterable[bytes]] = (
            itemgetter(*order) if len(order) > 1 else lambda hashes: hashes
        )


_shapes: dict[tuple[str, ...], _Shape] = {}


def _shape_of(paths: tuple[str, ...]) -> _Shape:
    shape = _shapes.get(paths)
    if shape is None:
        shape = _Shape(paths)
        # A few MB at most, whatever comes in (records of the schemas have tens of shapes).
        if len(_shapes) < 512 and sum(map(len, shape.path_bytes)) <= 16_384:
            _shapes[paths] = shape
    return shape


_headers: dict[tuple[str, str], bytes] = {}


def _seal_fast(
    key: RecordKey, fields: dict[str, Any], salt_map: dict[str, bytes], given: bool
) -> SealedRecord | None:
    """`_seal` without a Python-level step per field, or None where it is not sure.

    `fields` come from `_plain_fields` (so every value is exactly a str, int, bool, None or an
    empty list or dict), and `salt_map` from `new_salts(fields)` unless `given`."""
    paths = tuple(fields)
    if not given:
        salt_list: Iterable[bytes] = salt_map.values()  # drawn in the order of the fields
    elif salt_map.keys() != fields.keys() or set(map(len, salt_map.values())) != {SALT_BYTES}:
        return None
    else:
        salt_list = list(map(salt_map.__getitem__, paths))
    shape = _shape_of(paths)
    joined, encoded = _canonical_values(fields.values())
    if len(joined) > MAX_VALUE_BYTES and max(map(len, encoded)) > MAX_VALUE_BYTES:
        return None
    preimages = map(b"".join, zip(repeat(FIELD_TAG), salt_list, shape.path_bytes, encoded))
    hashes: list[Hash32] = keccak256_many(preimages)  # type: ignore[assignment]
    parts = shape.template.copy()
    parts[0] = _record_header(key, len(paths))
    parts[2::2] = shape.pick(hashes)
    digest, leaf = keccak256_chain(b"".join(parts))
    return SealedRecord(key, fields, salt_map, dict(zip(paths, hashes, strict=True)), digest, leaf)


def _canonical_values(values: Iterable[Any]) -> tuple[bytes, list[bytes]]:
    """`canonical_json` of each value `_plain_fields` gives, and all of them with a NUL between.

    json's C escaper is canonical_json's for text (see ledger.canonical) and never writes a NUL,
    so a record's texts are escaped, encoded and cut apart again in three calls; the few other
    values (null, true, false, integers, empty lists and objects) are written by canonical_json."""
    try:
        text = "\0".join(map(encode_basestring, values))
    except TypeError:  # not all text
        text = "\0".join(
            [encode_basestring(v) if type(v) is str else canonical_json(v).decode() for v in values]
        )
    joined = text.encode()
    return joined, joined.split(b"\0")


def _record_header(key: RecordKey, count: int) -> bytes:
    """`RECORD_TAG ‖ agency ‖ type ‖ id ‖ version ‖ n`, the agency and type part cached."""
    if not 1 <= key.version <= MAX_VERSION or not 1 <= count <= MAX_FIELDS:
        raise FieldError("out of range")  # never shown: seal_record_reference names it
    prefix = _headers.get((key.agency, key.record_type))
    if prefix is None:
        prefix = RECORD_TAG + agency_code(key.agency) + record_type(key.record_type)
        if len(_headers) < 1024:
            _headers[(key.agency, key.record_type)] = prefix
    return prefix + record_id(key.record_id) + key.version.to_bytes(4, "big") + count.to_bytes(4, "big")


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
