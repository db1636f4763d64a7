"""The ledger core's fast paths give what their plain definitions give (issue 18).

Sealing, flattening, record digests, canonical text checks and receipt signatures each have a
fast path on intake's and verification's hot paths. Each is compared here with a straightforward
implementation written from the docs (docs/proof-bundle.md, the module docstrings), on
generated records heavy in what breaks encoders: escapes and control characters, Arabic and
astral text, lone surrogates, integers at and past the exact JSON range, empty lists and
objects nested anywhere, keys holding `~` and `/`, and values that are not JSON at all. Where a
record cannot be sealed, both must raise the same error with the same message.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import eth_account  # noqa: F401 - raises the recursion limit, as in the node
import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json, is_canonical_text, is_canonical_text_reference, normalize_text
from ledger.errors import LedgerError
from ledger.fields import (
    FIELD_TAG,
    MAX_FIELDS,
    RECORD_TAG,
    RecordKey,
    SealedRecord,
    flatten,
    flatten_reference,
    new_salts,
    record_digest,
    seal_record,
    seal_record_reference,
)
from ledger.hashing import keccak256

KEY = RecordKey("REPD", "title", "01JTEST", 1)

# ------------------------------------------------------------------------------ plain definitions


def plain_flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 6901 pointers of every scalar and every empty container, depth first, in order."""
    fields: dict[str, Any] = {}

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(path + "/" + str(key).replace("~", "~0").replace("/", "~1"), item)
        elif isinstance(value, list) and value:
            for index, item in enumerate(value):
                walk(f"{path}/{index}", item)
        elif isinstance(value, dict):
            fields[path] = {}
        elif isinstance(value, list):
            fields[path] = []
        else:
            fields[path] = value

    walk("", record)
    return fields


def plain_seal(key: RecordKey, record: Mapping[str, Any], salts: Mapping[str, bytes]) -> tuple[bytes, bytes]:
    """(digest, leaf) straight from docs/proof-bundle.md, with the rfc8785 package for values."""
    fields = plain_flatten(record)
    hashes = {}
    for path, value in fields.items():
        p = path.encode()
        hashes[path] = keccak256(
            FIELD_TAG + salts[path] + len(p).to_bytes(2, "big") + p + rfc8785.dumps(value)
        )
    body = b""
    for path in sorted(hashes, key=lambda p: p.encode()):
        body += len(path.encode()).to_bytes(2, "big") + path.encode() + hashes[path]
    agency, kind, rid = (
        code.encode().ljust(32, b"\0") for code in (key.agency, key.record_type, key.record_id)
    )
    header = (
        RECORD_TAG + agency + kind + rid + key.version.to_bytes(4, "big") + len(fields).to_bytes(4, "big")
    )
    digest = keccak256(header + body)
    return digest, keccak256(digest)


# ------------------------------------------------------------------------------ generated records

# Text that exercises every escape RFC 8785 and json write: quotes, backslashes, every control
# character, DEL, U+2028/9 (not escaped), Arabic with marks, astral characters, a NUL.
_nasty_text = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029~ ، ًٌَ'),
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0x600, max_codepoint=0x6FF),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF),
        st.characters(),
    ),
    max_size=12,
)
_keys = st.one_of(_nasty_text, st.sampled_from(["~", "/", "~0", "~1", "a/b~c", "", "0", "owners"]))
_integers = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from([2**53 - 1, -(2**53) + 1, 2**53, -(2**53), 2**64, 0, -1]),
)
_scalars = st.one_of(_nasty_text, _integers, st.booleans(), st.none())
_json = st.recursive(
    _scalars | st.just([]) | st.just({}),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=30,
)
_records = st.dictionaries(_keys, _json, min_size=1, max_size=6)
# Rarely seen by intake, and each must take the reference path: lone surrogates, floats, tuples,
# str and int subclasses, non-text keys.
_odd = st.one_of(
    st.sampled_from(["\ud800", 1.5, (1, 2), True, None]),
    st.builds(lambda s: type("Sub", (str,), {})(s), st.text(max_size=3)),
    st.builds(lambda i: type("IntSub", (int,), {})(i), st.integers(0, 9)),
)
_odd_records = st.dictionaries(
    st.one_of(_keys, st.integers(0, 3)), st.one_of(_json, _odd), min_size=0, max_size=5
)


def outcome(work: Callable[[], Any]) -> Any:
    """What `work` returns, or the type and message of what it raises."""
    try:
        return work()
    except (LedgerError, UnicodeEncodeError, TypeError, ValueError) as exc:
        return (type(exc), str(exc))


def same(a: SealedRecord, b: SealedRecord) -> None:
    assert list(a.fields.items()) == list(b.fields.items())
    assert list(a.salts.items()) == list(b.salts.items())
    assert list(a.field_hashes.items()) == list(b.field_hashes.items())
    assert (a.key, a.digest, a.leaf) == (b.key, b.digest, b.leaf)
    assert all(type(h) is bytes and len(h) == 32 for h in (*a.field_hashes.values(), a.digest, a.leaf))


@contextmanager
def seeded_salts(seed: int) -> Iterator[None]:
    """new_salts draws from a seeded source: two seals in a row get the same salts."""
    defaults = new_salts.__defaults__
    rng = random.Random(seed)
    new_salts.__defaults__ = (lambda n: rng.randbytes(n),)
    try:
        yield
    finally:
        new_salts.__defaults__ = defaults


# ------------------------------------------------------------------------------ the tests


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records)
@example({"a": {"b/c": 1, "d~e": [2, {}]}, "f": []})
@example({"x": [[[]], {"": {}}], "~1": 2**53 - 1, "/": -(2**53) + 1})
def test_flatten_and_seal_agree_with_the_plain_definitions(record: dict[str, Any]) -> None:
    fields = flatten(record)
    assert list(fields.items()) == list(flatten_reference(record).items())
    assert list(fields.items()) == list(plain_flatten(record).items())
    salts = new_salts(fields)
    fast = outcome(lambda: seal_record(KEY, record, salts))
    reference = outcome(lambda: seal_record_reference(KEY, record, salts))
    if isinstance(reference, SealedRecord):
        same(fast, reference)
        assert (fast.digest, fast.leaf) == plain_seal(KEY, record, salts)
        assert record_digest(KEY, dict(reversed(fast.field_hashes.items()))) == fast.digest
    else:  # integers past 2^53, too many fields, a value over 8 KB...
        assert fast == reference


@settings(max_examples=300, deadline=None)
@given(_odd_records, st.integers(0, 2**32))
def test_odd_records_take_the_reference_path_and_fail_alike(record: dict[Any, Any], seed: int) -> None:
    assert outcome(lambda: list(flatten(record).items())) == outcome(
        lambda: list(flatten_reference(record).items())
    )
    sealed_alike(record, seed)


@settings(max_examples=200, deadline=None)
@given(_records, st.integers(0, 2**32))
def test_fresh_salts_are_drawn_once_and_used_alike(record: dict[str, Any], seed: int) -> None:
    fast = sealed_alike(record, seed)
    if isinstance(fast, SealedRecord):
        assert list(fast.salts) == list(fast.fields)


def sealed_alike(record: dict[Any, Any], seed: int) -> Any:
    """Seal `record` by the fast path and the reference with the same salt source: the same
    sealed record, or the same failure; the fast path's outcome."""
    with seeded_salts(seed):
        fast = outcome(lambda: seal_record(KEY, record))
    with seeded_salts(seed):
        reference = outcome(lambda: seal_record_reference(KEY, record))
    if isinstance(reference, SealedRecord):
        same(fast, reference)
    else:
        assert fast == reference
    return fast


@pytest.mark.parametrize(
    "key",
    [
        RecordKey("REPD", "title", "01JTEST", 0),
        RecordKey("REPD", "title", "01JTEST", 2**32),
        RecordKey("repd", "title", "01JTEST", 1),
        RecordKey("REPD", "Title", "01JTEST", 1),
        RecordKey("REPD", "title", "-bad", 1),
        RecordKey("REPD", "title", "01JTEST", 2**32 - 1),
        RecordKey("CSO", "marriage", "Z" * 31, 1),
    ],
)
def test_keys_fail_or_pass_alike(key: RecordKey) -> None:
    record = {"name": "محمد", "n": 3, "tags": [], "x": {"y": None, "z": True}}
    salts = new_salts(flatten(record))
    fast, reference = (
        outcome(lambda: seal_record(key, record, salts)),
        outcome(lambda: seal_record_reference(key, record, salts)),
    )
    if isinstance(reference, SealedRecord):
        same(fast, reference)
        assert (fast.digest, fast.leaf) == plain_seal(key, record, salts)
    else:
        assert fast == reference


def test_salts_given_wrongly_fail_alike() -> None:
    record = {"a": "1", "b": ["x", "y"]}
    salts = new_salts(flatten(record))
    cases: list[dict[str, Any]] = [
        {k: v for k, v in salts.items() if k != "/a"},
        {**salts, "/c": os.urandom(16)},
        {**salts, "/a": os.urandom(15)},
        {**salts, "/a": b""},
        dict(reversed(salts.items())),  # another order: the same record
    ]
    for given_salts in cases:
        fast = outcome(lambda s=given_salts: seal_record(KEY, record, s))  # type: ignore[misc]
        reference = outcome(lambda s=given_salts: seal_record_reference(KEY, record, s))  # type: ignore[misc]
        if isinstance(reference, SealedRecord):
            same(fast, reference)
        else:
            assert fast == reference


def test_limits_fail_alike() -> None:
    too_many = {f"k{i}": i for i in range(MAX_FIELDS + 1)}
    long_value = {"a": "x" * 8190, "b": "y" * 8191}  # canonical: 8,192 and 8,193 bytes
    long_path = {"p" * 300: 1}
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    escaped = {"a": "\x01" * 1365, "b": "\x01" * 1366}  # \u0001 is 6 bytes: 8,192 and 8,198
    for record in (too_many, long_value, long_path, {"d": deep}, escaped, {"ok": "x" * 8190}):
        salts = outcome(lambda r=record: new_salts(flatten_reference(r)))  # type: ignore[misc]
        if not isinstance(salts, dict):
            salts = None
        assert outcome(lambda r=record: list(flatten(r).items())) == outcome(  # type: ignore[misc]
            lambda r=record: list(flatten_reference(r).items())  # type: ignore[misc]
        )
        fast = outcome(lambda r=record, s=salts: seal_record(KEY, r, s))  # type: ignore[misc]
        reference = outcome(lambda r=record, s=salts: seal_record_reference(KEY, r, s))  # type: ignore[misc]
        if isinstance(reference, SealedRecord):
            same(fast, reference)
        else:
            assert fast == reference, record.keys()


def test_non_mappings_and_empty_records_fail_alike() -> None:
    for record in ({}, [], "x", None, {"a": {}}, {"": 1}):
        assert outcome(lambda r=record: list(flatten(r).items())) == outcome(  # type: ignore[misc]
            lambda r=record: list(flatten_reference(r).items())  # type: ignore[misc]
        )
        with seeded_salts(1):
            fast = outcome(lambda r=record: seal_record(KEY, r))  # type: ignore[misc]
        with seeded_salts(1):
            reference = outcome(lambda r=record: seal_record_reference(KEY, r))  # type: ignore[misc]
        if isinstance(reference, SealedRecord):
            same(fast, reference)
        else:
            assert fast == reference


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_nasty_text, _integers, st.booleans(), st.none(), st.just([]), st.just({})), max_size=8
    )
)
def test_values_written_in_one_call_are_canonical_json_each(values: list[Any]) -> None:
    from ledger.fields import _canonical_values

    exact = [v for v in values if not (type(v) is int and abs(v) > 2**53 - 1)]
    try:
        joined, items = _canonical_values(exact)
    except UnicodeEncodeError:  # a lone surrogate: sealing falls back, and canonical_json refuses it
        assert any(
            type(v) is str and isinstance(outcome(lambda v=v: canonical_json(v)), tuple) for v in exact
        )  # type: ignore[misc]
        return
    if exact:
        assert items == [canonical_json(v) for v in exact] == [rfc8785.dumps(v) for v in exact]
        assert joined == b"\0".join(items)


# ------------------------------------------------------------------------------ canonical text


def test_canonical_text_fast_path_agrees_on_every_code_point() -> None:
    """Every code point alone, after a letter, and between letters and spaces (which decides
    white space handling and what NFC composes with), gives the reference's answer."""
    for code_point in range(0x110000):
        c = chr(code_point)
        for text in (c, "a" + c, c + " x", "\u064a" + c + "\u0654"):
            assert is_canonical_text(text) == is_canonical_text_reference(text), hex(code_point)


_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            " \u00a0\t\n\u0640\u200b\u200d\u06a9\u06cc\u0661\u06f5\u0654\u0655\u064a\u0627\u0301e"
        ),
        st.characters(min_codepoint=0x600, max_codepoint=0x6FF),
        st.characters(max_codepoint=0x7F),
        st.characters(),
    ),
    max_size=16,
)


@settings(max_examples=3000, deadline=None)
@given(_texts)
@example("محمد عبد الرحمن")
@example(" محمد")
@example("ئ")  # yeh + hamza above: NFC composes them
@example("a  b")
def test_canonical_text_fast_path_agrees_on_generated_text(text: str) -> None:
    assert is_canonical_text(text) == is_canonical_text_reference(text)
    assert is_canonical_text(normalize_text(text)) == is_canonical_text_reference(normalize_text(text))


# ------------------------------------------------------------------------------ record digests

_paths = st.one_of(
    st.builds(lambda t: "/" + t, _nasty_text),
    st.sampled_from(["", "x", "/" + "p" * 300, "/\ud800", "/é", "/e\u0301"]),
)
_record_keys = st.sampled_from(
    [
        KEY,
        RecordKey("REPD", "title", "01JTEST", 0),
        RecordKey("bad", "title", "x", 1),
        RecordKey("CSO", "m", "Z", 7),
    ]
)


@settings(max_examples=500, deadline=None)
@given(_record_keys, st.dictionaries(_paths, st.binary(min_size=32, max_size=32), max_size=12), st.randoms())
def test_record_digests_agree_with_the_reference_in_any_order(
    key: RecordKey, hashes: dict[str, bytes], rng: random.Random
) -> None:
    from ledger.fields import record_digest_reference

    items = list(hashes.items())
    for _ in range(2):
        rng.shuffle(items)
        shuffled = dict(items)
        assert outcome(lambda s=shuffled: record_digest(key, s)) == outcome(  # type: ignore[misc]
            lambda s=shuffled: record_digest_reference(key, s)  # type: ignore[misc]
        )


# ------------------------------------------------------------------------------ receipts


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["REPD", "CSO", "CRA", "bad", ""]),
    st.sampled_from(["title", "marriage", "Bad"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}", fullmatch=True) | st.just("-x"),
    st.integers(0, 2**32),
    st.binary(min_size=31, max_size=33),
    st.integers(0, 2**64),
    st.integers(0, 2**64),
    st.integers(1, 2**40),
)
def test_receipt_digests_are_eip712_as_written(
    agency: str, kind: str, rid: str, version: int, leaf: bytes, intake: int, anchor_by: int, chain_id: int
) -> None:
    """The digest with its constant parts kept is keccak256(0x1901 ‖ domain ‖ struct) as
    docs/proof-bundle.md writes it, or fails with the same error."""
    from ledger.codes import agency_code, record_id, record_type
    from ledger.receipts import RECEIPT_TYPEHASH, Receipt, ReceiptDomain, receipt_digest

    receipt = Receipt(agency, kind, rid, version, leaf, intake, anchor_by)
    domain = ReceiptDomain(chain_id, "0x" + "Ab" * 20)

    def plain() -> bytes:
        struct = keccak256(
            RECEIPT_TYPEHASH
            + agency_code(agency)
            + record_type(kind)
            + record_id(rid)
            + version.to_bytes(32, "big")
            + leaf
            + intake.to_bytes(32, "big")
            + anchor_by.to_bytes(32, "big")
        )
        return keccak256(b"\x19\x01" + domain.separator() + struct)

    fast = outcome(lambda: receipt_digest(receipt, domain))
    if isinstance(fast, bytes):
        assert fast == plain()
    else:
        assert outcome(receipt.struct_hash) == fast


# ------------------------------------------------------------------------------ salts


@pytest.mark.parametrize(
    "source",
    [
        os.urandom,
        lambda n: b"\x5a" * n,
        lambda n: bytearray(os.urandom(n)),  # not bytes: cut as before
        lambda n: os.urandom(n)[:-1],  # short: cut as before
        lambda n: os.urandom(n + 16),
    ],
)
@pytest.mark.parametrize("count", [0, 1, 2, 19, 1025])
def test_salts_are_cut_from_the_pool_as_written(source: Callable[[int], bytes], count: int) -> None:
    paths = [f"/p{i}" for i in range(count)]
    pools: list[bytes] = []

    def recording(n: int) -> bytes:
        pools.append(source(n))
        return pools[-1]

    for given_paths in (paths, dict.fromkeys(paths), iter(paths)):
        salts = new_salts(given_paths, random_bytes=recording)
        pool = pools[-1]
        plain = {p: pool[i * 16 : (i + 1) * 16] for i, p in enumerate(paths)}
        assert list(salts.items()) == list(plain.items())
        assert all(type(s) is type(plain[p]) for p, s in salts.items())


@pytest.mark.parametrize("agency", [None, 1, ["REPD"], "repd", "REPD"])
@pytest.mark.parametrize("kind", [None, "Title", "title"])
def test_receipt_codes_fail_as_the_code_functions_say(agency: Any, kind: Any) -> None:
    from ledger.codes import agency_code, record_type
    from ledger.receipts import RECEIPT_TYPEHASH, Receipt

    receipt = Receipt(agency, kind, "01J", 1, b"\1" * 32, 1, 2)
    expected = outcome(lambda: RECEIPT_TYPEHASH + agency_code(agency) + record_type(kind))
    got = outcome(receipt.struct_hash)
    if isinstance(expected, tuple):
        assert got == expected
    else:
        assert isinstance(got, bytes) and len(got) == 32
