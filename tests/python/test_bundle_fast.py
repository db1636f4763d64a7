"""The bundle reader's fast paths (orjson for the JSON, a whole list checked at once) against the
strict reader they stand in front of: for any input, the same `Bundle` or the same `BundleError`
message. The reference is `load_bundle` with every fast path switched off, which is the reader
as it was before they existed (stdlib json refusing duplicate keys, NaN and floats; each field
checked on its own).

The inputs: the published vector bundles in several JSON forms, then hypothesis mutations of
them, at the level of bytes (tokens the two JSON readers treat differently, inserted anywhere)
and of the document (a value anywhere replaced by one of the wrong type, length, case or
range)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import bundle as bundle_module
from ledger.bundle import Bundle, BundleError, bundle_to_json, dump_bundle, load_bundle
from ledger.canonical import canonical_json
from node.chain.toolchain import PROJECT_ROOT

VECTORS = json.loads((PROJECT_ROOT / "tests" / "vectors" / "bundles.json").read_text())
DOCUMENTS = [case["bundle"] for case in VECTORS["cases"]]
CANONICAL = [canonical_json(doc) for doc in DOCUMENTS]
SERVED = [orjson.dumps(doc) for doc in DOCUMENTS]  # compact, keys in the format's order, as the API

Outcome = tuple[str, Any]


def _outcome(data: bytes | str) -> Outcome:
    try:
        return "bundle", load_bundle(data)
    except BundleError as exc:
        return "error", str(exc)


@contextmanager
def _strict_only() -> Iterator[None]:
    """The reader with every fast path off: each answers None, so the strict path runs."""
    names = ("_load_fast", "_disclosed_fast", "_hidden_fast", "_hashes_fast")
    saved = {name: getattr(bundle_module, name) for name in names}
    try:
        for name in names:
            setattr(bundle_module, name, lambda *_: None)
        yield
    finally:
        for name, function in saved.items():
            setattr(bundle_module, name, function)


def _strict_outcome(data: bytes | str) -> Outcome:
    with _strict_only():
        return _outcome(data)


def _same(data: bytes | str) -> Outcome:
    fast, strict = _outcome(data), _strict_outcome(data)
    assert fast == strict, (data, fast, strict)
    return fast


def test_the_fast_path_reads_a_canonical_bundle_and_gives_the_strict_readers_bundle() -> None:
    for raw, doc in zip(CANONICAL, DOCUMENTS, strict=True):
        fast = bundle_module._load_fast(raw)
        assert isinstance(fast, Bundle)  # taken, not fallen back from
        assert fast == _strict_outcome(raw)[1]
        assert dump_bundle(fast) == raw
        assert _same(raw.decode()) == ("bundle", fast)
        # The API's form (compact, keys in the format's order) is read by the fast path too.
        served = json.dumps(bundle_to_json(fast), ensure_ascii=False, separators=(",", ":")).encode()
        assert bundle_module._load_fast(served) == fast
        assert _same(served) == ("bundle", fast)
        # Other spellings of the same document fall back to the strict reader, with its answer.
        assert bundle_module._load_fast(json.dumps(doc).encode()) is None
        assert _same(json.dumps(doc, indent=2)) == ("bundle", fast)
        assert _same(json.dumps(doc).encode()) == ("bundle", fast)


BYTE_TOKENS = [
    b'"agency":"REPD",',  # a duplicate key, where it lands after a {
    b'"path":"/zz",',
    b',"hash":"0x' + b"ab" * 32 + b'"',
    b"1.0",
    b"1e3",
    b"-0",
    b"NaN",
    b"Infinity",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"340282366920938463463374607431768211456",
    b'"\\ud800"',
    b"\\ud800",
    b"\\u00e9",
    b"\\/",
    b"\xed\xa0\x80",  # a surrogate in UTF-8 form
    b"\xef\xbb\xbf",  # a byte order mark
    b"\xff",
    b"\xc3\xa9",
    b" ",
    b"\n",
    b"[[[[[[[[",
    b"]]]]",
    b"{}",
    b"[]",
    b"null",
    b"true",
    b"0x",
    b"AB",
    b"\\u0041",
    b'"',
    b",",
    b":",
]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_byte_mutations_give_the_same_bundle_or_error(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(CANONICAL + SERVED)))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        token = data.draw(st.sampled_from(BYTE_TOKENS) | st.binary(min_size=1, max_size=3))
        if kind == "insert":
            raw[at:at] = token
        elif kind == "replace":
            raw[at : at + len(token)] = token
        else:
            del raw[at : at + data.draw(st.integers(1, 8))]
    text = bytes(raw)
    _same(text)
    try:
        decoded = text.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return
    _same(decoded)


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**64,
    2**64 - 1,
    2**63,
    -(2**63) - 1,
    "",
    "/",
    "x",
    "/\ud800",
    "\ud800",
    "/" + "a" * 256,
    "/" + "م" * 128,
    "0x",
    "0x" + "ab" * 16,
    "0x" + "AB" * 16,
    "0x" + "ab" * 20,
    "0x" + "ab" * 32,
    "0x" + "ab" * 31 + "a ",
    "0X" + "ab" * 32,
    "0x" + "ab" * 65,
    " 0x" + "ab" * 16,
    [],
    {},
    [1],
    {"a": 1},
    ["0x" + "ab" * 32],
    {"path": "/a", "hash": "0x" + "ab" * 32},
    {"path": "/a", "salt": "0x" + "ab" * 16, "value": 1.5},
    {"path": "/a", "salt": "0x" + "ab" * 16, "value": "x", "extra": 1},
]


def _places(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield where
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _places(value, (*where, index))


def _replace(doc: Any, where: tuple[Any, ...], value: Any) -> Any:
    if not where:
        return value
    node = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    return doc


def _encoders() -> list[Callable[[Any], bytes | str]]:
    return [
        lambda d: orjson.dumps(d, option=orjson.OPT_SORT_KEYS),  # dump_bundle's form
        lambda d: orjson.dumps(d),  # the API's form (keys in the format's order)
        lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        lambda d: json.dumps(d),
    ]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_document_mutations_give_the_same_bundle_or_error(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCUMENTS)))
    for _ in range(data.draw(st.integers(1, 2))):
        where = data.draw(st.sampled_from(list(_places(doc))))
        action = data.draw(st.sampled_from(["replace", "drop", "duplicate", "swap"]))
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if action == "replace" or not where:
            doc = _replace(doc, where, copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES))))
        elif action == "drop":
            del parent[where[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(where[-1], copy.deepcopy(parent[where[-1]]))
        elif action == "swap" and isinstance(parent, list) and len(parent) > 1:
            parent[0], parent[-1] = parent[-1], parent[0]
    encode = data.draw(st.sampled_from(_encoders()))
    try:
        text = encode(doc)
    except (TypeError, OverflowError, orjson.JSONEncodeError, UnicodeEncodeError):
        return  # not a JSON document either encoder writes (a surrogate, an integer past 64 bits)
    _same(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":1}',
        "[" * 10 + "]" * 10,
        "NaN",
        "1.0",
        "",
        "\ufeff{}",
        '"\\ud800"',
    ],
)
def test_documents_that_are_no_bundle_fail_alike(text: str) -> None:
    assert _same(text)[0] == "error"
    assert _same(text.encode("utf-8", "surrogatepass"))[0] == "error"
