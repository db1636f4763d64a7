"""Operations: `/healthz` (the process answers), `/readyz` (it can do its job), `/metrics`.

Readiness tells the truth about the node's promise: every leaf accepted and not yet anchored
(queued, or in a batch built or sent) is counted, and the soonest `anchorBy` among them is
watched. `/readyz` turns 503 when that promise is at risk (less than `ready_anchor_margin`
seconds left, or past) or when anchoring makes no progress for `ready_max_stall` seconds
although leaves wait (the chain away, reverts again and again, a chain that lost the node's batches, a
transaction never mined), and when the store does not answer a small read within 2 s
(api/store_health.py: then the figures the store holds are null, NaN in /metrics, and
`sijill_store_up` is 0). `/healthz` stays the liveness probe: the process answers, and a
restart would not anchor anything sooner."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api.http_protocol import refusal_counts
from api.store_health import StoreStatus
from node.batcher import Unanchored
from node.errors import StoreError

router = APIRouter(tags=["operations"])


class HealthOut(BaseModel):
    status: str
    agency: str


class ReadyOut(BaseModel):
    ready: bool
    agency: str
    chain: bool
    store: bool
    indexerLag: int | None
    backlog: int | None  # the figures the store holds are null while it does not answer
    unanchored: int | None
    unanchoredBatches: int | None
    oldestUnanchoredAge: float | None
    anchorBySlack: float | None
    anchoringStalledFor: float | None
    lastAnchorAt: float | None
    batcher: bool  # this process holds the batcher lease (always, on LevelDB): it batches and anchors
    problems: list[str]


@router.get("/healthz", response_model=HealthOut, summary="The process is up and answering")
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "agency": request.app.state.sijill.agency}


def _leaves(count: int) -> str:
    return f"{count:,} leaf" if count == 1 else f"{count:,} leaves"


def promise_problems(waiting: Unanchored, now: float, *, margin: float, max_stall: float) -> list[str]:
    """What /readyz reports about the leaves not yet anchored: a promise at risk, anchoring
    stalled; each a sentence naming the numbers."""
    problems = []
    if waiting.earliest_anchor_by is not None:
        slack = waiting.earliest_anchor_by - now
        if slack < margin:
            when = f"was due {-slack:.0f} s ago" if slack < 0 else f"is due in {slack:.0f} s"
            problems.append(
                f"anchoring promise at risk: the earliest anchorBy of the {_leaves(waiting.leaves)} not "
                f"yet anchored {when} (margin {margin:g} s); the oldest was taken in "
                f"{now - (waiting.oldest_intake or now):.0f} s ago"
            )
    if waiting.stalled_for > max_stall:
        problems.append(
            f"anchoring has made no progress for {waiting.stalled_for:.0f} s (limit {max_stall:g} s) "
            f"while {_leaves(waiting.leaves)} wait to be anchored ({waiting.in_batches:,} of them in "
            f"{waiting.batches} batch{'' if waiting.batches == 1 else 'es'} built or sent)"
        )
    return problems


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
    # The store first, with a short deadline: every figure below reads it, and a store that is
    # away holds each read for its connection timeout.
    store = sijill.store_probe.status()
    lag = backlog = waiting = None
    if store.up:
        try:
            lag = node.indexer.lag() if chain else None
            backlog = node.store.queued_leaves
            waiting = node.batcher.unanchored()
        except StoreError as exc:
            store = StoreStatus(False, str(exc))
    if not store.up:
        problems.append(f"store unreachable: {store.problem}")
    if chain and store.up and (lag is None or lag > settings.ready_max_lag):
        problems.append(f"indexer behind the chain by {lag} blocks (limit {settings.ready_max_lag})")
    if backlog is not None and backlog > settings.ready_max_backlog:
        problems.append(f"backlog of {backlog} leaves (limit {settings.ready_max_backlog})")
    now = time.time()
    if waiting is not None:
        problems += promise_problems(
            waiting, now, margin=settings.ready_anchor_margin, max_stall=settings.ready_max_stall
        )
    for error in (node.batcher.last_error, node.indexer.last_error, node.lease.last_error):
        if error:
            problems.append(error)
    problems.extend(node.batcher.holds)  # what the registry does not let the agency anchor now
    return {
        "ready": chain and store.up and not problems,
        "agency": sijill.agency,
        "chain": chain,
        "store": store.up,
        "indexerLag": lag,
        "backlog": backlog,
        "unanchored": None if waiting is None else waiting.leaves,
        "unanchoredBatches": None if waiting is None else waiting.batches,
        "oldestUnanchoredAge": None
        if waiting is None or waiting.oldest_intake is None
        else round(now - waiting.oldest_intake, 1),
        "anchorBySlack": None
        if waiting is None or waiting.earliest_anchor_by is None
        else round(waiting.earliest_anchor_by - now, 1),
        "anchoringStalledFor": None if waiting is None else round(waiting.stalled_for, 1),
        "lastAnchorAt": node.batcher.last_anchor_at,
        "batcher": node.lease.held(),
        "problems": problems,
    }


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Not ready: `problems` says why"}},
    summary="Ready to serve: chain and store reachable, indexer caught up, backlog under its limit, "
    "nothing held back, anchoring progressing and every promise (anchorBy) kept with room to spare",
)
async def readyz(request: Request) -> JSONResponse:
    state = await run_in_threadpool(readiness, request.app.state.sijill)
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics: requests, latency, records taken in, store up, backlog, batches, "
    "anchor latency",
)
async def metrics(request: Request) -> PlainTextResponse:
    sijill = request.app.state.sijill
    node = sijill.node

    def gauges() -> list[tuple[str, str, str, float | int | None]]:
        batcher = node.batcher
        anchored = batcher.anchored_batches
        # What the store holds is NaN while it does not answer (sijill_store_up says so).
        store = sijill.store_probe.status()
        backlog = waiting = lag = None
        if store.up:
            try:
                backlog, waiting, lag = node.store.queued_leaves, batcher.unanchored(), node.indexer.lag()
            except StoreError as exc:
                store = StoreStatus(False, str(exc))
        now = time.time()
        oldest = None if waiting is None else waiting.oldest_intake
        earliest = None if waiting is None else waiting.earliest_anchor_by
        return [
            (
                "sijill_store_up",
                "gauge",
                "1 when the node's store answered a small read within 2 s, 0 when it did not "
                "(the server down, a failover under way)",
                int(store.up),
            ),
            (
                "sijill_backlog_leaves",
                "gauge",
                "Leaves taken in and not yet in a batch",
                backlog,
            ),
            (
                "sijill_unanchored_leaves",
                "gauge",
                "Leaves taken in and not yet anchored: queued, or in batches built or sent",
                None if waiting is None else waiting.leaves,
            ),
            (
                "sijill_unanchored_batches",
                "gauge",
                "Batches built or sent and not yet anchored",
                None if waiting is None else waiting.batches,
            ),
            (
                "sijill_oldest_unanchored_age_seconds",
                "gauge",
                "Seconds since the oldest leaf not yet anchored was taken in (NaN when none waits)",
                None if oldest is None else round(now - oldest, 1),
            ),
            (
                "sijill_anchor_by_slack_seconds",
                "gauge",
                "Seconds until the earliest anchorBy promised to a leaf not yet anchored; negative once "
                "it has passed (NaN when none waits)",
                None if earliest is None else round(earliest - now, 1),
            ),
            (
                "sijill_anchoring_stalled_seconds",
                "gauge",
                "Seconds anchoring has made no progress while batches wait (0 while it progresses)",
                None if waiting is None else round(waiting.stalled_for, 1),
            ),
            (
                "sijill_batches_resent_total",
                "counter",
                "Batches sent again by this process because the chain lost them (it went back)",
                batcher.resent_batches,
            ),
            (
                "sijill_indexer_lag_blocks",
                "gauge",
                "Blocks the event indexer trails the chain",
                lag,
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
            (
                "sijill_batcher_lease_held",
                "gauge",
                "1 while this process holds the batcher lease (batches, anchors and indexes for the "
                "agency; always on LevelDB), 0 while another process of the agency does",
                int(node.lease.held()),
            ),
            (
                "sijill_batcher_takeovers_total",
                "counter",
                "Times this process took the batcher lease (its first start on PostgreSQL included)",
                node.lease.takeovers,
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
