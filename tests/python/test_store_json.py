"""`node.store.layout.load_json` (orjson, falling back to `json.loads`) against `json.loads`,
the reader it replaces: the same objects for every clear value the store holds or could hold,
and the same refusal for what is not JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import StoreError
from node.store.layout import dump_json, load_json

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_values = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
    max_leaves=25,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@settings(max_examples=500)
@given(_values)
def test_what_dump_json_writes_reads_back_as_json_loads_reads_it(value: Any) -> None:
    try:
        raw = dump_json(value)
    except (UnicodeEncodeError, ValueError):
        return  # a lone surrogate: not storable at all
    assert _same(load_json(b"k", raw), json.loads(raw))


@settings(max_examples=500)
@given(_values)
def test_any_json_spelling_reads_as_json_loads_reads_it(value: Any) -> None:
    raw = json.dumps(value, indent=1).encode("utf-8", "surrogatepass")
    assert _same(load_json(b"k", raw), json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"18446744073709551616",
        b"-9223372036854775809",
        b"[123456789012345678901234567890]",
        b'{"a":1,"a":2}',
        b"1e400",
        b"-1e400",
        b"NaN",
        b"[Infinity]",
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        b'"\xff"'.replace(b"\xff", "é".encode("utf-16-le")),
        "{}".encode("utf-16"),
        b"0.1",
        b"1.7976931348623157e308",
        b"5e-324",
        b"2.2250738585072011e-308",
        b"123456789012345678",
        b"-123456789012345678",
        b"1234567890.12345678",
    ],
)
def test_edge_cases_read_as_json_loads_reads_them(raw: bytes) -> None:
    try:
        expected = json.loads(raw)
    except ValueError:
        with pytest.raises(StoreError, match="is not JSON"):
            load_json(b"k", raw)
        return
    assert _same(load_json(b"k", raw), expected)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b"nul", b"\xff", b'"\t"', b"1 2"])
def test_what_is_not_json_is_refused_as_before(raw: bytes) -> None:
    with pytest.raises(StoreError, match="the value at k is not JSON: the store is corrupted"):
        load_json(b"k", raw)
    with pytest.raises(ValueError):
        json.loads(raw)
