"""`sijill export` and `sijill audit`: an agency's log exported, and checked against the chain.

`export` writes a `sijill-export/1` directory (`node.auditor.export`) from an agency's API (an auditor's
token) or from a stopped node's store. `audit` holds such a directory against a chain endpoint
(`node.auditor.audit`, the chain read by `node.auditor.rpcchain`) and reports every violation as a
named finding: a table on the terminal, `--json` for machines, `--html FILE` for a self-contained
report an auditor can hand on.

Exit status: 0 no findings, 1 findings, 2 bad usage, an unreachable chain or an unusable export
(one line on stderr, no traceback). docs/audit.md has the format and the list of findings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ledger.canonical import show_refused

if TYPE_CHECKING:
    from node.auditor.report import AuditReport

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

FINDINGS_SHOWN = 200
"""Findings listed on the terminal (all of them are in --json and --html)."""
HTML_BATCHES = 5_000
"""Rows of the HTML batch table: batches with findings first, then the latest."""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `sijill` app."""
    app.command("export")(export_command)
    app.command("audit")(audit_command)


@contextmanager
def _errors() -> Iterator[None]:
    """The project's errors as one line on stderr and exit status 2."""
    from ledger.errors import LedgerError
    from node.errors import NodeError

    try:
        yield
    except (NodeError, LedgerError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


@contextmanager
def _progress() -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """`start(label, total) -> advance(n)` drawing rich progress bars on stderr (a terminal only)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )

    def start(label: str, total: int | None) -> Callable[[int], None]:
        task = progress.add_task(label, total=total)
        return lambda n: progress.advance(task, n)

    with progress:
        yield start


# ------------------------------------------------------------------------------------ export


def export_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the export to (new or empty).")],
    deployment: Annotated[
        Path,
        typer.Option("--deployment", envvar="SIJILL_DEPLOYMENT", help="Deployment file of the network."),
    ],
    api: Annotated[str | None, typer.Option("--api", help="The agency API's base URL.")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SIJILL_API_TOKEN", help="An auditor's (or supervisor's) API token."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="A stopped node's directory (offline export).")
    ] = None,
    agency: Annotated[
        str | None, typer.Option("--agency", help="The node's agency (checked against its node.json).")
    ] = None,
    kek_file: Annotated[
        Path | None, typer.Option(help="File holding the key-encryption key (else SIJILL_KEK).")
    ] = None,
) -> None:
    """Export an agency's log (batches with every leaf, receipts) for `sijill audit`.

    From the agency's API with an auditor's token, or offline from a stopped node's store (which
    also holds the receipts of leaves not yet in a batch). Examples:
    sijill export --api http://127.0.0.1:8601 --token $TOKEN --deployment deployment.json --out repd-export
    sijill export --data-dir .data/repd --deployment deployment.json --out repd-export
    """
    from node.auditor.export import DeploymentInfo, export_from_api, export_from_store
    from node.errors import NodeError

    with _errors():
        if (api is None) == (data_dir is None):
            raise NodeError("give either --api (with --token) or --data-dir")
        info = DeploymentInfo.from_file(deployment)
        with _progress() as progress:
            advance = progress("exporting batches", None)
            if api is not None:
                import httpx

                if not token:
                    raise NodeError("--api needs --token (or SIJILL_API_TOKEN): an auditor's token")
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=api, headers=headers, timeout=120.0) as client:
                    manifest = export_from_api(client, info, out_dir, advance)
            else:
                assert data_dir is not None
                from cli.officer import node_agency, open_node_store

                code = _node_agency(data_dir, agency, node_agency(data_dir))
                with open_node_store(data_dir, kek_file) as store:
                    manifest = export_from_store(store, code, info, out_dir, advance)
    out.print(
        f"Exported {manifest.agency}'s log: {manifest.batches} batches and {manifest.receipts} receipts "
        f"to {escape(str(out_dir))}"
    )


def _node_agency(data_dir: Path, given: str | None, recorded: str | None) -> str:
    from ledger.codes import agency_code
    from node.errors import NodeError

    if given is not None and recorded is not None and given != recorded:
        raise NodeError(f"the node in {data_dir} is {recorded}'s, not {given}'s")
    code = given or recorded
    if code is None:
        raise NodeError(f"{data_dir} has no node.json naming its agency: give --agency")
    agency_code(code)
    return code


# ------------------------------------------------------------------------------------- audit


def audit_command(
    agency: Annotated[str, typer.Option("--agency", help="The agency whose log is audited, e.g. REPD.")],
    export_dir: Annotated[Path, typer.Option("--export", help="The export directory (sijill export).")],
    rpc: Annotated[
        str, typer.Option("--rpc", envvar="SIJILL_RPC_URL", help="JSON-RPC endpoint of the chain.")
    ],
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment",
            help="The network's deployment file: pins the contracts (else the export's manifest names them).",
        ),
    ] = None,
    from_block: Annotated[
        int | None,
        typer.Option(min=0, help="First block to read events from (default: the ledger's deployment block)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
) -> None:
    """Check an agency's whole log against the chain: every batch, leaf and receipt.

    Reads the agency's events and the registry from the chain, and reports each violation as a
    named finding (docs/audit.md). Exit status 0: no findings; 1: findings; 2: bad usage, an
    unreachable chain or an unusable export. Example:
    sijill audit --agency REPD --rpc http://127.0.0.1:8545 --export repd-export --html report.html
    """
    started = time.monotonic()
    with _errors():
        report = _run_audit(agency, export_dir, rpc, deployment, from_block)
    seconds = time.monotonic() - started
    if as_json:
        print(json.dumps({**report.to_json(), "seconds": round(seconds, 3)}, indent=2, ensure_ascii=False))
    else:
        _print_report(report, seconds)
    if html is not None:
        with _errors():
            try:
                html.write_text(render_html(report), encoding="utf-8")
            except OSError as exc:
                from node.errors import NodeError

                raise NodeError(f"cannot write {html}: {exc.strerror}") from None
    raise typer.Exit(1 if report.findings else 0)


def _run_audit(
    agency: str, export_dir: Path, rpc: str, deployment: Path | None, from_block: int | None
) -> AuditReport:
    from ledger.codes import agency_code
    from node.auditor.audit import audit_export
    from node.auditor.export import DeploymentInfo, ExportError
    from node.auditor.exportread import read_manifest
    from node.auditor.rpcchain import RpcChain, rpc_client
    from node.chain.client import connect
    from node.errors import ChainError

    agency_code(agency)
    manifest = read_manifest(export_dir)
    if manifest.agency != agency:
        raise ExportError(f"the export in {export_dir} is {manifest.agency}'s log, not {agency}'s")
    start = manifest.ledger_block or 0
    if deployment is not None:
        info = DeploymentInfo.from_file(deployment)
        pinned = (info.chain_id, info.ledger, info.registry)
        if pinned != (manifest.chain_id, manifest.ledger, manifest.registry):
            raise ExportError(
                f"the export is of ledger {manifest.ledger} on chain {manifest.chain_id}; the deployment "
                f"{deployment} is ledger {info.ledger} on chain {info.chain_id}"
            )
        start = info.ledger_block or 0
    if from_block is not None:
        start = from_block
    connect(rpc, expect_chain_id=manifest.chain_id)
    with closing(rpc_client(rpc)) as client:
        chain = RpcChain(client, manifest.ledger, manifest.registry, agency)
        if not chain.has_code(manifest.ledger):
            raise ChainError(f"there is no contract at the export's ledger {manifest.ledger} on {rpc}")
        registry = chain.ledger_registry()
        if registry != manifest.registry:
            raise ChainError(
                f"the ledger {manifest.ledger} consults registry {registry}, not {manifest.registry}"
            )
        name, status = chain.agency_info()
        if status == 0:
            raise ChainError(f"agency {agency} is not registered on this deployment")
        latest = chain.latest_block()
        with _progress() as progress:
            log = chain.read_log(min(start, latest + 1), latest, progress)
            report = audit_export(export_dir, manifest, log, chain, progress=progress)
    report.agency_name = name
    return report


# ----------------------------------------------------------------------------------- output


def _print_report(report: AuditReport, seconds: float) -> None:
    from rich.table import Table

    data = report.to_json()
    summary = data["summary"]
    m, log = report.manifest, report.log
    out.print(
        f"[bold]Audit of {escape(m.agency)}[/] ({escape(show_refused(report.agency_name))}) "
        f"on chain {m.chain_id}, "
        f"ledger {m.ledger}, blocks {log.from_block} to {log.to_block} ({seconds:.1f} s)"
    )
    out.print(
        f"Export ({m.source or 'unknown source'}, {_when(m.exported_at)}): "
        f"{summary['exportedBatches']} batches, {summary['exportedLeaves']} leaves, {summary['receipts']} "
        f"receipts. Chain: {summary['chainBatches']} batches (head {log.head_seq}), "
        f"{summary['revocations']} revocations, "
        f"{summary['supersessions']} supersessions."
    )
    checks = Table("check", "holds that", "checked", "failed", "result", title="Checks")
    checks.columns[0].no_wrap = True
    for check in data["checks"]:
        result = "[red]FAILED[/]" if check["failed"] else "[green]passed[/]"
        failed = f"[red]{check['failed']}[/]" if check["failed"] else "0"
        checks.add_row(check["id"], check["title"], str(check["checked"]), failed, result)
    out.print(checks)
    if report.findings:
        findings = Table("#", "finding", "what", title="Findings")
        findings.columns[1].no_wrap = True
        for number, finding in enumerate(report.findings[:FINDINGS_SHOWN], 1):
            findings.add_row(str(number), f"[red]{finding.check}[/]", escape(finding.message))
        out.print(findings)
        if len(report.findings) > FINDINGS_SHOWN:
            out.print(f"… and {len(report.findings) - FINDINGS_SHOWN} more: see --json or --html")
        out.print(f"[bold red]{len(report.findings)} findings.[/]")
    else:
        out.print("[bold green]No findings:[/] the export and the chain agree on every check.")


def _when(at: int | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Naskh Arabic",sans-serif;
margin:2rem auto;max-width:75rem;padding:0 1rem;color:#1d2430;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d6dbe3}
[dir=rtl]{font-family:"Noto Naskh Arabic","Geeza Pro","Arial",sans-serif}
.ar{margin-inline-start:.75rem;color:#4a5568}
table{border-collapse:collapse;width:100%;font-size:.86rem}
th,td{border:1px solid #d6dbe3;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}tr.bad td{background:#fff3f2}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
.verdict{display:inline-block;padding:.4rem .8rem;border-radius:.3rem;font-weight:600}
.clean{background:#e3f6e8;color:#14532d}.findings{background:#fde2e0;color:#7f1d1d}
.pass{color:#166534;font-weight:600}.fail{color:#b91c1c;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.note{color:#4a5568;font-size:.85rem}
"""


def render_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page: inline CSS and SVG, no script, no fetch."""
    data = report.to_json()
    e = _e
    m, log, summary = report.manifest, report.log, data["summary"]
    clean = not report.findings
    verdict = (
        '<span class="verdict clean">No findings <span dir="rtl" lang="ar">لا مخالفات</span></span>'
        if clean
        else f'<span class="verdict findings">{len(report.findings)} findings '
        f'<span dir="rtl" lang="ar">{len(report.findings)} مخالفة</span></span>'
    )
    facts = [
        ("Agency", f"{e(m.agency)} — {e(show_refused(report.agency_name))}"),
        (
            "Chain",
            f"{m.chain_id}, blocks {log.from_block} to {log.to_block} (latest {_when(log.latest_time)})",
        ),
        ("RecordLedger", f"<code>{e(m.ledger)}</code>"),
        ("AgencyRegistry", f"<code>{e(m.registry)}</code>"),
        ("Export", f"{e(m.source or 'unknown source')}, {_when(m.exported_at)}"),
        (
            "Batches",
            f"{summary['exportedBatches']} exported, {summary['chainBatches']} on-chain "
            f"(head {log.head_seq})",
        ),
        ("Leaves", str(summary["exportedLeaves"])),
        ("Receipts", f"{summary['receipts']} ({summary['receiptsNotYetDue']} not yet due)"),
        ("Leaf changes", f"{summary['revocations']} revocations, {summary['supersessions']} supersessions"),
    ]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Sijill audit: {e(m.agency)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Audit of {e(m.agency)}\'s log <span class="ar" dir="rtl" lang="ar">تقرير تدقيق سجل الجهة '
        f"{e(m.agency)}</span></h1>",
        f"<p>{verdict}</p>",
        _heading("Summary", "الملخص"),
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>",
        _heading("Checks", "الفحوص"),
        "<table><thead><tr><th>check</th><th>holds that</th><th>checked</th><th>failed</th><th>result</th>"
        "</tr></thead><tbody>",
    ]
    for check in data["checks"]:
        failed = bool(check["failed"])
        result = '<span class="fail">FAILED</span>' if failed else '<span class="pass">passed</span>'
        parts.append(
            f"<tr{' class=bad' if failed else ''}><td><code>{e(check['id'])}</code></td>"
            f"<td>{e(check['title'])}</td><td>{check['checked']}</td><td>{check['failed']}</td><td>{result}</td></tr>"
        )
    parts += ["</tbody></table>", _heading("Findings", "المخالفات")]
    if clean:
        parts.append("<p>None: the export and the chain agree on every check.</p>")
    else:
        parts.append(
            "<table><thead><tr><th>#</th><th>finding</th><th>what</th><th>batch</th><th>leaf</th></tr></thead><tbody>"
        )
        for number, finding in enumerate(data["findings"], 1):
            seq = finding.get("seq", "")
            leaf = finding.get("leaf", "")
            parts.append(
                f"<tr class=bad><td>{number}</td><td><code>{e(finding['id'])}</code></td>"
                f"<td>{e(finding['message'])}</td><td>{e(str(seq))}</td><td><code>{e(str(leaf))}</code></td></tr>"
            )
        parts.append("</tbody></table>")
    parts += [
        _heading("Batches anchored per day", "الدفعات المثبتة في كل يوم"),
        _timeline_svg(data["timeline"]),
    ]
    parts += [_heading("Batches", "الدفعات"), _batches_table(data["batches"])]
    parts.append(
        f'<p class="note">Written by <code>sijill audit</code> at {_when(int(time.time()))}. Finding ids and '
        "what each check proves: docs/audit.md.</p></body></html>\n"
    )
    return "\n".join(parts)


def _e(value: object) -> str:
    return html_escape(str(value), quote=True)


def _heading(english: str, arabic: str) -> str:
    return f'<h2>{english} <span class="ar" dir="rtl" lang="ar">{arabic}</span></h2>'


def _batches_table(rows: list[dict[str, Any]]) -> str:
    shown = rows
    note = ""
    if len(rows) > HTML_BATCHES:
        flagged = [r for r in rows if r["findings"]]
        unflagged = [r for r in rows if not r["findings"]]
        rest = unflagged[len(unflagged) - max(0, HTML_BATCHES - len(flagged)) :]
        shown = sorted(flagged[:HTML_BATCHES] + rest, key=lambda r: r["seq"])
        note = (
            f'<p class="note">{len(shown)} of {len(rows)} batches: those with findings and the latest. '
            "The JSON report (--json) lists all.</p>"
        )
    lines = [
        note + "<table><thead><tr><th>seq</th><th>root</th><th>type</th><th>leaves</th><th>block</th>"
        "<th>time (UTC)</th><th>signer</th><th>state</th><th>findings</th></tr></thead><tbody>"
    ]
    for row in shown:
        bad = bool(row["findings"]) or row["state"] not in ("anchored", "pending")
        lines.append(
            f"<tr{' class=bad' if bad else ''}><td>{row['seq']}</td><td><code>{_e(row['root'])}</code></td>"
            f"<td>{_e(row['recordType'])}</td><td>{row['count']}</td><td>{_e(row['block'] or '')}</td>"
            f"<td>{_when(row['timestamp']) if row['timestamp'] else ''}</td>"
            f"<td><code>{_e(row['signer'] or '')}</code></td><td>{_e(row['state'])}</td>"
            f"<td>{_e(', '.join(row['findings']))}</td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _timeline_svg(days: list[dict[str, Any]]) -> str:
    """Bars of batches anchored per day, the part with findings in red; inline SVG."""
    width, height, left, bottom, top = 960, 240, 48, 56, 16
    if not days:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img" '
            'aria-label="no anchored batches"><text x="8" y="30" font-size="14">No anchored batches.</text>'
            "</svg>"
        )
    peak = max(d["batches"] for d in days)
    plot_w, plot_h = width - left - 8, height - bottom - top
    step = plot_w / len(days)
    bar = min(40.0, max(1.0, step * 0.8))
    label_every = max(1, len(days) // 12)
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="batches anchored per day">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#8a94a6"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8a94a6"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        total_h = plot_h * day["batches"] / peak
        bad_h = plot_h * day["flagged"] / peak
        title = (
            f"{day['day']}: {day['batches']} batches, {day['leaves']} leaves, {day['flagged']} with findings"
        )
        shapes.append(
            f'<g><title>{_e(title)}</title><rect x="{x:.1f}" y="{top + plot_h - total_h:.1f}" '
            f'width="{bar:.1f}" height="{total_h:.1f}" fill="#3b6fb6"/>'
            + (
                f'<rect x="{x:.1f}" y="{top + plot_h - bad_h:.1f}" width="{bar:.1f}" height="{bad_h:.1f}" '
                'fill="#c53030"/>'
                if day["flagged"]
                else ""
            )
            + "</g>"
        )
        if i % label_every == 0:
            cx, cy = x + bar / 2, top + plot_h + 12
            shapes.append(
                f'<text x="{cx:.1f}" y="{cy}" font-size="10" text-anchor="end" '
                f'transform="rotate(-40 {cx:.1f} {cy})">{_e(day["day"])}</text>'
            )
    shapes.append("</svg>")
    legend = (
        '<p class="note"><span style="color:#3b6fb6">■</span> batches anchored '
        '<span style="color:#c53030">■</span> batches with findings</p>'
    )
    return "".join(shapes) + legend
