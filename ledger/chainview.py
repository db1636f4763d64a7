"""What verification needs from the chain, as a small read-only interface.

`verify` never talks to a node itself: it asks a `ChainView` five questions (is this root
anchored by this agency, what is this leaf's status, is this agency active, was this signer
valid at that block, what is the latest block). The node implements it over JSON-RPC; tests,
test vectors and benchmarks use `MemoryChain`. Every answer comes from current state (signer
validity ranges are stored on-chain), so a Besu node without archive history answers them all.

An implementation that cannot answer raises `ChainUnavailable`; the checks that needed the
answer are then reported as unknown, never as passed. `NoDeployment` is the one case where the
chain answers but has nothing to answer with: no RecordLedger where a bundle points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from ledger.errors import LedgerError


class ChainUnavailable(LedgerError):
    """The chain could not be asked (unreachable, timed out, answered nonsense)."""


class NoDeployment(ChainUnavailable):
    """There is no RecordLedger at the ledger address a bundle names: no contract at all there (an
    empty address, or an account's), or a contract without a RecordLedger's `registry()`. The
    chain cannot say anything about such a bundle, so its checks are unknown, not failed: nothing
    was found to be false (docs/verify.md). The reasons are the ones both verifiers report."""

    def __init__(self, chain_id: int, ledger: str, contract: bool) -> None:
        self.chain_id = chain_id
        self.ledger = ledger
        self.contract = contract  # code is there, but not a RecordLedger's
        if contract:
            self.reason_en = (
                f"The contract at {ledger} (chain ID {chain_id}) is not a RecordLedger, "
                "so whether this record was anchored cannot be checked"
            )
            self.reason_ar = (
                f"العقد على العنوان {ledger} ليس دفتر القيود المشترك (RecordLedger)، "
                "فلا يمكن التحقق من تثبيت هذا القيد"
            )
        else:
            self.reason_en = (
                f"There is no contract at ledger {ledger} (chain ID {chain_id}), "
                "so whether this record was anchored cannot be checked"
            )
            self.reason_ar = f"لا يوجد عقد على العنوان {ledger}، فلا يمكن التحقق من تثبيت هذا القيد"
        super().__init__(self.reason_en)

    def __reduce__(self) -> tuple[type[NoDeployment], tuple[int, str, bool]]:
        return type(self), (self.chain_id, self.ledger, self.contract)


class LeafState(IntEnum):
    CURRENT = 0
    SUPERSEDED = 1
    REVOKED = 2


class AgencyStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """An anchored batch, as `RecordLedger.batch(agency, root)` returns it."""

    record_type: str
    seq: int
    block_number: int
    timestamp: int
    count: int


@dataclass(frozen=True, slots=True)
class LeafStatusInfo:
    """A leaf's status under one agency (`RecordLedger.leafStatus`)."""

    state: LeafState = LeafState.CURRENT
    reason: int = 0
    block_number: int = 0
    successor: bytes = b"\0" * 32


CURRENT = LeafStatusInfo()


class ChainView(Protocol):
    """Read-only answers from one chain and one deployment (addresses lower-case hex).

    `registry` is the ledger's own answer to `registry()`, so reading it may raise
    `ChainUnavailable` like any question, and `NoDeployment` when there is no RecordLedger at
    `ledger`.
    """

    @property
    def chain_id(self) -> int: ...

    @property
    def ledger(self) -> str: ...

    @property
    def registry(self) -> str: ...

    def batch(self, agency: str, root: bytes) -> BatchInfo | None: ...

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo: ...

    def agency_status(self, agency: str) -> AgencyStatus: ...

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool: ...

    def latest_block(self) -> int: ...


@dataclass
class MemoryChain:
    """A `ChainView` held in memory: for tests, vectors and benchmarks."""

    chain_id: int
    ledger: str
    registry: str
    batches: dict[tuple[str, bytes], BatchInfo] = field(default_factory=dict)
    leaves: dict[tuple[str, bytes], LeafStatusInfo] = field(default_factory=dict)
    agencies: dict[str, AgencyStatus] = field(default_factory=dict)
    signers: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # signer -> (agency, from, to)
    block: int = 0

    def batch(self, agency: str, root: bytes) -> BatchInfo | None:
        return self.batches.get((agency, bytes(root)))

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo:
        return self.leaves.get((agency, bytes(leaf)), CURRENT)

    def agency_status(self, agency: str) -> AgencyStatus:
        return self.agencies.get(agency, AgencyStatus.NONE)

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool:
        entry = self.signers.get(signer.lower())
        return entry is not None and entry[0] == agency and entry[1] <= block <= entry[2]

    def latest_block(self) -> int:
        return self.block

    def to_json(self) -> dict[str, Any]:
        """The chain state as JSON (the form test vectors describe a chain in)."""
        return {
            "chainId": self.chain_id,
            "ledger": self.ledger,
            "registry": self.registry,
            "block": self.block,
            "agencies": {code: status.name.lower() for code, status in sorted(self.agencies.items())},
            "signers": {signer: list(entry) for signer, entry in sorted(self.signers.items())},
            "batches": [
                {
                    "agency": agency,
                    "root": "0x" + root.hex(),
                    "recordType": b.record_type,
                    "seq": b.seq,
                    "block": b.block_number,
                    "timestamp": b.timestamp,
                    "count": b.count,
                }
                for (agency, root), b in sorted(self.batches.items())
            ],
            "leaves": [
                {
                    "agency": agency,
                    "leaf": "0x" + leaf.hex(),
                    "state": s.state.name.lower(),
                    "reason": s.reason,
                    "block": s.block_number,
                    "successor": "0x" + s.successor.hex(),
                }
                for (agency, leaf), s in sorted(self.leaves.items())
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryChain:
        """The chain state `to_json` wrote."""
        return cls(
            chain_id=data["chainId"],
            ledger=data["ledger"],
            registry=data["registry"],
            block=data["block"],
            agencies={code: AgencyStatus[status.upper()] for code, status in data["agencies"].items()},
            signers={signer: (e[0], e[1], e[2]) for signer, e in data["signers"].items()},
            batches={
                (b["agency"], bytes.fromhex(b["root"][2:])): BatchInfo(
                    b["recordType"], b["seq"], b["block"], b["timestamp"], b["count"]
                )
                for b in data["batches"]
            },
            leaves={
                (x["agency"], bytes.fromhex(x["leaf"][2:])): LeafStatusInfo(
                    LeafState[x["state"].upper()], x["reason"], x["block"], bytes.fromhex(x["successor"][2:])
                )
                for x in data["leaves"]
            },
        )
