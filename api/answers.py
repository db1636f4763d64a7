"""What the write routes share to answer fast: JSON answers rendered by orjson where its bytes
are json.dumps's (`JsonAnswer`), JSON bodies and lines read by orjson where it gives json's
values (`ledger.jsontext.loads`), and one executor hop to the API's worker threads for blocking work
(`in_worker`) instead of Starlette's `run_in_threadpool`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi.responses import JSONResponse

T = TypeVar("T")


class JsonAnswer(JSONResponse):
    """A JSONResponse rendered by orjson: the same bytes as Starlette's
    `json.dumps(ensure_ascii=False, separators=(",", ":"))` for strings, integers, booleans,
    null, lists and objects with string keys (tests/python/test_api_fast_paths.py compares
    them); anything else (a float, a key that is not a string, an integer past 64 bits) is
    rendered by JSONResponse itself, as before."""

    def render(self, content: Any) -> bytes:
        if _plain(content):
            try:
                return orjson.dumps(content)
            except orjson.JSONEncodeError:
                pass
        return super().render(content)


def _plain(value: Any) -> bool:
    """Whether `value` holds nothing but what orjson writes as json.dumps does."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


async def in_worker(sijill: Any, work: Callable[..., T], *args: Any) -> T:
    """Run blocking `work(*args)` (intake, the store) on the API's worker threads: one
    executor hop, a third of the CPU of Starlette's `run_in_threadpool` (anyio)."""
    return await asyncio.get_running_loop().run_in_executor(sijill.workers, work, *args)
