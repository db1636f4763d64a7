"""Reports written by orjson (`ledger.verify.json_text`, `POST /v1/verify`'s answer) are the bytes
they were before: those of `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`, and, for
the API, of FastAPI validating the answer against `ReportOut` and Starlette's `JSONResponse`."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from fastapi.responses import JSONResponse, Response

from api.problems import ApiProblem
from api.public import ReportOut, _verify_answer
from ledger.chainview import MemoryChain
from ledger.verify import json_text, verify
from node.chain.toolchain import PROJECT_ROOT

VECTORS = json.loads((PROJECT_ROOT / "tests" / "vectors" / "bundles.json").read_text())


def _stdlib(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def test_every_code_point_is_written_alike() -> None:
    # Both escape character by character, so one string of every code point but the surrogates
    # (which neither writes as UTF-8) covers every string.
    text = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert json_text({"checks": [], "reason": text}) == _stdlib({"checks": [], "reason": text})


@pytest.mark.parametrize(
    "value",
    [
        "/\udcff",
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        True,
        False,
        None,
        1.5,
        1e16,
        [],
        {},
    ],
)
def test_numbers_and_constants_are_written_alike(value: Any) -> None:
    document = {"verdict": "x", "checks": [{"name": "n", "details": {"v": value}}], "v": [value]}
    assert json_text(document) == _stdlib(document)


@pytest.mark.parametrize("name", [case["name"] for case in VECTORS["cases"]])
def test_the_verify_answer_is_what_fastapi_wrote_from_the_response_model(name: str) -> None:
    case = next(c for c in VECTORS["cases"] if c["name"] == name)
    chain = MemoryChain.from_json(VECTORS["chain"])
    raw = json.dumps(case["bundle"], ensure_ascii=False).encode()
    try:
        answer = _verify_answer(raw, chain)
    except ApiProblem:
        pytest.skip("not a readable bundle: answered 422 as before")
    document = json.loads(answer)
    # What the route returned before: this dict, validated and serialised by FastAPI.
    report = verify(raw, chain, now=document["checkedAt"])
    bundle = report.bundle
    assert bundle is not None
    before = {
        **report.to_json(),
        "record": {
            "agency": bundle.agency,
            "recordType": bundle.record_type,
            "recordId": bundle.record_id,
            "version": bundle.version,
        },
        "checkedAt": document["checkedAt"],
    }
    served = JSONResponse(ReportOut.model_validate(before).model_dump(mode="json")).body
    assert answer == served


def test_the_answer_goes_out_with_the_headers_jsonresponse_gave_it() -> None:
    body = _verify_answer(
        json.dumps(VECTORS["cases"][0]["bundle"]).encode(), MemoryChain.from_json(VECTORS["chain"])
    )
    before = JSONResponse(json.loads(body))
    assert before.body == body
    assert Response(body, media_type="application/json").raw_headers == before.raw_headers
