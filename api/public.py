"""Public verification and the auditor's routes.

- `POST /v1/verify`: anyone posts a proof bundle and gets `ledger.verify`'s report, checked
  against this node's index of the chain (batches, leaf states) and the registry (cached for a
  moment). No token: a bundle carries no secret beyond what its holder chose to disclose; each
  client address has the public allowance (`--public-rate`, api/security.py `limit_public`).
- `GET /v1/batches`, `GET /v1/batches/{root}`: this agency's batches in log order, each with
  what the chain recorded (block, time, signer), and for auditors each batch's leaves with
  their receipts, so an auditor can recompute every root and hold the node to every promise.
- `GET /v1/receipts`: every receipt the node signed, also of leaves not yet in a batch, so a
  node that takes records and never anchors them cannot hide it from an API export.
- `GET /v1/audit`: the node's audit trail (hash-chained), for auditors and supervisors.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from api.fastpath import FastPathRoute, single_header, with_fast_path
from api.problems import ApiProblem, problem_responses
from api.security import Officer, audit_call, limit_public, require
from ledger.bundle import BundleError, load_bundle
from ledger.chainview import ChainView
from ledger.verify import json_text, verify
from node.proofs import unpack_level

router = APIRouter(prefix="/v1", route_class=FastPathRoute)

AUDITORS = ("auditor", "supervisor")
VERIFY_THREADS = 8  # verifications at once: CPU under one GIL, but some wait on the store or chain
_SCHEMA = FilePath(__file__).resolve().parent.parent / "docs" / "proof-bundle.schema.json"


def _bundle_schema() -> dict[str, Any]:
    import json

    try:
        schema: dict[str, Any] = json.loads(_SCHEMA.read_text())
    except OSError:
        return {"type": "object"}
    schema.pop("$schema", None)
    schema.pop("$id", None)
    inlined: dict[str, Any] = _inline_refs(schema, schema.pop("$defs", {}))
    return inlined


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its local `#/$defs/...` references replaced by their definitions: inside
    the OpenAPI document those references would point at the wrong root."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    return node


class CheckOut(BaseModel):
    name: str
    outcome: str
    reason: dict[str, str]
    details: dict[str, Any]


class ReportOut(BaseModel):
    verdict: str
    checks: list[CheckOut]
    record: dict[str, Any]
    checkedAt: int


class BatchOut(BaseModel):
    root: str
    seq: int
    recordType: str
    count: int
    status: str
    prev: str | None = None
    tx: str | None = None
    block: int | None = None
    timestamp: int | None = None
    signer: str | None = None


class BatchListOut(BaseModel):
    agency: str
    batches: list[BatchOut]
    next: int | None


class LeafOut(BaseModel):
    index: int
    leaf: str
    recordType: str | None
    recordId: str | None
    version: int | None
    intakeTime: int | None
    anchorBy: int | None
    signer: str | None
    signature: str | None


class BatchLeavesOut(BaseModel):
    batch: BatchOut
    offset: int
    leaves: list[LeafOut]
    next: int | None


class SignedReceiptOut(BaseModel):
    leaf: str
    recordType: str
    recordId: str
    version: int
    intakeTime: int
    anchorBy: int
    signer: str
    signature: str


class ReceiptListOut(BaseModel):
    agency: str
    receipts: list[SignedReceiptOut]
    next: str | None


class AuditOut(BaseModel):
    entries: list[dict[str, Any]]
    next: int | None
    head: dict[str, Any]


async def _verify_fast(request: Request) -> Response | None:
    """`verify_bundle` without FastAPI's middleware, router and dependency solving (api/fastpath.py:
    its layers cost a third of the GIL's time a verification takes): the same rate limit, the
    same code. A request sent as `application/json` only; FastAPI answers any other as before."""
    if single_header(request, b"content-type") != "application/json":
        return None
    await limit_public(request)
    return await verify_bundle(request)


@router.post(
    "/verify",
    tags=["verify"],
    response_model=ReportOut,
    responses=problem_responses(400, 413, 422, 429),
    dependencies=[Depends(limit_public)],
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _bundle_schema()}}}
    },
    summary="Verify a proof bundle: integrity, inclusion, anchored, authority, status, receipt",
)
@with_fast_path(_verify_fast)
async def verify_bundle(request: Request) -> Response:
    raw = await request.body()
    # One trip to a thread for the whole answer: the chain view reads the store (a network
    # round trip on PostgreSQL) and, where the index trails the chain, asks the chain, which
    # must not hold up the event loop. Verification's own pool: the hand-off costs a fifth of
    # what anyio's (`run_in_threadpool`) does, which was a tenth of the route's CPU.
    pool = _verify_pool(request.app)
    answer = await asyncio.get_running_loop().run_in_executor(
        pool, _verify_answer, raw, request.app.state.sijill.chain
    )
    return Response(answer, media_type="application/json")


def _verify_pool(app: Any) -> ThreadPoolExecutor:
    """The app's verification threads, made on first use (no await between look and set)."""
    pool: ThreadPoolExecutor | None = getattr(app.state, "verify_pool", None)
    if pool is None:
        pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="sijill-verify")
        app.state.verify_pool = pool
    return pool


def _verify_answer(raw: bytes, chain: ChainView) -> bytes:
    """The report as JSON bytes, written here rather than by FastAPI from `ReportOut`: the same
    document (a test holds the two to the same bytes), without validating what was just built."""
    try:
        bundle = load_bundle(raw)
    except BundleError as exc:
        raise ApiProblem(
            422, "bundle-invalid", str(exc), "المستند ليس مستند إثبات صالحًا بالصيغة sijill-bundle/1"
        ) from None
    now = int(time.time())
    report = verify(bundle, chain, now=now)
    answer = {
        **report.to_json(),
        "record": {
            "agency": bundle.agency,
            "recordType": bundle.record_type,
            "recordId": bundle.record_id,
            "version": bundle.version,
        },
        "checkedAt": now,
    }
    return json_text(answer).encode()


def _batch_out(store: Any, agency: str, root: str) -> dict[str, Any] | None:
    local = store.get_json(f"batch/{root}".encode())
    if local is None:
        return None
    chain = store.get_json(f"chain/batch/{agency}/{root}".encode()) or {}
    return {
        "root": "0x" + root,
        "seq": local["seq"],
        "recordType": local["type"],
        "count": local["count"],
        "status": local["status"],
        "prev": "0x" + local["prev"] if local.get("prev") else None,
        "tx": local.get("tx"),
        "block": chain.get("block", local.get("block")),
        "timestamp": chain.get("timestamp"),
        "signer": chain.get("signer"),
    }


@router.get(
    "/batches",
    tags=["audit"],
    response_model=BatchListOut,
    responses=problem_responses(401, 403, 422, 429),
    summary="This agency's batches in log order, with what the chain recorded of each",
)
def list_batches(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63, description="list batches after this sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    officer: Officer = require("auditor", "supervisor", "officer"),
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    audit_call(request, officer.actor, "batches.list", sijill.agency, after=after)
    store = sijill.node.store
    batches = []
    start = f"log/{after + 1:016x}".encode() if after + 1 < 2**64 else None
    if start is not None:
        for _, entry in store.iter_json(b"log/", start=start, limit=limit + 1):
            out = _batch_out(store, sijill.agency, entry["root"])
            if out is not None:
                batches.append(out)
    more = len(batches) > limit
    batches = batches[:limit]
    return {"agency": sijill.agency, "batches": batches, "next": batches[-1]["seq"] if more else None}


@router.get(
    "/batches/{root}",
    tags=["audit"],
    response_model=BatchLeavesOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="One batch with its leaves (sorted, as in the tree) and each leaf's receipt (auditors)",
)
def batch_leaves(
    request: Request,
    root: Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="the batch root, 0x + 64 hex")],
    offset: Annotated[int, Query(ge=0, le=2**32)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    officer: Officer = require(*AUDITORS),
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    audit_call(request, officer.actor, "batch.leaves", root, offset=offset)
    store = sijill.node.store
    batch = _batch_out(store, sijill.agency, root[2:])
    packed = store.get(f"tree/{root[2:]}".encode())
    if batch is None or packed is None:
        raise ApiProblem(404, "not-found", f"no batch {root} at {sijill.agency}", "لا توجد دفعة بهذا الجذر")
    leaves = unpack_level(packed, 0, batch["count"])
    page = []
    for index in range(offset, min(offset + limit, len(leaves))):
        leaf = leaves[index]
        info = store.get_json(b"leaf/" + leaf.hex().encode()) or {}
        page.append(
            {
                "index": index,
                "leaf": "0x" + leaf.hex(),
                "recordType": info.get("type"),
                "recordId": info.get("id"),
                "version": info.get("version"),
                "intakeTime": info.get("intakeTime"),
                "anchorBy": info.get("anchorBy"),
                "signer": info.get("signer"),
                "signature": "0x" + info["signature"] if "signature" in info else None,
            }
        )
    more = offset + limit < len(leaves)
    return {"batch": batch, "offset": offset, "leaves": page, "next": offset + limit if more else None}


@router.get(
    "/receipts",
    tags=["audit"],
    response_model=ReceiptListOut,
    responses=problem_responses(401, 403, 422, 429),
    summary="Every receipt this node signed, in leaf order, also of leaves not yet in a batch (auditors)",
)
def list_receipts(
    request: Request,
    after: Annotated[
        str | None, Query(pattern=r"^0x[0-9a-f]{64}$", description="list receipts after this leaf")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    officer: Officer = require(*AUDITORS),
) -> dict[str, Any]:
    """A node that took records and never anchored them shows here: its receipts promise an
    anchoring time that `sijill audit` holds against the chain."""
    sijill = request.app.state.sijill
    audit_call(request, officer.actor, "receipts.list", sijill.agency, after=after)
    start = b"leaf/" + after[2:].encode() + b"\x00" if after else None
    receipts = []
    for key, info in sijill.node.store.iter_json(b"leaf/", start=start):
        if "signature" not in info:
            continue
        receipts.append(
            {
                "leaf": "0x" + key.decode().removeprefix("leaf/"),
                "recordType": info["type"],
                "recordId": info["id"],
                "version": info["version"],
                "intakeTime": info["intakeTime"],
                "anchorBy": info["anchorBy"],
                "signer": info["signer"],
                "signature": "0x" + info["signature"],
            }
        )
        if len(receipts) > limit:
            break
    more = len(receipts) > limit
    receipts = receipts[:limit]
    return {"agency": sijill.agency, "receipts": receipts, "next": receipts[-1]["leaf"] if more else None}


@router.get(
    "/audit",
    tags=["audit"],
    response_model=AuditOut,
    responses=problem_responses(401, 403, 422, 429),
    summary="The node's hash-chained audit trail: who did what, when (auditors, supervisors)",
)
def audit_trail(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63, description="list entries after this sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    officer: Officer = require(*AUDITORS),
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    audit_call(request, officer.actor, "audit.read", sijill.agency, after=after)
    entries = []
    if after + 1 < 2**64:
        for entry in sijill.node.store.export_audit(after + 1):
            entries.append(entry)
            if len(entries) > limit:
                break
    more = len(entries) > limit
    entries = entries[:limit]
    seq, digest = sijill.node.store.audit_head()
    return {
        "entries": entries,
        "next": entries[-1]["seq"] if more else None,
        "head": {"seq": seq, "hash": digest},
    }
