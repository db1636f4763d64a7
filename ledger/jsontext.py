"""JSON text read by orjson wherever it gives the values the `json` module gives.

Stored values, request bodies and NDJSON lines are read many thousands of times a second, and
orjson reads them in a fraction of `json.loads`'s time, with the same objects, except in two
cases: a run of 19 digits or more may be an integer beyond 64 bits, which orjson reads as a
float; and orjson refuses what `json.loads` accepts (NaN, 1e400, a lone surrogate escape, a
UTF-8 BOM). Those go to `json.loads`, which reads or refuses them as it always did
(tests/python/test_store_json.py and test_api_fast_paths.py compare the two readers).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(raw: bytes) -> Any:
    """`json.loads(raw)`, by orjson where it gives the same values; `ValueError` as json raises it."""
    if type(raw) is bytes and _LONG_DIGITS.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
