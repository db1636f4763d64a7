"""Schemathesis hooks for the API fuzz run (loaded through SCHEMATHESIS_HOOKS).

The bulk route takes NDJSON, which schemathesis has no serializer for: generated values are
sent as lines of JSON (a list becomes one line per item, anything else one line)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    lines = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")
