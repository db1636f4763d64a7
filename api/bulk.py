"""`POST /v1/records/bulk`: many records as NDJSON, one answer line per input line.

Every input line is answered, in order, with its line number (counted from 1): `accepted`,
`rejected` with every problem, or `blank` for a line of nothing but white space, so a client
pairs the n-th answer with the n-th line. A newline that ends the body does not start a line.

The body is read as a stream, `bulk_chunk` lines at a time; each chunk is validated, sealed,
signed and committed in one write batch (intake's `submit_many`), so memory stays bounded
whatever the upload's size. Good lines land and bad lines are answered with their line number
and every problem; one bad line never costs a good one.

The answers are spooled to a temporary file (on disk past 1 MiB) while the upload is read and
streamed back once it is complete: answering while the client is still sending would deadlock
any client that sends the whole body before it reads (most do) once the socket buffers fill.

With an `Idempotency-Key`, each chunk's answers are stored in the chunk's own write batch with
a hash of its raw lines; a retried upload (after a timeout, a crash, a dropped connection)
replays the chunks already committed and carries on after them. A chunk whose lines differ
from the first attempt's stops the upload with an `idempotency-key-reused` line. That is also
the way on after a 503 `store-unavailable` (the store away mid-upload): the chunks committed
before it are kept, and the retry replays them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.answers import in_worker
from api.problems import ApiProblem, problem_responses
from api.records import IdempotencyKey, accepted_out
from api.security import WRITERS, Officer, require
from ledger.canonical import too_deep
from ledger.jsontext import loads as loads_json
from ledger.records import RecordInvalid
from node.intake import Accepted

router = APIRouter(prefix="/v1", tags=["records"])

# json.dumps(answer, ensure_ascii=False) without making an encoder per line: dumps makes this one.
_ANSWER = json.JSONEncoder(ensure_ascii=False).encode
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")
MAX_LINE_NESTING = 16


def _rejected(line: int, rule: str, detail: str, detail_ar: str, pointer: str = "") -> dict[str, Any]:
    return {
        "line": line,
        "status": "rejected",
        "errors": [{"pointer": pointer, "rule": rule, "detail": detail, "detailAr": detail_ar}],
    }


def parse_line(number: int, raw: bytes) -> tuple[str, dict[str, Any]] | dict[str, Any]:
    """An input line as (record type, record), or the rejection answer for it."""
    if too_deep(raw, MAX_LINE_NESTING):
        return _rejected(number, "json-depth", "the line nests too deeply", "السطر متداخل بعمق زائد")
    try:
        item = loads_json(raw)
    except (ValueError, RecursionError):
        return _rejected(number, "json", "the line is not valid JSON", "السطر ليس JSON صالحًا")
    if not isinstance(item, dict) or set(item) != {"recordType", "record"}:
        return _rejected(
            number,
            "line-shape",
            'a line is {"recordType": "...", "record": {...}} and nothing else',
            "كل سطر يجب أن يكون كائنًا فيه recordType و record فقط",
        )
    if not isinstance(item["recordType"], str) or not isinstance(item["record"], dict):
        return _rejected(
            number,
            "line-shape",
            "recordType must be a string and record an object",
            "recordType يجب أن يكون نصًا و record كائنًا",
            "/recordType" if not isinstance(item["recordType"], str) else "/record",
        )
    return item["recordType"], item["record"]


def answer_of(number: int, result: Accepted | RecordInvalid) -> dict[str, Any]:
    if isinstance(result, RecordInvalid):
        return {
            "line": number,
            "status": "rejected",
            "errors": [
                {
                    "pointer": "/record" + p.path,
                    "rule": p.rule,
                    "detail": p.message_en,
                    "detailAr": p.message_ar,
                }
                for p in result.problems
            ],
        }
    out = accepted_out(result)
    del out["links"]
    return {"line": number, "status": "accepted", **out}


async def _lines(request: Request, max_line: int) -> AsyncIterator[list[bytes | None]]:
    """The body's lines (without the newline), a list per piece of the body as it arrives;
    None for a line longer than `max_line`. Each line is cut out of the piece once (not the
    rest of the buffer after each line)."""
    buffer = b""
    skipping = False
    async for piece in request.stream():
        buffer += piece
        lines: list[bytes | None] = []
        start = 0
        while True:
            cut = buffer.find(b"\n", start)
            if cut < 0:
                break
            line, start = buffer[start:cut], cut + 1
            if skipping:
                skipping = False
                continue
            lines.append(None if len(line) > max_line else line)
        buffer = buffer[start:]
        if len(buffer) > max_line and not skipping:
            lines.append(None)
            skipping, buffer = True, b""
        elif skipping:
            buffer = b""
        if lines:
            yield lines
    if buffer and not skipping:
        yield [None if len(buffer) > max_line else buffer]


@router.post(
    "/records/bulk",
    responses={
        200: {
            "description": "One NDJSON answer line per input line, then a summary line",
            "content": {"application/x-ndjson": {}},
        },
        **problem_responses(400, 401, 403, 415, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {
                        "type": "string",
                        "description": '{"recordType": ..., "record": {...}} per line',
                    }
                }
            },
        }
    },
    summary="Create many records from NDJSON (legacy migrations): answers per line, constant memory",
)
async def bulk_create(
    request: Request,
    officer: Officer = require(*WRITERS),
    idempotency_key: IdempotencyKey = None,
) -> StreamingResponse:
    sijill = request.app.state.sijill
    settings = sijill.settings
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in NDJSON_TYPES:
        raise ApiProblem(
            415,
            "unsupported-media-type",
            f"Send the records as NDJSON (Content-Type: application/x-ndjson), not {media or 'nothing'}",
            "أرسل السجلات بصيغة NDJSON مع Content-Type: application/x-ndjson",
        )
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed by the response
    totals = {"lines": 0, "accepted": 0, "rejected": 0, "blank": 0, "replayed": 0}
    with sijill.idempotency.claim(officer, idempotency_key, "POST", request.url.path, b"") as claim:
        request_id = request.state.request_id

        def process(index: int, chunk: list[bytes | None]) -> bool:
            return _process_chunk(sijill, officer, request_id, claim, index, chunk, totals, spool)

        # One chunk is processed (on a worker thread) while the next is read: chunks are still
        # processed one at a time, in order, and the upload stops at the same line as before.
        loop = asyncio.get_running_loop()
        processing: asyncio.Future[bool] | None = None
        chunk: list[bytes | None] = []
        index = 0
        stopped = False
        try:
            async for lines in _lines(request, settings.max_line):
                if stopped:
                    continue
                chunk.extend(lines)
                while len(chunk) >= settings.bulk_chunk and not stopped:
                    if processing is not None:
                        stopped = not await processing
                        processing = None
                        if stopped:
                            break
                    whole, chunk = chunk[: settings.bulk_chunk], chunk[settings.bulk_chunk :]
                    processing = loop.run_in_executor(sijill.workers, process, index, whole)
                    index += 1
            if processing is not None:
                stopped = not await processing
                processing = None
            if chunk and not stopped:
                await in_worker(sijill, process, index, chunk)
        finally:
            if processing is not None:  # the upload failed: the chunk on its way ends before the claim
                await asyncio.wait([processing])
                if not processing.cancelled():
                    processing.exception()
    sijill.metrics.count_records("bulk", totals["accepted"] - totals["replayed"], totals["rejected"])
    spool.write(json.dumps({"summary": totals}).encode() + b"\n")
    spool.seek(0)
    return StreamingResponse(_drain(spool), media_type="application/x-ndjson")


def _drain(spool: Any) -> Iterator[bytes]:
    try:
        while block := spool.read(1 << 16):
            yield block
    finally:
        spool.close()


def _count(totals: dict[str, int], answer: dict[str, Any]) -> None:
    status = answer["status"]
    totals[status if status in ("accepted", "blank") else "rejected"] += 1


def _process_chunk(
    sijill: Any,
    officer: Officer,
    request_id: str,
    claim: Any,
    index: int,
    lines: list[bytes | None],
    totals: dict[str, int],
    spool: Any,
) -> bool:
    """Answer one chunk of lines into `spool`; False if the upload must stop."""
    first = totals["lines"] + 1
    totals["lines"] += len(lines)
    digest = hashlib.sha256(b"\n".join(b"\x00" if line is None else line for line in lines)).hexdigest()
    if claim is not None:
        stored = sijill.node.store.get_json(claim.chunk_key(index))
        if stored is not None:
            if not hmac.compare_digest(str(stored["hash"]).encode(), digest.encode()):
                answer = _rejected(
                    first,
                    "idempotency-key-reused",
                    "these lines differ from the first upload with this Idempotency-Key; upload stopped",
                    "هذه الأسطر تختلف عن أول رفع بنفس مفتاح عدم التكرار؛ توقف الرفع",
                )
                totals["rejected"] += 1
                spool.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                return False
            for answer in stored["answers"]:
                _count(totals, answer)
                totals["replayed"] += answer["status"] == "accepted"
                spool.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
            return True
    answers: list[dict[str, Any] | None] = []
    items: list[tuple[str, dict[str, Any]]] = []
    numbers: list[int] = []
    for offset, raw in enumerate(lines):
        number = first + offset
        if raw is None:
            answers.append(
                _rejected(
                    number,
                    "line-too-long",
                    f"the line is longer than {sijill.settings.max_line} bytes",
                    "السطر أطول من المسموح",
                )
            )
        elif not raw.strip():
            answers.append({"line": number, "status": "blank"})  # answered too: answers stay line for line
        else:
            parsed = parse_line(number, raw)
            if isinstance(parsed, dict):
                answers.append(parsed)
            else:
                answers.append(None)
                items.append(parsed)
                numbers.append(number)
    finished: list[dict[str, Any]] = []

    def merge(results: list[Accepted | RecordInvalid]) -> list[dict[str, Any]]:
        by_number = {n: answer_of(n, r) for n, r in zip(numbers, results, strict=True)}
        return [
            answer if answer is not None else by_number[first + offset]
            for offset, answer in enumerate(answers)
            if answer is not None or (first + offset) in by_number
        ]

    def on_commit(wb: Any, results: list[Accepted | RecordInvalid]) -> None:
        finished.extend(merge(results))
        if claim is not None:
            claim.remember_at(wb, claim.chunk_key(index), {"hash": digest, "answers": finished})

    if items:
        for _ in sijill.node.intake.submit_many(
            items,
            actor=officer.actor,
            request_id=request_id,
            chunk=len(items) + 1,
            on_commit=on_commit,
        ):
            pass
        sijill.node.batcher.wake()
    else:
        finished.extend(merge([]))
        if claim is not None:
            with sijill.node.store.write_batch() as wb:
                claim.remember_at(wb, claim.chunk_key(index), {"hash": digest, "answers": finished})
    for answer in finished:
        _count(totals, answer)
    spool.write(b"".join(_ANSWER(answer).encode() + b"\n" for answer in finished))
    return True
