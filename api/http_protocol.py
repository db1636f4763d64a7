"""Malformed HTTP answered like every other error: problem details in English and Arabic.

A request the HTTP parser cannot read (an unknown method token, a negative or non-numeric
Content-Length, a header name with a space or a control character, a broken request line)
never reaches the app: uvicorn's protocol answers it itself, by default with a plain-text
`400 Invalid HTTP request received.`. `ProblemHttpProtocol` is uvicorn's protocol with only
that answer replaced: a 400 `bad-request` problem (`application/problem+json`) carrying the
same security headers, `Cache-Control: no-store` and `X-Request-Id` as every answer of the app
(api/guard.py), then the connection is closed, as uvicorn does, since the rest of the bytes
cannot be framed. Its `instance` is `#<request id>` alone: no path was read.

`sijill serve` passes it to uvicorn as `http=`; it extends the protocol uvicorn's `auto`
would pick (httptools when installed, which the pinned dependencies install; h11 otherwise).
"""

from __future__ import annotations

import json
from typing import Any

from api.guard import SECURITY_HEADERS, new_request_id
from api.problems import PROBLEM_JSON, problem_body

MALFORMED_DETAIL = (
    "The request is not valid HTTP/1.1 (its request line, method, a header or its "
    "Content-Length cannot be read), so it was not processed",
    "الطلب ليس HTTP/1.1 صالحًا (تعذرت قراءة سطر الطلب أو الطريقة أو إحدى الترويسات أو "
    "Content-Length)، فلم تتم معالجته",
)


def malformed_request_answer() -> bytes:
    """The whole HTTP/1.1 answer to a request that cannot be parsed (then the socket closes)."""
    request_id = new_request_id()
    body = json.dumps(
        problem_body(400, "bad-request", *MALFORMED_DETAIL, f"#{request_id}"), ensure_ascii=False
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        (b"x-request-id", request_id.encode()),
    ]
    lines = [b"HTTP/1.1 400 Bad Request", *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _problem_protocol(base: Any) -> Any:
    class ProblemHttpProtocol(base):  # type: ignore[misc]
        """uvicorn's HTTP protocol, answering a request it cannot parse with problem details."""

        def send_400_response(self, msg: str) -> None:
            self.transport.write(malformed_request_answer())
            self.transport.close()

    return ProblemHttpProtocol


def problem_http_protocol() -> type:
    """The protocol class for uvicorn's `http=`: the one `auto` picks, with a problem-details 400."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a pinned dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return _problem_protocol(H11Protocol)  # type: ignore[no-any-return]
    return _problem_protocol(HttpToolsProtocol)  # type: ignore[no-any-return]
