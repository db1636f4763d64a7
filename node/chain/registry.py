"""The AgencyRegistry and its council, over web3: what `sijill agency` reads and votes with.

`Council` binds one deployment's registry (and the RecordLedger beside it) on a reachable
chain. It reads agencies, the council and proposals (`summary`, `agency`, `head`, `proposal`,
`proposals`) and, given a voting key and a way to send (`sender`: the node's transaction
manager, which this package does not import), sends `propose` and `approve` and reads what an
executed proposal changed from the transaction's events. `Action` is an
`IAgencyRegistry.Action` by name.
docs/contracts.md describes the council; the governance flows built on these calls (a
signer rotation) are in `node.network.council`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.canonical import show_refused
from ledger.codes import agency_code, agency_name, decode_code
from ledger.codes import record_type as record_type_code
from ledger.errors import InvalidAgencyName, InvalidCode
from node.chain.client import RevertDecoder, call_view, connect
from node.chain.deploy import bound_contracts, load_deployment, refuse_dev_keys_off_devchain
from node.chain.toolchain import compile_contracts
from node.errors import ContractRevert, DeploymentError, NodeError

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


class RegistryRefusal(NodeError):
    """The registry has no such agency or proposal, or refuses the change (exit status 1)."""


class Sender(Protocol):
    """Sends a contract call from the voting key and waits for its receipt (`TxManager`)."""

    def transact(self, call: Any, *, label: str | None = None) -> TxReceipt: ...


#: Makes the `Sender` of a voting key: (RPC URL, the key, the registry's revert decoder).
SenderFactory = Callable[[str, LocalAccount, RevertDecoder], Sender]


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


@dataclass(frozen=True, slots=True)
class _Moment:
    """What proposals' states are judged against, read once for a whole listing."""

    timestamp: int  # of the latest block
    epoch: int
    threshold: int
    codes: tuple[str, ...]


class Council:
    """One deployment's registry on a reachable chain: read, and changed with a voting key.

    Voting needs `account` and `sender`, which makes what sends its transactions
    (`node.network.council.open_council` passes the node's `TxManager`)."""

    def __init__(
        self,
        rpc: str,
        deployment_file: Path,
        account: LocalAccount | None = None,
        *,
        sender: SenderFactory | None = None,
    ) -> None:
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
        self._sender = (
            sender(rpc, account, self.decoder) if account is not None and sender is not None else None
        )

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


def tally(p: ProposalInfo) -> str:
    """Approvals so far, against the threshold while the proposal is open."""
    who = f" ({', '.join(p.approved_by)})" if p.approved_by else ""
    if p.state == "open":
        return f"open, {p.approvals} of {p.threshold} approvals{who}"
    return f"{p.state}, {p.approvals} approval{'' if p.approvals == 1 else 's'}{who}"


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


def format_when(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def account_address(text: str) -> str:
    if not is_address(text):
        raise NodeError(f"{text!r} is not an account address (0x and 40 hex digits)")
    return to_checksum_address(text)
