"""The first thing every request meets: a request id, the body limits, the security headers and
the metrics timer. It wraps everything else, the last-resort 500 handler included (see
`api.app.create_app`), so that no answer leaves without what it adds.

- Every request gets an id (`X-Request-Id` in the answer, `instance` in problem details, the
  audit trail's `requestId`).
- A body longer than `max_body` is refused with 413 before it is read whole (by Content-Length,
  or by counting a chunked body as it arrives). The bulk route streams and limits each line
  instead (`max_line`).
- JSON bodies are checked for nesting depth before anything parses them: eth-account's py_ecc
  raises Python's recursion limit to 100,000, so a hostile `[[[[...` would otherwise overflow
  the C stack inside json.loads and kill the process.
- Every answer carries `SECURITY_HEADERS`: one Content-Security-Policy for the whole API (the
  verify page's: scripts, styles and images from this node only, no inline script, nothing may
  frame it; on JSON it is as harmless as it is strict), `X-Content-Type-Options: nosniff` and
  `Referrer-Policy: no-referrer`. An answer that names no Cache-Control gets `no-store`: officer
  and auditor answers, shared bundles and certificates hold personal data, and no cache on the
  way (a shared office proxy, the browser's disk) may keep them. Only what holds none says
  otherwise: the verify page and its files (`no-cache`: kept, but checked again each time).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from api.metrics import Metrics
from api.problems import PROBLEM_JSON, problem_body
from ledger.canonical import too_deep

MAX_JSON_NESTING = 16
STREAMED_PATHS = ("/v1/records/bulk",)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # The verify page reads the chain through this node's /rpc, or through any endpoint the
        # citizen names to cross-check it (another agency's /rpc; that node's CORS decides).
        "connect-src 'self' http: https:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def new_request_id() -> str:
    return os.urandom(8).hex()


class Guard:
    """Pure ASGI middleware (no per-request task or thread: it sits on the hot path)."""

    def __init__(self, app: Any, *, max_body: int, metrics: Metrics, direct: Any = None) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.direct = direct  # api.fastpath.DirectRoutes: routes answered past FastAPI's layers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status_seen = 500
        path = scope.get("path", "")

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                message["headers"] = _with_headers(list(message.get("headers") or []), request_id)
            await send(message)

        try:
            if path in STREAMED_PATHS:
                await self.app(scope, receive, send_with_id)
                return
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._refuse(send_with_id, scope, request_id, 413, "too-large", self._too_large())
                return
            body, complete = await self._read(receive)
            if not complete:
                await self._refuse(send_with_id, scope, request_id, 413, "too-large", self._too_large())
                return
            if body and too_deep(body, MAX_JSON_NESTING):
                detail = (
                    f"The JSON body nests deeper than {MAX_JSON_NESTING} levels",
                    f"محتوى JSON متداخل لأكثر من {MAX_JSON_NESTING} مستوى",
                )
                await self._refuse(send_with_id, scope, request_id, 400, "invalid-json", detail)
                return
            route = self.direct.route_of(scope) if self.direct is not None else None
            if route is not None and await self.direct.answer(
                route, scope, _replay(body, receive), send_with_id
            ):
                return
            await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.observe_request(
                template, scope.get("method", ""), status_seen, time.perf_counter() - started
            )

    def _too_large(self) -> tuple[str, str]:
        return (
            f"The body is larger than {self.max_body} bytes (setting --max-body); "
            "for many records use POST /v1/records/bulk",
            f"حجم الطلب أكبر من {self.max_body} بايت؛ للسجلات الكثيرة استخدم المسار bulk",
        )

    async def _read(self, receive: Any) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(parts), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True

    @staticmethod
    async def _refuse(
        send: Any, scope: Scope, request_id: str, status: int, kind: str, detail: tuple[str, str]
    ) -> None:
        body = json.dumps(
            problem_body(status, kind, detail[0], detail[1], f"{scope.get('path', '')}#{request_id}"),
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _with_headers(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """An answer's headers with the request id and the security headers, which no route can
    loosen (a route's own are replaced). A route may name its Cache-Control (the verify page
    does); without one, `no-store`."""
    ours = {name for name, _ in SECURITY_HEADERS}
    kept = [(name, value) for name, value in headers if name.lower() not in ours]
    if not any(name.lower() == b"cache-control" for name, _ in kept):
        kept.append((b"cache-control", b"no-store"))
    return [*kept, *SECURITY_HEADERS, (b"x-request-id", request_id.encode())]


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay
