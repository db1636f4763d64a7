"""The API's fast paths give the bytes of the paths they replace: `JsonAnswer` (orjson) renders
what Starlette's JSONResponse (json.dumps) does, for any JSON value, and falls back to it where
orjson would differ; the bulk route's line splitter cuts a streamed body into the lines, and the
too-long markers, of the splitter it replaced, however the body is cut into pieces."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.answers import JsonAnswer
from api.bulk import _ANSWER, _lines
from api.records import CreateIn, IdempotencyKey, create_plan
from ledger.jsontext import loads as loads_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_json_answer_renders_the_bytes_of_json_response(value: Any) -> None:
    assert _render(JsonAnswer, value) == _render(JSONResponse, value)


def _render(kind: type[JSONResponse], value: Any) -> bytes | str:
    """The body, or the error (an infinite float, a lone surrogate: neither renders)."""
    try:
        return bytes(kind(value).body)
    except ValueError as exc:
        return type(exc).__name__


def test_json_answer_of_an_accepted_record_and_its_headers() -> None:
    answer = {
        "recordType": "title",
        "recordId": "T-0001",
        "version": 1,
        "leaf": "0x" + "ab" * 32,
        "receipt": {"intakeTime": 1, "anchorBy": 2, "signer": "0x" + "0" * 40, "signature": "0x" + "1" * 130},
        "links": {"self": "/v1/records/title/T-0001", "bundle": "/b", "history": "/h"},
        "text": '\u0000\u001f"\\ é \u2028 عربي',
        "float": 1e16,
        "big": 2**64,
    }
    fast = JsonAnswer(answer, status_code=201, headers={"Location": "/x"})
    slow = JSONResponse(answer, status_code=201, headers={"Location": "/x"})
    assert fast.body == slow.body and fast.raw_headers == slow.raw_headers


def _old_lines(body: bytes, pieces: list[int], max_line: int) -> list[bytes | None]:
    """The splitter api/bulk.py had before (one slice of the whole buffer per line)."""
    out: list[bytes | None] = []
    buffer = b""
    skipping = False
    for piece in _cut(body, pieces):
        buffer += piece
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            line, buffer = buffer[:cut], buffer[cut + 1 :]
            if skipping:
                skipping = False
                continue
            out.append(None if len(line) > max_line else line)
        if len(buffer) > max_line and not skipping:
            out.append(None)
            skipping, buffer = True, b""
        elif skipping:
            buffer = b""
    if buffer and not skipping:
        out.append(None if len(buffer) > max_line else buffer)
    return out


def _cut(body: bytes, pieces: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in pieces:
        out.append(body[at : at + size])
        at += size
    out.append(body[at:])
    return out


class _Request:
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def stream(self) -> Any:
        for piece in self._pieces:
            yield piece


async def _collect(body: bytes, pieces: list[int], max_line: int) -> list[bytes | None]:
    out: list[bytes | None] = []
    async for lines in _lines(_Request(_cut(body, pieces)), max_line):  # type: ignore[arg-type]
        out.extend(lines)
    return out


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"bb", b"\n", b"ccccccc", b" ", b"\n\n"]), max_size=40).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=12), max_size=10),
    st.integers(min_value=1, max_value=8),
)
def test_bulk_lines_are_those_of_the_old_splitter(body: bytes, pieces: list[int], max_line: int) -> None:
    assert asyncio.run(_collect(body, pieces, max_line)) == _old_lines(body, pieces, max_line)


def _loaded(raw: bytes) -> str:
    """What json.loads makes of `raw`, types included (repr: 1 is not 1.0), or its error."""
    try:
        return repr(json.loads(raw))
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__


def _fast_loaded(raw: bytes) -> str:
    try:
        return repr(loads_json(raw))
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__


@settings(max_examples=1000, deadline=None)
@given(
    json_values | st.floats(), st.booleans(), st.binary(max_size=3), st.integers(min_value=0, max_value=40)
)
def test_bulk_lines_parse_to_the_values_json_loads_gives(
    value: Any, ascii_only: bool, noise: bytes, at: int
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _fast_loaded(raw) == _loaded(raw)
    mutated = raw[:at] + noise + raw[at:]  # broken lines are refused, or read, as json does
    assert _fast_loaded(mutated) == _loaded(mutated)


def test_bulk_line_edge_cases_parse_as_json_loads_does() -> None:
    for raw in (
        b'{"a":1,"a":2}',
        b"1e400",
        b"-1e400",
        b"NaN",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"9223372036854775807",
        b"-0",
        b"-0.0",
        b'"\\ud800"',
        b'"\\udc00 x"',
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"[1,]",
        b"{}\x00",
        b'"\x7f"',
        '"عربي"'.encode(),
        '"عربي"'.encode("utf-16"),
    ):
        assert _fast_loaded(raw) == _loaded(raw), raw


# -- the create route's fast path (api/fastpath.py, api.records.create_plan) ------------------


def _request(body: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/v1/records", "headers": headers}, receive)


def _fastapi_reads(
    body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[str, dict[str, Any], str | None] | None:
    """What FastAPI's validation makes of the request: the values, or None if it refuses."""
    request = _request(body, headers)
    content_type = request.headers.get("content-type")
    if content_type is None or not body:
        return None
    kind = content_type.split(";")[0].strip().lower()
    if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
        return None
    try:
        payload = CreateIn.model_validate(json.loads(body))
        key = TypeAdapter(IdempotencyKey).validate_python(request.headers.get("idempotency-key"))
    except (ValueError, ValidationError):
        return None
    return payload.recordType, payload.record, key


record_types = st.sampled_from(
    ["title", "marriage", "Title", "t" * 31, "t" * 32, "title\n", "", "1x", "a-b_c"]
)
bodies = st.one_of(
    st.fixed_dictionaries({"recordType": record_types | st.integers(), "record": json_values}),
    st.fixed_dictionaries(
        {"recordType": record_types, "record": st.dictionaries(st.text(max_size=5), json_values, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"recordType": record_types, "record": st.just({}), "extra": st.none()},
    ),
    json_values,
).map(lambda value: json.dumps(value).encode())
header_sets = st.lists(
    st.sampled_from(
        [
            (b"content-type", b"application/json"),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-type", b"text/plain"),
            (b"idempotency-key", b"key-1"),
            (b"idempotency-key", b"key 2"),
            (b"idempotency-key", b""),
            (b"idempotency-key", b"k" * 129),
            (b"authorization", b"Bearer x"),
        ]
    ),
    max_size=4,
)


@settings(max_examples=1000, deadline=None)
@given(bodies | st.binary(max_size=20), header_sets)
def test_the_create_fast_path_takes_only_what_fastapi_takes_with_the_same_values(
    body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    fast = asyncio.run(create_plan(_request(body, headers)))
    if fast is not None:
        assert fast == _fastapi_reads(body, headers)


def test_the_create_fast_path_takes_an_ordinary_create() -> None:
    body = json.dumps({"recordType": "title", "record": {"a": [1, 2.5, None]}}).encode()
    headers = [(b"content-type", b"application/json"), (b"idempotency-key", b"k-1")]
    assert asyncio.run(create_plan(_request(body, headers))) == ("title", {"a": [1, 2.5, None]}, "k-1")
    assert asyncio.run(create_plan(_request(body, headers[:1]))) == ("title", {"a": [1, 2.5, None]}, None)
    assert asyncio.run(create_plan(_request(body, [*headers, headers[1]]))) is None


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_bulk_answer_lines_are_json_dumps(answer: dict[str, Any]) -> None:
    assert _ANSWER(answer) == json.dumps(answer, ensure_ascii=False)
