"""The FastAPI application over one agency node.

`create_app(node, settings)` wires the routes (officer, bulk, public and auditor, node-to-node,
operations), the guard (request ids, body limits, JSON depth, security headers, metrics), and the
problem-details handlers. One process serves one agency: LevelDB admits one process per store,
so the API, the batcher and the indexer share it as threads (see node/service.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from api.fastpath import DirectRoutes
from api.guard import Guard
from api.idempotency import Idempotency
from api.metrics import Metrics
from api.problems import ApiProblem, on_api_problem, on_http_exception, on_unexpected, on_validation_error
from api.rpcproxy import RpcProxy, cors_allow_list
from api.security import AuditBuffer, RateLimiter
from api.store_health import StoreProbe, on_store_error
from ledger.chainview import AgencyStatus, BatchInfo, ChainUnavailable, ChainView, LeafState, LeafStatusInfo
from ledger.codes import agency_code
from node.errors import StoreError
from node.shares import Shares

WEB = Path(__file__).resolve().parent / "web"
WORKER_THREADS = 40


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The API's limits and policies; `sijill serve --help` lists the matching flags."""

    max_body: int = 1 << 20  # bytes of a JSON request body
    max_line: int = 64 * 1024  # bytes of one NDJSON line of a bulk upload
    bulk_chunk: int = 1000  # bulk lines committed per write batch
    rate_limit: float = 200.0  # requests a second per officer token (0: no limit)
    rate_burst: float = 400.0
    peer_policy: Path | None = None  # what other agencies may see (node/peer/policy.py PeerPolicy)
    peer_max_skew: int = 60  # seconds a signed node-to-node request may be off the clock
    ready_max_lag: int = 30  # blocks the indexer may trail before /readyz says not ready
    ready_max_backlog: int = 1_000_000  # queued leaves before /readyz says not ready
    #: /readyz says not ready when the earliest anchorBy among leaves not yet anchored is less than
    #: this many seconds away (or past): the receipts' promise is at risk
    ready_anchor_margin: float = 120.0
    #: /readyz says not ready when anchoring has made no progress this long while batches wait
    ready_max_stall: float = 60.0
    chain_cache_seconds: float = 2.0  # how long verify trusts a registry answer
    public_url: str | None = None  # how citizens reach this node (QR codes); default: the request's
    public_rate: float = 20.0  # public requests (verify page, certificates, /rpc) a second per client
    public_burst: float = 60.0
    miss_limit: int = 10  # unknown certificate tokens a client may try a minute
    verify_peers: tuple[str, ...] = ()  # other agencies' /rpc URLs the verify page offers to cross-check
    cors_origins: tuple[str, ...] = ()  # more origins whose pages may read /rpc (api/rpcproxy.py)


class CachedChainView:
    """The node's chain view with the registry's answers (agency status, signer validity) and
    the latest block kept for a moment: verification at thousands a second must not ask the
    chain each time. Batches and leaf states come from the local index; where the index may
    not have caught up yet (a batch it does not know, a leaf it calls current while it trails
    the chain) the chain itself is asked, so a fresh anchor or revocation is never misreported."""

    def __init__(self, view: Any, ttl: float, indexer: Any = None) -> None:
        self.view = view
        self.live = getattr(view, "live", view)
        self.indexer = indexer
        self.ttl = ttl
        self.chain_id = view.chain_id
        self.ledger = view.ledger
        self.registry = view.registry
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._valid_signers: set[tuple[str, str, int]] = set()

    def _cached(self, key: tuple[Any, ...], ask: Any) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = ask()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, value)
        return value

    def batch(self, agency: str, root: bytes) -> BatchInfo | None:
        info: BatchInfo | None = self.view.batch(agency, root)
        if info is None and self.live is not self.view:
            info = self.live.batch(agency, root)
        return info

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo:
        status: LeafStatusInfo = self.view.leaf_status(agency, leaf)
        if status.state == LeafState.CURRENT and self.indexer is not None:
            # While the index trails the chain, only a leaf revoked or superseded in the blocks
            # it has not read may be other than the index says: those are asked of the chain.
            # What changed there is read once per ttl (one eth_getLogs), not once per request:
            # with 1 s blocks the index trails half the time, and a live leafStatus per
            # verification tripled its cost. Unknown (far behind, the chain away): ask.
            changed = self._cached(("unindexed",), self.indexer.unindexed_leaf_changes)
            if changed is None or (agency, leaf.hex()) in changed:
                status = self.live.leaf_status(agency, leaf)
        return status

    def agency_status(self, agency: str) -> AgencyStatus:
        status: AgencyStatus = self._cached(("agency", agency), lambda: self.view.agency_status(agency))
        return status

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool:
        # Validity at a block already mined never changes (retiring a key ends its range at the
        # retirement block), so a yes is kept for good; a no is asked again after the ttl.
        key = (agency, signer, block)
        if key in self._valid_signers:
            return True
        valid = bool(self._cached(("signer", *key), lambda: self.view.signer_valid_at(agency, signer, block)))
        if valid and block <= self.latest_block():
            if len(self._valid_signers) > 100_000:
                self._valid_signers.clear()
            self._valid_signers.add(key)
        return valid

    def latest_block(self) -> int:
        return int(self._cached(("latest",), self.view.latest_block))


class SijillApi:
    """Everything the routes share, as `request.app.state.sijill`."""

    def __init__(self, node: Any, settings: ApiSettings) -> None:
        from node.peer.auth import PeerAuthenticator
        from node.peer.policy import PeerPolicy

        self.node = node
        self.settings = settings
        self.started = time.time()
        self.agency: str = node.settings.agency
        self.metrics = Metrics()
        # The blocking part of writes (intake, the store; api.records.in_worker): as many
        # threads as Starlette's thread pool has, so that many writes share a group commit.
        self.workers = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="sijill-api")
        self.audit = AuditBuffer(node.store)
        self.store_probe = StoreProbe(node.store)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.idempotency = Idempotency(node.store)
        self.chain: ChainView = CachedChainView(node.chain_view, settings.chain_cache_seconds, node.indexer)
        self.peer_policy = PeerPolicy.load(settings.peer_policy)
        self.peers = PeerAuthenticator(
            node.store, node.registry, self.agency, max_skew=settings.peer_max_skew
        )
        self.shares = Shares(node.store)
        self.public_limiter = RateLimiter(settings.public_rate, settings.public_burst)
        self.miss_limiter = RateLimiter(settings.miss_limit / 60.0, float(settings.miss_limit))
        self.rpc_proxy = RpcProxy(node.settings.rpc_url, (self.chain.ledger, self.chain.registry))
        self.cors_origins = cors_allow_list(settings.public_url, settings.verify_peers, settings.cors_origins)
        self._web: dict[str, bytes] = {}
        self._vendored: frozenset[str] | None = None
        self._agency_name: tuple[float, str] | None = None
        self._verify_page: bytes | None = None

    def web_asset(self, name: str) -> bytes:
        """A file of api/web, read once (the page and its scripts are small)."""
        body = self._web.get(name)
        if body is None:
            body = self._web[name] = (WEB / name).read_bytes()
        return body

    def vendored_modules(self) -> frozenset[str]:
        """The modules in api/web/vendor/ (paths below it, with "/"), listed once: the noble
        cryptography the browser verifier imports, put there by `make setup`."""
        if self._vendored is None:
            vendor = WEB / "vendor"
            self._vendored = frozenset(p.relative_to(vendor).as_posix() for p in vendor.rglob("*.js"))
        return self._vendored

    def verify_page(self) -> bytes:
        """The verify page with this node's config in it, made once: nothing in it changes while
        the node runs (agency, chain, ledger, the peers offered for a cross-check)."""
        if self._verify_page is None:
            config = {
                "agency": self.agency,
                "chainId": self.chain.chain_id,
                "ledger": self.chain.ledger,
                "rpc": "/rpc",
                "peers": list(self.settings.verify_peers),
            }
            # The config is data, not script (type application/json), so the CSP's script-src
            # 'self' holds; `<` is escaped so no value can close the element.
            inline = json.dumps(config).replace("<", "\\u003c")
            self._verify_page = self.web_asset("verify.html").decode().replace("{{config}}", inline).encode()
        return self._verify_page

    def agency_name(self) -> str:
        """This agency's name as the registry holds it (asked at most once a minute)."""
        now = time.monotonic()
        if self._agency_name is None or now - self._agency_name[0] > 60:
            try:
                info = self.node.registry.functions.agencyInfo(agency_code(self.agency)).call()
            except Exception as exc:  # transport and decoding errors alike
                raise ChainUnavailable(f"{type(exc).__name__}: {exc}") from None
            self._agency_name = (now, str(info[0]) or self.agency)
        return self._agency_name[1]

    def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.audit.close()


class GuardedApp(FastAPI):
    """FastAPI with the guard (api/guard.py) outside everything it builds. Middleware added the
    usual way sits inside Starlette's last-resort error handler, so a 500 would leave without the
    request id and the security headers."""

    guard_settings: tuple[int, Metrics] | None = None
    direct_routes: dict[tuple[str, str], APIRoute] = {}  # noqa: RUF012 - set once by create_app

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.guard_settings is None:
            return stack
        max_body, metrics = self.guard_settings
        return Guard(stack, max_body=max_body, metrics=metrics, direct=DirectRoutes(self, self.direct_routes))


def create_app(node: Any, settings: ApiSettings | None = None) -> FastAPI:
    from api import bulk, citizen, ops, peer_routes, public, records, rpcproxy

    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.sijill.rpc_proxy.close()  # its upstream connections live in this loop

    app = GuardedApp(
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts, styles and fonts from CDNs, with an
        # inline script: nothing of that may run under the API's CSP, and a registry's LAN may not
        # reach a CDN at all. The schema itself is /openapi.json (and docs/api.md).
        docs_url=None,
        redoc_url=None,
        title=f"Sijill node API — {node.settings.agency}",
        version="1",
        description=(
            "Registry officers create, amend and revoke records and fetch receipts and proof bundles; "
            "auditors read batches, leaves and receipts; anyone verifies a bundle; other agencies' nodes "
            "fetch records with requests signed by their on-chain signer key. Every error is RFC 9457 "
            "problem details with English and Arabic text. See docs/api.md."
        ),
    )
    app.state.sijill = SijillApi(node, settings)
    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StoreError, on_store_error)  # the store away: 503, never a 500
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
    routers = (
        records.router,
        citizen.officer_router,
        bulk.router,
        public.router,
        peer_routes.router,
        ops.router,
        citizen.public_router,
        rpcproxy.router,
    )
    for router in routers:
        app.include_router(router)
    # What a 405's Allow header lists (api/problems.py): every method of every route of a path.
    app.state.route_methods = [
        (r.path_regex, r.methods) for rt in routers for r in rt.routes if isinstance(r, APIRoute)
    ]
    # Routes whose ordinary requests skip FastAPI's middleware and router (api/fastpath.py).
    app.direct_routes = {
        (method, r.path): r
        for rt in routers
        for r in rt.routes
        if isinstance(r, APIRoute) and hasattr(r.endpoint, "fast_path")
        for method in r.methods or ()
    }
    app.guard_settings = (settings.max_body, app.state.sijill.metrics)
    return app
