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

`audit_export` is the logic, over a `ChainLog` and a `ChainAnswers` (`node.auditor.report`;
tests give fakes); `node.auditor.rpcchain.RpcChain` reads both from a JSON-RPC endpoint, and
`node.auditor.receipts` checks the receipts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.merkle import MerkleError, build_tree
from node.auditor.export import ZERO_ROOT, Manifest
from node.auditor.exportread import read_batches
from node.auditor.receipts import check_receipts
from node.auditor.report import (
    CHECKS,
    AuditReport,
    BatchRow,
    ChainAnswers,
    ChainBatch,
    ChainLog,
    Finding,
    ProgressStart,
    no_progress,
    short_hex,
)


def audit_export(
    directory: Path,
    manifest: Manifest,
    log: ChainLog,
    chain: ChainAnswers,
    *,
    progress: ProgressStart = no_progress,
) -> AuditReport:
    """Hold the export in `directory` against `log` and `chain`; every violation a finding."""
    audit = Audit(directory, manifest, log, chain, progress)
    audit.batches()
    audit.chain_log()
    audit.authority()
    audit.leaf_changes()
    check_receipts(audit)
    audit.export_counts()
    audit.report.rows.sort(key=lambda row: (row.chain.seq if row.chain else row.seq, not row.exported))
    return audit.report


class Audit:
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
                self.find(
                    "batch-duplicate", f"batch {short_hex(batch.root)} appears twice in the export", row
                )
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
                    f"the export puts batch {short_hex(batch.root)} at seq {batch.seq}; the chain has it at "
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
            "leaf-claimed-twice", f"leaf {short_hex(leaf)} is claimed {where}", second, leaf="0x" + leaf.hex()
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
                f"batch {chained.seq} is exported after root {short_hex(prev)}; the chain links it to "
                f"{short_hex(chained.prev)}",
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
                    f"exported batch {row.seq} ({short_hex(row.root)}) was never anchored by "
                    f"{self.log.agency}",
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
                    f"batch {seq} ({short_hex(chained.root)}, {chained.count} {chained.record_type} leaves, "
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
                    f"on-chain batch {seq} links to {short_hex(chained.prev)}, not to batch {seq - 1}'s root",
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
                        f"block {change.block} revokes leaf {short_hex(change.leaf)}, in no exported batch",
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
                    f"block {change.block} supersedes leaf {short_hex(change.leaf)}, in no exported batch",
                    leaf=shown,
                    block=change.block,
                )
            self.checked["supersession-unknown-successor"] += 1
            if change.successor not in self.leaves:
                self.find(
                    "supersession-unknown-successor",
                    f"block {change.block} names {short_hex(change.successor)} as the successor of "
                    f"{short_hex(change.leaf)}; it is in no exported batch",
                    leaf=shown,
                    successor="0x" + change.successor.hex(),
                    block=change.block,
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


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for n in numbers:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges
