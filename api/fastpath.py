"""A fast path through FastAPI for a route's ordinary request, the same answer for less work.

FastAPI's own handling of a request (solving the dependencies, validating the body against a
pydantic model, the header parameters) costs the single-record create about a quarter of the
CPU its request takes. `FastPathRoute` is an APIRoute whose endpoint may carry a `fast_path`
(set with `with_fast_path`): a coroutine given the request that returns the answer, or None
when the request is not one it is sure of; FastAPI's handler then runs as before, so every
refusal (401, 403, 422, 429 ...) is the one FastAPI gives. A fast path takes only requests
FastAPI would accept with the same values (`json_object`, `single_header`): it decides before
anything is written, audited or counted, and runs the endpoint's own code. The route, its
OpenAPI schema and its exception handlers stay FastAPI's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

from ledger.jsontext import loads as loads_json

F = TypeVar("F", bound=Callable[..., Any])
FastPath = Callable[[Request], Awaitable[Response | None]]


def with_fast_path(fast: FastPath) -> Callable[[F], F]:
    """Decorate an endpoint (below the router's decorator) with its fast path."""

    def mark(endpoint: F) -> F:
        endpoint.fast_path = fast  # type: ignore[attr-defined]
        return endpoint

    return mark


class FastPathRoute(APIRoute):
    """An APIRoute that tries its endpoint's `fast_path` first (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        fast: FastPath | None = getattr(self.endpoint, "fast_path", None)
        if fast is None:
            return slow

        async def handler(request: Request) -> Response:
            answer = await fast(request)
            return answer if answer is not None else await slow(request)

        return handler


async def json_object(request: Request, fields: dict[str, type]) -> dict[str, Any] | None:
    """The JSON body as FastAPI reads it for a model of exactly `fields` (name: exact type,
    extra fields forbidden), or None if it is anything else: a Content-Type other than
    `application/json`, an empty or invalid body, another shape or type (FastAPI answers those)."""
    if single_header(request, b"content-type") != "application/json":
        return None
    body = await request.body()
    if not body:
        return None
    try:
        value = loads_json(body)
    except (ValueError, RecursionError):
        return None
    if type(value) is not dict or value.keys() != fields.keys():
        return None
    if any(type(value[name]) is not kind for name, kind in fields.items()):
        return None
    return value


def single_header(request: Request, name: bytes) -> str | None:
    """The value of header `name` (lower case) if the request has it once; None if it has it
    never or more than once (FastAPI reads the first: the fast path leaves that to it)."""
    found = [value for key, value in request.scope["headers"] if key.lower() == name]
    return found[0].decode("latin-1") if len(found) == 1 else None


def matches(pattern: re.Pattern[str], value: str) -> bool:
    """A pydantic `pattern` (`^...$`, Rust regex: `$` is the end of the text) as Python's
    fullmatch of the pattern without its anchors."""
    return pattern.fullmatch(value) is not None


class DirectRoutes:
    """Fast paths taken before FastAPI's middleware and router (api/guard.py calls `answer`),
    for the routes where their layers cost as much as the route itself: the request is handed
    to the route's `fast_path` with the scope FastAPI would give it (the app, the route), and
    what it raises is answered by the app's own exception handlers, as Starlette's
    ExceptionMiddleware and ServerErrorMiddleware would (the last resort logs, answers 500 and
    raises again). A request the fast path does not take goes the whole way, as before."""

    def __init__(self, app: Any, routes: dict[tuple[str, str], APIRoute]) -> None:
        self.app = app
        self.routes = routes
        handlers = app.exception_handlers
        if any(isinstance(key, int) and key != 500 for key in handlers):
            self.routes = {}  # handlers by status code: Starlette's lookup, not done here
        self._handlers = {k: v for k, v in handlers.items() if isinstance(k, type) and k is not Exception}
        self._last_resort = handlers.get(500) or handlers.get(Exception)

    def route_of(self, scope: dict[str, Any]) -> APIRoute | None:
        return self.routes.get((scope.get("method", ""), scope.get("path", "")))

    async def answer(self, route: APIRoute, scope: dict[str, Any], receive: Any, send: Any) -> bool:
        """Answer the request by `route`'s fast path; False (nothing done) if it does not take it."""
        fast: FastPath = route.endpoint.fast_path  # type: ignore[attr-defined]
        child = {**scope, "app": self.app, "route": route, "endpoint": route.endpoint, "path_params": {}}
        request = Request(child, receive, send)
        try:
            response = await fast(request)
        except Exception as exc:
            handler = self._handler(exc)
            scope["route"] = route
            if handler is None:
                if self._last_resort is None:
                    raise
                await (await self._last_resort(Request(child), exc))(child, receive, send)
                raise
            response = await handler(request, exc)
        if response is None:
            return False
        scope["route"] = route
        await response(child, receive, send)
        return True

    def _handler(self, exc: Exception) -> Any:
        for kind in type(exc).__mro__:
            if kind in self._handlers:
                return self._handlers[kind]
        return None
