"""`sijill network sync-permissions`: the command that keeps every Besu node's account
allow-list in line with the registry. The sync itself is node/network/allowlist.py (its
docstring says what is done and never done); here are the options, the report (text or JSON)
and the exit status.

Exit status: 0 every node is in line (with --dry-run: every node answered); 1 some node could not
be read or brought in line (the others are still processed), or with --check some node is not
in line; 2 bad usage (no node, an invalid address, an unreadable file) or a registry that cannot
be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cli.node import Deployment, Rpc

if TYPE_CHECKING:
    from node.network.allowlist import NodeOutcome
    from node.network.wanted import Wanted

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def register(group: typer.Typer) -> None:
    """Add `sync-permissions` to the `sijill network` group."""
    group.command("sync-permissions")(sync_permissions_command)


NodeUrls = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        help="JSON-RPC URL of a Besu node with the PERM API enabled; repeat for every validator "
        "(default: every node of --manifest).",
        show_default=False,
    ),
]
ManifestFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_NETWORK_MANIFEST",
        help="The network manifest (network.json of `sijill network init`): its nodes' RPC URLs, "
        "their enode URLs to check the nodes allow-lists against, and a `keep` list.",
    ),
]
Keep = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        help="An account every node keeps allowed whatever the registry says (the deployer, "
        "monitoring); repeatable. Prefer --keep-file for permanent ones.",
        show_default=False,
    ),
]
KeepFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_PERMISSIONS_KEEP_FILE",
        help='TOML (keep = ["0x…"]) or JSON ({"keep": [...]}) file of accounts always kept allowed.',
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_BESU_TOKEN_FILE",
        help="File holding the JWT the nodes' JSON-RPC wants (--rpc-http-authentication-enabled).",
    ),
]


def sync_permissions_command(
    rpc: Rpc,
    deployment: Deployment,
    nodes: NodeUrls = None,
    manifest: ManifestFile = None,
    keep: Keep = None,
    keep_file: KeepFile = None,
    auth_token_file: TokenFile = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each node's answer.")] = 10.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Like --dry-run; exit 1 when some node is not in line (monitoring)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Bring every Besu node's account allow-list in line with the agency registry.

    Allowed: the current signers of active agencies, plus the accounts kept (--keep,
    --keep-file, the manifest's `keep`). Missing accounts are added first on every node, then
    unwanted ones (suspended agencies' and retired signers) removed, through Besu's
    perm_addAccountsToAllowlist and perm_removeAccountsFromAllowlist. A node already in line
    is only read. Run it after every council change, and from a timer (docs/besu-operations.md).
    Exit status: 0 in line, 1 some node could not be brought in line, 2 bad usage or the
    registry unreadable.

    Example: sijill network sync-permissions --rpc http://10.0.1.11:8545 --deployment
    /etc/sijill/deployment.json --manifest /etc/sijill/network.json --keep-file /etc/sijill/keep.toml
    """
    from ledger.errors import LedgerError
    from node.errors import NodeError
    from node.network.allowlist import sync_permissions

    dry_run = dry_run or check
    try:
        report = sync_permissions(
            rpc,
            deployment,
            nodes=nodes or [],
            manifest=manifest,
            keep=keep or [],
            keep_file=keep_file,
            auth_token_file=auth_token_file,
            timeout=timeout,
            dry_run=dry_run,
        )
    except (NodeError, LedgerError) as exc:
        _fail(str(exc))
    wanted, outcomes, labels = report.wanted, report.outcomes, report.labels
    failed = [o for o in outcomes if o.error is not None]
    drifted = [o for o in outcomes if o.to_add or o.to_remove]
    if as_json:
        _print_json(wanted, outcomes, labels, dry_run)
    else:
        _print_text(wanted, outcomes, labels, dry_run)
    if failed or (check and drifted):
        raise typer.Exit(1)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _print_text(wanted: Wanted, outcomes: list[NodeOutcome], labels: dict[str, str], dry_run: bool) -> None:
    from eth_utils.address import to_checksum_address

    kept_only = wanted.kept - wanted.signers
    out.print(
        f"Registry {wanted.registry} at block {wanted.block}: "
        f"{_count(len(wanted.signers), 'current signer')} of active agencies, "
        f"{_count(len(kept_only), 'account')} kept: {len(wanted.accounts)} to allow."
    )
    for o in outcomes:
        where = escape(str(o.target))
        if dry_run:
            changes = [("would add", a) for a in o.to_add] + [("would remove", a) for a in o.to_remove]
        else:
            changes = [("added", a) for a in o.added] + [("removed", a) for a in o.removed]
        if o.error is not None:
            out.print(f"{where}: [red]FAILED[/]: {escape(o.error)}; not in line")
        elif not o.to_add and not o.to_remove:
            out.print(f"{where}: in line ({_count(len(o.before), 'account')})")
        elif dry_run:
            out.print(f"{where}: out of line: {len(o.to_add)} to add, {len(o.to_remove)} to remove")
        else:
            out.print(f"{where}: brought in line: {len(o.added)} added, {len(o.removed)} removed")
        width = len("would remove" if dry_run else "removed")
        for verb, account in changes:
            who = labels.get(account, "")
            out.print(f"  {verb:<{width}} {to_checksum_address(account)} ({escape(who)})")
        check = o.nodes_check
        if check is not None:
            if check.error:
                out.print(f"  nodes allow-list not checked: {escape(check.error)}")
            for enode in check.missing:
                out.print(f"  nodes allow-list lacks {escape(enode)} (in the manifest)")
            for enode in check.extra:
                out.print(f"  nodes allow-list has {escape(enode)}, which the manifest does not name")
    failed = sum(o.error is not None for o in outcomes)
    if failed:
        err.print(
            f"[red]{failed} of {_count(len(outcomes), 'node')} could not be "
            + ("read" if dry_run else "brought in line")
            + "[/]"
            + ("" if failed == len(outcomes) else " (the others were)")
        )
    if dry_run:
        out.print("Dry run: nothing was changed.")


def _print_json(wanted: Wanted, outcomes: list[NodeOutcome], labels: dict[str, str], dry_run: bool) -> None:
    from eth_utils.address import to_checksum_address

    report = {
        "registry": wanted.registry,
        "block": wanted.block,
        "dryRun": dry_run,
        "allowed": [
            {"address": to_checksum_address(a), "why": "signer" if a in wanted.signers else "kept"}
            for a in sorted(wanted.accounts)
        ],
        "nodes": [
            {
                "url": o.target.url,
                "name": o.target.name or None,
                "status": o.status(dry_run),
                "before": sorted(to_checksum_address(a) for a in o.before),
                "toAdd": [{"address": to_checksum_address(a), "who": labels.get(a)} for a in o.to_add],
                "toRemove": [{"address": to_checksum_address(a), "who": labels.get(a)} for a in o.to_remove],
                "added": [to_checksum_address(a) for a in o.added],
                "removed": [to_checksum_address(a) for a in o.removed],
                "error": o.error,
                "nodesAllowlist": o.nodes_check.to_json() if o.nodes_check else None,
            }
            for o in outcomes
        ],
        "inLine": all(
            o.error is None and (not (o.to_add or o.to_remove) if dry_run else o.in_line) for o in outcomes
        ),
    }
    print(json.dumps(report, ensure_ascii=False))
