"""Node-to-node routes: another agency's node fetches a record or its proof bundle.

The request is signed by the calling agency's signer key (node/peer/signing.py has the wire format);
the on-chain AgencyRegistry says whether that key is a current signer of that agency, so the
chain is the PKI and agencies share no secrets. The answer carries only the fields this
agency's peer policy lets the caller see; the bundle hides the rest as salted hashes, so the
caller can still verify it against the chain.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from api.problems import TITLES, ApiProblem, problem_responses
from api.records import RecordId, RecordType, intake_problem
from api.security import audit_call
from ledger.bundle import Bundle, bundle_to_json, disclose
from node.errors import NodeError
from node.intake import IntakeError

router = APIRouter(prefix="/v1/peer", tags=["node-to-node"])

PeerHeader = Annotated[str | None, Header(description="see docs/api.md, node-to-node")]


def _peer(request: Request) -> Any:
    from node.peer.auth import PeerAuthError
    from node.peer.signing import request_target

    sijill = request.app.state.sijill
    target = request_target(
        request.scope.get("raw_path") or request.url.path.encode(), request.scope["query_string"]
    )
    try:
        identity = sijill.peers.authenticate(request.method, target, request.headers, b"")
    except PeerAuthError as exc:
        audit_call(request, "peer:unauthenticated", "peer.refused", request.url.path, code=exc.code)
        fallback = "chain-unavailable" if exc.status == 503 else "forbidden"
        kind = exc.code if exc.code in TITLES else fallback
        raise ApiProblem(exc.status, kind, exc.message_en, exc.message_ar) from None
    return identity


def _visible(request: Request, identity: Any, record_type: str, record_id: str) -> tuple[Bundle, list[str]]:
    """The record's bundle and the paths the policy lets the caller see. The policy is asked
    before the store: an agency that may not see a record type learns nothing of its records,
    not even whether an id exists."""
    sijill = request.app.state.sijill
    actor = f"peer:{identity.agency}:{identity.signer}"
    if not sijill.peer_policy.may_see(identity.agency, record_type):
        audit_call(request, actor, "peer.forbidden", f"{record_type}/{record_id}", fields=0)
        raise ApiProblem(
            403,
            "forbidden",
            f"agency {identity.agency} may not see {record_type} records of {sijill.agency}",
            "سياسة هذه الجهة لا تسمح للجهة الطالبة بالاطلاع على هذا النوع من السجلات",
        )
    try:
        bundle = sijill.node.intake.bundle(record_type, record_id)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    paths = [d.path for d in bundle.disclosed]
    visible = sijill.peer_policy.visible_paths(identity.agency, record_type, paths) or []
    audit_call(request, actor, "peer.read", f"{record_type}/{record_id}", fields=len(visible))
    return bundle, visible


@router.get(
    "/records/{record_type}/{record_id}",
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A record's current state and the fields this agency's policy lets the caller see",
)
def peer_record(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    sijill_agency: Annotated[str | None, Header(alias="Sijill-Agency")] = None,
    sijill_signature: Annotated[str | None, Header(alias="Sijill-Signature")] = None,
) -> dict[str, Any]:
    identity = _peer(request)
    bundle, visible = _visible(request, identity, record_type, record_id)
    stored = request.app.state.sijill.node.intake.stored(record_type, record_id)
    values = {d.path: d.value for d in bundle.disclosed if d.path in set(visible)}
    return {
        "agency": bundle.agency,
        "recordType": record_type,
        "recordId": record_id,
        "version": bundle.version,
        "state": stored.state,
        "revoked": stored.revoked,
        "fields": values,
        "hidden": len(bundle.disclosed) - len(values),
    }


@router.get(
    "/records/{record_type}/{record_id}/bundle",
    responses={
        200: {
            "description": "The bundle, disclosing only what the policy allows",
            "content": {"application/json": {}},
        },
        202: {"description": "Not anchored yet"},
        **problem_responses(401, 403, 404, 422, 503),
    },
    summary="A record's proof bundle, disclosing only what this agency's policy lets the caller see",
)
def peer_bundle(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    sijill_agency: Annotated[str | None, Header(alias="Sijill-Agency")] = None,
    sijill_signature: Annotated[str | None, Header(alias="Sijill-Signature")] = None,
) -> Response:
    identity = _peer(request)
    bundle, visible = _visible(request, identity, record_type, record_id)
    if bundle.anchor is None:
        return JSONResponse(
            {
                "status": "pending",
                "recordType": record_type,
                "recordId": record_id,
                "version": bundle.version,
            },
            status_code=202,
            headers={"Retry-After": "2"},
        )
    try:
        shown = disclose(bundle, visible)
    except NodeError as exc:  # pragma: no cover - visible paths come from the bundle itself
        raise ApiProblem(422, "request-invalid", str(exc), "تعذر إعداد المستند") from None
    return JSONResponse(bundle_to_json(shown))
