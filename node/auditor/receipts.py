"""The audit's receipt checks: every receipt signed by a signer of the agency, and kept.

`check_receipts` streams the export's receipts through one `Audit` (`node.auditor.audit`): each
must recover to the signer it names (`recover_signers`: libsecp256k1, about 0.1 ms a receipt,
the costly part of an audit), who was a signer of the agency at intake (`SignerCache`: one
`signerInfo` per signer and the times of the first and last blocks of its validity range); its
leaf anchored by `anchorBy`, or not yet due; and every exported leaf has its receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ledger.codes import agency_code
from ledger.errors import LedgerError
from ledger.receipts import Receipt, ReceiptDomain, recover_receipt_signer
from node.auditor.export import ZERO_ROOT, ExportReceipt
from node.auditor.exportread import read_receipts
from node.auditor.report import ChainAnswers, code_text, short_hex, when_text

if TYPE_CHECKING:
    from node.auditor.audit import Audit

MAX_UINT64 = 2**64 - 1


def check_receipts(audit: Audit) -> None:
    """Every receipt: signed by the agency's signer, kept; every exported leaf has one."""
    advance = audit.progress("checking receipts", audit.manifest.receipts)
    agency = audit.log.agency
    domain = ReceiptDomain(audit.manifest.chain_id, audit.manifest.ledger)
    signers = SignerCache(audit.chain, agency_code(agency))
    now = audit.log.latest_time
    for receipt, recovered, problem in recover_signers(agency, domain, read_receipts(audit.directory)):
        advance(1)
        audit.stats["receipts"] += 1
        about = f"receipt for {receipt.record_type}/{receipt.record_id} v{receipt.version}"
        where: dict[str, Any] = {
            "leaf": "0x" + receipt.leaf.hex(),
            "recordId": receipt.record_id,
            "version": receipt.version,
        }
        index = audit.leaves.get(receipt.leaf)
        row = None
        if index is not None:
            row = audit.rows[index if index >= 0 else ~index]
            audit.leaves[receipt.leaf] = index if index < 0 else ~index

        audit.checked["receipt-signature-invalid"] += 1
        if problem:
            audit.find(
                "receipt-signature-invalid",
                f"{about} does not verify as signed by {receipt.signer}: {problem}",
                **where,
                signer=receipt.signer,
                recovered=recovered,
            )
            continue  # not the agency's promise: no deadline to hold it to
        audit.checked["receipt-signer-not-agency"] += 1
        why = signers.invalid_at(receipt.signer, receipt.intake_time)
        if why:
            audit.find(
                "receipt-signer-not-agency",
                f"{about} is signed by {receipt.signer}, {why}",
                **where,
                signer=receipt.signer,
                intakeTime=receipt.intake_time,
            )
            continue
        if row is not None:
            audit.checked["record-type-mismatch"] += 1
            if row.record_type != receipt.record_type:
                audit.find(
                    "record-type-mismatch",
                    f"{about} names type {receipt.record_type!r}; its leaf is in a {row.record_type!r} batch",
                    row,
                    **where,
                )
        anchored = row.chain if row is not None else None
        if anchored is not None:
            audit.checked["receipt-late"] += 1
            audit.stats["receiptsAnchored"] += 1
            if anchored.timestamp > receipt.anchor_by:
                audit.find(
                    "receipt-late",
                    f"{about} promised anchoring by {when_text(receipt.anchor_by)}; batch {anchored.seq} "
                    f"anchored it at {when_text(anchored.timestamp)} (block {anchored.block}), "
                    f"{anchored.timestamp - receipt.anchor_by} s late",
                    row,
                    **where,
                    anchorBy=receipt.anchor_by,
                    blockTime=anchored.timestamp,
                    block=anchored.block,
                )
            continue
        audit.checked["receipt-not-anchored"] += 1
        if now > receipt.anchor_by:
            audit.find(
                "receipt-not-anchored",
                f"{about} promised anchoring by {when_text(receipt.anchor_by)}; at the chain's latest block "
                f"({when_text(now)}) its leaf is in no anchored batch",
                **where,
                anchorBy=receipt.anchor_by,
                chainTime=now,
            )
        else:
            audit.stats["receiptsNotYetDue"] += 1
    for leaf, index in audit.leaves.items():
        audit.checked["receipt-missing"] += 1
        if index >= 0:
            row = audit.rows[index]
            audit.find(
                "receipt-missing",
                f"leaf {short_hex(leaf)} of batch {row.seq} has no receipt in the export",
                row,
                leaf="0x" + leaf.hex(),
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


class SignerCache:
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
                    "no agency's signer"
                    if info.agency == ZERO_ROOT
                    else f"a signer of {code_text(info.agency)}"
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
            return f"whose validity began later ({when_text(start)})"
        if end is not None and when > end:
            return f"whose validity had ended ({when_text(end)})"
        return ""
