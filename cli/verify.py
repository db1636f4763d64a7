"""`sijill verify`: proof bundles checked against the chain alone, one or a million at a time.

The command reads its options, runs the verification (`node.auditor.verify`, over the sources
`node.auditor.sources` reads) and prints: one bundle's checks as a table, many as a summary
per verdict and a line for each that is not authentic-current, or `--json`, one report a line.

Exit status: 0 every bundle is authentic-current; 1 some bundle is anything else (superseded,
revoked, pending, not-authentic, unknown) or could not be read; 2 bad usage, an unreachable
chain, or no deployment where a bundle (or --deployment) points. See docs/verify.md.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, TextIO

import typer

from node.auditor.verify import POOL_ABOVE, UNREADABLE, Abort

if TYPE_CHECKING:
    from rich.console import Console

    from node.auditor.sources import Item
    from node.auditor.verify import Settings, SourceResult

EXIT_AUTHENTIC, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


class Lang(StrEnum):
    EN = "en"
    AR = "ar"


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
    from node.auditor.sources import expand_sources, source_items
    from node.auditor.verify import Settings, pinned_deployment, process_client, verify_chunk

    err = err or Console(stderr=True, soft_wrap=True, highlight=False)
    out = out or sys.stdout
    start = time.perf_counter()
    client = process_client(options.rpc, options.rpc_batch_size)
    try:
        chain_id = int(client.call("eth_chainId", []), 16)
        pinned = pinned_deployment(client, options.deployment, chain_id) if options.deployment else None
    except ChainUnavailable as exc:
        raise Abort(str(exc)) from None
    except (ValueError, TypeError):
        raise Abort(f"{options.rpc} answered eth_chainId with something that is not a number") from None
    settings = Settings(options.rpc, chain_id, pinned, int(time.time()), options.rpc_batch_size)
    summary = RunSummary(requests=client.requests, calls=client.calls)

    names, total = expand_sources(options.sources)
    items = source_items(names, options.headers, stdin)
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

    from node.auditor.verify import verify_items

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
