"""`sijill agency ...`: council governance of the AgencyRegistry from the command line.

Reading needs only the chain and the deployment file: `list` (every agency, the council, its
threshold), `show CODE` (one agency with its ledger head and the open proposals about it) and
`proposals [--open]`. Changing the registry takes a council vote (docs/contracts.md):
`propose KIND ...` sends one `Action` from a current signer of a council agency, whose agency
approves it at once; `approve ID...` adds another council agency's approval. The approval that
reaches the threshold executes the proposal, and the command prints what changed, read from the
transaction's events. A signer rotation is two proposals, add the new key then remove the old
one (`propose rotate-signer` makes both, or the second once the first has executed).

The voting key is a hex private key file or an encrypted keystore (the agency node's
`signer.json`), as `sijill deploy` takes its key; a keystore's passphrase comes from
--passphrase-file or SIJILL_SIGNER_PASSPHRASE. Anvil's public development keys are refused on
any chain but the dev chain.

This module holds the group, the reading commands and the errors; the voting commands are in
cli/agency_vote.py. The registry's calls are in node/chain/registry.py, the voting key and the
signer rotation in node/network/council.py. web3 and eth-account load only inside the
commands, so loading `sijill` stays quick.

Exit status: 0 done (a proposal made or approved, executed or not); 1 the registry refused,
in one line naming why (`AlreadyApproved`, `NotCouncilMember`, `ProposalStale`, ...), or there
is no such agency or proposal; 2 bad usage: an unreadable key or deployment file, an invalid
code or address, a development key off the dev chain, or a chain that does not answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cli.node import Deployment, Rpc

agency_app = typer.Typer(
    help="Council governance: agencies, signers, record types and proposals in the registry.\n\n"
    "Example: sijill agency list --rpc http://127.0.0.1:8545 --deployment .data/devchain/deployment.json",
    no_args_is_help=True,
)
propose_app = typer.Typer(
    help="Propose a change to the registry; your agency approves it at once.\n\n"
    "Example: sijill agency propose suspend-agency CRA --keystore .data/repd/signer.json",
    no_args_is_help=True,
)
agency_app.add_typer(propose_app, name="propose")
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Code = Annotated[str, typer.Argument(help="Agency code, e.g. REPD.", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add this module's commands, and the voting ones (cli/agency_vote.py), to the `sijill` app."""
    from cli import agency_vote  # noqa: F401 - adds `approve` and `propose ...` to the groups

    app.add_typer(agency_app, name="agency")


@contextmanager
def registry_errors() -> Iterator[None]:
    """The project's errors as one line on stderr: 1 when the registry refused, else 2."""
    from ledger.errors import LedgerError
    from node.chain.registry import RegistryRefusal
    from node.errors import ContractRevert, NodeError
    from node.network.council import explain

    try:
        yield
    except ContractRevert as exc:
        fail(explain(exc), 1)
    except RegistryRefusal as exc:
        fail(str(exc), 1)
    except (NodeError, LedgerError) as exc:
        fail(str(exc), 2)


def fail(message: str, status: int) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(status)


# ---------------------------------------------------------------------------- reading commands


@agency_app.command("list")
def list_command(rpc: Rpc, deployment: Deployment, as_json: JsonFlag = False) -> None:
    """List every agency: name, status, council seat, record types and current signers.

    Example: sijill agency list --rpc http://127.0.0.1:8545 --deployment .data/devchain/deployment.json
    """
    from ledger.canonical import show_refused
    from node.chain.registry import Council

    with registry_errors():
        council = Council(rpc, deployment)
        summary = council.summary()
        agencies = [council.agency(code) for code in council.codes()]
    if as_json:
        print(json.dumps({**summary, "agencies": agencies}, ensure_ascii=False))
        return
    _print_summary(summary)
    for a in agencies:
        out.print(f"\n[bold]{a['code']}[/]  {escape(show_refused(a['name']))}")
        out.print(f"  {_standing(a)}; record types: {', '.join(a['recordTypes']) or 'none'}")
        for signer in a["signers"]:
            out.print(f"  signer {signer['address']}, valid from block {signer['validFrom']}")
        if not a["signers"]:
            out.print("  no signer")


@agency_app.command("show")
def show_command(code: Code, rpc: Rpc, deployment: Deployment, as_json: JsonFlag = False) -> None:
    """Show one agency, its ledger head and the open proposals about it.

    Name, status, council seat, record types, current signers, the last batch it anchored in
    the RecordLedger (seq and root) and the open proposals whose action names it.

    Example: sijill agency show REPD --rpc http://127.0.0.1:8545 --deployment .data/devchain/deployment.json
    """
    from ledger.canonical import show_refused
    from node.chain.registry import Council, tally

    with registry_errors():
        council = Council(rpc, deployment)
        agency = council.agency(code)
        agency["head"] = council.head(code)
        pending = [p for p in council.proposals(open_only=True) if p.action.agency == code]
    if as_json:
        print(json.dumps({**agency, "openProposals": [p.to_json() for p in pending]}, ensure_ascii=False))
        return
    out.print(f"[bold]{code}[/]: {escape(show_refused(agency['name']))}")
    out.print(f"{_standing(agency)}; registered in block {agency['registeredAt']}")
    out.print(f"record types: {', '.join(agency['recordTypes']) or 'none'}")
    for s in agency["signers"]:
        out.print(f"signer {s['address']}, valid from block {s['validFrom']}")
    head = agency["head"]
    if head["seq"]:
        out.print(f"ledger head: batch {head['seq']}, root {head['root']}")
    else:
        out.print("ledger head: no batch anchored yet")
    for p in pending:
        out.print(f"open proposal #{p.id}: {escape(p.action.describe())} ({tally(p)})")


@agency_app.command("proposals")
def proposals_command(
    rpc: Rpc,
    deployment: Deployment,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only proposals that can still be approved.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List the council's proposals and where each stands.

    What each does, its approvals so far against the threshold, the council epoch it was made
    in, and whether it is open, executed, stale (the council changed since) or expired.

    Example: sijill agency proposals --open --rpc http://127.0.0.1:8545
    --deployment .data/devchain/deployment.json
    """
    from node.chain.registry import Council, format_when, tally

    with registry_errors():
        council = Council(rpc, deployment)
        summary = council.summary()
        found = council.proposals(open_only=open_only)
    if as_json:
        print(json.dumps({**summary, "items": [p.to_json() for p in found]}, ensure_ascii=False))
        return
    _print_summary(summary)
    for p in found:
        out.print(f"\n[bold]#{p.id}[/] {escape(p.action.describe())}")
        out.print(
            f"  {tally(p)}; proposed by {p.proposer} in council epoch {p.council_epoch}; "
            f"expires {format_when(p.expires_at)}"
        )
    if not found:
        out.print("No open proposals." if open_only else "No proposals yet.")


# ---------------------------------------------------------------------------- output


def _print_summary(summary: dict[str, Any]) -> None:
    members = ", ".join(summary["council"]) or "none"
    out.print(
        f"Council: {members}; {summary['threshold']} of {len(summary['council'])} approvals needed; "
        f"epoch {summary['councilEpoch']}; proposals so far: {summary['proposals']}."
    )


def _standing(agency: dict[str, Any]) -> str:
    return f"{agency['status']}, {'a council seat' if agency['council'] else 'no council seat'}"
