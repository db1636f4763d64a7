"""API hardening against real `sijill serve` processes on the session's anvil: the security
headers of every answer, the CSP of the verify page and its files, CORS on /rpc only and only for
allowed origins, body limits on every route that takes a body, rate limits on every public route,
and secrets compared in constant time.

Three nodes: REPD with tight body limits, a public URL and two allowed origins, offering CSO's
/rpc for a cross-check; CSO offering REPD's (agencies cross-check each other both ways); CRA
with one public request a second, two a second per officer token, and records that stay pending.
Public limits count per client address, so each test that calls a public route does so from an
address of its own (127.0.0.x: every loopback address reaches the node)."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import hmac
import itertools
import json
import posixpath
import re
import secrets
import socket
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api_helpers import Server, expect_problem, servers, wait_anchored
from uvicorn.server import ServerState
from web3 import Web3

from api.citizen import ASSETS
from api.http_protocol import problem_http_protocol
from ledger.records.examples import commercial_example, title_example
from node.chain.toolchain import PROJECT_ROOT, CompiledContract
from node.errors import StoreError
from node.store import Store

pytestmark = pytest.mark.chain

MAX_BODY = 4096
MAX_LINE = 2048
PUBLIC_URL = "http://repd.registry.example:8601"
PORTAL = "https://portal.example.gov.eg"
SECOND_PORTAL = "https://one-window.example.gov.eg:8443"
# XML namespace names, given to createElementNS: identifiers, never fetched.
NAMESPACES = ("http://www.w3.org/2000/svg",)

_addresses = (f"127.0.0.{n}" for n in itertools.count(2))


@pytest.fixture(scope="module")
def api(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    def flags(urls: dict[str, str]) -> dict[str, tuple[str, ...]]:
        return {
            "REPD": (
                *("--max-body", str(MAX_BODY), "--max-line", str(MAX_LINE), "--public-url", PUBLIC_URL),
                *(
                    "--verify-peer",
                    f"{urls['CSO']}/rpc",
                    "--cors-origin",
                    PORTAL,
                    "--cors-origin",
                    SECOND_PORTAL,
                ),
            ),
            "CSO": ("--verify-peer", f"{urls['REPD']}/rpc"),
            "CRA": ("--public-rate", "1", "--rate-limit", "2", "--max-age", "3600"),
        }

    with servers(
        w3, compiled, tmp_path_factory.mktemp("hardening"), devchain.rpc_url, extra=flags
    ) as started:
        yield started


def public(server: Server, **kwargs: Any) -> httpx.Client:
    """A client without a token, from a loopback address no other test uses."""
    transport = httpx.HTTPTransport(local_address=next(_addresses))
    return httpx.Client(base_url=server.url, transport=transport, timeout=60, **kwargs)


def _title(officer: httpx.Client) -> str:
    created = officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
    assert created.status_code == 201, created.text
    return str(created.json()["links"]["self"])


def _share(officer: httpx.Client, record: str) -> str:
    made = officer.post(record + "/shares", json={"fields": ["/title_number", "/use"]})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


@pytest.fixture(scope="module")
def repd_share(api: dict[str, Server]) -> tuple[str, str]:
    """An anchored REPD record and a share of it: (record path, share token)."""
    with api["REPD"].client("officer") as officer:
        record = _title(officer)
        assert wait_anchored(officer, record + "/bundle").status_code == 200
        return record, _share(officer, record)


# ----------------------------------------------------------------------------- security headers


def parse_csp(value: str) -> dict[str, list[str]]:
    """A Content-Security-Policy by directive; a directive given twice is an error (browsers
    would silently ignore the second)."""
    directives: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in value.split(";"))):
        name, *sources = part.split()
        assert name.lower() not in directives, f"{name} twice in {value!r}"
        directives[name.lower()] = sources
    return directives


def assert_strict_csp(response: httpx.Response) -> None:
    csp = parse_csp(response.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"], csp  # no 'unsafe-inline', 'unsafe-eval', host or scheme
    assert csp["style-src"] == ["'self'"], csp
    assert csp["default-src"] in (["'none'"], ["'self'"]), csp
    assert csp["frame-ancestors"] == ["'none'"], csp
    assert csp["base-uri"] in (["'none'"], ["'self'"]) and csp["form-action"] in (["'none'"], ["'self'"]), csp
    assert not any(s.startswith("'unsafe-") for sources in csp.values() for s in sources), csp


class _Markup(HTMLParser):
    """What in a page could run or load something: scripts, event handlers, style attributes,
    and every URL an attribute names."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name == "style":
                self.styles.append(f"<{tag} style>")
            if name in ("src", "href", "action", "formaction", "data", "poster") and value is not None:
                self.urls.append(value)


def assert_safe_html(html: str) -> None:
    markup = _Markup()
    markup.feed(html)
    assert not markup.handlers and not markup.styles, (markup.handlers, markup.styles)
    for script in markup.scripts:
        # A script runs only from this node's own files; the config element is JSON data.
        assert script.get("type") == "application/json" or str(script.get("src", "")).startswith("/web/"), (
            script
        )
    for url in markup.urls:
        assert url.startswith(("/", "#", "data:")) and not url.startswith("//"), url
    assert "javascript:" not in html.lower()


def assert_no_external_host(body: str, name: str) -> None:
    """No URL of another host, protocol-relative URL, CSS import, web font or CSS url() but data:
    in `body` (XML namespace names aside)."""
    rest = body
    for namespace in NAMESPACES:
        rest = rest.replace(namespace, "")
    external = (
        r"(?i)\b(?:https?|wss?|ftp)://[a-z0-9-]+(?:\.[a-z0-9-]+)+|(?<![:\w])//[a-z0-9-]+(?:\.[a-z0-9-]+)+[:/]"
    )
    assert not re.search(external + r"|@import|@font-face", rest), (name, re.findall(external, rest))
    assert not re.search(r"url\(\s*['\"]?(?!data:)", rest), name


def test_every_answer_carries_the_security_headers(
    api: dict[str, Server], repd_share: tuple[str, str]
) -> None:
    repd = api["REPD"]
    record, token = repd_share
    pages = {f"/V/{token}", f"/v/{token.lower()}", "/verify", f"/c/{token}"}
    assets = {f"/web/{name}" for name in ASSETS}
    answers: dict[str, httpx.Response] = {}
    with public(repd) as anyone, repd.client("officer") as officer, repd.client("auditor") as auditor:
        # Every HTML route the API documents is among the pages checked here.
        schema = anyone.get("/openapi.json").json()
        html_routes = {
            path
            for path, operations in schema["paths"].items()
            for operation in operations.values()
            if any("text/html" in r.get("content", {}) for r in operation["responses"].values())
        }
        assert html_routes == {"/V/{token}", "/verify", "/c/{token}"}, html_routes
        for path in sorted(pages | assets):
            answers[path] = anyone.get(path)
            assert answers[path].status_code == 200, (path, answers[path].text)
        answers["shared"] = anyone.get(f"/v1/shared/{token}")
        answers["pdf"] = anyone.get(f"/c/{token}.pdf")
        answers["verify"] = anyone.post("/v1/verify", content=answers["shared"].content)
        answers["rpc"] = anyone.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        answers["unknown code"] = anyone.get(f"/v1/shared/{'A' * 32}")
        answers["no such file"] = anyone.get("/web/nothing.js")
        answers["healthz"] = anyone.get("/healthz")
        answers["openapi"] = anyone.get("/openapi.json")
        answers["unauthenticated"] = anyone.get(record)
        answers["too large"] = anyone.post("/v1/records", content=b"x" * (MAX_BODY + 1))
        answers["peer"] = anyone.get(record.replace("/v1/records/", "/v1/peer/records/"))
        answers["record"] = officer.get(record)
        answers["bundle"] = officer.get(record + "/bundle")
        answers["shares"] = officer.get(record + "/shares")
        answers["invalid"] = officer.post("/v1/records", json={"recordType": "title", "record": {}})
        answers["batches"] = auditor.get("/v1/batches")
        answers["receipts"] = auditor.get("/v1/receipts")
        answers["audit"] = auditor.get("/v1/audit")
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses["shared"] == statuses["pdf"] == statuses["verify"] == statuses["record"] == 200, statuses
    assert statuses["audit"] == statuses["batches"] == statuses["rpc"] == 200, statuses
    assert statuses["unauthenticated"] == statuses["peer"] == 401 and statuses["too large"] == 413, statuses
    assert statuses["invalid"] == 422 and statuses["unknown code"] == statuses["no such file"] == 404, (
        statuses
    )
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        # Only the page and its files, which hold no personal data, may be kept by a cache.
        expected = "no-cache" if name in (pages - {f"/c/{token}"}) | assets else "no-store"
        assert answer.headers["cache-control"] == expected, name
        assert answer.headers["x-request-id"], name
    page = answers[f"/V/{token}"].text
    config = re.search(r'<script id="sijill-config" type="application/json">(.*?)</script>', page, re.S)
    assert config is not None and json.loads(config[1])["peers"] == [f"{api['CSO'].url}/rpc"]
    for path in pages | assets:
        assert_strict_csp(answers[path])
        # Data, not references: the peers the page offers (its config) and the certificate's own
        # verify URL, printed as text beside its QR code.
        text = answers[path].text.replace(config[0], "")
        assert_no_external_host(re.sub(re.escape(PUBLIC_URL), "", text, flags=re.I), path)
    for path in pages:
        assert_safe_html(answers[path].text)
    # The certificate page takes its stylesheet from the node: the same one the PDF carries inline.
    assert '<link rel="stylesheet" href="/web/certificate.css">' in answers[f"/c/{token}"].text
    assert "<style" not in answers[f"/c/{token}"].text and "@page" in answers["/web/certificate.css"].text


# ----------------------------------------------------------------------------- malformed HTTP

MALFORMED_REQUESTS = {
    "unknown method token": b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "negative Content-Length": b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "Content-Length not a number": b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
    "space in a header name": b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    "control character in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "broken request line": b"GET /healthz HTTP/9.Z\r\nHost: x\r\n\r\n",
}


def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send bytes as they are and read the whole answer (the server closes the connection)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("name", MALFORMED_REQUESTS)
def test_malformed_http_is_answered_with_problem_details(api: dict[str, Server], name: str) -> None:
    """Requests the HTTP parser cannot read never reach the app; the answer is still a 400
    problem in English and Arabic with every security header (api/http_protocol.py)."""
    answer = _raw_exchange(api["REPD"].url, MALFORMED_REQUESTS[name])
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line == "HTTP/1.1 400 Bad Request", (name, answer[:300])
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
    assert headers["content-type"] == "application/problem+json", headers
    assert int(headers["content-length"]) == len(body) and headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    problem = json.loads(body)
    assert problem["type"] == "/problems/bad-request" and problem["status"] == 400
    assert problem["instance"] == "#" + headers["x-request-id"]
    assert "HTTP/1.1" in problem["detail"] and problem["titleAr"] and problem["detailAr"]
    # The node goes on serving.
    assert httpx.get(api["REPD"].url + "/healthz").status_code == 200


def _refused_counts(server: Server) -> dict[str, int]:
    """sijill_http_refused_total by status, as /metrics says now."""
    with public(server) as anyone:
        text = anyone.get("/metrics").text
    return {
        m[1]: int(m[2])
        for m in re.finditer(r'^sijill_http_refused_total\{status="(\d+)"\} (\d+)$', text, re.M)
    }


HEAD_LIMIT = 32 * 1024  # api/http_protocol.py MAX_REQUEST_HEAD, as docs/api.md gives it
OVERSIZED_HEADS = {
    # A header of 1 MB: httptools buffers a field whole, so it reached the app before the cap.
    "one 1 MB header": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        "431 Request Header Fields Too Large",
        "header-too-large",
    ),
    # Many header fields, each small (nginx's per-line buffer would take each of them).
    "forty 1 KiB headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Field-%d: " % i + b"b" * 1024 + b"\r\n" for i in range(40))
        + b"\r\n",
        "431 Request Header Fields Too Large",
        "header-too-large",
    ),
    # The request line alone over the cap (httptools could not even read a target over 64 KiB).
    "request target over the cap": (
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "414 URI Too Long",
        "uri-too-long",
    ),
}


@pytest.mark.parametrize("name", OVERSIZED_HEADS)
def test_a_request_head_over_32_kib_is_refused_with_problem_details(
    api: dict[str, Server], name: str
) -> None:
    """The request line and header fields together are capped at 32 KiB (nginx's default buffers):
    over it, 431 (or 414 for the request line alone) as a problem in English and Arabic with every
    security header, the connection closed, the refusal counted in /metrics."""
    request, status_line_wanted, kind = OVERSIZED_HEADS[name]
    status = status_line_wanted.split()[0]
    before = _refused_counts(api["REPD"])
    answer = _raw_exchange(api["REPD"].url, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line == f"HTTP/1.1 {status_line_wanted}", (name, answer[:300])
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
    assert headers["content-type"] == "application/problem+json", headers
    assert int(headers["content-length"]) == len(body) and headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    problem = json.loads(body)
    assert problem["type"] == f"/problems/{kind}" and problem["status"] == int(status), problem
    assert problem["instance"] == "#" + headers["x-request-id"]
    assert "32 KiB" in problem["detail"] and "32" in problem["detailAr"] and problem["titleAr"], problem
    after = _refused_counts(api["REPD"])
    assert after[status] == before[status] + 1, (before, after)
    assert httpx.get(api["REPD"].url + "/healthz").status_code == 200


def test_a_request_head_just_under_32_kib_is_served(api: dict[str, Server]) -> None:
    """The cap counts the request line and the header fields; a head just under it is answered as usual,
    on a connection that stays open for a second request."""
    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    filler = HEAD_LIMIT - len(line) - 64
    request = line + b"X-Filler: " + b"c" * filler + b"\r\n\r\n"
    assert HEAD_LIMIT - 100 < len(request) <= HEAD_LIMIT
    host, port = api["REPD"].url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        for _ in range(2):
            conn.sendall(request)
            received = b""
            while not _whole_answer(received):
                chunk = conn.recv(65536)
                assert chunk, received  # the node closed the connection
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received[:300]


@pytest.mark.parametrize("split", [False, True], ids=["in-one-read", "body-ends-in-a-later-read"])
def test_a_large_body_is_not_taken_for_a_long_head(split: bool) -> None:
    """A POST with a 100 KB body is served: only what arrives while a head is unfinished counts
    towards the 32 KiB cap. A busy machine reads a large POST in one go (head, body and the end of
    the message in one chunk), or reads most of a body in the chunk that ends it; /rpc, bulk and
    /v1/verify bodies were refused as 431 when it did. The bytes are in a socket pair into
    uvicorn's own protocol with the node's subclass (as `sijill serve` runs it) before the
    server reads them, so the reads are the chunks this test means: the whole request, or the
    head with 10 KB, then, once the app has had those, the other 90 KB."""
    body = b"x" * 100_000
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    first = head + (body[:10_000] if split else body)
    rest = body[10_000:] if split else b""

    async def serve_one() -> bytes:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
            received = b""
            while True:
                message = await receive()
                received += message.get("body", b"")
                started.set()
                if not message.get("more_body"):
                    break
            answer = str(len(received)).encode()
            headers = [(b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})

        config = uvicorn.Config(echo, http=problem_http_protocol(), lifespan="off", log_level="warning")
        config.load()
        server, client = socket.socketpair()
        client.sendall(first)  # waits in the socket before the server reads
        client.setblocking(False)
        state = ServerState()
        await loop.connect_accepted_socket(
            lambda: config.http_protocol_class(config=config, server_state=state, app_state={}), server
        )
        if rest:
            await started.wait()  # the server has read the first part
            await loop.sock_sendall(client, rest)
        received = b""
        while not _whole_answer(received):
            chunk = await loop.sock_recv(client, 65536)
            assert chunk, received
            received += chunk
        client.close()
        return received

    answer = asyncio.run(asyncio.wait_for(serve_one(), timeout=30))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]
    assert answer.endswith(b"\r\n\r\n100000")


def _whole_answer(received: bytes) -> bool:
    """Whether `received` holds a whole answer: its head and the Content-Length bytes after it."""
    head, separator, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return bool(separator and length and len(body) >= int(length[1]))


# The verify page's cryptography: @noble/hashes and @noble/curves, as package-lock.json pins them.
NOBLE = ("@noble/curves", "@noble/hashes")
_NOBLE_IMPORT = re.compile(
    r"""^((?:import|export)\b[^\n]*?\bfrom\s*)(["'])(@noble/[a-z0-9-]+)/([^"']+)\2""", re.M
)


def _as_served(text: str, path: str) -> str:
    """node_modules' text of `path` (e.g. "@noble/curves/utils.js") under the one rule
    scripts/vendor-web.mjs applies: a noble package name in an import statement becomes the
    relative path of that package's copy (a browser resolves no package names)."""
    here = posixpath.dirname(path)
    return _NOBLE_IMPORT.sub(lambda m: f"{m[1]}{m[2]}{posixpath.relpath(m[3], here)}/{m[4]}{m[2]}", text)


def test_the_verify_pages_cryptography_is_the_pinned_noble_served_as_is(api: dict[str, Server]) -> None:
    """Every module in api/web/vendor/ is served (strict CSP, no-cache) with node_modules' bytes
    at the versions package.json pins: byte for byte, but for @noble/curves' import statements
    naming @noble/hashes by package. Nothing else under /web/vendor/ is served."""
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text())
    locked = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    for name in NOBLE:
        installed = json.loads((PROJECT_ROOT / "node_modules" / name / "package.json").read_text())
        assert (
            manifest["dependencies"][name]
            == locked[f"node_modules/{name}"]["version"]
            == installed["version"]
        )
    vendor = PROJECT_ROOT / "api" / "web" / "vendor"
    modules = sorted(p.relative_to(vendor).as_posix() for p in vendor.rglob("*.js"))
    assert {"@noble/hashes/sha3.js", "@noble/curves/secp256k1.js"} <= set(modules), modules
    changed = []
    with public(api["REPD"]) as anyone:
        for path in modules:
            answer = anyone.get(f"/web/vendor/{path}")
            assert answer.status_code == 200, (path, answer.text)
            assert answer.headers["content-type"] == "text/javascript; charset=utf-8", path
            assert answer.headers["cache-control"] == "no-cache", path
            assert_strict_csp(answer)
            original = (PROJECT_ROOT / "node_modules" / path).read_bytes()
            assert answer.content == _as_served(original.decode(), path).encode(), path
            if answer.content != original:
                changed.append(path)
                assert path.startswith("@noble/curves/"), path
                # Only import lines differ, and each now names a file that is served.
                for old, new in zip(original.decode().splitlines(), answer.text.splitlines(), strict=True):
                    if old != new:
                        assert new.startswith("import ") and "'@noble/hashes/" in old, new
                        target = posixpath.normpath(
                            posixpath.join(posixpath.dirname(path), new.split("'")[1])
                        )
                        assert target in modules, (path, new)
        assert changed and not any(p.startswith("@noble/hashes/") for p in changed)
        # The page names them all for preloading, so the browser need not find them one by one.
        link = anyone.get("/verify").headers["link"]
        preloads = re.findall(r"</web/([^>]+)>; rel=modulepreload", link)
        assert preloads == ["sijill-verify.js", *(f"vendor/{m}" for m in modules)], link
        for absent in ("@noble/curves/index.js", "..%2F..%2Fapp.py", "@noble/hashes/LICENSE", "nothing.js"):
            expect_problem(anyone.get(f"/web/vendor/{absent}"), 404, "not-found")


# ----------------------------------------------------------------------------- CORS


def _preflight(client: httpx.Client, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


def _rpc_from(client: httpx.Client, origin: str) -> httpx.Response:
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
    return client.post("/rpc", json=call, headers={"Origin": origin})


def test_rpc_answers_cors_only_to_the_allowed_origins(api: dict[str, Server]) -> None:
    repd, cso, cra = api["REPD"], api["CSO"], api["CRA"]
    allowed = (cso.url, PUBLIC_URL, PORTAL, SECOND_PORTAL)
    refused = (
        cra.url,  # an agency REPD does not cross-check with
        repd.url.replace("http://", "https://"),  # another scheme is another origin
        PORTAL + ".attacker.example",  # the allowed origin as a prefix
        "https://attacker.example",
        "null",  # a sandboxed frame or a file
    )
    with public(repd) as client:
        for origin in allowed:
            answer = _rpc_from(client, origin)
            assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin, (
                origin
            )
            assert "Origin" in answer.headers["vary"], origin
            preflight = _preflight(client, "/rpc", origin)
            assert preflight.status_code == 204, (origin, preflight.text)
            assert preflight.headers["access-control-allow-origin"] == origin
            assert preflight.headers["access-control-allow-methods"] == "POST"
            assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
        for origin in refused:
            answer = _rpc_from(client, origin)
            assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers, origin
            assert "Origin" in answer.headers["vary"], origin
            problem = expect_problem(_preflight(client, "/rpc", origin), 403, "forbidden")
            assert "--cors-origin" in problem["detail"]
        answers = [_rpc_from(client, o) for o in allowed + refused]
    # Symmetric: CSO offers REPD's /rpc, so REPD's pages may read CSO's, and no one else's may.
    with public(cso) as client:
        answers += [
            _rpc_from(client, repd.url),
            _rpc_from(client, cra.url),
            _preflight(client, "/rpc", repd.url),
        ]
        assert answers[-3].headers["access-control-allow-origin"] == repd.url
        assert (
            answers[-1].status_code == 204 and answers[-1].headers["access-control-allow-origin"] == repd.url
        )
        assert "access-control-allow-origin" not in answers[-2].headers
    # CRA offers no one's /rpc: no origin is allowed.
    with public(cra) as client:
        answers.append(_rpc_from(client, repd.url))
        assert "access-control-allow-origin" not in answers[-1].headers
    assert not any("access-control-allow-credentials" in a.headers for a in answers)


def test_no_other_route_speaks_cors(api: dict[str, Server], repd_share: tuple[str, str]) -> None:
    repd = api["REPD"]
    record, token = repd_share
    origin = api["CSO"].url  # allowed on /rpc
    with public(repd) as anyone, repd.client("officer") as officer, repd.client("auditor") as auditor:
        answers = [
            officer.get(record, headers={"Origin": origin}),
            officer.post(
                "/v1/records", json={"recordType": "title", "record": {}}, headers={"Origin": origin}
            ),
            auditor.get("/v1/audit", headers={"Origin": origin}),
            anyone.get(record.replace("/v1/records/", "/v1/peer/records/"), headers={"Origin": origin}),
            anyone.get(f"/v1/shared/{token}", headers={"Origin": origin}),
            anyone.post("/v1/verify", content=b"{}", headers={"Origin": origin}),
        ]
        assert [a.status_code for a in answers] == [200, 422, 200, 401, 200, 422]
        preflights = [
            _preflight(anyone, "/v1/records", origin),
            _preflight(anyone, record, origin, "GET"),
            _preflight(anyone, record + "/revocation", origin),
            _preflight(anyone, "/v1/audit", origin, "GET"),
            _preflight(anyone, "/v1/batches", origin, "GET"),
            _preflight(anyone, record.replace("/v1/records/", "/v1/peer/records/"), origin, "GET"),
        ]
    for answer in answers + preflights:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")], answer.request.url
    for preflight in preflights:  # not approved: no route takes OPTIONS but /rpc
        expect_problem(preflight, 405, "method-not-allowed")


def test_cors_origins_come_from_flags_environment_and_config_and_are_checked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.rpcproxy import cors_origin_problem, origin_of
    from cli.main import app

    runner = CliRunner()

    def shown(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        result = runner.invoke(app, [*args, "config", "show", "serve", "--json"], env=env)
        assert result.exit_code == 0, result.output
        entry: dict[str, Any] = next(
            s for s in json.loads(result.stdout)["settings"] if s["key"] == "cors_origin"
        )
        return entry

    from_env = shown(env={"SIJILL_CORS_ORIGIN": f"{PORTAL} {SECOND_PORTAL}"})
    assert from_env["value"] == [PORTAL, SECOND_PORTAL] and from_env["origin"] == "SIJILL_CORS_ORIGIN"
    config = tmp_path / "sijill.toml"
    config.write_text(f'[serve]\ncors_origin = ["{PORTAL}"]\n')
    from_file = shown("--config", str(config))
    assert from_file["value"] == [PORTAL] and from_file["source"] == "config"

    for bad in ("https://portal.example.gov.eg/verify", "ftp://portal.example.gov.eg", "*", "null", "portal"):
        assert cors_origin_problem(bad) is not None, bad
    assert cors_origin_problem(PORTAL + "/") is None
    assert origin_of("HTTPS://Portal.Example.gov.eg:443/x") == PORTAL
    serve = [
        "serve",
        "--data-dir",
        str(tmp_path),
        "--agency",
        "REPD",
        "--deployment",
        str(tmp_path / "d.json"),
    ]
    for flag, value, needle in (
        ("--cors-origin", "https://portal.example.gov.eg/verify", "is not an origin"),
        ("--verify-peer", "cso-node:8602/rpc", "is not an http(s) URL"),
    ):
        result = runner.invoke(app, [*serve, "--rpc", "http://127.0.0.1:9", flag, value])
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.replace("│", " ").split())  # rich draws a box around it
        assert needle in message and flag in message and "Traceback" not in message, message


# ----------------------------------------------------------------------------- body limits


def _chunked(body: bytes) -> Iterator[bytes]:
    """The body as a stream without Content-Length (Transfer-Encoding: chunked)."""
    yield from (body[i : i + 1024] for i in range(0, len(body), 1024))


def _fill(path: str) -> str:
    values = {"record_type": "title", "record_id": "01HARDENING", "share_id": "0" * 16}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "x"), path)


def test_every_route_with_a_body_refuses_one_over_max_body(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("supervisor") as supervisor:
        schema = supervisor.get("/openapi.json").json()
        routes = [
            (method.upper(), path)
            for path, operations in schema["paths"].items()
            for method, operation in operations.items()
            if "requestBody" in operation
        ]
        # The bulk upload is streamed and limited line by line (below).
        assert ("POST", "/v1/records/bulk") in routes and len(routes) >= 5, routes
        big = b'{"recordType": "title", "record": {"x": "' + b"a" * MAX_BODY + b'"}}'
        for method, path in routes:
            if path == "/v1/records/bulk":
                continue
            for content in (big, _chunked(big)):
                answer = supervisor.request(
                    method, _fill(path), content=content, headers={"Content-Type": "application/json"}
                )
                problem = expect_problem(answer, 413, "too-large")
                assert f"{MAX_BODY} bytes" in problem["detail"] and "--max-body" in problem["detail"]
        # A record right at the limit (padded with JSON white space) is taken, and is intact.
        body = json.dumps({"recordType": "title", "record": title_example()}, ensure_ascii=False).encode()
        exact = body + b" " * (MAX_BODY - len(body))
        created = supervisor.post("/v1/records", content=exact, headers={"Content-Type": "application/json"})
        assert len(exact) == MAX_BODY and created.status_code == 201, created.text
        stored = supervisor.get(created.json()["links"]["self"])
        assert stored.status_code == 200 and stored.json()["record"] == title_example()


def test_bulk_refuses_a_long_line_and_takes_the_rest(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    line = json.dumps({"recordType": "title", "record": title_example()}, ensure_ascii=False)
    long = json.dumps({"recordType": "title", "record": {**title_example(), "notes": "n" * MAX_LINE}})
    lines = [line] * 3 + [long] + [line] * 3  # 7 lines, more than --max-body in all
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > MAX_BODY
    with repd.client("officer") as officer:
        answer = officer.post(
            "/v1/records/bulk", content=_chunked(body), headers={"Content-Type": "application/x-ndjson"}
        )
    assert answer.status_code == 200, answer.text
    answers = [json.loads(a) for a in answer.text.splitlines()]
    assert answers[-1]["summary"] == {"lines": 7, "accepted": 6, "rejected": 1, "blank": 0, "replayed": 0}
    rejected = [a for a in answers[:-1] if a["status"] == "rejected"]
    assert [a["line"] for a in rejected] == [4]
    assert (
        rejected[0]["errors"][0]["rule"] == "line-too-long"
        and str(MAX_LINE) in rejected[0]["errors"][0]["detail"]
    )


def test_rpc_refuses_a_request_over_its_own_limit(api: dict[str, Server]) -> None:
    from api.rpcproxy import MAX_REQUEST

    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    fits = json.dumps(call).encode()
    huge = json.dumps({**call, "pad": "x" * MAX_REQUEST}).encode()
    with public(api["CSO"]) as client:  # CSO's --max-body is the default 1 MiB: /rpc's limit is lower
        assert client.post("/rpc", content=fits).status_code == 200
        for content in (huge, _chunked(huge)):
            answer = client.post("/rpc", content=content, headers={"Content-Type": "application/json"})
            assert answer.status_code == 413 and answer.json()["error"]["code"] == -32600
            assert f"{MAX_REQUEST} bytes" in answer.json()["error"]["message"]


# ----------------------------------------------------------------------------- rate limits


def test_every_public_route_is_rate_limited_per_client(api: dict[str, Server]) -> None:
    cra = api["CRA"]  # --public-rate 1: bursts of 3 per address; records stay pending
    with cra.client("officer") as officer:
        created = officer.post(
            "/v1/records", json={"recordType": "commercial", "record": commercial_example()}
        )
        assert created.status_code == 201, created.text
        made = officer.post(created.json()["links"]["self"] + "/shares", json={})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
    rpc_call = {"json": {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}}
    routes: dict[tuple[str, str], dict[str, Any]] = {
        ("GET", f"/V/{token}"): {},
        ("GET", f"/v/{token.lower()}"): {},
        ("GET", "/verify"): {},
        **{("GET", f"/web/{name}"): {} for name in ASSETS},
        ("GET", f"/v1/shared/{token}"): {},
        ("GET", f"/c/{token}"): {},
        ("GET", f"/c/{token}.pdf"): {},
        ("POST", "/v1/verify"): {"content": b"{}"},
        ("POST", "/rpc"): rpc_call,
    }
    with public(cra) as anyone:
        schema = anyone.get("/openapi.json").json()
    # Every public operation the API documents is among the routes above.
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "public" in operation.get("tags", []) or path == "/v1/verify"
    }
    templates = {(m, re.sub(r"[A-Z2-7]{32}", "{token}", p)) for m, p in routes}
    assert documented <= templates, documented - templates
    for (method, path), kwargs in routes.items():
        with public(cra) as first, public(cra) as second:
            statuses = [first.request(method, path, **kwargs).status_code for _ in range(3)]
            assert 429 not in statuses, (path, statuses)  # the burst
            limited = first.request(method, path, **kwargs)
            assert limited.status_code == 429, (path, limited.status_code)
            assert int(limited.headers["retry-after"]) >= 1, path
            if path == "/rpc":
                assert limited.json()["error"]["code"] == -32005
            else:
                expect_problem(limited, 429, "rate-limited")
            # Another address still gets through: the limit is per client.
            assert second.request(method, path, **kwargs).status_code == statuses[0], path


def test_an_officer_token_has_its_own_limit(api: dict[str, Server]) -> None:
    cra = api["CRA"]  # --rate-limit 2: bursts of 4 per token
    with public(cra) as anyone:
        assert 429 in [anyone.get("/verify").status_code for _ in range(6)]
        # The address is out of public requests; a token's allowance is the token's.
        headers = {"Authorization": f"Bearer {cra.tokens['auditor']}"}
        statuses = [anyone.get("/v1/batches", headers=headers).status_code for _ in range(8)]
        assert statuses[0] == 200 and 429 in statuses, statuses
        limited = anyone.get("/v1/batches", headers=headers)
        problem = expect_problem(limited, 429, "rate-limited")
        assert "with this token" in problem["detail"] and int(limited.headers["retry-after"]) >= 1
        # Another token is not held back by this one.
        other = {"Authorization": f"Bearer {cra.tokens['supervisor']}"}
        assert anyone.get("/v1/batches", headers=other).status_code == 200
    with public(cra) as fresh:  # nor is another address's public allowance
        assert fresh.get("/verify").status_code == 200


# ----------------------------------------------------------------------------- secrets


def test_a_token_but_for_its_last_character_is_refused_like_an_unknown_one(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    real = repd.tokens["officer"]
    near = real[:-1] + ("A" if real[-1] != "A" else "B")
    answers = {}
    with public(repd) as anyone:
        for name, token in (("real", real), ("near", near), ("unknown", secrets.token_urlsafe(32))):
            answers[name] = anyone.get("/v1/batches", headers={"Authorization": f"Bearer {token}"})
    assert answers["real"].status_code == 200

    def shape(response: httpx.Response) -> tuple[Any, ...]:
        body = {k: v for k, v in response.json().items() if k != "instance"}
        return response.status_code, response.headers["www-authenticate"], body

    assert shape(answers["near"]) == shape(answers["unknown"])
    assert answers["near"].status_code == 401


def test_a_stored_token_sharing_the_token_id_is_not_taken_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look-up by the id (the first 16 hex digits of the hash) must still hold the whole hash to
    the stored one, through hmac.compare_digest. No two tokens with one id can be made (that is
    a 64-bit collision), so the stored entry is written straight into LevelDB."""
    presented = secrets.token_urlsafe(32)
    digest = hashlib.sha256(presented.encode()).hexdigest()
    other = digest[:16] + hashlib.sha256(digest.encode()).hexdigest()[:48]
    entry = {
        "officer": {"name": "n", "role": "officer", "agency": "REPD"},
        "expiresAt": None,
        "revoked": False,
    }
    calls: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    with Store(tmp_path / "store", secrets.token_bytes(32), create=True) as store:
        store._db.put(f"token/{other}".encode(), json.dumps(entry).encode(), sync=True)
        monkeypatch.setattr(hmac, "compare_digest", spy)
        assert store.find_token(presented, now=0) is None
        assert calls == [(f"token/{other}".encode(), f"token/{digest}".encode())]
        # The real token, registered, is found, through the same comparison.
        registered = secrets.token_urlsafe(32)
        store.add_token(registered, entry["officer"], None)
        calls.clear()
        assert store.find_token(registered, now=0) == entry["officer"]
        assert len(calls) == 1 and calls[0][0] == calls[0][1]
        # A token whose id is taken cannot be registered: the id names its officer everywhere.
        fresh = secrets.token_urlsafe(32)
        fresh_id = hashlib.sha256(fresh.encode()).hexdigest()[:16]
        store._db.put(f"token/{fresh_id}{'0' * 48}".encode(), json.dumps(entry).encode(), sync=True)
        with pytest.raises(StoreError, match="already registered"):
            store.add_token(fresh, entry["officer"], None)


# Comparisons in api/, node/ and cli/ whose operands are named like secrets but hold none, and why.
NOT_SECRETS = {
    ("cli/demo.py", "k not in _SECRET_VARIABLES"): "names of environment variables",
    ("cli/demo_nodes.py", "entry['tokenId'] not in known"): "token ids, which `sijill officer list` shows",
    ("node/store/encryption.py", "len(kek) != KEK_SIZE"): "a length",
    ("node/store/encryption.py", "blob[0] != _SECRET_FORMAT"): "the format byte of a sealed blob",
    (
        "node/backup.py",
        "digest.hexdigest() != manifest.contentDigest",
    ): "a backup's content digest, which its own manifest shows",
}
SECRET_NAMES = re.compile(
    r"token|digest|fingerprint|share_?id|kek|secret|signature|\bmac\b|nonce|passphrase|password", re.I
)


def test_secrets_are_compared_only_through_compare_digest() -> None:
    """No ==, !=, in or not in over a value named like a secret (a token, a digest, a fingerprint,
    a share id, a key, a signature, a nonce) anywhere in api/, node/ or cli/, but those listed above;
    and each place that holds a secret against a stored one does it with hmac.compare_digest."""
    found = set()
    calls_compare_digest = set()
    for package in ("api", "node", "cli"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            name = str(path.relative_to(PROJECT_ROOT))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Attribute) and ast.unparse(n) == "hmac.compare_digest"
                    for n in ast.walk(node)
                ):
                    calls_compare_digest.add((name, node.name))
                if not isinstance(node, ast.Compare):
                    continue
                if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                    continue
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) for o in operands):
                    continue  # against a literal (None, a scheme name, a length): no secret on both sides
                if any(SECRET_NAMES.search(ast.unparse(o)) for o in operands):
                    found.add((name, ast.unparse(node)))
    assert found == set(NOT_SECRETS), found ^ set(NOT_SECRETS)
    assert calls_compare_digest >= {
        ("node/store/tokens.py", "find_token"),  # officer tokens
        ("node/store/encryption.py", "_unwrap_data_keys"),  # the KEK's id
        ("node/shares.py", "withdraw"),  # share ids (digests of share tokens)
        ("api/idempotency.py", "claim"),  # the fingerprint an Idempotency-Key is tied to
        ("api/bulk.py", "_process_chunk"),  # a bulk chunk's hash under an Idempotency-Key
    }, calls_compare_digest
