"""Problem details (RFC 9457) for every error the API answers, in English and in Arabic.

Every error is `application/problem+json`:

    {"type": "/problems/record-invalid", "title": "...", "status": 422, "detail": "...",
     "instance": "/v1/records#01J...", "titleAr": "...", "detailAr": "...",
     "errors": [{"pointer": "/record/owners/0/national_id", "rule": "national-id-birth-date",
                 "detail": "...", "detailAr": "..."}]}

`type` is a relative URI naming the problem (stable: programs key on it; the list is in
docs/api.md); `title` and `detail` are English, `titleAr` and `detailAr` Arabic; `errors`
(validation problems only) pins each broken rule to a JSON Pointer into the request body.
Messages never repeat submitted values: records hold personal data, and errors end up in logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.records import FieldProblem

PROBLEM_JSON = "application/problem+json"

# type slug -> (title en, title ar)
TITLES: dict[str, tuple[str, str]] = {
    "bad-request": ("Bad request", "طلب غير صالح"),
    "invalid-json": ("The body is not valid JSON", "محتوى الطلب ليس JSON صالحًا"),
    "request-invalid": ("The request is invalid", "الطلب غير صالح"),
    "record-invalid": ("The record is invalid", "السجل غير صالح"),
    "bundle-invalid": ("The proof bundle is invalid", "مستند الإثبات غير صالح"),
    "unauthenticated": ("Authentication required", "يلزم التحقق من الهوية"),
    "forbidden": ("Not allowed", "غير مسموح"),
    "not-found": ("Not found", "غير موجود"),
    "method-not-allowed": ("Method not allowed", "الطريقة غير مسموح بها"),
    "not-acceptable": ("Not acceptable", "غير مقبول"),
    "conflict": ("Conflict with the current state", "تعارض مع الحالة الحالية"),
    "idempotency-key-reused": (
        "The Idempotency-Key was used for a different request",
        "مفتاح عدم التكرار استُخدم لطلب مختلف",
    ),
    "idempotency-key-in-use": (
        "A request with this Idempotency-Key is still being processed",
        "طلب بنفس مفتاح عدم التكرار ما زال قيد المعالجة",
    ),
    "too-large": ("The request is too large", "الطلب أكبر من المسموح"),
    "uri-too-long": ("The request target is too long", "عنوان الطلب أطول من المسموح"),
    "header-too-large": ("The request's header fields are too large", "ترويسات الطلب أكبر من المسموح"),
    "unsupported-media-type": ("Unsupported media type", "نوع المحتوى غير مدعوم"),
    "rate-limited": ("Too many requests", "طلبات كثيرة جدًا"),
    "chain-unavailable": ("The chain is unavailable", "الشبكة غير متاحة حاليًا"),
    "store-unavailable": ("The node's store is unavailable", "مخزن بيانات العقدة غير متاح حاليًا"),
    "not-ready": ("The node is not ready", "العقدة غير جاهزة"),
    "internal": ("Internal error", "خطأ داخلي"),
    "peer-unauthenticated": ("The peer request is not authenticated", "طلب الجهة غير موثّق"),
    "share-withdrawn": ("The holder withdrew this certificate", "سحب صاحب الشهادة الإذن بالاطلاع عليها"),
    "not-anchored": ("Not anchored on the chain yet", "لم يُثبَّت على الشبكة بعد"),
}
# node/peer/auth.py's refusal codes name the problem exactly (peer-replay, peer-timestamp-skew, ...).
for _code in (
    "peer-headers-missing",
    "peer-headers-malformed",
    "peer-timestamp-skew",
    "peer-signature-invalid",
    "peer-not-a-signer",
    "peer-signer-retired",
    "peer-replay",
):
    TITLES[_code] = TITLES["peer-unauthenticated"]
for _code in ("peer-agency-mismatch", "peer-agency-not-active", "peer-same-agency"):
    TITLES[_code] = ("The calling agency may not make this request", "الجهة الطالبة غير مخولة بهذا الطلب")


class ProblemItem(BaseModel):
    pointer: str = Field(description="JSON Pointer into the request body ('' for the whole body)")
    rule: str = Field(description="the rule broken, a stable kebab-case id")
    detail: str
    detailAr: str


class Problem(BaseModel):
    """RFC 9457 problem details, with Arabic beside English."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    titleAr: str
    detailAr: str
    errors: list[ProblemItem] | None = None


class ApiProblem(Exception):
    """Raise anywhere in a route: answered as problem details."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        detail_ar: str,
        *,
        errors: Sequence[ProblemItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.detail_ar = detail_ar
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}


def problem_body(
    status: int,
    kind: str,
    detail: str,
    detail_ar: str,
    instance: str,
    errors: Sequence[ProblemItem] | None = None,
) -> dict[str, Any]:
    title, title_ar = TITLES.get(kind, TITLES["bad-request"])
    body: dict[str, Any] = {
        "type": f"/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "titleAr": title_ar,
        "detailAr": detail_ar,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    return body


def problem_response(
    request: Request | None,
    status: int,
    kind: str,
    detail: str,
    detail_ar: str,
    *,
    errors: Sequence[ProblemItem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    instance = _instance(request)
    return JSONResponse(
        problem_body(status, kind, detail, detail_ar, instance, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _instance(request: Request | None) -> str:
    if request is None:
        return ""
    request_id = getattr(request.state, "request_id", "")
    return f"{request.url.path}#{request_id}" if request_id else request.url.path


def field_problems(problems: Iterable[FieldProblem], prefix: str = "") -> list[ProblemItem]:
    return [
        ProblemItem(pointer=prefix + p.path, rule=p.rule, detail=p.message_en, detailAr=p.message_ar)
        for p in problems
    ]


_RULES_AR = {
    "missing": "حقل مطلوب غير موجود",
    "extra_forbidden": "حقل غير معروف",
    "int_type": "يجب أن تكون القيمة عددًا صحيحًا",
    "int_parsing": "يجب أن تكون القيمة عددًا صحيحًا",
    "string_type": "يجب أن تكون القيمة نصًا",
    "dict_type": "يجب أن تكون القيمة كائن JSON",
    "model_attributes_type": "يجب أن تكون القيمة كائن JSON",
    "list_type": "يجب أن تكون القيمة قائمة",
    "greater_than_equal": "القيمة أصغر من المسموح",
    "less_than_equal": "القيمة أكبر من المسموح",
    "string_pattern_mismatch": "القيمة لا تطابق الصيغة المطلوبة",
    "string_too_long": "النص أطول من المسموح",
    "string_too_short": "النص أقصر من المسموح",
    "enum": "القيمة ليست من القيم المسموح بها",
    "literal_error": "القيمة ليست من القيم المسموح بها",
    "json_invalid": "محتوى الطلب ليس JSON صالحًا",
    "bool_type": "يجب أن تكون القيمة صحيحة أو خاطئة",
    "too_long": "القائمة أطول من المسموح",
    "too_short": "القائمة أقصر من المسموح",
}


def _pointer(location: Sequence[int | str]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def validation_items(exc: RequestValidationError) -> list[ProblemItem]:
    """Pydantic's request errors as problem items. The location's first part says where (body,
    query, path, header); it becomes the pointer's first segment except for the body itself."""
    items = []
    for error in exc.errors():
        location = list(error.get("loc", ()))
        where = location[0] if location else "body"
        rest = location[1:] if where == "body" else location
        kind = str(error.get("type", "invalid"))
        message = str(error.get("msg", "invalid value"))
        items.append(
            ProblemItem(
                pointer=_pointer(rest),
                rule=kind.replace("_", "-"),
                detail=f"{where} {_pointer(location[1:]) or ''}: {message}".replace("  ", " "),
                detailAr=_RULES_AR.get(kind, "قيمة غير صالحة"),
            )
        )
    return items


async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        request, exc.status, exc.kind, exc.detail, exc.detail_ar, errors=exc.errors, headers=exc.headers
    )


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = validation_items(exc)
    body_json = any(e.get("type") == "json_invalid" for e in exc.errors())
    if body_json:
        return problem_response(
            request,
            400,
            "invalid-json",
            "The request body is not valid JSON",
            "محتوى الطلب ليس JSON صالحًا",
            errors=items,
        )
    return problem_response(
        request,
        422,
        "request-invalid",
        f"{len(items)} problem{'s' if len(items) != 1 else ''} in the request: "
        + "; ".join(f"{i.pointer or '(body)'} [{i.rule}]" for i in items[:10]),
        "الطلب غير صالح: راجع قائمة الأخطاء",
        errors=items,
    )


_HTTP_KINDS = {
    400: ("bad-request", "The request is malformed", "الطلب غير صالح"),
    401: ("unauthenticated", "Authentication required", "يلزم التحقق من الهوية"),
    403: ("forbidden", "Not allowed", "غير مسموح"),
    404: ("not-found", "There is nothing at this address", "لا يوجد شيء في هذا العنوان"),
    405: ("method-not-allowed", "This method is not allowed here", "هذه الطريقة غير مسموح بها هنا"),
    406: ("not-acceptable", "No acceptable representation", "لا يوجد تمثيل مقبول"),
    413: ("too-large", "The request is too large", "الطلب أكبر من المسموح"),
    415: ("unsupported-media-type", "Unsupported media type", "نوع المحتوى غير مدعوم"),
}


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind, detail, detail_ar = _HTTP_KINDS.get(
        exc.status_code, ("bad-request", str(exc.detail), "طلب غير صالح")
    )
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(request, exc.status_code, kind, detail, detail_ar, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path takes. Starlette names only the methods of the first route that
    matches the path, and a path such as `.../shares` has one route for GET and one for POST."""
    routes = getattr(request.app.state, "route_methods", ())
    methods = {m for pattern, names in routes if pattern.match(request.url.path) for m in names}
    return ", ".join(sorted(methods))


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The last resort. Logged with its traceback; the caller gets no internals."""
    import logging

    logging.getLogger("sijill.api").exception("unexpected error on %s", request.url.path, exc_info=exc)
    return problem_response(
        request,
        500,
        "internal",
        "The server failed to answer this request; it has been logged",
        "تعذر على الخادم إجابة هذا الطلب وتم تسجيل الخطأ",
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem statuses a route may answer."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": _DESCRIPTIONS.get(status, ""),
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, bad header)",
    401: "Missing, unknown, expired or revoked token",
    403: "The token's role or agency does not allow this",
    404: "Not found",
    409: "Conflict: stale version, revoked record, Idempotency-Key in use",
    413: "Body larger than the limit",
    415: "Wrong Content-Type",
    422: "Invalid request or record: `errors` names each field and rule",
    429: "Rate limit exceeded: see Retry-After",
    503: "The chain, the node or its store is unavailable: see Retry-After",
}
