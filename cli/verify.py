"""`sijill verify`: proof bundles checked against the chain alone, one or a million at a time.

Sources (files, directories, stdin, URLs) become items; items are verified in chunks of
`CHUNK` bundles. A chunk is parsed (`ledger.bundle.load_bundle`), the chain is asked everything
its bundles need in JSON-RPC batches, de-duplicated (`node.chain.rpcbatch.ask_chain`), and every bundle
is checked by `ledger.verify` against those answers. Up to `POOL_ABOVE` bundles are verified in
this process; more go to a process pool, a bounded number of chunks at a time, so memory stays
flat however many bundles there are and results come out in input order. Verification is
CPU-bound Python; while one worker waits for the node's answers another verifies.

Exit status: 0 every bundle is authentic-current; 1 some bundle is anything else (superseded,
revoked, pending, not-authentic, unknown) or could not be read; 2 bad usage, an unreachable
chain, or no deployment where a bundle (or --deployment) points. See docs/verify.md.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, NamedTuple, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ledger.bundle import Bundle
    from ledger.verify import VerificationReport
    from node.chain.rpcbatch import Deployment, MissingDeployment, RpcBatch

EXIT_AUTHENTIC, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2
CHUNK = 1000  # bundles per unit of work: one round of chain questions, about half a second of checks
POOL_ABOVE = 2000  # more bundles than this are verified by a process pool
UNREADABLE = "unreadable"  # the verdict of a source that is not a readable bundle
NOT_ON_THIS_CHAIN = "none on this chain"  # the registry of a bundle naming another chain
RPC_TIMEOUT = 60.0


class Lang(StrEnum):
    EN = "en"
    AR = "ar"


class Abort(Exception):
    """The run cannot go on: the message is the one line printed, `status` the exit status."""

    def __init__(self, message: str, status: int = EXIT_UNUSABLE) -> None:
        super().__init__(message)
        self.status = status


class Unreadable(Exception):
    """A source that yields no bundle document; the message says why."""


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


Payload = Path | bytes | Unreadable
Item = tuple[str, Payload]


@dataclass(frozen=True, slots=True)
class Options:
    """A `sijill verify` run, as the command line gives it."""

    sources: list[str]
    rpc: str
    deployment: Path | None = None
    lang: Lang = Lang.EN
    as_json: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    workers: int | None = None
    rpc_batch_size: int = 1000


@dataclass
class RunSummary:
    status: int = EXIT_AUTHENTIC
    verdicts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    calls: int = 0
    seconds: float = 0.0

    @property
    def bundles(self) -> int:
        return sum(self.verdicts.values())

    def conclude(self, *, deployment_missing: bool) -> None:
        """Set the exit status from the verdicts counted."""
        if deployment_missing:
            self.status = EXIT_UNUSABLE
        elif self.verdicts["authentic-current"] != self.bundles:
            self.status = EXIT_FINDINGS
        else:
            self.status = EXIT_AUTHENTIC


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `sijill` app."""
    app.command("verify")(verify_command)


def verify_command(
    bundles: Annotated[
        list[str],
        typer.Argument(
            help="Bundle files; directories (every *.json inside, recursively, sorted); - for stdin "
            "(one bundle, or NDJSON: one bundle per line); http(s) URLs of a node's bundle.",
            metavar="BUNDLE",
            show_default=False,
        ),
    ],
    rpc: Annotated[
        str, typer.Option("--rpc", envvar="SIJILL_RPC_URL", help="JSON-RPC endpoint of the chain.")
    ],
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment",
            dir_okay=False,
            help="Deployment file (as `sijill deploy` writes it) pinning the chain and contracts: "
            "a bundle naming other contracts is not authentic. Default: the bundle's own addresses.",
        ),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Language of the reasons and headings.")] = Lang.EN,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON report per bundle and line (NDJSON) on stdout.")
    ] = False,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            help="'Name: value' header sent with every bundle URL request (e.g. Authorization); repeatable.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Processes verifying above {POOL_ABOVE} bundles (default: one per CPU; 1: none)."
        ),
    ] = None,
    rpc_batch_size: Annotated[
        int,
        typer.Option(min=1, help="Calls per JSON-RPC batch request (lower it for a node that caps batches)."),
    ] = 1000,
) -> None:
    """Verify proof bundles against the chain alone and print the six named checks.

    One bundle: the checks (integrity, inclusion, anchored, authority, status,
    receipt) with their reasons, the verdict and the record. Many: a summary
    per verdict, and a line for each bundle that is not authentic-current
    naming its first failing check. --json: one JSON report per line.

    Exit status:
      0  every bundle is authentic-current;
      1  some bundle is superseded, revoked, pending, not-authentic or
         unknown, or could not be read (missing, not JSON, not a bundle);
      2  bad usage, an unreachable chain, or no contract at the ledger
         address a bundle (or --deployment) names.

    Example: sijill verify bundles/ --rpc http://127.0.0.1:8545
    """
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        headers = dict(_header(h) for h in header or [])
        options = Options(bundles, rpc, deployment, lang, as_json, headers, workers, rpc_batch_size)
        summary = run(options, err=err)
    except Abort as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(exc.status) from None
    raise typer.Exit(summary.status)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise Abort(f"--header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


# ------------------------------------------------------------------------------------ the run


def run(
    options: Options, *, err: Console | None = None, out: TextIO | None = None, stdin: BinaryIO | None = None
) -> RunSummary:
    """Verify every bundle `options` names and print the results; the summary and exit status.
    `Abort` when the run cannot go on (usage, chain, deployment)."""
    from rich.console import Console

    from ledger.chainview import ChainUnavailable

    err = err or Console(stderr=True, soft_wrap=True, highlight=False)
    out = out or sys.stdout
    start = time.perf_counter()
    client = _client(options.rpc, options.rpc_batch_size)
    try:
        chain_id = int(client.call("eth_chainId", []), 16)
        pinned = _pinned(client, options.deployment, chain_id) if options.deployment else None
    except ChainUnavailable as exc:
        raise Abort(str(exc)) from None
    except (ValueError, TypeError):
        raise Abort(f"{options.rpc} answered eth_chainId with something that is not a number") from None
    settings = Settings(options.rpc, chain_id, pinned, int(time.time()), options.rpc_batch_size)
    summary = RunSummary(requests=client.requests, calls=client.calls)

    names, total = _expand(options.sources)
    items = _items(names, options.headers, stdin)
    head = list(islice(items, 2))
    if not head:
        raise Abort(f"no bundles to verify in {' '.join(options.sources)}")
    try:
        if len(head) == 1:
            (result,) = verify_chunk(head, settings).results
            summary.requests, summary.calls = client.requests, client.calls
            _single(result, options, out, err, summary)
        else:
            settings = replace(settings, reports=options.as_json)
            _many(chain(head, items), total, settings, options, out, err, summary)
    except ChainUnavailable as exc:
        raise Abort(f"the chain stopped answering: {exc}") from None
    summary.seconds = time.perf_counter() - start
    return summary


def _pinned(client: RpcBatch, path: Path, chain_id: int) -> Deployment:
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


def _single(result: SourceResult, options: Options, out: TextIO, err: Console, summary: RunSummary) -> None:
    from rich.markup import escape

    summary.verdicts[result.verdict] += 1
    summary.conclude(deployment_missing=result.missing is not None)
    if options.as_json:
        out.write(result.line + "\n")
        out.flush()
    if result.verdict == UNREADABLE or result.missing:
        reason = result.missing or f"{result.source}: {result.problem[1] if result.problem else ''}"
        err.print(f"[red]error:[/] {escape(reason)}")
    elif not options.as_json:
        _print_report(json.loads(result.line), options.lang, out)


def _many(
    items: Iterator[Item],
    total: int | None,
    settings: Settings,
    options: Options,
    out: TextIO,
    err: Console,
    summary: RunSummary,
) -> None:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    missing: dict[str, None] = {}
    # Refreshed by hand, once per chunk: no refresh thread alive when the pool forks.
    progress = Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
        disable=not err.is_terminal,
    )
    task = progress.add_task("verify", total=total)
    with _Findings() as findings:
        with progress:
            for chunk in verify_items(items, settings, options.workers):
                summary.requests += chunk.requests
                summary.calls += chunk.calls
                lines = []
                for r in chunk.results:
                    summary.verdicts[r.verdict] += 1
                    if r.missing and r.missing not in missing:
                        missing[r.missing] = None
                        progress.console.print(f"[red]error:[/] {escape(r.missing)}")
                    if options.as_json:
                        lines.append(r.line + "\n")
                        if r.verdict == UNREADABLE and r.problem:
                            progress.console.print(
                                f"[red]error:[/] {escape(r.source)}: {escape(r.problem[1])}"
                            )
                    elif r.verdict != "authentic-current":
                        findings.add(r)
                if lines:
                    out.write("".join(lines))
                progress.update(task, advance=len(chunk.results))
                progress.refresh()
        out.flush()
        summary.conclude(deployment_missing=bool(missing))
        if not options.as_json:
            _print_summary(summary, findings, options.lang, out, time.perf_counter() - start)


class _Findings:
    """The bundles to list after the summary, in a temporary file beyond a few MB: a run over
    a million revoked bundles must not hold a million results."""

    def __enter__(self) -> _Findings:
        import tempfile

        self._file = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")
        self.count = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add(self, r: SourceResult) -> None:
        check, en, ar = r.problem or ("", "", "")
        self._file.write(json.dumps([r.source, r.verdict, check, en, ar], ensure_ascii=False) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[tuple[str, str, str, str, str]]:
        self._file.seek(0)
        for line in self._file:
            source, verdict, check, en, ar = json.loads(line)
            yield source, verdict, check, en, ar


# ---------------------------------------------------------------------------------- sources


def _expand(sources: list[str]) -> tuple[list[str | Path], int | None]:
    """The sources in order, a directory as its Path, and how many bundles they hold (None when
    stdin is among them: its count is known only once read)."""
    names: list[str | Path] = [s if s == "-" or _is_url(s) else Path(s) for s in sources]
    if "-" in names:
        return names, None
    return names, sum(sum(1 for _ in _walk(n)) if isinstance(n, Path) and n.is_dir() else 1 for n in names)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _is_dir(name: str | Path) -> bool:
    return isinstance(name, Path) and name.is_dir()


def _walk(directory: Path) -> Iterator[Path]:
    """Every *.json file under `directory`, lazily: its own files by name, then each of its
    subdirectories by name (not following links to directories)."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.endswith(".json") and entry.is_file():
            yield Path(entry.path)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))


def _items(names: list[str | Path], headers: dict[str, str], stdin: BinaryIO | None) -> Iterator[Item]:
    """(label, payload) for every bundle: a file to read, or the bytes read or fetched, or why not."""
    fetcher = None
    for name in names:
        if _is_dir(name):
            yield from ((str(path), path) for path in _walk(Path(name)))
        elif isinstance(name, Path):
            yield str(name), name
        elif name == "-":
            yield from _stdin_items(stdin or sys.stdin.buffer)
        else:
            if fetcher is None:
                import httpx

                fetcher = httpx.Client(headers=headers, timeout=30.0, follow_redirects=True)
            yield name, _fetch(fetcher, name)
    if fetcher is not None:
        fetcher.close()


def _stdin_items(stream: BinaryIO) -> Iterator[Item]:
    """One bundle (a JSON document over any number of lines), or NDJSON: one bundle per line,
    labelled `-:LINE`. It is NDJSON when its first non-blank line is a whole JSON document."""
    lines = enumerate(stream, start=1)
    first = next(((n, line) for n, line in lines if line.strip()), None)
    if first is None:
        return
    try:
        json.loads(first[1])
    except ValueError:
        yield "-", first[1] + b"".join(line for _, line in lines)
        return
    second = next(((n, line) for n, line in lines if line.strip()), None)
    if second is None:
        yield "-", first[1]
        return
    for n, line in chain((first, second), lines):
        if line.strip():
            yield f"-:{n}", line


def _fetch(client: Any, url: str) -> bytes | Unreadable:
    """A bundle from a node (GET, 200 only), at most MAX_BUNDLE_BYTES."""
    import httpx

    from ledger.bundle import MAX_BUNDLE_BYTES
    from node.chain.rpcbatch import transport_reason

    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                response.read()
                return Unreadable(f"HTTP {response.status_code} {response.reason_phrase}{_problem(response)}")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > MAX_BUNDLE_BYTES:
                    return Unreadable(f"more than {MAX_BUNDLE_BYTES} bytes: not a bundle")
            return bytes(data)
    except httpx.HTTPError as exc:
        return Unreadable(f"cannot fetch it: {transport_reason(exc)}")


def _problem(response: Any) -> str:
    """The detail of an RFC 9457 problem answer, if it is one."""
    try:
        problem = response.json()
        detail = problem.get("detail") or problem.get("title")
    except (ValueError, AttributeError):
        return ""
    return f" ({detail})" if isinstance(detail, str) and detail else ""


# --------------------------------------------------------------------------------- verifying


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


def _client(rpc: str, batch_size: int) -> RpcBatch:
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
    b = report.bundle
    record = (
        None
        if b is None
        else {"agency": b.agency, "recordType": b.record_type, "recordId": b.record_id, "version": b.version}
    )
    document = {"source": source, **report.to_json(), "record": record}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


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


# ----------------------------------------------------------------------------------- output

_TEXT: dict[str, dict[str, str]] = {
    "bundle": {"en": "Bundle", "ar": "المستند"},
    "record": {"en": "Record", "ar": "القيد"},
    "agency": {"en": "agency", "ar": "الجهة"},
    "type": {"en": "type", "ar": "النوع"},
    "id": {"en": "id", "ar": "الرقم"},
    "version": {"en": "version", "ar": "الإصدار"},
    "check": {"en": "check", "ar": "الفحص"},
    "outcome": {"en": "outcome", "ar": "النتيجة"},
    "reason": {"en": "reason", "ar": "السبب"},
    "verdict": {"en": "Verdict", "ar": "الحكم"},
    "verdicts": {"en": "verdict", "ar": "الحكم"},
    "count": {"en": "bundles", "ar": "عدد المستندات"},
    "total": {"en": "total", "ar": "المجموع"},
    "verified": {"en": "{n} bundles verified in {s:.1f} s", "ar": "تم التحقق من {n} مستند في {s:.1f} ث"},
    "findings": {"en": "Not authentic-current:", "ar": "مستندات ليست أصلية وسارية:"},
    "integrity": {"en": "integrity", "ar": "سلامة البيانات"},
    "inclusion": {"en": "inclusion", "ar": "الانتماء إلى دفعة التثبيت"},
    "anchored": {"en": "anchored", "ar": "التثبيت في دفتر القيود المشترك"},
    "authority": {"en": "authority", "ar": "صلاحية الموقّع والجهة"},
    "status": {"en": "status", "ar": "سريان القيد"},
    "receipt": {"en": "receipt", "ar": "إيصال الاستلام"},
    "pass": {"en": "pass", "ar": "ناجح"},
    "fail": {"en": "fail", "ar": "فاشل"},
    "unknown": {"en": "unknown", "ar": "غير معروف"},
    "authentic-current": {"en": "authentic-current", "ar": "أصلي وساري"},
    "superseded": {"en": "superseded", "ar": "صدر إصدار أحدث"},
    "revoked": {"en": "revoked", "ar": "مُلغى"},
    "pending": {"en": "pending", "ar": "بانتظار التثبيت"},
    "not-authentic": {"en": "not-authentic", "ar": "غير أصلي"},
    UNREADABLE: {"en": UNREADABLE, "ar": "غير مقروء"},
}
_VERDICT_ORDER = (
    "authentic-current",
    "superseded",
    "revoked",
    "pending",
    "not-authentic",
    "unknown",
    UNREADABLE,
)
_STYLE = {"pass": "green", "fail": "red", "unknown": "yellow", "authentic-current": "bold green"}


def _t(key: str, lang: Lang) -> str:
    return _TEXT.get(key, {}).get(lang.value, key)


def _named(key: str, lang: Lang) -> str:
    """A check, outcome or verdict in `lang`; in Arabic with its name as printed in JSON beside it."""
    text = _t(key, lang)
    return text if lang == Lang.EN else f"{text} ({key})"


def _console(out: TextIO) -> Console:
    from rich.console import Console

    return Console(file=out, soft_wrap=True, highlight=False)


def _print_report(document: dict[str, Any], lang: Lang, out: TextIO) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console(out)
    console.print(f"{_t('bundle', lang)}: {escape(document['source'])}")
    record = document["record"]
    fields = [("agency", record["agency"]), ("type", record["recordType"]), ("id", record["recordId"])]
    fields.append(("version", str(record["version"])))
    comma = ", " if lang == Lang.EN else "، "
    console.print(f"{_t('record', lang)}: " + comma.join(f"{_t(k, lang)} {escape(v)}" for k, v in fields))
    table = Table(_t("check", lang), _t("outcome", lang), _t("reason", lang))
    table.columns[2].overflow = "fold"
    for check in document["checks"]:
        outcome = check["outcome"]
        shown = f"[{_STYLE.get(outcome, '')}]{_named(outcome, lang)}[/]"
        table.add_row(_named(check["name"], lang), shown, escape(check["reason"][lang.value]))
    console.print(table)
    verdict = document["verdict"]
    console.print(f"{_t('verdict', lang)}: [{_STYLE.get(verdict, 'bold red')}]{_named(verdict, lang)}[/]")


def _print_summary(summary: RunSummary, findings: _Findings, lang: Lang, out: TextIO, seconds: float) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console(out)
    title = _t("verified", lang).format(n=f"{summary.bundles:,}", s=seconds)
    table = Table(_t("verdicts", lang), _t("count", lang), title=title)
    table.columns[1].justify = "right"
    for verdict in _VERDICT_ORDER:
        if summary.verdicts[verdict]:
            style = _STYLE.get(verdict, "red")
            table.add_row(f"[{style}]{_named(verdict, lang)}[/]", f"{summary.verdicts[verdict]:,}")
    table.add_row(_t("total", lang), f"{summary.bundles:,}", end_section=True)
    console.print(table)
    if findings.count:
        console.print(_t("findings", lang))
    for source, verdict, check, en, ar in findings:
        reason = en if lang == Lang.EN else ar
        where = f"{_named(check, lang)}: " if check else ""
        console.print(f"  {escape(source)}  [red]{_named(verdict, lang)}[/]  {where}{escape(reason)}")
