"""Who is calling: officer bearer tokens with roles, a per-token rate limit, and the audit trail.

Tokens are issued by `sijill officer add` (one agency, one role) and stored hashed; a request
names its token as `Authorization: Bearer <token>`. A missing, unknown, expired or revoked
token is one answer, 401, identical to the byte but for the request id (`UNAUTHENTICATED`),
that says what to send but never whether a token was sent or which tokens exist. A known token
without the role a route needs is 403, naming the role. Each token may make `rate` requests a
second on average, in bursts of up to `burst`; beyond that 429 with Retry-After.

Public routes (the verify page and its files, shared bundles, certificates, public verify; /rpc
has its own bucket, api/rpcproxy.py) take no token: `limit_public` counts them per client
address instead (`--public-rate`), apart from any officer token's allowance.

Every authenticated call is written to the node's audit trail. Changes (create, amend,
revoke) are audited by intake in the same write batch as the change itself; reads and refusals
go through `AuditBuffer`, which commits them in groups (one write every 50 ms at most) so that
a burst of reads costs one disk sync, not one each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiProblem
from node.errors import StoreError
from node.store import TOKEN_ID_LENGTH, Store, hash_token

ROLES = ("officer", "supervisor", "auditor")
WRITERS = ("officer", "supervisor")
SUPERVISORS = ("supervisor",)
READERS = ("officer", "supervisor", "auditor")

RETRY_PAUSE = 2.0  # seconds the audit thread waits before it writes again to a store that was away
log = logging.getLogger("sijill.api")

bearer = HTTPBearer(auto_error=False, description="An officer token from `sijill officer add`")


@dataclass(frozen=True, slots=True)
class Officer:
    token_id: str  # the first 16 hex digits of the token's hash: what the audit trail names
    name: str
    role: str
    agency: str

    @property
    def actor(self) -> str:
        return f"officer:{self.token_id}"


class RateLimiter:
    """A token bucket per key: `rate` a second on average, bursts of `burst`."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds to wait."""
        return self._ask(key, take=True)

    def wait(self, key: str) -> float:
        """What `take` would answer, without taking anything."""
        return self._ask(key, take=False)

    def _ask(self, key: str, *, take: bool) -> float:
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1.0:
                if take:
                    if len(self._buckets) >= self.max_keys:
                        self._forget_full(now)
                    self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold nothing a new bucket would not. Keyed
        by client address, the table would otherwise grow with every address ever seen."""
        full = [k for k, (lvl, last) in self._buckets.items() if lvl + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]


class AuditBuffer:
    """Audit entries for reads and refusals, committed in groups by a background thread."""

    def __init__(self, store: Store, interval: float = 0.05, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.interval = interval
        self._clock = clock
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sijill-audit", daemon=True)
        self._thread.start()

    def add(self, *, actor: str, action: str, request_id: str, subject: str, details: dict[str, Any]) -> None:
        entry = {
            "actor": actor,
            "action": action,
            "request_id": request_id,
            "subject": subject,
            "at": int(self._clock()),
            "details": details,
        }
        with self._lock:
            self._pending.append(entry)
            if len(self._pending) >= 512:
                self._wake.set()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            with self.store.write_batch() as wb:
                for entry in pending:
                    self.store.audit(wb, **entry)
        except BaseException:  # nothing was written (one batch): keep them, in order, for the next try
            with self._lock:
                self._pending[:0] = pending
            raise

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except StoreError as exc:  # the store away (a failover): the entries wait for it
                if self._stop.is_set():
                    return
                log.warning("audit entries kept until the store answers: %s", exc)
                self._stop.wait(RETRY_PAUSE)
            except Exception:  # a closed store at shutdown: nothing more to write
                if self._stop.is_set():
                    return
                raise

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()


def retry_after(wait: float) -> dict[str, str]:
    """The Retry-After header of a 429: whole seconds, at least 1."""
    return {"Retry-After": str(max(1, int(wait + 0.999)))}


def client_address(request: Request) -> str:
    """The address public limits are counted by."""
    return request.client.host if request.client else "unknown"


async def limit_public(request: Request) -> None:
    """A dependency of every public route: one request from this client address's allowance."""
    sijill = request.app.state.sijill
    wait = sijill.public_limiter.take(f"pub:{client_address(request)}")
    if wait > 0:
        raise ApiProblem(
            429,
            "rate-limited",
            f"More than {sijill.settings.public_rate:g} requests a second from this address; retry later",
            "طلبات كثيرة جدًا من هذا العنوان؛ أعد المحاولة لاحقًا",
            headers=retry_after(wait),
        )


def audit_call(request: Request, actor: str, action: str, subject: str, **details: Any) -> None:
    """Put one call in the audit trail's read buffer (changes are audited by intake instead)."""
    request.app.state.sijill.audit.add(
        actor=actor, action=action, request_id=request.state.request_id, subject=subject, details=details
    )


# One answer for every request without a usable token, whether it sent none or a token that is
# unknown, expired or revoked: same status, `detail` and `WWW-Authenticate`, so nothing in the
# answer tells a wrong token from none (nor which tokens exist). RFC 6750 (section 3.1) asks for
# no error code when a request has no token and `error="invalid_token"` when its token fails;
# one answer cannot do both, and an error code on a request that sent nothing would be false,
# so neither carries one. The audit trail still records which it was.
UNAUTHENTICATED = (
    "This route needs a valid officer token: send 'Authorization: Bearer <token>' with a token "
    "that is known here, not expired and not revoked",
    "هذا المسار يتطلب رمز موظف صالحًا: أرسل الترويسة Authorization: Bearer مع رمز معروف لدى هذه "
    "العقدة وغير منتهي الصلاحية وغير ملغى",
)
UNAUTHENTICATED_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sijill"'}


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Officer:
    app = request.app.state.sijill
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else ""
    found = app.node.store.find_token(token, now=int(time.time())) if 0 < len(token) <= 512 else None
    if found is None:
        why = "token not valid" if token else "no bearer token"
        audit_call(request, "anonymous", "auth.refused", request.url.path, why=why)
        raise ApiProblem(401, "unauthenticated", *UNAUTHENTICATED, headers=UNAUTHENTICATED_CHALLENGE)
    officer = Officer(
        hash_token(token)[:TOKEN_ID_LENGTH], str(found.get("name", "")), str(found["role"]), found["agency"]
    )
    wait = app.limiter.take(officer.token_id)
    if wait > 0:
        raise ApiProblem(
            429,
            "rate-limited",
            f"More than {app.settings.rate_limit:g} requests a second with this token; retry later",
            "تجاوزت عدد الطلبات المسموح به في الثانية لهذا الرمز؛ أعد المحاولة لاحقًا",
            headers=retry_after(wait),
        )
    return officer


def require(*roles: str) -> Any:
    """A dependency: the calling officer, who must hold one of `roles` at this node's agency."""

    # async: the checks are a LevelDB read and a few dict operations, cheaper than the hop to a
    # worker thread that a plain `def` dependency costs on every request.
    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Officer:
        officer = authenticate(request, credentials)
        app = request.app.state.sijill
        problem = None
        if officer.agency != app.agency:
            problem = (
                f"This token belongs to agency {officer.agency}, not {app.agency}",
                "هذا الرمز يخص جهة أخرى",
            )
        elif officer.role not in roles:
            problem = (
                f"This needs the role {' or '.join(roles)}; the token's role is {officer.role}",
                "هذه العملية تتطلب صلاحية أعلى من صلاحية هذا الرمز",
            )
        if problem is not None:
            audit_call(request, officer.actor, "auth.forbidden", request.url.path, role=officer.role)
            raise ApiProblem(403, "forbidden", problem[0], problem[1])
        return officer

    return Depends(dependency)
