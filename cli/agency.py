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

Exit status: 0 done (a proposal made or approved, executed or not); 1 the registry refused,
in one line naming why (`AlreadyApproved`, `NotCouncilMember`, `ProposalStale`, ...), or there
is no such agency or proposal; 2 bad usage: an unreadable key or deployment file, an invalid
code or address, a development key off the dev chain, or a chain that does not answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from rich.console import Console
from rich.markup import escape
from web3.logs import DISCARD
from web3.types import TxReceipt

from cli.node import Deployment, PassphraseFile, Rpc
from ledger.canonical import show_refused
from ledger.codes import agency_code, agency_name, decode_code
from ledger.codes import record_type as record_type_code
from ledger.errors import InvalidAgencyName, InvalidCode, LedgerError
from node.chain.client import RevertDecoder, call_view, connect
from node.chain.deploy import bound_contracts, load_deployment, refuse_dev_keys_off_devchain
from node.chain.toolchain import compile_contracts
from node.errors import ContractRevert, DeploymentError, NodeError
from node.keys import load_signer
from node.txmanager import TxManager
from node.txrpc import connect_for_sending

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

#: `IAgencyRegistry.ActionKind`, in order, as the commands name them.
KINDS = (
    "add-agency",
    "suspend-agency",
    "reinstate-agency",
    "allow-record-type",
    "disallow-record-type",
    "add-signer",
    "remove-signer",
    "add-council-member",
    "remove-council-member",
    "set-threshold",
)
STATUSES = ("none", "active", "suspended")  # IAgencyRegistry.AgencyStatus
_ZERO_WORD = bytes(32)
_ZERO_ADDRESS = "0x" + "00" * 20
_OPEN = 2**64 - 1  # Signer.validTo while current

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
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Code = Annotated[str, typer.Argument(help="Agency code, e.g. REPD.", show_default=False)]


class RegistryRefusal(NodeError):
    """The registry has no such agency or proposal, or refuses the change (exit status 1)."""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `sijill` app."""
    app.add_typer(agency_app, name="agency")


# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Action:
    """An `IAgencyRegistry.Action`, by name; fields a kind does not read stay empty."""

    kind: str
    agency: str = ""
    account: str = ""
    record_type: str = ""
    threshold: int = 0
    name: str = ""

    def to_abi(self) -> tuple[int, bytes, str, bytes, int, str]:
        if self.name and agency_name(self.name) != self.name:
            raise InvalidAgencyName(f"the agency name {self.name!r} is not in canonical form")
        return (
            KINDS.index(self.kind),
            agency_code(self.agency) if self.agency else _ZERO_WORD,
            self.account or _ZERO_ADDRESS,
            record_type_code(self.record_type) if self.record_type else _ZERO_WORD,
            self.threshold,
            self.name,
        )

    @classmethod
    def from_abi(cls, value: Any) -> Action:
        kind, agency, account, kind_of_record, threshold, name = value
        return cls(
            KINDS[kind] if kind < len(KINDS) else f"kind-{kind}",
            _word(agency),
            "" if int(account, 16) == 0 else to_checksum_address(account),
            _word(kind_of_record),
            threshold,
            name,
        )

    def describe(self) -> str:
        """What the action does, in words."""
        a, kind = self.agency, self.kind
        texts = {
            "add-agency": f"add agency {a} ({show_refused(self.name)}) with signer {self.account}"
            + (f" and record type {self.record_type}" if self.record_type else ""),
            "suspend-agency": f"suspend {a}",
            "reinstate-agency": f"reinstate {a}",
            "allow-record-type": f"allow {a} to anchor {self.record_type}",
            "disallow-record-type": f"stop {a} anchoring {self.record_type}",
            "add-signer": f"add signer {self.account} to {a}",
            "remove-signer": f"remove signer {self.account} from {a}",
            "add-council-member": f"give {a} a council seat",
            "remove-council-member": f"take {a}'s council seat",
            "set-threshold": f"set the threshold to {self.threshold}",
        }
        return texts.get(kind, kind)

    def to_json(self) -> dict[str, Any]:
        fields = {
            "kind": self.kind,
            "agency": self.agency,
            "account": self.account,
            "recordType": self.record_type,
            "threshold": self.threshold,
            "name": self.name,
        }
        return {k: v for k, v in fields.items() if v}


@dataclass(frozen=True, slots=True)
class ProposalInfo:
    """A proposal as the registry holds it, with its state now."""

    id: int
    action: Action
    proposer: str
    expires_at: int
    approvals: int
    threshold: int
    council_epoch: int
    state: str  # open, executed, stale (the council changed since) or expired
    approved_by: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action.to_json(),
            "summary": self.action.describe(),
            "proposer": self.proposer,
            "approvals": self.approvals,
            "threshold": self.threshold,
            "approvedBy": list(self.approved_by),
            "councilEpoch": self.council_epoch,
            "expiresAt": self.expires_at,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a propose or approve transaction did."""

    proposal: ProposalInfo
    voter: str
    changes: tuple[str, ...]
    transaction: str
    block: int
    council_epoch: int  # the council's epoch after the transaction

    def to_json(self) -> dict[str, Any]:
        return {
            **self.proposal.to_json(),
            "by": self.voter,
            "executed": self.proposal.state == "executed",
            "changes": list(self.changes),
            "transaction": self.transaction,
            "block": self.block,
            "councilEpochNow": self.council_epoch,
        }


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True, slots=True)
class _Moment:
    """What proposals' states are judged against, read once for a whole listing."""

    timestamp: int  # of the latest block
    epoch: int
    threshold: int
    codes: tuple[str, ...]


class Council:
    """One deployment's registry on a reachable chain: read, and changed with a voting key."""

    def __init__(self, rpc: str, deployment_file: Path, account: LocalAccount | None = None) -> None:
        deployment = load_deployment(deployment_file)
        self.w3 = connect(rpc)
        if account is not None:
            refuse_dev_keys_off_devchain(self.w3, [account.address])
        chain_id = self.w3.eth.chain_id
        if deployment.get("chainId") != chain_id:
            raise DeploymentError(
                f"{deployment_file} is a deployment on chain {deployment.get('chainId')}, "
                f"{rpc} is chain {chain_id}"
            )
        compiled = compile_contracts()
        contracts = bound_contracts(self.w3, deployment, compiled)
        self.registry = contracts["AgencyRegistry"]
        self.ledger = contracts["RecordLedger"]
        if not self.w3.eth.get_code(self.registry.address):
            raise DeploymentError(
                f"no AgencyRegistry at {self.registry.address} on {rpc}: {deployment_file} is from "
                "another chain with the same id (a dev chain started afresh?)"
            )
        self.decoder = RevertDecoder({name: c.abi for name, c in compiled.items()})
        self.account = account
        self._sender = TxManager(connect_for_sending(rpc), account, self.decoder) if account else None

    def _view(self, function: str, *args: Any, contract: Any = None) -> Any:
        call = getattr((contract or self.registry).functions, function)(*args)
        return call_view(call, self.decoder)

    # -- reading --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The council: voting members, threshold, epoch, proposals so far."""
        return {
            "registry": self.registry.address,
            "council": [_word(c) for c in self._view("councilMembers")],
            "threshold": self._view("threshold"),
            "councilEpoch": self._view("councilEpoch"),
            "proposals": self._view("proposalCount"),
            "proposalLifetime": self._view("proposalLifetime"),
        }

    def codes(self) -> list[str]:
        return [_word(c) for c in self._view("agencyCodes")]

    def agency(self, code: str) -> dict[str, Any]:
        """One agency: name, status, council seat, record types, current signers."""
        word = _code_word(code)
        name, status, council, registered_at = self._view("agencyInfo", word)
        if status == 0:
            raise RegistryRefusal(f"there is no agency {code} in the registry")
        signers = []
        for account in self._view("agencySigners", word):
            _, valid_from, valid_to = self._view("signerInfo", account)
            signers.append(
                {
                    "address": account,
                    "validFrom": valid_from,
                    "validTo": None if valid_to == _OPEN else valid_to,
                }
            )
        return {
            "code": code,
            "name": name,
            "status": STATUSES[status],
            "council": council,
            "registeredAt": registered_at,
            "recordTypes": [_word(t) for t in self._view("recordTypes", word)],
            "signers": signers,
        }

    def head(self, code: str) -> dict[str, Any]:
        """The agency's last anchored batch in the RecordLedger (seq 0: none yet)."""
        root, seq = self._view("head", _code_word(code), contract=self.ledger)
        return {"seq": seq, "root": "0x" + bytes(root).hex()}

    def proposal(self, proposal_id: int, moment: _Moment | None = None) -> ProposalInfo:
        """Proposal `proposal_id` and its state at `moment` (now); `RegistryRefusal` if none."""
        try:
            action, proposer, expires_at, approvals, epoch, executed = self._view("proposal", proposal_id)
        except ContractRevert as exc:
            if exc.error == "UnknownProposal":
                raise RegistryRefusal(f"there is no proposal #{proposal_id}") from None
            raise
        moment = moment or self._moment()
        if executed:
            state = "executed"
        elif epoch != moment.epoch:
            state = "stale"
        elif moment.timestamp > expires_at:
            state = "expired"
        else:
            state = "open"
        approved_by = tuple(c for c in moment.codes if self._view("hasApproved", proposal_id, _code_word(c)))
        return ProposalInfo(
            proposal_id,
            Action.from_abi(action),
            _word(proposer),
            expires_at,
            approvals,
            moment.threshold,
            epoch,
            state,
            approved_by,
        )

    def proposals(self, *, open_only: bool = False) -> list[ProposalInfo]:
        """Every proposal, oldest first; with `open_only`, those that can still be approved."""
        moment = self._moment()
        found = []
        for proposal_id in range(self._view("proposalCount"), 0, -1):
            info = self.proposal(proposal_id, moment)
            if open_only and info.state == "expired":
                break  # every proposal lives as long, so all earlier ones have expired too
            if info.state == "open" or not open_only:
                found.append(info)
        return found[::-1]

    def _moment(self) -> _Moment:
        return _Moment(
            self.w3.eth.get_block("latest")["timestamp"],
            self._view("councilEpoch"),
            self._view("threshold"),
            tuple(self.codes()),
        )

    # -- voting ---------------------------------------------------------------------------

    def voter(self) -> str:
        """The agency the key votes for; a named refusal when it cannot vote at all."""
        assert self.account is not None
        return _word(self._view("authorizeSigner", self.account.address))

    def propose(self, action: Action) -> Outcome:
        """Send `propose(action)`; the proposal, approved by the voter's agency, perhaps executed."""
        voter = self.voter()
        receipt = self._transact(self.registry.functions.propose(action.to_abi()), f"propose {action.kind}")
        (created,) = self.registry.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        return self._outcome(created["args"]["id"], voter, receipt)

    def approve(self, proposal_id: int) -> Outcome:
        """Send `approve(proposal_id)`: the proposal afterwards, perhaps executed."""
        voter = self.voter()
        receipt = self._transact(self.registry.functions.approve(proposal_id), f"approve #{proposal_id}")
        return self._outcome(proposal_id, voter, receipt)

    def _transact(self, call: Any, label: str) -> TxReceipt:
        assert self._sender is not None
        return self._sender.transact(call, label=label)

    def _outcome(self, proposal_id: int, voter: str, receipt: TxReceipt) -> Outcome:
        return Outcome(
            self.proposal(proposal_id),
            voter,
            tuple(self._changes(receipt)),
            receipt["transactionHash"].to_0x_hex(),
            receipt["blockNumber"],
            self._view("councilEpoch"),
        )

    def _changes(self, receipt: TxReceipt) -> list[str]:
        """What an executed proposal changed, in words, from the transaction's events."""
        found = []
        for name in _CHANGES:
            for event in self.registry.events[name]().process_receipt(receipt, errors=DISCARD):
                found.append((event["logIndex"], _CHANGES[name](_readable(event["args"]))))
        return [text for _, text in sorted(found)]


_CHANGES = {
    "AgencyAdded": lambda a: f"agency {a['agency']} added: {show_refused(a['name'])}",
    "AgencyStatusChanged": lambda a: f"{a['agency']} is now {STATUSES[a['status']]}",
    "RecordTypeAllowed": lambda a: f"{a['agency']} may now anchor {a['recordType']}",
    "RecordTypeDisallowed": lambda a: f"{a['agency']} may no longer anchor {a['recordType']}",
    "SignerAdded": lambda a: f"{a['account']} signs for {a['agency']} from block {a['validFrom']}",
    "SignerRemoved": lambda a: (
        f"{a['account']} no longer signs for {a['agency']} (valid to block {a['validTo']})"
    ),
    "CouncilMemberAdded": lambda a: f"{a['agency']} joined the council",
    "CouncilMemberRemoved": lambda a: f"{a['agency']} left the council",
    "ThresholdChanged": lambda a: f"proposals need {a['threshold']} of {a['councilSize']} council approvals",
}

# Why the registry refused, in words; the custom error's arguments fill the blanks.
_REFUSALS = {
    "NotASigner": "{account} is not a signer of any agency in the registry",
    "SignerRetired": "{account} was retired as a signer at block {validTo}",
    "AgencyNotActive": "{agency} is not active (it is {status})",
    "NotCouncilMember": "{agency} has no council seat",
    "AlreadyApproved": "{agency} has already approved proposal #{id}",
    "ProposalStale": "proposal #{id} is stale: it was made in council epoch {councilEpoch} and the "
    "council has changed since (epoch {currentEpoch}); propose it again",
    "ProposalExpired": "proposal #{id} expired at {expiresAt}; propose it again",
    "ProposalAlreadyExecuted": "proposal #{id} has already been executed",
    "UnknownProposal": "there is no proposal #{id}",
    "UnknownAgency": "there is no agency {agency} in the registry",
    "AgencyAlreadyRegistered": "agency {agency} is already registered",
    "AgencyAlreadyActive": "{agency} is already active",
    "RecordTypeAlreadyAllowed": "{agency} may already anchor {recordType}",
    "RecordTypeNotAllowed": "{agency} may not anchor {recordType}",
    "SignerAlreadyRegistered": "{account} is already registered as a signer (of {agency}); "
    "an account is never registered twice, even after it is removed",
    "SignerOfOtherAgency": "{account} signs for {agency}, not for {expectedAgency}",
    "TooManySigners": "{agency} already has the most signers an agency may have ({max})",
    "LastSignerOfActiveAgency": "{account} is the only signer of {agency}: add the new signer first",
    "AgencyWithoutSigner": "{agency} has no signer",
    "AlreadyCouncilMember": "{agency} already has a council seat",
    "InvalidThreshold": "a threshold of {threshold} is impossible with {councilSize} voting council members",
    "InvalidAgencyName": "the agency name is {length} bytes long: 1 to 128 bytes of UTF-8 are allowed",
}


def explain(revert: ContractRevert) -> str:
    """One line saying why the registry refused, with the custom error's name."""
    args = dict(revert.args_by_name)
    status, expires_at = args.get("status"), args.get("expiresAt")
    if revert.error == "AgencyNotActive" and isinstance(status, int) and 0 <= status < len(STATUSES):
        args["status"] = STATUSES[status]
    if isinstance(expires_at, int):
        args["expiresAt"] = _when(expires_at)
    template = _REFUSALS.get(revert.error)
    try:
        text = template.format_map(args) if template else str(revert)
    except (KeyError, IndexError):
        text = str(revert)
    name = f"{revert.contract}.{revert.error}" if revert.contract else revert.error
    return f"{text} ({name})" if template else text


# ---------------------------------------------------------------------------- keys and errors


def load_council_key(
    key_file: Path | None, keystore: Path | None, passphrase_file: Path | None
) -> LocalAccount:
    """The voting key: a hex private key file or a keystore (as `sijill deploy` reads its key),
    or the keystore given as such; its passphrase from the file, else SIJILL_SIGNER_PASSPHRASE."""
    if (key_file is None) == (keystore is None):
        raise NodeError("give the voting signer's key with one of --key-file or --keystore")
    if keystore is not None:
        return load_signer(keystore, passphrase_file=passphrase_file)
    assert key_file is not None
    try:
        text = key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NodeError(f"cannot read key file {key_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        text = ""
    if text.startswith("{"):
        return load_signer(key_file, passphrase_file=passphrase_file)
    try:
        account: LocalAccount = Account.from_key(text)
    except (ValueError, TypeError):
        raise NodeError(f"{key_file} holds neither a hex private key nor a keystore") from None
    return account


@contextmanager
def _errors() -> Iterator[None]:
    """The project's errors as one line on stderr: 1 when the registry refused, else 2."""
    try:
        yield
    except ContractRevert as exc:
        _fail(explain(exc), 1)
    except RegistryRefusal as exc:
        _fail(str(exc), 1)
    except (NodeError, LedgerError) as exc:
        _fail(str(exc), 2)


def _fail(message: str, status: int) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(status)


def _voting_council(
    rpc: str, deployment: Path, key_file: Path | None, keystore: Path | None, passphrase_file: Path | None
) -> Council:
    return Council(rpc, deployment, load_council_key(key_file, keystore, passphrase_file))


def _address(text: str) -> str:
    if not is_address(text):
        raise NodeError(f"{text!r} is not an account address (0x and 40 hex digits)")
    return to_checksum_address(text)


# ---------------------------------------------------------------------------- reading commands


@agency_app.command("list")
def list_command(rpc: Rpc, deployment: Deployment, as_json: JsonFlag = False) -> None:
    """List every agency: name, status, council seat, record types and current signers.

    Example: sijill agency list --rpc http://127.0.0.1:8545 --deployment .data/devchain/deployment.json
    """
    with _errors():
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
    with _errors():
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
        out.print(f"open proposal #{p.id}: {escape(p.action.describe())} ({_tally(p)})")


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
    with _errors():
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
            f"  {_tally(p)}; proposed by {p.proposer} in council epoch {p.council_epoch}; "
            f"expires {_when(p.expires_at)}"
        )
    if not found:
        out.print("No open proposals." if open_only else "No proposals yet.")


# ---------------------------------------------------------------------------- voting commands


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
    with _errors():
        council = _voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        for proposal_id in ids:
            _print_outcome(council.approve(proposal_id), as_json)


def _propose(
    action: Action,
    rpc: str,
    deployment: Path,
    key_file: Path | None,
    keystore: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    with _errors():
        council = _voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        _print_outcome(council.propose(action), as_json)


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
    with _errors():
        action = Action("add-agency", code, _address(signer), record_type or "", name=agency_name(name))
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
        with _errors():
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
        action = Action(kind, code, record_type=record_type)
        with _errors():
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
        with _errors():
            action = Action(kind, code, _address(account))
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
        _fail("the threshold is a number from 1 to the number of voting council members", 2)
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
    with _errors():
        old_account, new_account = _address(old), _address(new)
        agency_code(code)
        council = _voting_council(rpc, deployment, key_file, keystore, passphrase_file)
        steps = _rotate(council, code, old_account, new_account)
    if as_json:
        print(json.dumps({s.step: s.to_json() for s in steps}, ensure_ascii=False))
        return
    for s in steps:
        if s.outcome is not None:
            _print_outcome(s.outcome, False)
        else:
            out.print(escape(s.note))
    ids = [str(s.proposal_id) for s in steps if s.proposal_id and s.state == "open"]
    if ids:
        out.print(f"Other council agencies approve with: sijill agency approve {' '.join(ids)}")


@dataclass(frozen=True, slots=True)
class RotationStep:
    """One step of a signer rotation: `proposed`, `reused` (an open proposal already makes
    it), `done` (nothing to do) or `deferred` (cannot be proposed yet)."""

    step: str  # add or remove
    status: str
    note: str = ""
    proposal_id: int | None = None
    state: str = ""  # the proposal's: open or executed
    outcome: Outcome | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "id": self.proposal_id,
            "state": self.state or None,
            "note": self.note or None,
            "outcome": self.outcome.to_json() if self.outcome else None,
        }


def _rotate(council: Council, code: str, old: str, new: str) -> list[RotationStep]:
    """The two steps of a rotation: add `new`, then remove `old`."""
    signers = {s["address"] for s in council.agency(code)["signers"]}
    if old not in signers and new in signers:
        note = f"{new} already signs for {code} and {old} no longer does: nothing to do."
        return [RotationStep("add", "done", note), RotationStep("remove", "done", note)]
    if old not in signers:
        raise RegistryRefusal(f"{old} is not a current signer of {code}")
    pending = council.proposals(open_only=True)
    steps = []
    for step, kind, account in (("add", "add-signer", new), ("remove", "remove-signer", old)):
        existing = next((p for p in pending if p.action == Action(kind, code, account)), None)
        if step == "add" and new in signers:
            steps.append(RotationStep(step, "done", f"{new} already signs for {code}."))
        elif existing is not None:
            what = existing.action.describe()
            note = f"Proposal #{existing.id} already proposes to {what} ({_tally(existing)})."
            steps.append(RotationStep(step, "reused", note, existing.id, existing.state))
        elif step == "remove" and len(signers) < 2:
            note = (
                f"Removing {old} can be proposed once {new} has been added ({old} is {code}'s only "
                "signer until then): run this command again after the addition executes."
            )
            steps.append(RotationStep(step, "deferred", note))
        else:
            outcome = council.propose(Action(kind, code, account))
            steps.append(
                RotationStep(step, "proposed", "", outcome.proposal.id, outcome.proposal.state, outcome)
            )
            signers = {s["address"] for s in council.agency(code)["signers"]}
    return steps


# ---------------------------------------------------------------------------- output


def _print_summary(summary: dict[str, Any]) -> None:
    members = ", ".join(summary["council"]) or "none"
    out.print(
        f"Council: {members}; {summary['threshold']} of {len(summary['council'])} approvals needed; "
        f"epoch {summary['councilEpoch']}; proposals so far: {summary['proposals']}."
    )


def _standing(agency: dict[str, Any]) -> str:
    return f"{agency['status']}, {'a council seat' if agency['council'] else 'no council seat'}"


def _tally(p: ProposalInfo) -> str:
    """Approvals so far, against the threshold while the proposal is open."""
    who = f" ({', '.join(p.approved_by)})" if p.approved_by else ""
    if p.state == "open":
        return f"open, {p.approvals} of {p.threshold} approvals{who}"
    return f"{p.state}, {p.approvals} approval{'' if p.approvals == 1 else 's'}{who}"


def _print_outcome(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False))
        return
    p = outcome.proposal
    out.print(
        f"Proposal #{p.id}, {escape(p.action.describe())}: approved by {outcome.voter} "
        f"in block {outcome.block} ({_tally(p)})."
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


def _readable(args: Any) -> dict[str, Any]:
    """Event arguments with codes as text and bytes as hex."""
    shown = {}
    for key, value in dict(args).items():
        shown[key] = _word(value) if isinstance(value, bytes) and len(value) == 32 else value
    return shown


def _word(value: bytes) -> str:
    """A bytes32 code as its text; empty for zero, hex when it is not a code."""
    raw = bytes(value)
    if raw == _ZERO_WORD:
        return ""
    try:
        return decode_code(raw)
    except InvalidCode:
        return "0x" + raw.hex()


def _code_word(code: str) -> bytes:
    """The bytes32 of an agency code as `_word` shows it (hex for a word that is no code)."""
    if len(code) == 66 and code.startswith("0x"):
        try:
            return bytes.fromhex(code[2:])
        except ValueError:
            pass
    return agency_code(code)


def _when(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
