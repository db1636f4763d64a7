"""Whether the node's store answers: `/readyz`, `/metrics` and the 503 `store-unavailable`.

A PostgreSQL store can be away for a while (the server down, a failover under way). A request
that needs it then fails with `StoreError`, which `on_store_error` answers 503
`store-unavailable` with `Retry-After`: nothing about the request is wrong, and a write refused
so committed nothing, since a write batch is one transaction (a bulk upload may have committed
its first chunks: a retry with the same Idempotency-Key replays them).

`StoreProbe` is what `/readyz` and `/metrics` ask: one small read (one key) at a time, in a
thread of its own, waited for at most `timeout` seconds and its answer kept `ttl` seconds. A
store that is away can hold a read for the store's own connection timeout (PostgreSQL: 10 s);
the probe answers "down" at its own timeout meanwhile and starts no second read while the first
still hangs, so probes every second never pile threads up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.problems import problem_response
from node.errors import StoreError

RETRY_AFTER = 5  # seconds a client waits before it retries a request the store could not serve
PROBE_KEY = b"chain/checkpoint"  # one small row (the indexer's checkpoint); missing is an answer too

log = logging.getLogger("sijill.api")


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What the last probe found: `problem` is a sentence naming the store when it did not answer."""

    up: bool
    problem: str | None = None


class StoreProbe:
    """`probe.status()`: does the store answer a small read now (cached for `ttl` seconds)?"""

    def __init__(
        self,
        store: Any,
        *,
        timeout: float = 2.0,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, StoreStatus] | None = None
        self._running: threading.Event | None = None  # set when the read in flight has answered

    def status(self) -> StoreStatus:
        with self._lock:
            if self._last is not None and self._clock() - self._last[0] < self.ttl:
                return self._last[1]
            done = self._running
            if done is None:
                done = self._running = threading.Event()
                reader = threading.Thread(
                    target=self._read, args=(done,), name="sijill-store-probe", daemon=True
                )
                reader.start()
        if not done.wait(self.timeout):
            where = getattr(self.store, "where", "the store")
            return StoreStatus(False, f"the store at {where} did not answer within {self.timeout:g} s")
        with self._lock:
            assert self._last is not None
            return self._last[1]

    def _read(self, done: threading.Event) -> None:
        try:
            self.store.get(PROBE_KEY)
            found = StoreStatus(True)
        except StoreError as exc:
            found = StoreStatus(False, str(exc))
        except Exception as exc:  # anything else the store's driver raises: still "did not answer"
            found = StoreStatus(False, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._last = (self._clock(), found)
            self._running = None
        done.set()


async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
    """A `StoreError` while handling a request: 503 with Retry-After, one log line, no traceback
    (the store's messages name it without its password: node/store/backend.py)."""
    assert isinstance(exc, StoreError)
    request_id = getattr(request.state, "request_id", "")
    log.warning("store unavailable on %s %s [%s]: %s", request.method, request.url.path, request_id, exc)
    return problem_response(
        request,
        503,
        "store-unavailable",
        f"The node's store could not be used: {exc}. Retry in a few seconds "
        "(a write with the same Idempotency-Key: it is then done once)",
        "تعذر الوصول إلى مخزن بيانات العقدة؛ أعد المحاولة بعد بضع ثوانٍ "
        "(وأعد طلب الكتابة بنفس مفتاح عدم التكرار حتى لا يُنفَّذ مرتين)",
        headers={"Retry-After": str(RETRY_AFTER)},
    )
