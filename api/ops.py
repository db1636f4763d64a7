"""Operations: `/healthz` (the process answers), `/readyz` (it can do its job), `/metrics`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api.http_protocol import refusal_counts

router = APIRouter(tags=["operations"])

BACKLOG_SCAN_LIMIT = 1_000_000


class HealthOut(BaseModel):
    status: str
    agency: str


class ReadyOut(BaseModel):
    ready: bool
    agency: str
    chain: bool
    indexerLag: int | None
    backlog: int
    lastAnchorAt: float | None
    problems: list[str]


@router.get("/healthz", response_model=HealthOut, summary="The process is up and answering")
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "agency": request.app.state.sijill.agency}


def _backlog(node: Any) -> int:
    return sum(1 for _ in node.store.iter_prefix(b"queue/", limit=BACKLOG_SCAN_LIMIT))


def readiness(sijill: Any) -> dict[str, Any]:
    node = sijill.node
    settings = sijill.settings
    problems = []
    try:
        _ = node.w3.eth.block_number
        chain = True
    except Exception as exc:
        chain = False
        problems.append(f"chain unreachable: {type(exc).__name__}")
    lag = node.indexer.lag() if chain else None
    if chain and (lag is None or lag > settings.ready_max_lag):
        problems.append(f"indexer behind the chain by {lag} blocks (limit {settings.ready_max_lag})")
    backlog = _backlog(node)
    if backlog > settings.ready_max_backlog:
        problems.append(f"backlog of {backlog} leaves (limit {settings.ready_max_backlog})")
    for error in (node.batcher.last_error, node.indexer.last_error):
        if error:
            problems.append(error)
    problems.extend(node.batcher.holds)  # what the registry does not let the agency anchor now
    return {
        "ready": chain and not problems,
        "agency": sijill.agency,
        "chain": chain,
        "indexerLag": lag,
        "backlog": backlog,
        "lastAnchorAt": node.batcher.last_anchor_at,
        "problems": problems,
    }


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Not ready: `problems` says why"}},
    summary="Ready to serve: chain reachable, indexer caught up, backlog under its limit, nothing held back",
)
async def readyz(request: Request) -> JSONResponse:
    state = await run_in_threadpool(readiness, request.app.state.sijill)
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics: requests, latency, records taken in, backlog, batches, anchor latency",
)
async def metrics(request: Request) -> PlainTextResponse:
    sijill = request.app.state.sijill
    node = sijill.node

    def gauges() -> list[tuple[str, str, str, float | int | None]]:
        batcher = node.batcher
        anchored = batcher.anchored_batches
        return [
            ("sijill_backlog_leaves", "gauge", "Leaves taken in and not yet in a batch", _backlog(node)),
            (
                "sijill_indexer_lag_blocks",
                "gauge",
                "Blocks the event indexer trails the chain",
                node.indexer.lag(),
            ),
            (
                "sijill_held_leaves",
                "gauge",
                "Leaves kept but not anchored because the registry does not allow it now "
                "(record type disallowed, agency suspended, signer retired); /readyz says why",
                batcher.held_leaves,
            ),
            (
                "sijill_held_operations",
                "gauge",
                "Revocations and supersessions kept but not sent because the registry refuses the "
                "agency now (suspended, signer retired); /readyz says why",
                batcher.held_operations,
            ),
            ("sijill_batches_anchored_total", "counter", "Batches anchored by this process", anchored),
            (
                "sijill_leaves_anchored_total",
                "counter",
                "Leaves anchored by this process",
                batcher.anchored_leaves,
            ),
            (
                "sijill_anchor_seconds_total",
                "counter",
                "Seconds from batch close to proofs stored, summed over anchored batches",
                round(batcher.anchor_seconds_total, 3),
            ),
            (
                "sijill_last_anchor_timestamp_seconds",
                "gauge",
                "Unix time of the last anchored batch",
                batcher.last_anchor_at,
            ),
            (
                "sijill_up_seconds",
                "gauge",
                "Seconds since the API started",
                round(time.time() - sijill.started, 1),
            ),
        ]

    text = sijill.metrics.render(await run_in_threadpool(gauges), refusal_counts())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
