"""node/intake_values.py against the paths it replaces: the same ULIDs as the one-at-a-time
encoder, the same bytes as `dump_json` for the clear values, and for the secret JSON that
`json.loads` reads back into what `json.dumps` would have given (the old code reads it)."""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.fields import RecordKey, seal_record
from ledger.records import validate_record
from ledger.records.examples import EXAMPLES, numbered_records
from node.intake import new_record_id
from node.intake_values import head_value, leaf_value, new_record_ids, secret_value, ulid_of, version_value
from node.store.layout import dump_json

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _old_ulid(ms: int, random80: bytes) -> str:
    """The encoder node/intake.py had before (a character per 5 bits)."""
    value = (ms << 80) | int.from_bytes(random80, "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def _old_secret(record: dict[str, Any], salts: dict[str, bytes]) -> bytes:
    """The secret's plaintext as node/intake.py wrote it before."""
    return json.dumps(
        {"record": record, "salts": {p: s.hex() for p, s in salts.items()}},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


@given(ms=st.integers(0, 2**50 - 1), noise=st.binary(min_size=10, max_size=10))
def test_a_ulid_is_the_one_the_old_encoder_made(ms: int, noise: bytes) -> None:
    assert ulid_of(ms, noise) == _old_ulid(ms, noise)


def test_ulids_in_bulk_are_distinct_sortable_and_well_formed() -> None:
    ids = new_record_ids(5000, 1_800_000_000_000)
    assert len(set(ids)) == 5000
    assert all(len(i) == 26 and set(i) <= set(_CROCKFORD) for i in ids)
    assert all(i[:10] == _old_ulid(1_800_000_000_000, bytes(10))[:10] for i in ids)
    assert new_record_id(1_800_000_000_001)[:10] > ids[0][:10]


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_plain_or_not = st.one_of(_text, st.sampled_from(["title", "marriage", "0xab12", 'a"b', "a\\b", "\n", "ع"]))


@given(
    record_type=_plain_or_not,
    record_id=_plain_or_not,
    version=st.integers(1, 2**40),
    now=st.one_of(st.integers(0, 2**40), st.floats(0, 2**40, allow_nan=False)),
    within=st.integers(0, 10**6),
    signature=st.binary(min_size=65, max_size=65),
    signer=_plain_or_not,
    leaf=st.binary(min_size=32, max_size=32),
)
def test_clear_values_are_the_bytes_dump_json_writes(
    record_type: str,
    record_id: str,
    version: int,
    now: Any,
    within: int,
    signature: bytes,
    signer: str,
    leaf: bytes,
) -> None:
    assert head_value(leaf) == dump_json({"version": 1, "leaf": leaf.hex()})
    assert version_value(leaf, now) == dump_json({"leaf": leaf.hex(), "intakeTime": now})
    expected = {
        "type": record_type,
        "id": record_id,
        "version": version,
        "intakeTime": now,
        "anchorBy": now + within,
        "signature": signature.hex(),
        "signer": signer,
    }
    assert leaf_value(record_type, record_id, version, now, now + within, signature, signer) == dump_json(
        expected
    )


_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _text)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300)
@given(record=st.dictionaries(_text, _json, min_size=1, max_size=6), salt=st.binary(min_size=16, max_size=16))
def test_the_secret_reads_back_as_the_old_one_did(record: dict[str, Any], salt: bytes) -> None:
    salts = {"/" + k: salt for k in record}
    assert json.loads(secret_value(record, salts)) == json.loads(_old_secret(record, salts))


def test_the_secret_falls_back_to_json_for_what_orjson_refuses() -> None:
    for record in ({"n": 2**70}, {"n": -(2**70)}, {1: "a"}):
        assert secret_value(record, {}) == _old_secret(record, {})


def test_the_secret_of_every_example_record_reads_back_the_same() -> None:
    for kind in EXAMPLES:
        for i, data in enumerate(numbered_records(kind, 50)):
            record = validate_record(kind, data, today=date(2026, 12, 7))
            sealed = seal_record(RecordKey("REPD", kind, f"ID{i}", 1), record, None)
            new, old = secret_value(record, sealed.salts), _old_secret(record, sealed.salts)
            assert json.loads(new) == json.loads(old)
            assert json.loads(new)["record"] == record


def test_the_secret_of_random_bytes_is_readable() -> None:
    salts = {"/a": os.urandom(16)}
    assert json.loads(secret_value({"a": "x"}, salts))["salts"]["/a"] == salts["/a"].hex()
