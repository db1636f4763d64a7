"""Verifying bundles in bulk: parsed, the chain asked in JSON-RPC batches, `ledger.verify` run.

Items (`node.auditor.sources`) are verified in chunks of `CHUNK` bundles. A chunk is parsed
(`ledger.bundle.load_bundle`), the chain is asked everything its bundles need in JSON-RPC
batches, de-duplicated (`node.chain.rpcbatch.ask_chain`), and every bundle is checked by
`ledger.verify` against those answers; each gives a `SourceResult` (verdict, first failed check,
its JSON report line). Up to `POOL_ABOVE` bundles are verified in this process; more go to a
process pool, a bounded number of chunks at a time, so memory stays flat however many bundles
there are and results come out in input order. Verification is CPU-bound Python; while one
worker waits for the node's answers another verifies.

`sijill verify` (`cli.verify`) runs this and prints the results. The module is cheap to import:
`ledger.bundle`, `ledger.verify` and `node.chain` are imported where used.
"""

from __future__ import annotations

import gc
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from node.auditor.sources import Item, Payload, Unreadable

if TYPE_CHECKING:
    from ledger.bundle import Bundle
    from ledger.verify import VerificationReport
    from node.chain.rpcbatch import Deployment, MissingDeployment, RpcBatch

CHUNK = 1000  # bundles per unit of work: one round of chain questions, about half a second of checks
POOL_ABOVE = 2000  # more bundles than this are verified by a process pool
UNREADABLE = "unreadable"  # the verdict of a source that is not a readable bundle
NOT_ON_THIS_CHAIN = "none on this chain"  # the registry of a bundle naming another chain
RPC_TIMEOUT = 60.0
UNUSABLE = 2  # the exit status of a run that cannot go on (`sijill verify`'s EXIT_UNUSABLE)


class Abort(Exception):
    """The run cannot go on: the message is the one line printed, `status` the exit status."""

    def __init__(self, message: str, status: int = UNUSABLE) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Settings:
    """What a worker needs to verify a chunk (picklable)."""

    rpc: str
    chain_id: int
    pinned: Deployment | None
    now: int
    rpc_batch_size: int
    reports: bool = True  # False: no JSON line per bundle (a summary of many needs none)


class SourceResult(NamedTuple):
    source: str
    verdict: str  # a ledger.verify.Verdict value, or UNREADABLE
    line: str  # the JSON report of this source, one line ("" when Settings.reports is False)
    problem: tuple[str, str, str] | None  # the first failed (else unknown) check: name, reason en, ar
    missing: str | None  # why there is no deployment where the bundle points (exit status 2)


class ChunkResult(NamedTuple):
    results: list[SourceResult]
    requests: int  # JSON-RPC HTTP requests made for the chunk
    calls: int  # JSON-RPC calls in them


def pinned_deployment(client: RpcBatch, path: Path, chain_id: int) -> Deployment:
    """The deployment a --deployment file pins, checked against the chain."""
    from node.chain.deploy import load_deployment
    from node.chain.rpcbatch import MissingDeployment, find_deployment
    from node.errors import DeploymentError

    try:
        data = load_deployment(path)
        ledger = str(data["contracts"]["RecordLedger"]["address"]).lower()
        registry = str(data["contracts"]["AgencyRegistry"]["address"]).lower()
        recorded_chain = int(data["chainId"])
    except DeploymentError as exc:
        raise Abort(str(exc)) from None
    except (KeyError, TypeError, ValueError):
        raise Abort(f"{path} names no chainId, RecordLedger and AgencyRegistry") from None
    if recorded_chain != chain_id:
        raise Abort(f"{path} is a deployment on chain {recorded_chain}; {client.url} is chain {chain_id}")
    found = find_deployment(client, chain_id, ledger)
    if isinstance(found, MissingDeployment):
        raise Abort(f"{found.message}: the RecordLedger of {path}")
    if found.registry != registry:
        raise Abort(
            f"the RecordLedger at {ledger} uses registry {found.registry}, not {registry} as {path} says"
        )
    return found


def verify_items(
    items: Iterator[Item], settings: Settings, workers: int | None = None
) -> Iterator[ChunkResult]:
    """Results chunk by chunk, in input order: in this process up to POOL_ABOVE bundles, else in
    a process pool with at most two chunks per worker in flight."""
    chunks = _chunks(items, CHUNK)
    head: list[list[Item]] = []
    for chunk in chunks:
        head.append(chunk)
        if sum(map(len, head)) > POOL_ABOVE:
            break
    workers = workers or _cpus()
    if sum(map(len, head)) <= POOL_ABOVE or workers < 2:
        for chunk in chain(head, chunks):
            yield verify_chunk(chunk, settings)
        return

    from concurrent.futures import Future, ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers)
    try:
        pending: deque[Future[ChunkResult]] = deque()
        for chunk in chain(head, chunks):
            pending.append(pool.submit(verify_chunk, chunk, settings))
            while len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(islice(items, size)):
        yield chunk


_CLIENTS: dict[tuple[int, str, int], tuple[RpcBatch, dict[str, Deployment | MissingDeployment]]] = {}


def process_client(rpc: str, batch_size: int) -> RpcBatch:
    return _process_state(rpc, batch_size)[0]


def _process_state(rpc: str, batch_size: int) -> tuple[RpcBatch, dict[str, Deployment | MissingDeployment]]:
    """This process's JSON-RPC client and the deployments it found, by ledger address (a forked
    worker makes its own: a connection is never shared across processes)."""
    from node.chain.rpcbatch import RpcBatch

    key = (os.getpid(), rpc, batch_size)
    if key not in _CLIENTS:
        _CLIENTS[key] = (RpcBatch(rpc, timeout=RPC_TIMEOUT, max_calls=batch_size), {})
    return _CLIENTS[key]


def verify_chunk(items: list[Item], settings: Settings) -> ChunkResult:
    """Parse, ask the chain in batches, verify: the result of every item, in order."""
    # The cyclic collector takes about a quarter of the CPU here (parsing allocates a lot) and
    # finds nothing: a chunk's objects die by reference counting. It runs between chunks.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _verify_chunk(items, settings)
    finally:
        if collecting:
            gc.enable()


def _verify_chunk(items: list[Item], settings: Settings) -> ChunkResult:
    from ledger.bundle import BundleError, load_bundle
    from ledger.verify import verify
    from node.chain.rpcbatch import MissingDeployment, ask_chain

    client, known = _process_state(settings.rpc, settings.rpc_batch_size)
    requests, calls = client.requests, client.calls
    results: list[SourceResult | None] = [None] * len(items)
    parsed: list[tuple[int, Bundle]] = []
    for i, (source, payload) in enumerate(items):
        try:
            parsed.append((i, load_bundle(_content(payload))))
        except (BundleError, Unreadable) as exc:
            results[i] = _unreadable(source, str(exc))
    bundles = [b for _, b in parsed]
    deployments = [_deployment_of(b, settings, client, known) for b in bundles]
    views = ask_chain(client, bundles, deployments)
    for (i, bundle), view, deployment in zip(parsed, views, deployments, strict=True):
        report = verify(bundle, view, now=settings.now)
        missing = deployment.message if isinstance(deployment, MissingDeployment) else None
        results[i] = _result(items[i][0], report, missing, line=settings.reports)
    done = [r for r in results if r is not None]
    return ChunkResult(done, client.requests - requests, client.calls - calls)


def _content(payload: Payload) -> bytes:
    from ledger.bundle import MAX_BUNDLE_BYTES

    if isinstance(payload, Unreadable):
        raise payload
    if isinstance(payload, bytes):
        return payload
    try:
        size = payload.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise Unreadable(f"{size} bytes: a bundle is at most {MAX_BUNDLE_BYTES} bytes")
        return payload.read_bytes()
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except IsADirectoryError:
        raise Unreadable("is a directory") from None
    except OSError as exc:
        raise Unreadable(f"cannot read it: {exc.strerror or exc}") from None


def _deployment_of(
    bundle: Bundle, settings: Settings, client: RpcBatch, known: dict[str, Deployment | MissingDeployment]
) -> Deployment | MissingDeployment:
    """What `bundle` is checked against: the pinned deployment, else the one at the bundle's
    ledger address (or why there is none)."""
    from node.chain.rpcbatch import Deployment, find_deployment

    if settings.pinned is not None:
        return settings.pinned
    if bundle.chain_id != settings.chain_id:
        # ledger.verify names the mismatch; nothing to ask of this chain.
        return Deployment(settings.chain_id, bundle.ledger, NOT_ON_THIS_CHAIN)
    if bundle.ledger not in known:
        known[bundle.ledger] = find_deployment(client, settings.chain_id, bundle.ledger)
    return known[bundle.ledger]


def _result(
    source: str, report: VerificationReport, missing: str | None, *, line: bool = True
) -> SourceResult:
    """One verified bundle's result: verdict, first failed (else unknown) check, JSON report."""
    from ledger.verify import Outcome

    failed = next((c for c in report.checks if c.outcome == Outcome.FAIL), None)
    failed = failed or next((c for c in report.checks if c.outcome == Outcome.UNKNOWN), None)
    problem = None if failed is None else (failed.name, failed.reason_en, failed.reason_ar)
    text = _report_line(source, report) if line else ""
    return SourceResult(source, report.verdict.value, text, problem, missing)


def _report_line(source: str, report: VerificationReport) -> str:
    """{"source", "verdict", "checks", "record"} as one line of JSON."""
    from ledger.verify import json_text  # json.dumps(ensure_ascii=False, compact)'s text, by orjson

    b = report.bundle
    record = (
        None
        if b is None
        else {"agency": b.agency, "recordType": b.record_type, "recordId": b.record_id, "version": b.version}
    )
    document = {"source": source, **report.to_json(), "record": record}
    return json_text(document)


def _unreadable(source: str, reason: str) -> SourceResult:
    document: dict[str, Any] = {
        "source": source,
        "verdict": UNREADABLE,
        "error": reason,
        "checks": [],
        "record": None,
    }
    line = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return SourceResult(source, UNREADABLE, line, ("", reason, reason), None)
