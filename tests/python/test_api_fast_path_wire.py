"""The create and verify routes' fast paths (api/fastpath.py) answer on the wire exactly as
FastAPI does.

Each request is sent twice to a real `sijill serve`: with `Content-Type: application/json`,
which the fast path takes, and with `application/json; charset=utf-8`, which it leaves to
FastAPI (FastAPI reads both alike). The two answers must have the same status, the same
headers and the same bytes, once what differs by nature (request ids, record ids, leaves,
signatures, times) is replaced by placeholders: created, refused for each reason (no token,
an unknown one, another role, another agency, an invalid record, an unknown type, a bad
Idempotency-Key, a body of another shape), replayed and reused Idempotency-Keys, rate limits;
bundles verified (anchored, pending, tampered with, not a bundle, not JSON, rate-limited).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_helpers import LEVELDB, Server, servers, wait_anchored
from web3 import Web3

from ledger.records.examples import title_example
from node.chain.toolchain import CompiledContract

pytestmark = pytest.mark.chain

FAST = "application/json"
FASTAPI = "application/json; charset=utf-8"
VOLATILE = re.compile(rb'0x[0-9a-f]{40,}|#[0-9a-f]{16}|"(intakeTime|anchorBy|checkedAt)":\d+')
RECORD_ID = re.compile(rb'"recordId":"([^"]+)"')


@pytest.fixture(scope="module")
def api(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp("fast-path")
    extra = {"CRA": ("--rate-limit", "2", "--max-age", "3600", "--public-rate", "2")}
    with servers(w3, compiled, root, devchain.rpc_url, extra=extra, backend=LEVELDB) as started:
        yield started


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body with what differs by nature replaced."""

    def plain(text: bytes) -> bytes:
        for record_id in RECORD_ID.findall(response.content):
            text = text.replace(record_id, b"<id>")
        return VOLATILE.sub(b"*", text)

    headers = sorted(
        (name, plain(value.encode()).decode())
        for name, value in response.headers.items()
        if name not in ("x-request-id", "date")
    )
    assert int(response.headers.get("content-length", len(response.content))) == len(response.content)
    return response.status_code, headers, plain(response.content)


def _both(client: httpx.Client, body: bytes, **headers: str) -> tuple[Any, Any]:
    answers = []
    for content_type in (FAST, FASTAPI):
        sent = client.post("/v1/records", content=body, headers={"Content-Type": content_type, **headers})
        answers.append(_answer(sent))
    return answers[0], answers[1]


def _body(record_type: str = "title", record: Any = None, **more: Any) -> bytes:
    import json

    return json.dumps({"recordType": record_type, "record": record or title_example(), **more}).encode()


def test_the_create_fast_path_answers_as_fastapi_does(api: dict[str, Server]) -> None:
    repd, cso = api["REPD"], api["CSO"]
    cases: list[tuple[str, str | None, bytes, dict[str, str]]] = [
        ("created", "officer", _body(), {}),
        ("no token", None, _body(), {}),
        ("auditor", "auditor", _body(), {}),
        ("expired", "expired", _body(), {}),
        ("revoked", "revoked", _body(), {}),
        ("invalid record", "officer", _body(record={"title_number": 5}), {}),
        ("unknown type", "officer", _body("spaceship"), {}),
        ("type of another agency", "officer", _body("marriage"), {}),
        ("bad type pattern", "officer", _body("Title"), {}),
        ("extra field", "officer", _body(extra=1), {}),
        ("not an object", "officer", b"[1, 2]", {}),
        ("bad JSON", "officer", b'{"recordType": ', {}),
        ("bad key", "officer", _body(), {"Idempotency-Key": "no spaces allowed"}),
        ("empty key", "officer", _body(), {"Idempotency-Key": ""}),
    ]
    for name, role, body, headers in cases:
        with repd.client(role) as client:
            fast, slow = _both(client, body, **headers)
        assert fast == slow, name
    with cso.client("officer") as other, httpx.Client(base_url=repd.url, headers=other.headers) as client:
        fast, slow = _both(client, _body())  # a token of another agency
        assert fast == slow and fast[0] == 401

    with repd.client("officer") as officer:
        answers = {}
        for content_type, key in ((FAST, "fast-key"), (FASTAPI, "slow-key")):
            first = officer.post(
                "/v1/records", content=_body(), headers={"Content-Type": content_type, "Idempotency-Key": key}
            )
            again = officer.post(
                "/v1/records", content=_body(), headers={"Content-Type": content_type, "Idempotency-Key": key}
            )
            other = officer.post(
                "/v1/records",
                content=_body(record=title_example() | {"title_number": "X"}),
                headers={"Content-Type": content_type, "Idempotency-Key": key},
            )
            answers[content_type] = (_answer(first), _answer(again), _answer(other))
            assert first.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert answers[FAST] == answers[FASTAPI]


def test_the_create_fast_path_is_rate_limited_as_fastapi_is(api: dict[str, Server]) -> None:
    cra = api["CRA"]  # 2 requests a second per token, a burst of 4
    refused = {}
    with cra.client("officer") as officer:
        for content_type in (FAST, FASTAPI):
            time.sleep(2.5)
            headers = {"Content-Type": content_type}
            sent = [officer.post("/v1/records", content=_body("x"), headers=headers) for _ in range(8)]
            limited = [r for r in sent if r.status_code == 429]
            assert limited, [r.status_code for r in sent]
            refused[content_type] = _answer(limited[0])
    assert refused[FAST] == refused[FASTAPI]


def test_the_create_fast_path_is_counted_under_its_route(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("officer") as officer, httpx.Client(base_url=repd.url) as public:
        before = _requests(public)
        for content_type in (FAST, FASTAPI):
            sent = officer.post("/v1/records", content=_body(), headers={"Content-Type": content_type})
            assert sent.status_code == 201
        assert _requests(public) == before + 2


def _requests(public: httpx.Client) -> int:
    text = public.get("/metrics").text
    found = re.search(
        r'sijill_http_requests_total\{route="/v1/records",method="POST",status="201"\} (\d+)', text
    )
    return int(found.group(1)) if found else 0


def test_the_verify_fast_path_answers_as_fastapi_does(api: dict[str, Server]) -> None:
    repd, cra = api["REPD"], api["CRA"]
    with repd.client("officer") as officer:
        path = officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
        bundle_path = path.json()["links"]["self"] + "/bundle"
        pending = officer.get(bundle_path)
        assert pending.status_code == 202
        anchored = wait_anchored(officer, bundle_path)
        assert anchored.status_code == 200
    tampered = anchored.content.replace(b'"version":1', b'"version":2', 1)
    assert tampered != anchored.content
    cases = {
        "anchored": anchored.content,
        "pending": pending.content,
        "tampered with": tampered,
        "not a bundle": b'{"format": "something else"}',
        "not JSON": b'{"format": ',
        "empty": b"",
    }
    with httpx.Client(base_url=repd.url) as public:
        for name, body in cases.items():
            answers = [
                _answer(public.post("/v1/verify", content=body, headers={"Content-Type": kind}))
                for kind in (FAST, FASTAPI)
            ]
            assert answers[0] == answers[1], name
            if name == "anchored":
                assert b'"verdict":"authentic-current"' in answers[0][2], answers[0]
    refused = {}
    with httpx.Client(base_url=cra.url) as public:  # 2 public requests a second, a burst of 6
        for kind in (FAST, FASTAPI):
            time.sleep(3.5)
            sent = [
                public.post("/v1/verify", content=b"{}", headers={"Content-Type": kind}) for _ in range(10)
            ]
            limited = [r for r in sent if r.status_code == 429]
            assert limited, [r.status_code for r in sent]
            refused[kind] = _answer(limited[0])
    assert refused[FAST] == refused[FASTAPI]
