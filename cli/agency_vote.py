"""`sijill agency approve` and `sijill agency propose ...`: voting in the council.

The commands only; the calls they make are node/chain/registry.py (`Council.propose`,
`Council.approve`) and node/network/council.py (the voting key, the signer rotation). The
options, errors and exit statuses are those of `sijill agency` (cli/agency.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cli.agency import Code, JsonFlag, agency_app, fail, out, propose_app, registry_errors
from cli.node import Deployment, PassphraseFile, Rpc

if TYPE_CHECKING:
    from node.chain.registry import Action, Outcome

KeyFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_COUNCIL_KEY_FILE",
        help="File holding the voting signer's private key (hex) or its encrypted keystore.",
    ),
]
Keystore = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_COUNCIL_KEYSTORE",
        help="The voting signer's encrypted keystore, e.g. the agency node's signer.json.",
    ),
]


@agency_app.command("approve")
def approve_command(
    ids: Annotated[
        list[int], typer.Argument(help="Proposal ids, approved in this order.", show_default=False)
    ],
    rpc: Rpc,
    deployment: Deployment,
    key_file: KeyFile = None,
    keystore: Keystore = None,
    passphrase_file: PassphraseFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve proposals on behalf of your agency, in the order given.

    The approval that reaches the threshold executes a proposal, and what it changed is
    printed. Stops at the first refusal (exit status 1).

    Example: sijill agency approve 4 5 --keystore .data/cso/signer.json --rpc http://127.0.0.1:8545
    --deployment .data/devchain/deployment.json
    """
    from node.network.council import voting_council

    with registry_errors():
        council = voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        for proposal_id in ids:
            print_outcome(council.approve(proposal_id), as_json)


def _propose(
    action: Action,
    rpc: str,
    deployment: Path,
    key_file: Path | None,
    keystore: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    from node.network.council import voting_council

    with registry_errors():
        council = voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        print_outcome(council.propose(action), as_json)


@propose_app.command("add-agency")
def add_agency_command(
    code: Code,
    name: Annotated[
        str,
        typer.Option(
            help='Display name, public, by convention "Arabic / English": normalised as record text is; '
            "refused if it holds a direction control or an invisible character; 1 to 128 bytes.",
            show_default=False,
        ),
    ],
    signer: Annotated[str, typer.Option(help="The new agency's first signer account.", show_default=False)],
    rpc: Rpc,
    deployment: Deployment,
    record_type: Annotated[
        str | None,
        typer.Option("--record-type", help="A first record type it may anchor (more: allow-record-type)."),
    ] = None,
    key_file: KeyFile = None,
    keystore: Keystore = None,
    passphrase_file: PassphraseFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Propose a new agency with its first signer and, optionally, a first record type.

    Example: sijill agency propose add-agency MOJ --name "Ministry of Justice"
    --signer 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65 --record-type court-order
    --keystore .data/repd/signer.json
    """
    from ledger.codes import agency_name
    from node.chain.registry import Action, account_address

    with registry_errors():
        action = Action(
            "add-agency", code, account_address(signer), record_type or "", name=agency_name(name)
        )
        action.to_abi()  # validates the codes before anything is sent
    _propose(action, rpc, deployment, key_file, keystore, passphrase_file, as_json)


def _agency_action(kind: str, help_text: str, example: str) -> None:
    """A `propose` command whose action reads only the agency code."""

    def command(
        code: Code,
        rpc: Rpc,
        deployment: Deployment,
        key_file: KeyFile = None,
        keystore: Keystore = None,
        passphrase_file: PassphraseFile = None,
        as_json: JsonFlag = False,
    ) -> None:
        from ledger.codes import agency_code
        from node.chain.registry import Action

        with registry_errors():
            agency_code(code)
        _propose(Action(kind, code), rpc, deployment, key_file, keystore, passphrase_file, as_json)

    command.__doc__ = f"{help_text}\n\nExample: {example}"
    propose_app.command(kind)(command)


_agency_action(
    "suspend-agency",
    "Propose suspending an agency: its signers can no longer anchor, and a council member no longer votes.",
    "sijill agency propose suspend-agency CRA --keystore .data/repd/signer.json",
)
_agency_action(
    "reinstate-agency",
    "Propose reinstating a suspended agency, with the signers it had.",
    "sijill agency propose reinstate-agency CRA --keystore .data/repd/signer.json",
)
_agency_action(
    "add-council-member",
    "Propose giving an active agency with a signer a council seat (a new council epoch).",
    "sijill agency propose add-council-member MOJ --keystore .data/repd/signer.json",
)
_agency_action(
    "remove-council-member",
    "Propose taking an agency's council seat (a new council epoch).",
    "sijill agency propose remove-council-member MOJ --keystore .data/repd/signer.json",
)


def _record_type_action(kind: str, help_text: str, example: str) -> None:
    """A `propose` command whose action reads an agency code and a record type."""

    def command(
        code: Code,
        record_type: Annotated[str, typer.Argument(help="Record type, e.g. title.", show_default=False)],
        rpc: Rpc,
        deployment: Deployment,
        key_file: KeyFile = None,
        keystore: Keystore = None,
        passphrase_file: PassphraseFile = None,
        as_json: JsonFlag = False,
    ) -> None:
        from node.chain.registry import Action

        action = Action(kind, code, record_type=record_type)
        with registry_errors():
            action.to_abi()
        _propose(action, rpc, deployment, key_file, keystore, passphrase_file, as_json)

    command.__doc__ = f"{help_text}\n\nExample: {example}"
    propose_app.command(kind)(command)


_record_type_action(
    "allow-record-type",
    "Propose letting an agency anchor a record type (a new type needs no contract change).",
    "sijill agency propose allow-record-type CRA branch --keystore .data/repd/signer.json",
)
_record_type_action(
    "disallow-record-type",
    "Propose stopping an agency anchoring a record type (it can still revoke what it anchored).",
    "sijill agency propose disallow-record-type CRA branch --keystore .data/repd/signer.json",
)


def _signer_action(kind: str, help_text: str, example: str) -> None:
    """A `propose` command whose action reads an agency code and a signer account."""

    def command(
        code: Code,
        account: Annotated[str, typer.Argument(help="The signer account (0x...).", show_default=False)],
        rpc: Rpc,
        deployment: Deployment,
        key_file: KeyFile = None,
        keystore: Keystore = None,
        passphrase_file: PassphraseFile = None,
        as_json: JsonFlag = False,
    ) -> None:
        from node.chain.registry import Action, account_address

        with registry_errors():
            action = Action(kind, code, account_address(account))
            action.to_abi()
        _propose(action, rpc, deployment, key_file, keystore, passphrase_file, as_json)

    command.__doc__ = f"{help_text}\n\nExample: {example}"
    propose_app.command(kind)(command)


_signer_action(
    "add-signer",
    "Propose a new signer account for an agency (valid from the block that executes it).",
    "sijill agency propose add-signer CRA 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc "
    "--keystore .data/repd/signer.json",
)
_signer_action(
    "remove-signer",
    "Propose retiring a signer: its validity range closes, so what it anchored stays valid.",
    "sijill agency propose remove-signer CRA 0x90F79bf6EB2c4f870365E785982E1f101E93b906 "
    "--keystore .data/repd/signer.json",
)


@propose_app.command("set-threshold")
def set_threshold_command(
    threshold: Annotated[
        int, typer.Argument(help="Approvals a proposal needs (1 to the voting members).", show_default=False)
    ],
    rpc: Rpc,
    deployment: Deployment,
    key_file: KeyFile = None,
    keystore: Keystore = None,
    passphrase_file: PassphraseFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Propose a new threshold M of the M-of-N council.

    Executing it starts a new council epoch: proposals still open then go stale.

    Example: sijill agency propose set-threshold 3 --keystore .data/repd/signer.json
    """
    if not 1 <= threshold < 2**32:
        fail("the threshold is a number from 1 to the number of voting council members", 2)
    from node.chain.registry import Action

    _propose(
        Action("set-threshold", threshold=threshold),
        rpc,
        deployment,
        key_file,
        keystore,
        passphrase_file,
        as_json,
    )


@propose_app.command("rotate-signer")
def rotate_signer_command(
    code: Code,
    old: Annotated[str, typer.Option(help="The signer account to retire.", show_default=False)],
    new: Annotated[str, typer.Option(help="The signer account replacing it.", show_default=False)],
    rpc: Rpc,
    deployment: Deployment,
    key_file: KeyFile = None,
    keystore: Keystore = None,
    passphrase_file: PassphraseFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Propose a signer rotation: add the new account, then remove the old one.

    So the agency always has a valid signer. Both proposals are made at once when the agency
    has another signer; when the old account is its only signer, the removal can be proposed
    only once the addition has executed: run the same command again then. Proposals already
    open for either step are reused, never duplicated.

    Example: sijill agency propose rotate-signer CRA --old 0x90F79bf6EB2c4f870365E785982E1f101E93b906
    --new 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc
    --keystore .data/repd/signer.json
    """
    from ledger.codes import agency_code
    from node.chain.registry import account_address
    from node.network.council import rotate, voting_council

    with registry_errors():
        old_account, new_account = account_address(old), account_address(new)
        agency_code(code)
        council = voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        steps = rotate(council, code, old_account, new_account)
    if as_json:
        print(json.dumps({s.step: s.to_json() for s in steps}, ensure_ascii=False))
        return
    for s in steps:
        if s.outcome is not None:
            print_outcome(s.outcome, False)
        else:
            out.print(escape(s.note))
    ids = [str(s.proposal_id) for s in steps if s.proposal_id and s.state == "open"]
    if ids:
        out.print(f"Other council agencies approve with: sijill agency approve {' '.join(ids)}")


def print_outcome(outcome: Outcome, as_json: bool) -> None:
    """What a propose or approve did: the proposal's tally and, once executed, what changed."""
    from node.chain.registry import tally

    if as_json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False))
        return
    p = outcome.proposal
    out.print(
        f"Proposal #{p.id}, {escape(p.action.describe())}: approved by {outcome.voter} "
        f"in block {outcome.block} ({tally(p)})."
    )
    if p.state == "executed":
        out.print("Executed. What changed:")
        for change in outcome.changes:
            out.print(f"  - {escape(change)}")
        if outcome.council_epoch != p.council_epoch:
            out.print(
                f"  - the council is now in epoch {outcome.council_epoch}: proposals still open from "
                "before are stale and must be proposed again"
            )
    elif p.state == "open":
        missing = p.threshold - p.approvals
        who = "agency approves" if missing == 1 else "agencies approve"
        out.print(f"It executes when {missing} more council {who} it: sijill agency approve {p.id}")
