"""Officer routes: create, amend, revoke, read a record, its history, receipt and proof bundle.

Roles: officers and supervisors create and read; only supervisors amend and revoke. Record
contents (personal data) are never shown to auditors, who get batches, leaves and receipts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.answers import JsonAnswer, in_worker
from api.fastpath import FastPathRoute, json_object, matches, single_header, with_fast_path
from api.idempotency import KEY_PATTERN
from api.problems import ApiProblem, field_problems, problem_responses
from api.security import SUPERVISORS, WRITERS, Officer, audit_call, bearer, require
from ledger.bundle import BundleError, SignedReceipt, bundle_to_json, disclose
from ledger.codes import RECORD_ID_PATTERN, RECORD_TYPE_PATTERN
from ledger.records import RecordInvalid
from node.intake import Accepted, IntakeError, StoredRecord

router = APIRouter(prefix="/v1", tags=["records"], route_class=FastPathRoute)

RecordType = Annotated[
    str, Path(pattern=f"^{RECORD_TYPE_PATTERN.pattern}$", description="title, marriage or commercial")
]
RecordId = Annotated[str, Path(pattern=f"^{RECORD_ID_PATTERN.pattern}$", description="the record's id")]
Version = Annotated[int | None, Query(ge=1, le=2**32 - 1, description="a version (default: the current one)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=f"^{KEY_PATTERN.pattern}$",
        description="Retrying with the same key returns the first answer and creates nothing new",
    ),
]


_writers = require(*WRITERS).dependency  # what create_record's `officer` runs, for its fast path


class ReceiptOut(BaseModel):
    intakeTime: int = Field(description="unix seconds the node took the record in")
    anchorBy: int = Field(description="unix seconds by which the node promises to anchor it")
    signer: str = Field(description="the agency signer that signed the receipt")
    signature: str = Field(description="EIP-712 signature (65 bytes, hex)")


class AcceptedOut(BaseModel):
    recordType: str
    recordId: str
    version: int
    leaf: str
    receipt: ReceiptOut
    links: dict[str, str]


class RecordOut(BaseModel):
    recordType: str
    recordId: str
    version: int
    state: Literal["pending", "anchored"]
    revoked: bool
    supersededBy: int | None
    leaf: str
    record: dict[str, Any]
    receipt: ReceiptOut


class VersionOut(BaseModel):
    version: int
    leaf: str | None = None
    intakeTime: int | None = None


class HistoryOut(BaseModel):
    recordType: str
    recordId: str
    current: int
    revoked: bool
    versions: list[VersionOut]


class PendingOut(BaseModel):
    status: Literal["pending"]
    recordType: str
    recordId: str
    version: int
    leaf: str
    anchorBy: int
    detail: str
    detailAr: str


class RevokedOut(BaseModel):
    recordType: str
    recordId: str
    version: int
    reason: int
    status: Literal["revocation-queued"]


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recordType: str = Field(
        pattern=f"^{RECORD_TYPE_PATTERN.pattern}$", description="title, marriage or commercial"
    )
    record: dict[str, Any] = Field(description="the record's fields, as docs/records.md describes")


class AmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amends: int = Field(ge=1, le=2**32 - 2, description="the version being amended: a stale one gets 409")
    reason: int = Field(ge=1, le=65535, description="why (1 issued in error, 2 court order, ... 6 other)")
    record: dict[str, Any] = Field(description="the whole new version of the record")


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**32 - 1, description="the current version: a stale one gets 409")
    reason: int = Field(
        ge=1, le=65535, description="1 issued in error, 2 court order, 3 fraud, 4 duplicate, ..."
    )


def receipt_out(receipt: SignedReceipt) -> dict[str, Any]:
    return {
        "intakeTime": receipt.intake_time,
        "anchorBy": receipt.anchor_by,
        "signer": receipt.signer,
        "signature": "0x" + receipt.signature.hex(),
    }


def accepted_out(accepted: Accepted) -> dict[str, Any]:
    base = f"/v1/records/{accepted.record_type}/{accepted.record_id}"
    return {
        "recordType": accepted.record_type,
        "recordId": accepted.record_id,
        "version": accepted.version,
        "leaf": "0x" + accepted.leaf.hex(),
        "receipt": receipt_out(accepted.receipt),
        "links": {"self": base, "bundle": f"{base}/bundle", "history": f"{base}/history"},
    }


def _remembered(claim: Any) -> Callable[[Any, Accepted], None] | None:
    """Intake's on_commit hook that stores the 201 answer under the request's Idempotency-Key."""
    if claim is None:
        return None
    return lambda wb, accepted: claim.remember(wb, 201, accepted_out(accepted))


def intake_problem(exc: IntakeError) -> ApiProblem:
    status, kind, detail_ar = {
        "not-found": (404, "not-found", "السجل غير موجود لدى هذه الجهة"),
        "conflict": (409, "conflict", "الإصدار المذكور ليس الإصدار الحالي أو السجل ملغى"),
        "forbidden": (403, "forbidden", "هذه الجهة غير مخولة بهذا النوع من السجلات"),
    }.get(exc.kind, (422, "request-invalid", "الطلب غير صالح"))
    return ApiProblem(status, kind, str(exc), exc.message_ar or detail_ar)


def record_problem(exc: RecordInvalid) -> ApiProblem:
    return ApiProblem(
        422,
        "record-invalid",
        str(exc),
        f"السجل غير صالح: {len(exc.problems)} خطأ، راجع قائمة الأخطاء",
        errors=field_problems(exc.problems, "/record"),
    )


async def _changing(
    request: Request,
    officer: Officer,
    key: str | None,
    work: Any,
    status: int,
    audit_action: str,
    subject: str,
) -> JSONResponse:
    """Run a change under its Idempotency-Key: a stored answer is replayed as it was."""
    sijill = request.app.state.sijill
    body = await request.body()
    try:
        with sijill.idempotency.claim(officer, key, request.method, request.url.path, body) as claim:
            if claim is not None and claim.stored is not None:
                audit_call(request, officer.actor, audit_action + ".replayed", subject)
                stored_status, stored_body = claim.stored
                return JsonAnswer(
                    stored_body, status_code=stored_status, headers={"Idempotent-Replayed": "true"}
                )
            answer = await in_worker(sijill, work, claim)
    except (ApiProblem, IntakeError, RecordInvalid) as exc:
        audit_call(request, officer.actor, audit_action + ".refused", subject, problem=type(exc).__name__)
        if isinstance(exc, IntakeError):
            raise intake_problem(exc) from None
        if isinstance(exc, RecordInvalid):
            raise record_problem(exc) from None
        raise
    headers = {"Location": answer["links"]["self"]} if "links" in answer else {}
    return JsonAnswer(answer, status_code=status, headers=headers)


async def create_plan(request: Request) -> tuple[str, dict[str, Any], str | None] | None:
    """(recordType, record, Idempotency-Key) of a create FastAPI would take as it is
    (api/fastpath.py): a JSON body of CreateIn's shape, a recordType of its pattern, at most
    one valid Idempotency-Key. None: FastAPI handles it."""
    payload = await json_object(request, {"recordType": str, "record": dict})
    if payload is None or not matches(RECORD_TYPE_PATTERN, payload["recordType"]):
        return None
    key = single_header(request, b"idempotency-key")
    if key is None and any(name.lower() == b"idempotency-key" for name, _ in request.scope["headers"]):
        return None  # sent more than once
    if key is not None and not matches(KEY_PATTERN, key):
        return None
    return payload["recordType"], payload["record"], key


async def _create_fast(request: Request) -> JSONResponse | None:
    """`create_record` without FastAPI's request handling: the same dependency and code."""
    plan = await create_plan(request)
    if plan is None:
        return None
    officer = await _writers(request, await bearer(request))
    return await _create(request, *plan, officer)


@router.post(
    "/records",
    status_code=201,
    response_model=AcceptedOut,
    responses=problem_responses(400, 401, 403, 409, 413, 422, 429),
    summary="Create a record (version 1); the signed receipt comes back at once",
)
@with_fast_path(_create_fast)
async def create_record(
    request: Request,
    payload: CreateIn,
    officer: Officer = require(*WRITERS),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _create(request, payload.recordType, payload.record, idempotency_key, officer)


async def _create(
    request: Request, record_type: str, record: dict[str, Any], idempotency_key: str | None, officer: Officer
) -> JSONResponse:
    sijill = request.app.state.sijill

    def work(claim: Any) -> dict[str, Any]:
        accepted = sijill.node.intake.submit(
            record_type,
            record,
            actor=officer.actor,
            request_id=request.state.request_id,
            on_commit=_remembered(claim),
        )
        sijill.metrics.count_records("single", 1, 0)
        return accepted_out(accepted)

    return await _changing(request, officer, idempotency_key, work, 201, "record.create", record_type)


@router.post(
    "/records/{record_type}/{record_id}/versions",
    status_code=201,
    response_model=AcceptedOut,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429),
    summary="Amend a record: a new version that supersedes the one named in `amends` (supervisor)",
)
async def amend_record(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    payload: AmendIn,
    officer: Officer = require(*SUPERVISORS),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    sijill = request.app.state.sijill

    def work(claim: Any) -> dict[str, Any]:
        accepted = sijill.node.intake.amend(
            record_type,
            record_id,
            expected_version=payload.amends,
            data=payload.record,
            reason=payload.reason,
            actor=officer.actor,
            request_id=request.state.request_id,
            on_commit=_remembered(claim),
        )
        return accepted_out(accepted)

    return await _changing(
        request, officer, idempotency_key, work, 201, "record.amend", f"{record_type}/{record_id}"
    )


@router.post(
    "/records/{record_type}/{record_id}/revocation",
    status_code=200,
    response_model=RevokedOut,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429),
    summary="Revoke a record's current version with a reason code (supervisor)",
)
async def revoke_record(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    payload: RevokeIn,
    officer: Officer = require(*SUPERVISORS),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    sijill = request.app.state.sijill
    answer = {
        "recordType": record_type,
        "recordId": record_id,
        "version": payload.version,
        "reason": payload.reason,
        "status": "revocation-queued",
    }

    def work(claim: Any) -> dict[str, Any]:
        def remember(wb: Any) -> None:
            if claim is not None:
                claim.remember(wb, 200, answer)

        sijill.node.intake.revoke(
            record_type,
            record_id,
            expected_version=payload.version,
            reason=payload.reason,
            actor=officer.actor,
            request_id=request.state.request_id,
            on_commit=remember,
        )
        return answer

    return await _changing(
        request, officer, idempotency_key, work, 200, "record.revoke", f"{record_type}/{record_id}"
    )


def _stored(request: Request, record_type: str, record_id: str, version: int | None) -> StoredRecord:
    try:
        stored: StoredRecord = request.app.state.sijill.node.intake.stored(record_type, record_id, version)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    return stored


@router.get(
    "/records/{record_type}/{record_id}",
    response_model=RecordOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="A record version with its fields, state and receipt (current version by default)",
)
def read_record(
    request: Request,
    response: Response,
    record_type: RecordType,
    record_id: RecordId,
    version: Version = None,
    officer: Officer = require(*WRITERS),
) -> dict[str, Any]:
    audit_call(request, officer.actor, "record.read", f"{record_type}/{record_id}", version=version)
    stored = _stored(request, record_type, record_id, version)
    response.headers["ETag"] = f'"{stored.version}"'
    return {
        "recordType": stored.record_type,
        "recordId": stored.record_id,
        "version": stored.version,
        "state": stored.state,
        "revoked": stored.revoked,
        "supersededBy": stored.superseded_by,
        "leaf": "0x" + stored.sealed.leaf.hex(),
        "record": stored.record,
        "receipt": receipt_out(stored.receipt),
    }


@router.get(
    "/records/{record_type}/{record_id}/history",
    response_model=HistoryOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="Every version of a record: leaf and intake time, no field values",
)
def read_history(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    officer: Officer = require(*WRITERS),
) -> dict[str, Any]:
    audit_call(request, officer.actor, "record.history", f"{record_type}/{record_id}")
    intake = request.app.state.sijill.node.intake
    try:
        versions = intake.history(record_type, record_id)
        current = intake.stored(record_type, record_id)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    return {
        "recordType": record_type,
        "recordId": record_id,
        "current": current.version,
        "revoked": current.revoked,
        "versions": [
            {
                "version": v["version"],
                "leaf": "0x" + v["leaf"] if "leaf" in v else None,
                "intakeTime": v.get("intakeTime"),
            }
            for v in versions
        ],
    }


@router.get(
    "/records/{record_type}/{record_id}/receipt",
    response_model=ReceiptOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="The signed intake receipt of a record version",
)
def read_receipt(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    version: Version = None,
    officer: Officer = require(*WRITERS),
) -> dict[str, Any]:
    audit_call(request, officer.actor, "record.receipt", f"{record_type}/{record_id}", version=version)
    return receipt_out(_stored(request, record_type, record_id, version).receipt)


@router.get(
    "/records/{record_type}/{record_id}/bundle",
    responses={
        200: {"description": "The proof bundle (docs/proof-bundle.md)", "content": {"application/json": {}}},
        202: {"model": PendingOut, "description": "Not anchored yet: retry after Retry-After seconds"},
        **problem_responses(401, 403, 404, 422, 429),
    },
    summary="The proof bundle once anchored (202 while pending); `field` limits what it discloses",
)
def read_bundle(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    version: Version = None,
    field: Annotated[
        list[str] | None,
        Query(
            description="JSON Pointers of the fields to disclose (repeat); the others are hidden as hashes"
        ),
    ] = None,
    officer: Officer = require(*WRITERS),
) -> Response:
    audit_call(
        request,
        officer.actor,
        "record.bundle",
        f"{record_type}/{record_id}",
        version=version,
        fields=field or [],
    )
    intake = request.app.state.sijill.node.intake
    try:
        bundle = intake.bundle(record_type, record_id, version)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    if bundle.anchor is None:
        pending = {
            "status": "pending",
            "recordType": record_type,
            "recordId": record_id,
            "version": bundle.version,
            "leaf": "0x" + bundle.leaf.hex(),
            "anchorBy": bundle.receipt.anchor_by,
            "detail": "Not anchored yet; the receipt promises anchoring by anchorBy",
            "detailAr": "لم يُثبَّت على الشبكة بعد؛ الإيصال يتعهد بالتثبيت قبل الموعد المذكور",
        }
        retry = max(1, min(60, bundle.receipt.anchor_by - int(time.time())))
        return JSONResponse(pending, status_code=202, headers={"Retry-After": str(retry)})
    if field is not None:
        try:
            bundle = disclose(bundle, field)
        except BundleError as exc:
            raise ApiProblem(
                422, "request-invalid", f"field: {exc}", "حقل غير موجود في هذا السجل أو مسار غير صالح"
            ) from None
    return Response(
        json.dumps(bundle_to_json(bundle), ensure_ascii=False, separators=(",", ":")).encode(),
        media_type="application/json",
    )
