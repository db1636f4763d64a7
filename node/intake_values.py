"""The bytes intake stores for a new record version, made without a general JSON encoder.

Intake writes four values per record (docs/node-store.md): the secret (the record and its
salts), and in the clear its head, its version entry and its leaf's entry. The clear ones are
small objects of fixed keys, hex strings and integers: `head_value`, `version_value` and
`leaf_value` format them directly, byte for byte what `node.store.layout.dump_json` writes
(tests/python/test_intake_values.py compares them over many cases), and fall back to it for any
value they are not sure of (a number that is not an `int`, a string that needs escaping).

The secret needs no canonical form and is only ever read back with `json.loads`: `secret_value`
writes it with orjson, which gives the same object back for every record that sealing accepts
(str, int, bool, None, lists, objects with str keys), and falls back to `json.dumps` for what
orjson refuses (an integer beyond 64 bits, a non-str key), which then fails or succeeds as before.

`new_record_ids` draws the random part of many ULIDs from one `os.urandom` call and encodes them
with `base64.b32encode`, identical to `node.intake.new_record_id` (the test compares them). The
keys intake writes are here too (`record_key`, `head_key`, ...).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import orjson

from node.store.layout import dump_json

_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_B32, _CROCKFORD)
_PLAIN = re.compile(r"[0-9A-Za-z_.:@+-]*")  # strings JSON writes as they are, between quotes


def ulid_of(ms: int, random80: bytes) -> str:
    """The ULID of millisecond time `ms` and 10 random bytes: 26 Crockford base-32 characters."""
    value = ((ms << 80) | int.from_bytes(random80, "big")) & (2**130 - 1)
    # 130 bits (2 leading zeros) then 6 zero bits: 136 bits, 17 bytes, whose first 26
    # base-32 characters are the ULID's.
    return base64.b32encode((value << 6).to_bytes(17, "big"))[:26].translate(_TO_CROCKFORD).decode()


def new_record_ids(count: int, ms: int) -> list[str]:
    """`count` ULIDs for millisecond time `ms`, their random parts from one `os.urandom` call."""
    noise = os.urandom(10 * count)
    return [ulid_of(ms, noise[i : i + 10]) for i in range(0, 10 * count, 10)]


def _text(value: str) -> str:
    """`value` as a JSON string (quoted), as dump_json writes it."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def head_value(leaf: bytes) -> bytes:
    """`head/<type>/<id>` of a new record: `{"version":1,"leaf":"<hex>"}`."""
    return b'{"version":1,"leaf":"%s"}' % leaf.hex().encode()


def version_value(leaf: bytes, intake_time: int) -> bytes:
    """`version/<type>/<id>/<version>`: the version's leaf and intake time."""
    if type(intake_time) is not int:
        return dump_json({"leaf": leaf.hex(), "intakeTime": intake_time})
    return b'{"leaf":"%s","intakeTime":%d}' % (leaf.hex().encode(), intake_time)


def leaf_value(
    record_type: str,
    record_id: str,
    version: int,
    intake_time: int,
    anchor_by: int,
    signature: bytes,
    signer: str,
) -> bytes:
    """`leaf/<leaf>`: whose leaf it is, its receipt's times, signature and signer."""
    if not (type(version) is int and type(intake_time) is int and type(anchor_by) is int):
        return dump_json(
            {
                "type": record_type,
                "id": record_id,
                "version": version,
                "intakeTime": intake_time,
                "anchorBy": anchor_by,
                "signature": signature.hex(),
                "signer": signer,
            }
        )
    return (
        f'{{"type":{_text(record_type)},"id":{_text(record_id)},"version":{version},'
        f'"intakeTime":{intake_time},"anchorBy":{anchor_by},"signature":"{signature.hex()}",'
        f'"signer":{_text(signer)}}}'
    ).encode()


def secret_value(record: dict[str, Any], salts: dict[str, bytes]) -> bytes:
    """The plaintext of `record/<type>/<id>/<version>`: the record and its salts (hex), as JSON
    that `json.loads` reads back into the same objects."""
    doc = {"record": record, "salts": {path: salt.hex() for path, salt in salts.items()}}
    try:
        # A copy: orjson's bytes keep the capacity its buffer grew to (8 KB for a 2 KB title),
        # and a bulk chunk holds thousands of them until it commits.
        return bytes(memoryview(orjson.dumps(doc)))
    except TypeError:  # orjson.JSONEncodeError: what orjson does not write, json.dumps decides
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def record_key(record_type: str, record_id: str, version: int) -> bytes:
    """Where a record version's secret is."""
    return f"record/{record_type}/{record_id}/{version:08x}".encode()


def head_key(record_type: str, record_id: str) -> bytes:
    return f"head/{record_type}/{record_id}".encode()


def leaf_key(leaf: bytes) -> bytes:
    return f"leaf/{leaf.hex()}".encode()


def proof_key(leaf: bytes) -> bytes:
    return f"proof/{leaf.hex()}".encode()


def bulk_progress_key(key: str) -> bytes:
    """Where a resumable bulk load keeps how far it got."""
    return f"idem/bulk/{key}".encode()
