"""The audit of an agency's log: its export (`node.auditor.export`) held against the chain.

An auditor trusts neither the agency's server nor its export: only a chain endpoint. The
audit reads the agency's events (`BatchAnchored`, `LeafRevoked`, `LeafSuperseded` of the
RecordLedger, `RecordTypeAllowed` / `RecordTypeDisallowed` of the registry: each indexes the
agency, so one topic-filtered `eth_getLogs` per block range reads them all), asks the registry
what the events do not say (signer validity, current record types) in JSON-RPC batches by
distinct question, then streams the export through every check. Each violation is a `Finding`
with a stable id (`CHECKS`, listed in docs/audit.md); a clean log has none.

What is proved, and from what:
- the log: every on-chain batch is exported and every exported batch is on-chain, in the
  chain's order, its leaves recompute to its root (`ledger.merkle.build_tree`), its count,
  record type and previous root are the chain's, the chain's own sequence has no gap;
- leaves: none is claimed by two batches; every on-chain revocation or supersession (and every
  successor) names a leaf of an exported batch; every exported leaf has its receipt;
- receipts: each recovers (libsecp256k1) to the signer it names, who was a signer of the agency
  at the receipt's intake time (`signerInfo`, with the times of its first and last block); each
  was kept: its leaf anchored no later than `anchorBy` (block time), or not yet due at the
  chain's latest block time;
- authority: each anchor's sender was a signer of the agency at that block (`isSignerValidAt`)
  and the record type was allowed to the agency at that point (the registry's current answer,
  walked back through the allow/disallow events after the anchor).

`audit_export` is the logic, over a `ChainLog` and a `ChainAnswers` (tests give fakes);
`RpcChain` reads both from a JSON-RPC endpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from ledger.codes import agency_code, decode_code, record_type
from ledger.errors import LedgerError
from ledger.hashing import keccak256
from ledger.merkle import MerkleError, build_tree
from ledger.receipts import Receipt, ReceiptDomain, recover_receipt_signer
from node.auditor.export import ZERO_ROOT, ExportReceipt, Manifest, read_batches, read_receipts
from node.errors import ChainError

REPORT_FORMAT = "sijill-audit/1"
MAX_UINT64 = 2**64 - 1

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


# ------------------------------------------------------------------------------------- audit


def audit_export(
    directory: Path,
    manifest: Manifest,
    log: ChainLog,
    chain: ChainAnswers,
    *,
    progress: ProgressStart = no_progress,
) -> AuditReport:
    """Hold the export in `directory` against `log` and `chain`; every violation a finding."""
    audit = _Audit(directory, manifest, log, chain, progress)
    audit.batches()
    audit.chain_log()
    audit.authority()
    audit.leaf_changes()
    audit.receipts()
    audit.export_counts()
    audit.report.rows.sort(key=lambda row: (row.chain.seq if row.chain else row.seq, not row.exported))
    return audit.report


class _Audit:
    """One audit's state: the rows of the batch table and, per exported leaf, its batch."""

    def __init__(
        self, directory: Path, manifest: Manifest, log: ChainLog, chain: ChainAnswers, progress: ProgressStart
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.log = log
        self.chain = chain
        self.progress = progress
        self.report = AuditReport(manifest, log)
        self.rows = self.report.rows
        self.checked = self.report.checked
        self.stats = self.report.stats
        self.by_root: dict[bytes, int] = {}  # exported batches' rows (the first of a duplicated root)
        self.missing: dict[bytes, BatchRow] = {}  # rows of on-chain batches the export lacks
        # Leaf -> index of its batch's row, ~index once a receipt names it. The one structure that
        # grows with the log (about 150 bytes a leaf): leaves are cross-checked between files.
        self.leaves: dict[bytes, int] = {}
        self.batch_lines = 0

    def find(self, check: str, message: str, row: BatchRow | None = None, **details: Any) -> None:
        assert check in CHECKS, check
        if row is not None:
            row.findings.add(check)
            details = {
                "seq": row.chain.seq if row.chain else row.seq,
                "root": "0x" + row.root.hex(),
                **details,
            }
        self.report.findings.append(Finding(check, message, details))

    # -- the exported log against the chain's ---------------------------------------------

    def batches(self) -> None:
        advance = self.progress("checking batches", self.manifest.batches)
        last_position = 0
        unseen: list[BatchRow] = []
        for batch in read_batches(self.directory):
            self.batch_lines += 1
            advance(1)
            chained = self.log.batches.get(batch.root)
            row = BatchRow(
                batch.seq, batch.root, batch.record_type, batch.count, batch.pending, chain=chained
            )
            self.rows.append(row)
            self.checked["batch-duplicate"] += 1
            if batch.root in self.by_root:
                self.find("batch-duplicate", f"batch {_short(batch.root)} appears twice in the export", row)
                continue
            index = self.by_root[batch.root] = len(self.rows) - 1
            self.stats["exportedBatches"] += 1
            self.stats["exportedLeaves"] += len(batch.leaves)

            self.checked["batch-out-of-order"] += 1
            position = chained.seq if chained is not None else batch.seq
            if position <= last_position:
                self.find(
                    "batch-out-of-order",
                    f"batch {position} comes after batch {last_position} in the export (line "
                    f"{self.batch_lines})",
                    row,
                    line=self.batch_lines,
                )
            elif chained is not None and chained.seq != batch.seq:
                self.find(
                    "batch-out-of-order",
                    f"the export puts batch {_short(batch.root)} at seq {batch.seq}; the chain has it at "
                    f"{chained.seq}",
                    row,
                    exportedSeq=batch.seq,
                )
            last_position = max(last_position, position)

            self.checked["root-mismatch"] += 1
            try:
                computed: bytes | None = build_tree(batch.leaves).root
            except MerkleError:
                computed = None  # no leaf, or a leaf twice: found below
            if computed != batch.root:
                self.find(
                    "root-mismatch",
                    f"the {len(batch.leaves)} exported leaves of batch {position} do not recompute to its "
                    "root",
                    row,
                    computed="0x" + computed.hex() if computed else None,
                )
            self.checked["count-mismatch"] += 1
            if len(batch.leaves) != batch.count:
                self.find(
                    "count-mismatch",
                    f"batch {position} is exported with count {batch.count} but {len(batch.leaves)} leaves",
                    row,
                    leaves=len(batch.leaves),
                    exportedCount=batch.count,
                )
            if chained is None:
                unseen.append(row)
            else:
                self._against_chain(row, batch.prev, chained)
            in_batch: set[bytes] = set()
            for leaf in batch.leaves:
                self.checked["leaf-claimed-twice"] += 1
                if leaf in in_batch:
                    self._claimed_twice(leaf, row, row)
                    continue
                in_batch.add(leaf)
                other = self.leaves.setdefault(leaf, index)
                if other != index:
                    self._claimed_twice(leaf, self.rows[other], row)
        self._resolve_unseen(unseen)

    def _claimed_twice(self, leaf: bytes, first: BatchRow, second: BatchRow) -> None:
        where = (
            f"twice in batch {second.seq}" if first is second else f"in batches {first.seq} and {second.seq}"
        )
        self.find(
            "leaf-claimed-twice", f"leaf {_short(leaf)} is claimed {where}", second, leaf="0x" + leaf.hex()
        )

    def _against_chain(self, row: BatchRow, prev: bytes | None, chained: ChainBatch) -> None:
        """An exported batch the chain has: its count, record type and previous root."""
        self.checked["batch-not-on-chain"] += 1
        if chained.count != row.count:
            self.find(
                "count-mismatch",
                f"batch {chained.seq} is exported with count {row.count}; the chain recorded {chained.count}",
                row,
                exportedCount=row.count,
                chainCount=chained.count,
            )
        self.checked["record-type-mismatch"] += 1
        if chained.record_type != row.record_type:
            self.find(
                "record-type-mismatch",
                f"batch {chained.seq} is exported as {row.record_type!r}; the chain recorded "
                f"{chained.record_type!r}",
                row,
            )
        self.checked["prev-mismatch"] += 1
        if prev is not None and chained.prev is not None and chained.prev != prev:
            self.find(
                "prev-mismatch",
                f"batch {chained.seq} is exported after root {_short(prev)}; the chain links it to "
                f"{_short(chained.prev)}",
                row,
                exportedPrev="0x" + prev.hex(),
                chainPrev="0x" + chained.prev.hex(),
            )

    def _resolve_unseen(self, unseen: list[BatchRow]) -> None:
        """Exported batches without a `BatchAnchored` in the blocks read: ask `batch()` itself."""
        if not unseen:
            return
        answers = self.chain.batches(row.root for row in unseen)
        for row in unseen:
            chained = answers.get(row.root)
            if chained is not None:  # anchored before the blocks read: sequence-gap says so
                row.chain = chained
                self._against_chain(row, None, chained)
            elif row.pending:
                self.stats["pendingBatches"] += 1
            else:
                self.checked["batch-not-on-chain"] += 1
                self.find(
                    "batch-not-on-chain",
                    f"exported batch {row.seq} ({_short(row.root)}) was never anchored by {self.log.agency}",
                    row,
                )

    def chain_log(self) -> None:
        """On-chain batches the export lacks, and the chain's own sequence and links."""
        by_seq = {b.seq: b for b in self.log.batches.values()}
        self.stats["chainBatches"] = len(by_seq)
        for seq in sorted(by_seq):
            chained = by_seq[seq]
            self.checked["batch-missing"] += 1
            if chained.root not in self.by_root:
                row = BatchRow(
                    seq, chained.root, chained.record_type, chained.count, exported=False, chain=chained
                )
                self.rows.append(row)
                self.missing[chained.root] = row
                self.find(
                    "batch-missing",
                    f"batch {seq} ({_short(chained.root)}, {chained.count} {chained.record_type} leaves, "
                    f"block {chained.block}) is on-chain but not in the export",
                    row,
                    block=chained.block,
                )
            self.checked["prev-mismatch"] += 1
            before = by_seq.get(seq - 1)
            expected = ZERO_ROOT if seq == 1 else before.root if before else None
            if expected is not None and chained.prev is not None and chained.prev != expected:
                self.find(
                    "prev-mismatch",
                    f"on-chain batch {seq} links to {_short(chained.prev)}, not to batch {seq - 1}'s root",
                    self._row_of(chained.root),
                )
        self.checked["sequence-gap"] += self.log.head_seq
        missing = [seq for seq in range(1, self.log.head_seq + 1) if seq not in by_seq]
        for first, last in _ranges(missing):
            shown = f"{first}" if first == last else f"{first} to {last}"
            self.find(
                "sequence-gap",
                f"the agency's on-chain log (head {self.log.head_seq}) has no BatchAnchored for seq {shown} "
                f"in blocks {self.log.from_block} to {self.log.to_block}",
                first=first,
                last=last,
            )
        for seq in sorted(seq for seq in by_seq if seq > self.log.head_seq):
            self.find("sequence-gap", f"on-chain batch {seq} is past the agency's head {self.log.head_seq}")

    def _row_of(self, root: bytes) -> BatchRow | None:
        index = self.by_root.get(root)
        return self.rows[index] if index is not None else self.missing.get(root)

    def authority(self) -> None:
        """Each anchor's sender and record type, against the registry."""
        batches = sorted(self.log.batches.values(), key=lambda b: b.seq)
        questions = {(b.signer, b.block) for b in batches if b.signer is not None}
        valid = self.chain.signers_valid_at(questions) if questions else {}
        allowed_now = self.chain.record_types_allowed({b.record_type for b in batches}) if batches else {}
        for chained in batches:
            if chained.signer is not None:
                self.checked["signer-not-valid"] += 1
                if not valid.get((chained.signer, chained.block), False):
                    self.find(
                        "signer-not-valid",
                        f"batch {chained.seq} was anchored by {chained.signer}, not a signer of "
                        f"{self.log.agency} at block {chained.block}",
                        self._row_of(chained.root),
                        signer=chained.signer,
                        block=chained.block,
                    )
            self.checked["record-type-not-allowed"] += 1
            if not self._allowed_at(chained, allowed_now.get(chained.record_type, False)):
                self.find(
                    "record-type-not-allowed",
                    f"batch {chained.seq} anchors {chained.record_type!r} records, not allowed to "
                    f"{self.log.agency} at block {chained.block}",
                    self._row_of(chained.root),
                    block=chained.block,
                )

    def _allowed_at(self, chained: ChainBatch, allowed_now: bool) -> bool:
        """Whether the type was allowed at the anchor: the current answer, walked back through
        the first allow/disallow after it (before a disallow it was allowed, and the reverse)."""
        at = (chained.block, chained.log_index)
        for block, index, allowed in self.log.type_events.get(chained.record_type, ()):
            if (block, index) > at:
                return not allowed
        return allowed_now

    def leaf_changes(self) -> None:
        """Every on-chain revocation and supersession names leaves of exported batches."""
        for change in self.log.changes:
            shown = "0x" + change.leaf.hex()
            if change.successor is None:
                self.stats["revocations"] += 1
                self.checked["revocation-unknown-leaf"] += 1
                if change.leaf not in self.leaves:
                    self.find(
                        "revocation-unknown-leaf",
                        f"block {change.block} revokes leaf {_short(change.leaf)}, in no exported batch",
                        leaf=shown,
                        block=change.block,
                        reason=change.reason,
                    )
                continue
            self.stats["supersessions"] += 1
            self.checked["supersession-unknown-leaf"] += 1
            if change.leaf not in self.leaves:
                self.find(
                    "supersession-unknown-leaf",
                    f"block {change.block} supersedes leaf {_short(change.leaf)}, in no exported batch",
                    leaf=shown,
                    block=change.block,
                )
            self.checked["supersession-unknown-successor"] += 1
            if change.successor not in self.leaves:
                self.find(
                    "supersession-unknown-successor",
                    f"block {change.block} names {_short(change.successor)} as the successor of "
                    f"{_short(change.leaf)}; it is in no exported batch",
                    leaf=shown,
                    successor="0x" + change.successor.hex(),
                    block=change.block,
                )

    # -- receipts ---------------------------------------------------------------------------

    def receipts(self) -> None:
        """Every receipt: signed by the agency's signer, kept; every exported leaf has one."""
        advance = self.progress("checking receipts", self.manifest.receipts)
        agency = self.log.agency
        domain = ReceiptDomain(self.manifest.chain_id, self.manifest.ledger)
        signers = _SignerCache(self.chain, agency_code(agency))
        now = self.log.latest_time
        for receipt, recovered, problem in recover_signers(agency, domain, read_receipts(self.directory)):
            advance(1)
            self.stats["receipts"] += 1
            about = f"receipt for {receipt.record_type}/{receipt.record_id} v{receipt.version}"
            where: dict[str, Any] = {
                "leaf": "0x" + receipt.leaf.hex(),
                "recordId": receipt.record_id,
                "version": receipt.version,
            }
            index = self.leaves.get(receipt.leaf)
            row = None
            if index is not None:
                row = self.rows[index if index >= 0 else ~index]
                self.leaves[receipt.leaf] = index if index < 0 else ~index

            self.checked["receipt-signature-invalid"] += 1
            if problem:
                self.find(
                    "receipt-signature-invalid",
                    f"{about} does not verify as signed by {receipt.signer}: {problem}",
                    **where,
                    signer=receipt.signer,
                    recovered=recovered,
                )
                continue  # not the agency's promise: no deadline to hold it to
            self.checked["receipt-signer-not-agency"] += 1
            why = signers.invalid_at(receipt.signer, receipt.intake_time)
            if why:
                self.find(
                    "receipt-signer-not-agency",
                    f"{about} is signed by {receipt.signer}, {why}",
                    **where,
                    signer=receipt.signer,
                    intakeTime=receipt.intake_time,
                )
                continue
            if row is not None:
                self.checked["record-type-mismatch"] += 1
                if row.record_type != receipt.record_type:
                    self.find(
                        "record-type-mismatch",
                        f"{about} names type {receipt.record_type!r}; its leaf is in a "
                        f"{row.record_type!r} batch",
                        row,
                        **where,
                    )
            anchored = row.chain if row is not None else None
            if anchored is not None:
                self.checked["receipt-late"] += 1
                self.stats["receiptsAnchored"] += 1
                if anchored.timestamp > receipt.anchor_by:
                    self.find(
                        "receipt-late",
                        f"{about} promised anchoring by {_when(receipt.anchor_by)}; batch {anchored.seq} "
                        f"anchored it at {_when(anchored.timestamp)} (block {anchored.block}), "
                        f"{anchored.timestamp - receipt.anchor_by} s late",
                        row,
                        **where,
                        anchorBy=receipt.anchor_by,
                        blockTime=anchored.timestamp,
                        block=anchored.block,
                    )
                continue
            self.checked["receipt-not-anchored"] += 1
            if now > receipt.anchor_by:
                self.find(
                    "receipt-not-anchored",
                    f"{about} promised anchoring by {_when(receipt.anchor_by)}; at the chain's latest block "
                    f"({_when(now)}) its leaf is in no anchored batch",
                    **where,
                    anchorBy=receipt.anchor_by,
                    chainTime=now,
                )
            else:
                self.stats["receiptsNotYetDue"] += 1
        for leaf, index in self.leaves.items():
            self.checked["receipt-missing"] += 1
            if index >= 0:
                row = self.rows[index]
                self.find(
                    "receipt-missing",
                    f"leaf {_short(leaf)} of batch {row.seq} has no receipt in the export",
                    row,
                    leaf="0x" + leaf.hex(),
                )

    def export_counts(self) -> None:
        """The files against the manifest's counts (a truncated copy, or lines taken out)."""
        self.checked["export-count-mismatch"] += 2
        for name, lines, counted in (
            ("batches.ndjson", self.batch_lines, self.manifest.batches),
            ("receipts.ndjson", self.stats["receipts"], self.manifest.receipts),
        ):
            if lines != counted:
                self.find(
                    "export-count-mismatch",
                    f"{name} holds {lines} lines; the manifest counts {counted}",
                    file=name,
                    lines=lines,
                    manifest=counted,
                )


def recover_signers(
    agency: str, domain: ReceiptDomain, receipts: Iterable[ExportReceipt]
) -> Iterator[tuple[ExportReceipt, str | None, str]]:
    """Each receipt with the address it recovers to (None if none) and what is wrong ('' if it
    names that signer): the costly part of an audit, libsecp256k1 recovery at about 0.1 ms."""
    for r in receipts:
        try:
            message = Receipt(
                agency, r.record_type, r.record_id, r.version, r.leaf, r.intake_time, r.anchor_by
            )
            signature = bytes.fromhex(r.signature.removeprefix("0x"))
            recovered = recover_receipt_signer(message, domain, signature)
        except (LedgerError, ValueError) as exc:
            yield r, None, str(exc)
            continue
        yield r, recovered, "" if recovered == r.signer else f"it recovers to {recovered}"


class _SignerCache:
    """Whether a receipt's signer was the agency's at a time: one `signerInfo` per signer, and the
    times of the first and last blocks of its (inclusive) validity range."""

    def __init__(self, chain: ChainAnswers, agency: bytes) -> None:
        self.chain = chain
        self.agency = agency
        self.ranges: dict[str, tuple[str, int, int | None]] = {}

    def invalid_at(self, signer: str, when: int) -> str:
        """Why `signer` was not a signer of the agency at unix time `when` ('' if it was)."""
        if signer not in self.ranges:
            info = self.chain.signer_infos([signer])[signer]
            if info.agency != self.agency:
                whose = (
                    "no agency's signer" if info.agency == ZERO_ROOT else f"a signer of {_code(info.agency)}"
                )
                self.ranges[signer] = (whose, 0, None)
            else:
                ended = info.valid_to < MAX_UINT64  # removed in block valid_to, valid through it
                times = self.chain.block_times([info.valid_from, *([info.valid_to] if ended else [])])
                self.ranges[signer] = ("", times[info.valid_from], times[info.valid_to] if ended else None)
        whose, start, end = self.ranges[signer]
        if whose:
            return whose
        if when < start:
            return f"whose validity began later ({_when(start)})"
        if end is not None and when > end:
            return f"whose validity had ended ({_when(end)})"
        return ""


# ------------------------------------------------------------------------------ over JSON-RPC

EVENTS = {
    "BatchAnchored": "BatchAnchored(bytes32,bytes32,bytes32,uint64,uint32,bytes32,address)",
    "LeafRevoked": "LeafRevoked(bytes32,bytes32,uint16)",
    "LeafSuperseded": "LeafSuperseded(bytes32,bytes32,bytes32,uint16)",
    "RecordTypeAllowed": "RecordTypeAllowed(bytes32,bytes32)",
    "RecordTypeDisallowed": "RecordTypeDisallowed(bytes32,bytes32)",
}
"""The events read, each with the agency as its first indexed argument."""
TOPICS = {keccak256(signature.encode()): name for name, signature in EVENTS.items()}
VIEWS = (
    "registry()",
    "head(bytes32)",
    "batch(bytes32,bytes32)",
    "agencyInfo(bytes32)",
    "signerInfo(address)",
    "isSignerValidAt(bytes32,address,uint256)",
    "isRecordTypeAllowed(bytes32,bytes32)",
)
"""The view functions called (a test checks them against the compiled contracts)."""
RPC_BATCH = 200
"""Calls sent in one JSON-RPC batch."""


class RpcChain:
    """The chain as the audit reads it: events by block range, views in JSON-RPC batches.

    The few views are encoded here with eth-abi from their signatures, so an auditor needs no
    compiler and no ABI files."""

    def __init__(self, w3: Any, ledger: str, registry: str, agency: str, *, span: int = 5_000) -> None:
        self.w3 = w3
        self.ledger = to_checksum_address(ledger)
        self.registry = to_checksum_address(registry)
        self.agency = agency
        self.span = span
        self._agency_word = agency_code(agency)
        self._times: dict[int, int] = {}

    # -- single views ------------------------------------------------------------------------

    def ledger_registry(self) -> str:
        """The registry the RecordLedger consults (`registry()`)."""
        (address,) = self._view(self.ledger, "registry()", [], [], ["address"])
        return str(address).lower()

    def has_code(self, address: str) -> bool:
        return bool(self._ask(lambda: self.w3.eth.get_code(to_checksum_address(address))))

    def agency_info(self) -> tuple[str, int]:
        """The agency's display name and status (0 unknown, 1 active, 2 suspended)."""
        ((name, status, _council, _at),) = self._view(
            self.registry,
            "agencyInfo(bytes32)",
            ["bytes32"],
            [self._agency_word],
            ["(string,uint8,bool,uint64)"],
        )
        return str(name), int(status)

    def head(self) -> tuple[bytes, int]:
        """The agency's last batch on-chain: root and seq."""
        ((root, seq),) = self._view(
            self.ledger, "head(bytes32)", ["bytes32"], [self._agency_word], ["(bytes32,uint64)"]
        )
        return bytes(root), int(seq)

    def latest_block(self) -> int:
        return int(self._ask(lambda: self.w3.eth.block_number))

    # -- the log ---------------------------------------------------------------------------

    def read_log(self, from_block: int, to_block: int, progress: ProgressStart = no_progress) -> ChainLog:
        """The agency's events in [from_block, to_block], its head, and its batches' block times.

        Ranges of `span` blocks; a range the endpoint refuses (too many results, a range limit)
        is halved and asked again."""
        root, seq = self.head()
        log = ChainLog(self.agency, from_block, to_block, self.block_times([to_block])[to_block], seq, root)
        span = self.span
        advance = progress("reading the chain's log", to_block - from_block + 1)
        topics = [["0x" + t.hex() for t in TOPICS], "0x" + self._agency_word.hex()]
        start = from_block
        while start <= to_block:
            end = min(to_block, start + span - 1)
            query = {
                "address": [self.ledger, self.registry],
                "fromBlock": start,
                "toBlock": end,
                "topics": topics,
            }
            try:
                entries = self.w3.eth.get_logs(query)
            except (ValueError, LookupError) as exc:  # an error answer, not a transport failure
                if span == 1:
                    raise ChainError(f"eth_getLogs refused blocks {start} to {end}: {exc}") from None
                span = max(1, span // 2)
                continue
            except Exception as exc:
                raise ChainError(f"the chain stopped answering: {type(exc).__name__}: {exc}") from None
            for entry in entries:
                self._take(log, entry)
            advance(end - start + 1)
            start = end + 1
        times = self.block_times({b.block for b in log.batches.values()})
        for chained in log.batches.values():
            chained.timestamp = times[chained.block]
        return log

    def _take(self, log: ChainLog, entry: Any) -> None:
        topics = [bytes(t) for t in entry["topics"]]
        name = TOPICS.get(topics[0])
        data = bytes(entry["data"])
        block, index = int(entry["blockNumber"]), int(entry["logIndex"])
        from_ledger = str(entry["address"]).lower() == self.ledger.lower()
        if name == "BatchAnchored" and from_ledger:
            log.batches[topics[3]] = ChainBatch(
                root=topics[3],
                seq=int.from_bytes(data[0:32], "big"),
                record_type=_code(topics[2]),
                count=int.from_bytes(data[32:64], "big"),
                prev=data[64:96],
                signer="0x" + data[108:128].hex(),
                block=block,
                log_index=index,
            )
        elif name == "LeafRevoked" and from_ledger:
            log.changes.append(LeafChange(topics[2], None, int.from_bytes(data[:32], "big"), block))
        elif name == "LeafSuperseded" and from_ledger:
            log.changes.append(LeafChange(topics[2], topics[3], int.from_bytes(data[:32], "big"), block))
        elif name in ("RecordTypeAllowed", "RecordTypeDisallowed") and not from_ledger:
            events = log.type_events.setdefault(_code(topics[2]), [])
            events.append((block, index, name == "RecordTypeAllowed"))

    # -- ChainAnswers ------------------------------------------------------------------------

    def signers_valid_at(self, questions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], bool]:
        asked = list(questions)
        answers = self._views(
            self.registry,
            "isSignerValidAt(bytes32,address,uint256)",
            ["bytes32", "address", "uint256"],
            [[self._agency_word, to_checksum_address(signer), block] for signer, block in asked],
            ["bool"],
        )
        return {q: bool(a[0]) for q, a in zip(asked, answers, strict=True)}

    def signer_infos(self, accounts: Iterable[str]) -> dict[str, SignerInfo]:
        asked = list(accounts)
        answers = self._views(
            self.registry,
            "signerInfo(address)",
            ["address"],
            [[to_checksum_address(a)] for a in asked],
            ["(bytes32,uint64,uint64)"],
        )
        return {
            a: SignerInfo(bytes(r[0][0]), int(r[0][1]), int(r[0][2]))
            for a, r in zip(asked, answers, strict=True)
        }

    def record_types_allowed(self, types: Iterable[str]) -> dict[str, bool]:
        asked = list(types)
        answers = self._views(
            self.registry,
            "isRecordTypeAllowed(bytes32,bytes32)",
            ["bytes32", "bytes32"],
            [[self._agency_word, _type_word(t)] for t in asked],
            ["bool"],
        )
        return {t: bool(a[0]) for t, a in zip(asked, answers, strict=True)}

    def batches(self, roots: Iterable[bytes]) -> dict[bytes, ChainBatch | None]:
        asked = list(roots)
        answers = self._views(
            self.ledger,
            "batch(bytes32,bytes32)",
            ["bytes32", "bytes32"],
            [[self._agency_word, root] for root in asked],
            ["(bytes32,uint64,uint64,uint64,uint32)"],
        )
        found: dict[bytes, ChainBatch | None] = {}
        for root, ((kind, seq, block, timestamp, count),) in zip(asked, answers, strict=True):
            found[root] = None
            if seq:
                found[root] = ChainBatch(
                    root, seq, _code(bytes(kind)), count, None, None, block, -1, timestamp
                )
        return found

    def block_times(self, blocks: Iterable[int]) -> dict[int, int]:
        asked = set(blocks)
        wanted = sorted(asked - set(self._times))
        for chunk in _chunks(wanted, RPC_BATCH):
            answers = self._batch(self.w3.eth.get_block, chunk)
            for number, block in zip(chunk, answers, strict=True):
                self._times[number] = int(block["timestamp"])
        return {b: self._times[b] for b in asked}

    # -- calls -------------------------------------------------------------------------------

    def _view(self, to: str, signature: str, types: list[str], args: list[Any], out: list[str]) -> Any:
        return self._views(to, signature, types, [args], out)[0]

    def _views(
        self, to: str, signature: str, types: list[str], calls: list[list[Any]], out: list[str]
    ) -> list[Any]:
        """`signature` called at `to` with each argument list, in JSON-RPC batches; decoded."""
        selector = keccak256(signature.encode())[:4]
        data = [selector + abi_encode(types, args) for args in calls]
        answers: list[Any] = []
        for chunk in _chunks(data, RPC_BATCH):
            answers += self._batch(lambda d: self.w3.eth.call({"to": to, "data": d}), chunk)
        results = []
        for answer in answers:
            try:
                results.append(abi_decode(out, bytes(answer)))
            except Exception:  # no contract there, or another one
                raise ChainError(
                    f"{signature} at {to} answered what it cannot ({len(answer)} bytes): is this the "
                    "Sijill deployment?"
                ) from None
        return results

    def _batch(self, request: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`request(item)` (a web3 call) for each item, in one JSON-RPC batch: one round trip."""
        try:
            with self.w3.batch_requests() as batch:
                for item in items:
                    batch.add(request(item))
                return list(batch.execute())
        except ChainError:
            raise
        except Exception as exc:  # transport, RPC and decoding errors alike
            raise ChainError(f"the chain did not answer: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _ask(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            raise ChainError(f"the chain did not answer: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------- helpers


def _code(word: bytes) -> str:
    try:
        return decode_code(word)
    except LedgerError:
        return "0x" + word.hex()


def _type_word(kind: str) -> bytes:
    if kind.startswith("0x"):
        return bytes.fromhex(kind[2:])
    return record_type(kind)


def _short(value: bytes) -> str:
    return "0x" + value.hex()[:12] + "…"


def _when(at: int) -> str:
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(at)


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for n in numbers:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
