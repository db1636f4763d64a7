"""Requests refused before the app sees them, answered like every other error: problem details
in English and Arabic.

A request the HTTP parser cannot read (an unknown method token, a negative or non-numeric
Content-Length, a header name with a space or a control character, a broken request line)
never reaches the app: uvicorn's protocol answers it itself, by default with a plain-text
`400 Invalid HTTP request received.`. `ProblemHttpProtocol` is uvicorn's protocol with that
answer replaced: a 400 `bad-request` problem (`application/problem+json`) carrying the same
security headers, `Cache-Control: no-store` and `X-Request-Id` as every answer of the app
(api/guard.py), then the connection is closed, as uvicorn does, since the rest of the bytes
cannot be framed. Its `instance` is `#<request id>` alone: no path was read.

It also caps a request's head, the request line and the header fields together, at
`MAX_REQUEST_HEAD` bytes (32 KiB). httptools, uvicorn's parser here, has no such limit: it
buffers a header field whole before handing it over, so a 1 MB header would reach the app, and
a client could make the node hold as much as it cares to send. 32 KiB is what nginx, the usual
reverse proxy in front of a node, admits with its defaults (a request line or one header line
of at most 8 KiB, in at most four 8 KiB buffers); no client of this API comes near it (a bearer
token is 43 characters, a peer's signature headers a few hundred bytes). A head over the cap is
answered 431 `header-too-large` (RFC 6585), or 414 `uri-too-long` while no header field has
been read yet (the request line alone is too long), and the connection is closed. Bytes are
counted as they arrive, so a head that never ends is refused once it passes the cap.

Every such refusal is counted by status (`refusal_counts`), for `/metrics`: the app never sees
these requests, so its own counters cannot.

`sijill serve` passes it to uvicorn as `http=`; it extends the protocol uvicorn's `auto`
would pick (httptools when installed, which the pinned dependencies install; h11 otherwise,
whose own cap on an incomplete head, 16 KiB by default, answers a plain 400).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from api.guard import SECURITY_HEADERS, new_request_id
from api.problems import PROBLEM_JSON, problem_body

MAX_REQUEST_HEAD = 32 * 1024
"""The most bytes a request line and its header fields may take together."""

LINGER_SECONDS = 5.0
"""How long a refused request's connection stays open to drain what the client still sends."""

MALFORMED_DETAIL = (
    "The request is not valid HTTP/1.1 (its request line, method, a header or its "
    "Content-Length cannot be read), so it was not processed",
    "الطلب ليس HTTP/1.1 صالحًا (تعذرت قراءة سطر الطلب أو الطريقة أو إحدى الترويسات أو "
    "Content-Length)، فلم تتم معالجته",
)
# What each refusal is: (status, problem type, detail in English, in Arabic).
_REFUSALS: dict[str, tuple[int, str, str, str]] = {
    "malformed": (400, "bad-request", *MALFORMED_DETAIL),
    "uri-too-long": (
        414,
        "uri-too-long",
        f"The request line is over {MAX_REQUEST_HEAD // 1024} KiB, the most a request's line and "
        "header fields may take together, so it was not processed",
        f"سطر الطلب أطول من {MAX_REQUEST_HEAD // 1024} كيلوبايت، وهو أقصى ما يجوز لسطر الطلب "
        "وترويساته معًا، فلم تتم معالجته",
    ),
    "header-too-large": (
        431,
        "header-too-large",
        f"The request line and header fields are over {MAX_REQUEST_HEAD // 1024} KiB together, "
        "so the request was not processed",
        f"سطر الطلب وترويساته معًا أكبر من {MAX_REQUEST_HEAD // 1024} كيلوبايت، فلم تتم معالجة الطلب",
    ),
}

# Reason phrases as RFC 9110 and RFC 6585 write them (Python 3.11's http.HTTPStatus still has
# RFC 2616's "Request-URI Too Long").
_PHRASES = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}

_refused: Counter[int] = Counter()


def refusal_counts() -> dict[int, int]:
    """Requests refused by the HTTP layer in this process, by status (400, 414, 431)."""
    return {status: _refused[status] for status, *_ in _REFUSALS.values()}


def refusal_answer(reason: str) -> bytes:
    """The whole HTTP/1.1 answer refusing a request (then the socket closes): `reason` is
    "malformed", "uri-too-long" or "header-too-large"."""
    status, kind, detail, detail_ar = _REFUSALS[reason]
    request_id = new_request_id()
    body = json.dumps(
        problem_body(status, kind, detail, detail_ar, f"#{request_id}"), ensure_ascii=False
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        (b"x-request-id", request_id.encode()),
    ]
    status_line = f"HTTP/1.1 {status} {_PHRASES[status]}".encode()
    lines = [status_line, *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def malformed_request_answer() -> bytes:
    """The whole HTTP/1.1 answer to a request that cannot be parsed (then the socket closes)."""
    return refusal_answer("malformed")


def _linger(transport: Any) -> None:
    """Close after an answer sent while the client may still be sending (nginx's lingering close).

    Closing a socket with unread bytes in it makes the kernel send a reset, and a client still
    writing its request would then lose the answer too. So the answer is followed by the end of
    our side of the stream only; what the client goes on sending is read and dropped, until it
    closes its side or `LINGER_SECONDS` have passed."""
    if transport.can_write_eof():
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
    else:  # pragma: no cover - a TCP transport can always end its side
        transport.close()


class _HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools stops parsing and reports a parser error."""


def _problem_protocol(base: Any) -> Any:
    class ProblemHttpProtocol(base):  # type: ignore[misc]
        """uvicorn's HTTP protocol, answering a request it cannot parse or whose head is too
        large with problem details."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._reading_head = True  # a connection starts with a request line
            self._head_arrived = 0  # bytes received while reading the current head
            self._head_size = 0  # bytes of the request line and header fields parsed so far
            self._head_ended = False  # a head ended in the chunk being parsed
            self._too_large: str | None = None
            self._lingering = False

        def data_received(self, data: bytes) -> None:
            if self._lingering:
                return  # lingering after a refusal: what else the client sends is dropped unread
            reading_before, self._head_ended = self._reading_head, False
            super().data_received(data)
            # A head was being read before this chunk and still is, none ended in it: httptools
            # holds the unfinished field in memory, so count what came. Not counted: a chunk that
            # ended a body (it may be most of that body), nor one in which a head ended (it may
            # hold that request's whole body too: a 100 KB POST read in one go on a busy machine
            # was refused as a 431 when it was); the fields parsed are counted one by one anyway
            # (`_grow`).
            if reading_before and not self._head_ended and self._reading_head and self._too_large is None:
                self._head_arrived += len(data)
                if self._head_arrived > MAX_REQUEST_HEAD:
                    self._refuse("header-too-large" if getattr(self, "headers", None) else "uri-too-long")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._reading_head = True
            self._head_size = 0

        def on_url(self, url: bytes) -> None:
            self._grow(len(url), "uri-too-long")
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._grow(len(name) + len(value) + 4, "header-too-large")  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._reading_head = False
            self._head_ended = True
            self._head_arrived = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._reading_head = True  # the next request's head may follow on this connection

        def _grow(self, size: int, reason: str) -> None:
            self._head_size += size
            if self._head_size > MAX_REQUEST_HEAD:
                self._too_large = reason
                raise _HeadTooLarge(reason)  # the parser stops; uvicorn calls send_400_response

        def _refuse(self, reason: str) -> None:
            self._too_large = reason
            _refused[_REFUSALS[reason][0]] += 1
            if self.transport.is_closing():
                return
            self.transport.write(refusal_answer(reason))
            _linger(self.transport)
            self._lingering = True

        def send_400_response(self, msg: str) -> None:
            self._refuse(self._too_large or "malformed")

    return ProblemHttpProtocol


def _plain_problem_protocol(base: Any) -> Any:
    class ProblemHttpProtocol(base):  # type: ignore[misc]
        """uvicorn's h11 protocol, answering a request it cannot parse with problem details."""

        def send_400_response(self, msg: str) -> None:
            _refused[400] += 1
            self.transport.write(malformed_request_answer())
            _linger(self.transport)

    return ProblemHttpProtocol


def problem_http_protocol() -> type:
    """The protocol class for uvicorn's `http=`: the one `auto` picks, with problem-details refusals."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a pinned dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return _plain_problem_protocol(H11Protocol)  # type: ignore[no-any-return]
    return _problem_protocol(HttpToolsProtocol)  # type: ignore[no-any-return]
