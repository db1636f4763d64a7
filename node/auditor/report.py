"""What an audit reads and what it reports: the chain's facts about one agency, and the findings.

The audit (`node.auditor.audit`) takes a `ChainLog` (the agency's events and head between two
blocks) and a `ChainAnswers` (the registry's and ledger's views, asked a set of questions at a
time; `node.auditor.rpcchain.RpcChain` over JSON-RPC, fakes in tests) and gives an
`AuditReport`: every check of `CHECKS` with its count, each violation a `Finding`, the batch
table (`BatchRow`) and a per-day timeline, as the `sijill-audit/1` JSON of docs/audit.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.codes import decode_code
from ledger.errors import LedgerError
from node.auditor.export import Manifest

REPORT_FORMAT = "sijill-audit/1"

CHECKS: dict[str, str] = {
    "batch-missing": "every batch the agency anchored on-chain is in the export",
    "batch-not-on-chain": "every exported batch was anchored on-chain by the agency",
    "batch-duplicate": "no batch appears twice in the export",
    "batch-out-of-order": "the export lists the batches in the chain's order, at the chain's seq",
    "sequence-gap": "the agency's on-chain log runs from seq 1 to its head without a gap",
    "prev-mismatch": "each batch links to the previous root (export and chain)",
    "root-mismatch": "each exported batch's leaves recompute to its root",
    "count-mismatch": "each batch's leaf count agrees (export lines, export count, chain)",
    "record-type-mismatch": "record types agree (export and chain; receipt and batch)",
    "leaf-claimed-twice": "no leaf is claimed by two batches, or twice by one",
    "revocation-unknown-leaf": "every on-chain revocation names a leaf of an exported batch",
    "supersession-unknown-leaf": "every on-chain supersession names a leaf of an exported batch",
    "supersession-unknown-successor": "every supersession's successor is a leaf of an exported batch",
    "receipt-signature-invalid": "every receipt's signature recovers to the signer it names",
    "receipt-signer-not-agency": "every receipt's signer was a signer of the agency at intake",
    "receipt-late": "every anchored receipt's leaf was anchored by its anchorBy time",
    "receipt-not-anchored": "every receipt past its anchorBy time has its leaf anchored",
    "receipt-missing": "every exported leaf has its receipt in the export",
    "signer-not-valid": "every anchor was sent by a signer of the agency valid at that block",
    "record-type-not-allowed": "every anchored record type was allowed to the agency when anchored",
    "export-count-mismatch": "the export's files hold as many lines as its manifest counts",
}
"""Finding ids (stable, kebab-case) and what their check holds; a check passes without findings."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One proven violation: the check it fails, a sentence, and the values that show it."""

    check: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.check, "message": self.message, **self.details}


@dataclass(slots=True)
class ChainBatch:
    """A `BatchAnchored` of the agency (`prev` and `signer` None when known from `batch()` only)."""

    root: bytes
    seq: int
    record_type: str
    count: int
    prev: bytes | None
    signer: str | None
    block: int
    log_index: int
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class LeafChange:
    """A `LeafRevoked` (successor None) or `LeafSuperseded` of the agency."""

    leaf: bytes
    successor: bytes | None
    reason: int
    block: int


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """`signerInfo(account)`: its agency (bytes32) and inclusive block range."""

    agency: bytes
    valid_from: int
    valid_to: int


@dataclass(slots=True)
class ChainLog:
    """What the chain says of one agency: its events between two blocks and its head."""

    agency: str
    from_block: int
    to_block: int
    latest_time: int
    head_seq: int
    head_root: bytes
    batches: dict[bytes, ChainBatch] = field(default_factory=dict)
    changes: list[LeafChange] = field(default_factory=list)
    type_events: dict[str, list[tuple[int, int, bool]]] = field(default_factory=dict)
    """record type -> (block, log index, allowed) of each allow/disallow, in chain order."""


class ChainAnswers(Protocol):
    """The registry and ledger views the audit asks, a set of questions at a time."""

    def signers_valid_at(self, questions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], bool]: ...

    def signer_infos(self, accounts: Iterable[str]) -> dict[str, SignerInfo]: ...

    def record_types_allowed(self, types: Iterable[str]) -> dict[str, bool]: ...

    def block_times(self, blocks: Iterable[int]) -> dict[int, int]: ...

    def batches(self, roots: Iterable[bytes]) -> dict[bytes, ChainBatch | None]: ...


STATS = (
    "exportedBatches",
    "exportedLeaves",
    "pendingBatches",
    "chainBatches",
    "revocations",
    "supersessions",
    "receipts",
    "receiptsAnchored",
    "receiptsNotYetDue",
)
"""Counts in the report's summary."""

ProgressStart = Callable[[str, int | None], Callable[[int], None]]
"""`start(label, total)` returns `advance(n)`: how long work reports progress."""


def no_progress(label: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


# ------------------------------------------------------------------------------------ report


@dataclass(slots=True)
class BatchRow:
    """A line of the report's batch table: an exported batch, or an on-chain one the export lacks."""

    seq: int
    root: bytes
    record_type: str
    count: int
    pending: bool = False
    exported: bool = True
    chain: ChainBatch | None = None
    findings: set[str] = field(default_factory=set)

    @property
    def state(self) -> str:
        if not self.exported:
            return "missing"
        if self.chain is not None:
            return "anchored"
        return "pending" if self.pending else "not-on-chain"

    def to_json(self) -> dict[str, Any]:
        chain = self.chain
        return {
            "seq": chain.seq if chain is not None else self.seq,
            "root": "0x" + self.root.hex(),
            "recordType": self.record_type,
            "count": self.count,
            "state": self.state,
            "block": chain.block if chain else None,
            "timestamp": chain.timestamp if chain else None,
            "signer": chain.signer if chain else None,
            "findings": sorted(self.findings),
        }


@dataclass(slots=True)
class AuditReport:
    """The outcome: checks with counts, findings, the batch table, a per-day timeline."""

    manifest: Manifest
    log: ChainLog
    agency_name: str = ""
    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    rows: list[BatchRow] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATS, 0))

    def checks(self) -> list[dict[str, Any]]:
        """Every check: its id, what it holds, items checked, findings."""
        failed = Counter(f.check for f in self.findings)
        return [
            {"id": check, "title": title, "checked": self.checked[check], "failed": failed[check]}
            for check, title in CHECKS.items()
        ]

    def timeline(self) -> list[dict[str, Any]]:
        """Anchored batches per UTC day: count, leaves, and how many carry a finding."""
        days: dict[str, Counter[str]] = {}
        for row in self.rows:
            if row.chain is None:
                continue
            day = datetime.fromtimestamp(row.chain.timestamp, UTC).strftime("%Y-%m-%d")
            counts = days.setdefault(day, Counter())
            counts["batches"] += 1
            counts["leaves"] += row.chain.count
            counts["flagged"] += 1 if row.findings else 0
        return [
            {"day": day, "batches": c["batches"], "leaves": c["leaves"], "flagged": c["flagged"]}
            for day, c in sorted(days.items())
        ]

    def to_json(self) -> dict[str, Any]:
        m, log = self.manifest, self.log
        return {
            "format": REPORT_FORMAT,
            "verdict": "findings" if self.findings else "clean",
            "agency": {"code": m.agency, "name": self.agency_name},
            "chainId": m.chain_id,
            "ledger": m.ledger,
            "registry": m.registry,
            "blocks": {"from": log.from_block, "to": log.to_block, "latestTime": log.latest_time},
            "head": {"seq": log.head_seq, "root": "0x" + log.head_root.hex()},
            "export": {"source": m.source, "exportedAt": m.exported_at},
            "summary": {"findings": len(self.findings), **self.stats},
            "checks": self.checks(),
            "findings": [f.to_json() for f in self.findings],
            "batches": [row.to_json() for row in self.rows],
            "timeline": self.timeline(),
        }


# ---------------------------------------------------------------------------------- helpers


def code_text(word: bytes) -> str:
    """A bytes32 code as its text (`REPD`, `title`), or as 0x-hex if it is none."""
    try:
        return decode_code(word)
    except LedgerError:
        return "0x" + word.hex()


def when_text(at: int) -> str:
    """A unix time as UTC text, or the number if it is no time."""
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(at)


def short_hex(value: bytes) -> str:
    """The first 6 bytes of a hash, as a finding's message shows it."""
    return "0x" + value.hex()[:12] + "…"
