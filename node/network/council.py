"""Council governance built on the registry's calls (`node.chain.registry`).

Opening the council with a voting key (`load_council_key`: a hex key file or a keystore, as
`sijill deploy` reads its key) and the node's transaction manager to send with
(`open_council`), and the flows that take more than one proposal: a signer rotation is two,
add the new key then remove the old one (`rotate`). `explain` says in one line why the
registry refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain.client import RevertDecoder
from node.chain.registry import STATUSES, Action, Council, Outcome, RegistryRefusal, format_when, tally
from node.chain.txmanager import TxManager
from node.chain.txrpc import connect_for_sending
from node.errors import ContractRevert, NodeError
from node.keys import load_signer


def _transaction_manager(rpc: str, account: LocalAccount, decoder: RevertDecoder) -> TxManager:
    return TxManager(connect_for_sending(rpc), account, decoder)


def open_council(rpc: str, deployment: Path, account: LocalAccount | None = None) -> Council:
    """The deployment's council; with `account`, one that votes with it."""
    return Council(rpc, deployment, account, sender=_transaction_manager)


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
        args["expiresAt"] = format_when(expires_at)
    template = _REFUSALS.get(revert.error)
    try:
        text = template.format_map(args) if template else str(revert)
    except (KeyError, IndexError):
        text = str(revert)
    name = f"{revert.contract}.{revert.error}" if revert.contract else revert.error
    return f"{text} ({name})" if template else text


def voting_council(
    rpc: str, deployment: Path, key_file: Path | None, keystore: Path | None, passphrase_file: Path | None
) -> Council:
    """The council, voting with the key given by --key-file or --keystore."""
    return open_council(rpc, deployment, load_council_key(key_file, keystore, passphrase_file))


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


def rotate(council: Council, code: str, old: str, new: str) -> list[RotationStep]:
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
            note = f"Proposal #{existing.id} already proposes to {what} ({tally(existing)})."
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
