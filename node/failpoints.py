"""Failpoints: named places where a test makes the node die at once, as a power cut would.

They prove that every step of intake and anchoring is crash-safe: the fault-injection tests
run `sijill node ingest` with `SIJILL_FAILPOINT=<name>[:<n>]`, the process `os._exit`s the n-th
time (default the first) it reaches that point, without cleanup, and a second run must finish
the work with nothing lost and nothing anchored twice. Unset, a failpoint costs one dict lookup.
"""

from __future__ import annotations

import os

POINTS = (
    "intake-committed",  # a bulk chunk is committed, the caller has not seen it yet
    "batch-built",  # a batch is stored, its anchor not sent
    "anchor-sent",  # the anchor transaction is broadcast, the batch not marked sent
    "anchor-mined",  # the receipt is in, the proofs are not stored
    "proofs-stored",  # the proofs are stored, the batch not marked anchored
)

_reached: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Die here if `SIJILL_FAILPOINT` names this point (and this is its n-th time)."""
    spec = os.environ.get("SIJILL_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        os._exit(137)
