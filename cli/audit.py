"""`sijill export` and `sijill audit`: an agency's log exported, and checked against the chain.

`export` writes a `sijill-export/1` directory (`node.auditor.export`) from an agency's API (an auditor's
token) or from a stopped node's store. `audit` holds such a directory against a chain endpoint
(`node.auditor.audit`, the chain read by `node.auditor.rpcchain`) and reports every violation as a
named finding: a table on the terminal, `--json` for machines, `--html FILE` for a self-contained
report an auditor can hand on (`node.auditor.html`).

Exit status: 0 no findings, 1 findings, 2 bad usage, an unreachable chain or an unusable export
(one line on stderr, no traceback). docs/audit.md has the format and the list of findings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
        from node.auditor.html import render_html

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
