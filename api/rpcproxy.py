"""`POST /rpc`: a read-only JSON-RPC endpoint onto the chain, for browsers that verify themselves.

The verify page does not take the node's word: it reads the batch root, the leaf's status and
the agency from the chain. A phone on the registry's LAN cannot reach the chain's own RPC port
(nor should it: that port also takes transactions), so every node passes on a filtered subset:

- methods: `eth_chainId`, `eth_blockNumber`, `eth_call`, `eth_getBlockByNumber` (without full
  transactions) and `eth_getLogs`; anything else is answered "method not allowed" (-32601);
- `eth_call` and `eth_getLogs` only against this deployment's RecordLedger and AgencyRegistry,
  call data of at most 8 KiB, log queries over at most 5,000 blocks;
- a request of at most 64 KiB holding at most 50 calls; an answer of at most 4 MiB;
- per client address, a rate limit (`--public-rate`), shared with the certificate routes.

Each call is checked on its own, so one refused call in a batch does not cost the others.

CORS: the verify page served by this node reads this /rpc from its own origin, which needs no
CORS at all. Another agency's page reads it to cross-check that agency's node, and for that the
browser needs this node's consent: `cors_allow_list` is the origins that get it, this node's own
public origin (`--public-url`), the origins of its `--verify-peer` endpoints (agencies cross-check
each other symmetrically: if A offers B's /rpc, B offers A's) and any `--cors-origin`. An allowed
`Origin` is echoed in Access-Control-Allow-Origin, with `Vary: Origin`; any other origin gets no
CORS header (its browser keeps the answer from the page) and its preflight a 403. No answer
allows credentials: nothing here needs cookies or tokens. Only /rpc speaks CORS; every other
route sends no CORS header, and their preflights are not approved (405).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.problems import problem_response
from api.security import audit_call, client_address, retry_after

router = APIRouter()

READ_METHODS = ("eth_chainId", "eth_blockNumber", "eth_call", "eth_getBlockByNumber", "eth_getLogs")
MAX_REQUEST = 64 * 1024
MAX_CALLS = 50
MAX_CALL_DATA = 8 * 1024
MAX_LOG_BLOCKS = 5_000
MAX_ANSWER = 4 * 1024 * 1024
UPSTREAM_TIMEOUT = 10.0

PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_QUANTITY = re.compile(r"0x(0|[1-9a-f][0-9a-f]*)")
_HASH = re.compile(r"0x[0-9a-f]{64}")
_DATA = re.compile(r"0x(?:[0-9a-f]{2})*")
_TAGS = ("latest", "earliest")  # QBFT has immediate finality: Besu answers "safe"/"finalized" -39001


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def origin_of(url: str) -> str | None:
    """The origin of an http(s) URL as a browser writes it in `Origin` (lower-case scheme and
    host, no default port, no path), or None when `url` has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def cors_origin_problem(origin: str) -> str | None:
    """What is wrong with a `--cors-origin`, or None: it must be an origin, not a page's URL."""
    parts = urlsplit(origin.strip())
    if origin_of(origin) is None or parts.path not in ("", "/") or parts.query or parts.fragment:
        return (
            f"{origin!r} is not an origin such as https://registry.example.gov.eg:8601 (scheme, host, port)"
        )
    return None


def cors_allow_list(
    public_url: str | None, verify_peers: Iterable[str], extra: Iterable[str]
) -> frozenset[str]:
    """The origins whose pages may read this node's /rpc (see the module docstring)."""
    urls = [*([public_url] if public_url else []), *verify_peers, *extra]
    return frozenset(o for o in map(origin_of, urls) if o is not None)


def _cors(request: Request) -> dict[str, str]:
    """The CORS headers of an answer of /rpc: the request's Origin echoed if it is allowed. The
    allow-list holds origins as browsers write them, so an exact match is the whole test."""
    origin = request.headers.get("origin")
    if origin is not None and origin in request.app.state.sijill.cors_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


@router.options("/rpc", include_in_schema=False)
async def rpc_preflight(request: Request) -> Response:
    cors = _cors(request)
    if "Access-Control-Allow-Origin" in cors:
        return Response(status_code=204, headers={**cors, **PREFLIGHT})
    if "origin" not in request.headers:  # not a CORS preflight: what the path takes
        return Response(status_code=204, headers={"Allow": "OPTIONS, POST", **cors})
    origin = request.headers["origin"][:200]
    return problem_response(
        request,
        403,
        "forbidden",
        f"Pages from {origin} may not read this node's /rpc: its operator allows an origin with "
        "--cors-origin (an agency's --verify-peer endpoints are allowed already)",
        "لا يُسمح للصفحات من هذا المصدر بقراءة /rpc في هذه العقدة؛ يضيفه مشغل العقدة بالخيار --cors-origin",
        headers=cors,
    )


_RPC_ERROR: dict[str, Any] = {"content": {"application/json": {}}}


@router.post(
    "/rpc",
    summary="Read-only JSON-RPC onto the chain (five read methods, this deployment's contracts only)",
    tags=["public"],
    responses={
        200: {"description": "JSON-RPC answers (a refused call gets its error object)", **_RPC_ERROR},
        400: {"description": "not JSON, or an empty or too large batch (a JSON-RPC error)", **_RPC_ERROR},
        413: {"description": f"a request over {MAX_REQUEST} bytes (a JSON-RPC error)", **_RPC_ERROR},
        429: {"description": "rate limited per client address (a JSON-RPC error)", **_RPC_ERROR},
    },
)
async def rpc(request: Request) -> Response:
    sijill = request.app.state.sijill
    client = client_address(request)
    cors = _cors(request)
    wait = sijill.public_limiter.take(f"rpc:{client}")
    if wait > 0:
        return _answer(
            _error(None, -32005, "rate limited: too many requests from this address; retry later"),
            429,
            {**cors, **retry_after(wait)},
        )
    body = await request.body()
    if len(body) > MAX_REQUEST:
        return _answer(_error(None, -32600, f"request larger than {MAX_REQUEST} bytes"), 413, cors)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _answer(_error(None, -32700, "parse error: the body is not JSON"), 400, cors)
    batch = isinstance(document, list)
    calls = document if batch else [document]
    if batch and not 1 <= len(calls) <= MAX_CALLS:
        return _answer(_error(None, -32600, f"a batch holds 1 to {MAX_CALLS} calls"), 400, cors)
    proxy: RpcProxy = sijill.rpc_proxy
    answers = await proxy.answer(calls)
    if any(a.get("error", {}).get("code") == -32601 for a in answers):
        audit_call(request, f"client:{client}", "rpc.refused", "/rpc", methods=_methods(calls))
    return _answer(answers if batch else answers[0], 200, cors)


class RpcProxy:
    """Checks calls and passes the allowed ones to the node's chain RPC in one upstream batch."""

    def __init__(self, upstream: str, contracts: tuple[str, ...]) -> None:
        self.upstream = upstream
        self.contracts = frozenset(c.lower() for c in contracts)
        self._session: aiohttp.ClientSession | None = None

    async def answer(self, calls: list[Any]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any] | None] = []
        forward: list[tuple[int, dict[str, Any]]] = []
        for index, call in enumerate(calls):
            call_id = call.get("id") if isinstance(call, dict) else None
            try:
                forward.append((index, await self._checked(call)))
                answers.append(None)
            except Refused as exc:
                answers.append(_error(call_id, exc.code, exc.message))
        if forward:
            upstream = await self._send([call for _, call in forward])
            for (index, call), reply in zip(forward, upstream, strict=True):
                answers[index] = {"jsonrpc": "2.0", "id": call["id"], **reply}
        return [a for a in answers if a is not None]

    async def _checked(self, call: Any) -> dict[str, Any]:
        well_formed = isinstance(call, dict) and call.get("jsonrpc") == "2.0"
        if not well_formed or not isinstance(call.get("method"), str):
            raise Refused(-32600, "invalid request: expected {jsonrpc: '2.0', id, method, params}")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str | int):
            raise Refused(-32600, "invalid request: id must be a string or a number")
        method = call["method"]
        if method not in READ_METHODS:
            allowed = ", ".join(READ_METHODS)
            raise Refused(-32601, f"method {method[:64]!r} not allowed: this endpoint only reads ({allowed})")
        params = call.get("params", [])
        if not isinstance(params, list):
            raise Refused(-32602, "params must be a list")
        params = await getattr(self, "_" + method)(params)
        return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params}

    async def _eth_chainId(self, params: list[Any]) -> list[Any]:
        return _no_params(params)

    async def _eth_blockNumber(self, params: list[Any]) -> list[Any]:
        return _no_params(params)

    async def _eth_getBlockByNumber(self, params: list[Any]) -> list[Any]:
        if len(params) != 2 or params[1] is not False:
            raise Refused(-32602, "eth_getBlockByNumber takes [block, false]: no full transactions")
        return [_block(params[0]), False]

    async def _eth_call(self, params: list[Any]) -> list[Any]:
        if not 1 <= len(params) <= 2 or not isinstance(params[0], dict):
            raise Refused(-32602, "eth_call takes [{to, data}, block]")
        call = params[0]
        unknown = set(call) - {"to", "data", "input", "from"}
        if unknown:
            raise Refused(-32602, f"eth_call: {', '.join(sorted(unknown))} not allowed (only to, data)")
        self._contract(call.get("to"), "eth_call")
        data = call.get("data", call.get("input", "0x"))
        if not isinstance(data, str) or not _DATA.fullmatch(data.lower()):
            raise Refused(-32602, "eth_call: data must be 0x-prefixed hex bytes")
        if len(data) > 2 + 2 * MAX_CALL_DATA:
            raise Refused(-32005, f"eth_call: data larger than {MAX_CALL_DATA} bytes")
        block = _block(params[1]) if len(params) == 2 else "latest"
        return [{"to": call["to"].lower(), "data": data.lower()}, block]

    async def _eth_getLogs(self, params: list[Any]) -> list[Any]:
        if len(params) != 1 or not isinstance(params[0], dict):
            raise Refused(-32602, "eth_getLogs takes [filter]")
        query = params[0]
        unknown = set(query) - {"address", "fromBlock", "toBlock", "topics", "blockHash"}
        if unknown:
            raise Refused(-32602, f"eth_getLogs: {', '.join(sorted(unknown))} not allowed")
        addresses = query.get("address")
        for address in addresses if isinstance(addresses, list) and addresses else [addresses]:
            self._contract(address, "eth_getLogs")
        topics = query.get("topics", [])
        if not isinstance(topics, list) or len(topics) > 4 or not all(map(_topic, topics)):
            raise Refused(-32602, "eth_getLogs: topics are up to 4 of null, a hash or a list of hashes")
        checked: dict[str, Any] = {"address": addresses, "topics": topics}
        if "blockHash" in query:
            if "fromBlock" in query or "toBlock" in query:
                raise Refused(-32602, "eth_getLogs: blockHash excludes fromBlock and toBlock")
            if not isinstance(query["blockHash"], str) or not _HASH.fullmatch(query["blockHash"]):
                raise Refused(-32602, "eth_getLogs: blockHash must be a 32-byte hex hash")
            return [{**checked, "blockHash": query["blockHash"]}]
        first, last = query.get("fromBlock"), query.get("toBlock", "latest")
        if not (isinstance(first, str) and _QUANTITY.fullmatch(first)):
            raise Refused(-32602, "eth_getLogs: fromBlock must be a block number (hex)")
        if last == "latest":
            latest = await self._send([{"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []}])
            last = latest[0].get("result")
        if not (isinstance(last, str) and _QUANTITY.fullmatch(last)):
            raise Refused(-32602, "eth_getLogs: toBlock must be a block number (hex) or 'latest'")
        if int(last, 16) - int(first, 16) + 1 > MAX_LOG_BLOCKS:
            raise Refused(-32005, f"eth_getLogs: at most {MAX_LOG_BLOCKS} blocks a query; split the range")
        return [{**checked, "fromBlock": first, "toBlock": last}]

    def _contract(self, address: Any, method: str) -> None:
        if not isinstance(address, str) or address.lower() not in self.contracts:
            contracts = ", ".join(sorted(self.contracts))
            raise Refused(-32602, f"{method}: only this deployment's contracts ({contracts})")

    async def _send(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The upstream's answers, in the order of `calls` (result or error each)."""
        if self._session is None:
            # aiohttp, not httpx: a proxied call costs a fraction of the CPU (measured with
            # scripts/bench_citizen.py), and this route is the verify page's busiest.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT),
                connector=aiohttp.TCPConnector(limit=32),
            )
        body = json.dumps([{**call, "id": n} for n, call in enumerate(calls)]).encode()
        try:
            async with self._session.post(
                self.upstream, data=body, headers={"Content-Type": "application/json"}
            ) as reply:
                raw = bytearray()
                async for chunk in reply.content.iter_chunked(1 << 16):
                    raw += chunk
                    if len(raw) > MAX_ANSWER:
                        too_large = _reply_error(-32005, f"answer over {MAX_ANSWER} bytes: ask for less")
                        return [too_large] * len(calls)
            answers = json.loads(raw)
            by_id = {a["id"]: a for a in answers} if isinstance(answers, list) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, KeyError) as exc:
            return [_reply_error(-32603, f"the chain did not answer: {type(exc).__name__}")] * len(calls)
        out = []
        for n in range(len(calls)):
            answer = by_id.get(n, {})
            if "result" in answer:
                out.append({"result": answer["result"]})
            elif isinstance(answer.get("error"), dict):
                out.append({"error": answer["error"]})
            else:
                out.append(_reply_error(-32603, "the chain gave no answer to this call"))
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _no_params(params: list[Any]) -> list[Any]:
    if params:
        raise Refused(-32602, "this method takes no params")
    return []


def _block(value: Any) -> str:
    if isinstance(value, str) and (value in _TAGS or _QUANTITY.fullmatch(value)):
        return value
    raise Refused(-32602, f"block must be a hex number or one of {', '.join(_TAGS)}")


def _topic(topic: Any) -> bool:
    if topic is None:
        return True
    if isinstance(topic, list):
        return len(topic) <= 8 and all(isinstance(t, str) and _HASH.fullmatch(t) for t in topic)
    return isinstance(topic, str) and _HASH.fullmatch(topic) is not None


def _error(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, **_reply_error(code, message)}


def _reply_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _methods(calls: list[Any]) -> list[str]:
    return sorted({str(c.get("method"))[:64] for c in calls if isinstance(c, dict)})


def _answer(document: Any, status: int, headers: dict[str, str]) -> Response:
    return JSONResponse(document, status_code=status, headers=headers)
