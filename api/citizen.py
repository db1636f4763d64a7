"""What citizens and the clerks they hand certificates to see: shares, certificates, the verify page.

Officer routes (a token with the officer or supervisor role):
- `POST /v1/records/{type}/{id}/shares`: make a share of a record version (which fields are
  disclosed is the holder's choice); the answer holds the token and the URLs of its verify
  page, certificate and PDF. The token is shown this once: only its hash is stored.
- `GET /v1/records/{type}/{id}/shares`: a record's shares (ids, fields, times; no tokens).
- `DELETE /v1/records/{type}/{id}/shares/{shareId}`: withdraw one; its QR code then says so.

Public routes (no token; the share token in the URL is the only key):
- `GET /V/{token}` (and `/v/`): the verify page, which fetches the bundle and checks it against
  the chain in the browser (api/web/); `GET /verify`: the same page, to upload or paste a bundle.
- `GET /v1/shared/{token}`: the disclosed bundle (202 while pending, 410 once withdrawn), with a
  `Link: <...>; rel="successor-version"` header when the holder linked a newer version.
- `GET /c/{token}` and `/c/{token}.pdf`: the printable certificate (api/certificate.py, drawn by
  api/certificate_render.py).

Guessing tokens gets nowhere: each client address may make `public_rate` requests a second to
the public routes (`limit_public`), and only `miss_limit` lookups of unknown tokens a minute;
past that, every token lookup from that address is refused (429) until the allowance refills.
The verify page itself never looks a token up, so it says nothing about which tokens exist.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.problems import ApiProblem, problem_responses
from api.records import RecordId, RecordType, intake_problem
from api.security import WRITERS, Officer, audit_call, client_address, limit_public, require, retry_after
from ledger.bundle import Bundle, BundleError, bundle_to_json, disclose
from ledger.chainview import ChainUnavailable
from node.intake import IntakeError
from node.shares import Share, ShareError, Shares, normalize_token

officer_router = APIRouter(prefix="/v1", tags=["certificates"])
public_router = APIRouter(tags=["public"], dependencies=[Depends(limit_public)])

ASSETS = {
    "sijill-verify.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "cairo-time.js": "text/javascript; charset=utf-8",
    "verify.css": "text/css; charset=utf-8",
    "certificate.css": "text/css; charset=utf-8",
    "labels.json": "application/json",
}
_PDF_LOCK = threading.Lock()  # Pango and fontconfig are not safe to drive from several threads
# The page and its files hold no personal data (the page fetches the bundle itself): browsers may
# keep them, asking again each time. Every other header is the guard's (api/guard.py).
PAGE_HEADERS = {"Cache-Control": "no-cache"}
Token = Annotated[str, Path(min_length=1, max_length=64, description="the share token from the QR code")]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1, le=2**32 - 1, description="default: the current one")
    fields: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=1024,
        description="JSON Pointers to disclose (a prefix such as /owners/0 discloses all under it); "
        "null discloses every field",
    )
    forwardEarlier: bool = Field(
        default=False,
        description="point earlier shares of older versions of this record at this one, so that "
        "whoever scans an old certificate is shown this version",
    )


class ShareOut(BaseModel):
    shareId: str
    recordType: str
    recordId: str
    version: int
    fields: list[str] | None
    createdAt: int
    withdrawnAt: int | None


class ShareCreatedOut(ShareOut):
    token: str
    links: dict[str, str]


class ShareListOut(BaseModel):
    recordType: str
    recordId: str
    shares: list[ShareOut]


def public_url_problem(url: str) -> str | None:
    """What is wrong with a `--public-url`, or None: it must be an http(s) base URL short
    enough that a share's verify URL fits a QR code of version 10 at level M."""
    from urllib.parse import urlsplit

    from api.certificate import CertificateError
    from api.certificate_render import qr_code

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return f"{url!r} is not an http(s) base URL such as https://registry.example.gov.eg"
    try:
        qr_code(f"{url.rstrip('/')}/V/{'A' * 32}".upper())
    except CertificateError as exc:
        return f"{url!r} is too long for a certificate's QR code: {exc}"
    return None


def _links(request: Request, token: str) -> dict[str, str]:
    """The share's URLs. The QR code carries `verify` in upper case: scheme, host and the
    `/V/` path are case-insensitive, and an upper-case URL fits QR's denser alphanumeric mode."""
    sijill = request.app.state.sijill
    base = (sijill.settings.public_url or str(request.base_url)).rstrip("/")
    return {
        "verify": f"{base}/V/{token}".upper(),
        "certificate": f"{base}/c/{token}",
        "pdf": f"{base}/c/{token}.pdf",
        "bundle": f"{base}/v1/shared/{token}",
    }


@officer_router.post(
    "/records/{record_type}/{record_id}/shares",
    status_code=201,
    response_model=ShareCreatedOut,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 429),
    summary="Make a share (a certificate's token) of a record version, disclosing the chosen fields",
)
def create_share(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    payload: ShareIn,
    officer: Officer = require(*WRITERS),
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    intake = sijill.node.intake
    try:
        stored = intake.stored(record_type, record_id, payload.version)
        bundle = intake.bundle(record_type, record_id, stored.version)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    if stored.revoked:
        raise ApiProblem(
            409,
            "conflict",
            f"{record_type}/{record_id} is revoked: no certificate can be issued for it",
            "السجل ملغى ولا يمكن إصدار شهادة له",
        )
    fields = None if payload.fields is None else tuple(payload.fields)
    if fields is not None:
        try:
            disclose(bundle, fields)
        except BundleError as exc:
            raise ApiProblem(
                422, "request-invalid", f"fields: {exc}", "حقل غير موجود في هذا السجل أو مسار غير صالح"
            ) from None
    now = int(time.time())
    store = sijill.node.store
    with store.write_batch() as wb:
        token, share = sijill.shares.create(
            wb,
            record_type=record_type,
            record_id=record_id,
            version=stored.version,
            fields=fields,
            actor=officer.actor,
            now=now,
            forward_earlier=payload.forwardEarlier,
        )
        store.audit(
            wb,
            actor=officer.actor,
            action="share.create",
            request_id=request.state.request_id,
            subject=f"{record_type}/{record_id}",
            at=now,
            details={
                "shareId": share.share_id,
                "version": share.version,
                "fields": None if fields is None else list(fields),
                "forwardEarlier": payload.forwardEarlier,
            },
        )
    return {**share.to_json(), "token": token, "links": _links(request, token)}


@officer_router.get(
    "/records/{record_type}/{record_id}/shares",
    response_model=ShareListOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="A record's shares, oldest first (no tokens: those are shown once, when made)",
)
def list_shares(
    request: Request, record_type: RecordType, record_id: RecordId, officer: Officer = require(*WRITERS)
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    audit_call(request, officer.actor, "share.list", f"{record_type}/{record_id}")
    try:
        sijill.node.intake.stored(record_type, record_id)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    shares = sijill.shares.of_record(record_type, record_id)
    return {"recordType": record_type, "recordId": record_id, "shares": [s.to_json() for s in shares]}


@officer_router.delete(
    "/records/{record_type}/{record_id}/shares/{share_id}",
    response_model=ShareOut,
    responses=problem_responses(401, 403, 404, 422, 429),
    summary="Withdraw a share: its verify page and certificate then say it was withdrawn",
)
def withdraw_share(
    request: Request,
    record_type: RecordType,
    record_id: RecordId,
    share_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="the share's id")],
    officer: Officer = require(*WRITERS),
) -> dict[str, Any]:
    sijill = request.app.state.sijill
    store = sijill.node.store
    now = int(time.time())
    try:
        with store.write_batch() as wb:
            share = sijill.shares.withdraw(wb, record_type, record_id, share_id, now)
            store.audit(
                wb,
                actor=officer.actor,
                action="share.withdraw",
                request_id=request.state.request_id,
                subject=f"{record_type}/{record_id}",
                at=now,
                details={"shareId": share_id},
            )
    except ShareError as exc:
        raise ApiProblem(404, "not-found", str(exc), "لا توجد مشاركة بهذا المعرف لهذا السجل") from None
    result: dict[str, Any] = share.to_json()
    return result


# ----------------------------------------------------------------------------- public routes


def _page(request: Request) -> HTMLResponse:
    sijill = request.app.state.sijill
    return HTMLResponse(sijill.verify_page(), headers={**PAGE_HEADERS, "Link": _module_preloads(sijill)})


def _module_preloads(sijill: Any) -> str:
    """The verifier's modules, to fetch while the page loads: sijill-verify.js imports the noble
    modules and they import each other five deep, which the browser would otherwise find one
    round trip at a time (about 0.35 s of the first verification on a loaded test machine)."""
    modules = ["sijill-verify.js", *(f"vendor/{m}" for m in sorted(sijill.vendored_modules()))]
    return ", ".join(f"</web/{m}>; rel=modulepreload" for m in modules)


@public_router.get(
    "/V/{token}",
    response_class=HTMLResponse,
    responses=problem_responses(422, 429),
    summary="The verify page of a share",
)
@public_router.get("/v/{token}", response_class=HTMLResponse, include_in_schema=False)
def verify_share_page(request: Request, token: Token) -> HTMLResponse:
    return _page(request)


@public_router.get(
    "/verify",
    response_class=HTMLResponse,
    responses=problem_responses(429),
    summary="The verify page: upload or paste a bundle",
)
def verify_upload_page(request: Request) -> HTMLResponse:
    return _page(request)


@public_router.get("/web/{name}", include_in_schema=False)
def web_asset(request: Request, name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiProblem(404, "not-found", f"no such file: {name[:64]}", "الملف غير موجود")
    body = request.app.state.sijill.web_asset(name)
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


@public_router.get("/web/vendor/{path:path}", include_in_schema=False)
def web_vendor_module(request: Request, path: str) -> Response:
    """A module of the audited cryptography sijill-verify.js imports (api/web/vendor/, copied from
    node_modules by scripts/vendor-web.mjs); only the files copied there are served."""
    sijill = request.app.state.sijill
    if path not in sijill.vendored_modules():
        raise ApiProblem(404, "not-found", f"no such file: vendor/{path[:64]}", "الملف غير موجود")
    body = sijill.web_asset(f"vendor/{path}")
    return Response(body, media_type=ASSETS["sijill-verify.js"], headers=PAGE_HEADERS)


def _shared(request: Request, token_text: str) -> tuple[Share, str]:
    """The share a token opens, with the client counted against the public limits."""
    sijill = request.app.state.sijill
    client = client_address(request)  # its public allowance is taken already (limit_public)
    wait = sijill.miss_limiter.wait(f"miss:{client}")
    if wait > 0:
        raise ApiProblem(
            429,
            "rate-limited",
            "Too many unknown certificate codes from this address; retry later",
            "رموز شهادات غير معروفة كثيرة جدًا من هذا العنوان؛ أعد المحاولة لاحقًا",
            headers=retry_after(wait),
        )
    token = normalize_token(token_text)
    share = None if token is None else sijill.shares.find(token)
    if token is None or share is None:
        sijill.miss_limiter.take(f"miss:{client}")
        raise ApiProblem(
            404,
            "not-found",
            "No certificate has this code: check it was typed or scanned whole",
            "لا توجد شهادة بهذا الرمز: تأكد من إدخاله أو مسحه كاملاً",
        )
    if share.withdrawn_at is not None:
        raise ApiProblem(
            410,
            "share-withdrawn",
            "The holder withdrew this certificate: ask them for a current one",
            "سحب صاحب الشهادة الإذن بالاطلاع عليها: اطلب منه شهادة سارية",
        )
    audit_call(
        request,
        f"client:{client}",
        "share.read",
        f"{share.record_type}/{share.record_id}",
        shareId=share.share_id,
    )
    return share, token


def _shared_bundle(request: Request, share: Share) -> Bundle:
    intake = request.app.state.sijill.node.intake
    try:
        bundle = intake.bundle(share.record_type, share.record_id, share.version)
    except IntakeError as exc:
        raise intake_problem(exc) from None
    return bundle if share.fields is None else disclose(bundle, share.fields)


def _successor_link(request: Request, share: Share) -> dict[str, str]:
    if share.successor is None:
        return {}
    return {"Link": f'<{_links(request, share.successor)["verify"]}>; rel="successor-version"'}


@public_router.get(
    "/v1/shared/{token}",
    responses={
        200: {"description": "The disclosed bundle (proof-bundle.md)", "content": {"application/json": {}}},
        202: {"description": "Not anchored yet: retry after Retry-After seconds"},
        **problem_responses(404, 410, 422, 429),
    },
    summary="The disclosed bundle a certificate's token opens",
)
def shared_bundle(request: Request, token: Token) -> Response:
    share, _ = _shared(request, token)
    bundle = _shared_bundle(request, share)
    headers = _successor_link(request, share)
    if bundle.anchor is None:
        retry = max(1, min(60, bundle.receipt.anchor_by - int(time.time())))
        return JSONResponse(
            {
                "status": "pending",
                "recordType": share.record_type,
                "recordId": share.record_id,
                "version": share.version,
                "anchorBy": bundle.receipt.anchor_by,
                "detail": "Not anchored yet; the receipt promises anchoring by anchorBy",
                "detailAr": "لم يُثبَّت على الشبكة بعد؛ الإيصال يتعهد بالتثبيت قبل الموعد المذكور",
            },
            status_code=202,
            headers={**headers, "Retry-After": str(retry)},
        )
    body = json.dumps(bundle_to_json(bundle), ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, media_type="application/json", headers=headers)


@public_router.get(
    "/c/{token}.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **problem_responses(404, 409, 410, 422, 429, 503)},
    summary="The certificate as a PDF (A4)",
)
def certificate_pdf(request: Request, token: Token) -> Response:
    from api.certificate_render import certificate_pdf as render_pdf

    cert, share = _certificate(request, token)
    with _PDF_LOCK:  # Pango and fontconfig are not safe to drive from several threads at once
        pdf = render_pdf(cert)
    name = f"sijill-{share.record_type}-{share.record_id}-v{share.version}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


@public_router.get(
    "/c/{token}",
    response_class=HTMLResponse,
    responses=problem_responses(404, 409, 410, 422, 429, 503),
    summary="The certificate as a printable page (A4)",
)
def certificate_page(request: Request, token: Token) -> HTMLResponse:
    from api.certificate_render import certificate_html

    cert, _ = _certificate(request, token)
    return HTMLResponse(certificate_html(cert, stylesheet="/web/certificate.css"))


def _certificate(request: Request, token_text: str) -> tuple[Any, Share]:
    from api.certificate import Certificate, CertificateError, cairo_zone

    try:
        cairo_zone()  # a certificate shows Egypt's time: without zone data, none is printed
    except CertificateError as exc:
        raise ApiProblem(
            503,
            "not-ready",
            f"This node cannot print certificates now: {exc}",
            "لا يمكن لهذا الخادم طباعة الشهادات الآن: تنقصه بيانات المناطق الزمنية لحساب توقيت القاهرة",
        ) from None
    sijill = request.app.state.sijill
    share, token = _shared(request, token_text)
    bundle = _shared_bundle(request, share)
    if bundle.anchor is None:
        retry = max(1, min(60, bundle.receipt.anchor_by - int(time.time())))
        raise ApiProblem(
            409,
            "not-anchored",
            "The record is not anchored on the chain yet: the certificate can be printed once it is",
            "السجل لم يُثبَّت على الشبكة بعد؛ يمكن طباعة الشهادة بعد التثبيت",
            headers={"Retry-After": str(retry)},
        )
    try:
        batch = sijill.chain.batch(bundle.agency, bundle.anchor.root)
        name = sijill.agency_name()
    except ChainUnavailable as exc:
        raise ApiProblem(
            503, "chain-unavailable", f"The chain could not be asked: {exc}", "تعذر الاتصال بالشبكة"
        ) from None
    if batch is None:  # the node's own proof names a root the chain does not know: say so, print nothing
        raise ApiProblem(
            503,
            "chain-unavailable",
            "The chain does not show this record's batch yet",
            "الدفعة غير ظاهرة على الشبكة بعد",
        )
    cert = Certificate(
        bundle=bundle,
        agency_name=name,
        anchored_block=batch.block_number,
        anchored_at=batch.timestamp,
        issued_at=share.created_at,
        verify_url=_links(request, token)["verify"],
    )
    return cert, share


__all__ = ["Shares", "officer_router", "public_router"]
