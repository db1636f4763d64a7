"""Verification: a proof bundle against the chain, check by named check.

`verify(bundle, chain, now=...)` never raises on a bad bundle: whatever it is given, it returns a
`VerificationReport` with one entry per check, each pass, fail or unknown, with a reason in
English and Arabic:

- integrity: the disclosed fields (with their salts) and the hidden field hashes recompute to the
  bundle's leaf, and every disclosed value is in canonical form;
- inclusion: the Merkle path leads from the leaf to the bundle's root;
- anchored: that agency anchored that root on this chain, for this record type (block, time);
- authority: the receipt's signer was a signer of the agency at the anchoring block, and the
  agency is known to the registry (its current status is reported);
- status: the leaf is current, or superseded by another leaf, or revoked with a reason;
- receipt: the EIP-712 signature recovers the stated signer, and the leaf was anchored by the
  promised time.

The verdict sums them up: authentic-current, superseded, revoked, pending (accepted, not yet
anchored), not-authentic, or unknown (the chain could not be asked, or there is no RecordLedger
where the bundle points: `NoDeployment`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from ledger.bundle import Bundle, BundleError, load_bundle, parse_bundle
from ledger.canonical import is_canonical_text
from ledger.chainview import (
    AgencyStatus,
    BatchInfo,
    ChainUnavailable,
    ChainView,
    LeafState,
    NoDeployment,
)
from ledger.errors import LedgerError
from ledger.fields import field_hash, leaf_of, record_digest
from ledger.merkle import verify_proof
from ledger.receipts import ReceiptError, recover_receipt_signer

CHECKS = ("integrity", "inclusion", "anchored", "authority", "status", "receipt")

#: Revocation reason codes (docs/contracts.md), English and Arabic.
REVOCATION_REASONS: dict[int, tuple[str, str]] = {
    1: ("issued in error", "صدر عن طريق الخطأ"),
    2: ("court order", "بحكم قضائي"),
    3: ("fraud", "تزوير أو غش"),
    4: ("duplicate record", "قيد مكرر"),
    5: ("closed by the registry", "أغلقته جهة التسجيل"),
    6: ("other", "سبب آخر"),
}


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    AUTHENTIC = "authentic-current"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"
    PENDING = "pending"
    NOT_AUTHENTIC = "not-authentic"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    reason_en: str
    reason_ar: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerificationReport:
    verdict: Verdict
    checks: tuple[Check, ...]
    bundle: Bundle | None

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "checks": [
                {
                    "name": c.name,
                    "outcome": c.outcome.value,
                    "reason": {"en": c.reason_en, "ar": c.reason_ar},
                    "details": c.details,
                }
                for c in self.checks
            ],
        }


def json_text(document: dict[str, Any]) -> str:
    """A report (`VerificationReport.to_json`, with more keys of str, int, bool or None) as
    `json.dumps(document, ensure_ascii=False, separators=(",", ":"))` writes it, the form on the
    wire, in a fraction of the time: orjson writes the same text for every string
    (tests/python/test_report_json.py tries every code point), integer of 64 bits, list and
    dict. A float in the details (reports hold none), a larger integer or a lone surrogate (a
    file name that is not UTF-8) goes to json.dumps."""
    checks = document.get("checks", ())
    if not any(type(v) is float for c in checks for v in c["details"].values()):
        try:
            return orjson.dumps(document).decode()
        except orjson.JSONEncodeError:
            pass
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def verify(
    document: Bundle | bytes | str | Mapping[str, Any], chain: ChainView, *, now: int
) -> VerificationReport:
    """Verify a bundle (parsed, JSON text, or decoded JSON) against `chain` at unix time `now`."""
    try:
        bundle = _as_bundle(document)
    except BundleError as exc:
        unreadable = Check(
            "integrity", Outcome.FAIL, f"The bundle is unreadable: {exc}", "المستند غير صالح للقراءة"
        )
        rest = tuple(_not_checked(name) for name in CHECKS[1:])
        return VerificationReport(Verdict.NOT_AUTHENTIC, (unreadable, *rest), None)

    integrity = _integrity(bundle)
    inclusion = _inclusion(bundle)
    signer, receipt_signature = _receipt_signature(bundle)
    try:
        anchored, batch = _anchored(bundle, chain)
        authority = _authority(bundle, chain, signer, batch)
        status = _status(bundle, chain) if _same_deployment(bundle, chain) else _not_checked("status")
    except ChainUnavailable as exc:
        anchored, batch = _unknown("anchored", exc), None
        authority, status = _unknown("authority", exc), _unknown("status", exc)
    receipt = receipt_signature or _promise(bundle, batch, now, anchored)
    checks = (integrity, inclusion, anchored, authority, status, receipt)
    return VerificationReport(_verdict(checks, receipt_signature is not None, bundle), checks, bundle)


def _as_bundle(document: Bundle | bytes | str | Mapping[str, Any]) -> Bundle:
    if isinstance(document, Bundle):
        return document
    if isinstance(document, bytes | str):
        return load_bundle(document)
    return parse_bundle(document)


# ------------------------------------------------------------------------------ the checks


def _integrity(bundle: Bundle) -> Check:
    hashes: dict[str, bytes] = {h.path: h.hash for h in bundle.hidden}
    try:
        for f in bundle.disclosed:
            if isinstance(f.value, str) and not is_canonical_text(f.value):
                return _fail(
                    "integrity",
                    f"The value of {f.path} is not in canonical form",
                    f"قيمة الحقل {f.path} ليست في الصيغة القياسية",
                )
            hashes[f.path] = field_hash(f.path, f.salt, f.value)
        leaf = leaf_of(record_digest(bundle.key, hashes))
    except LedgerError as exc:
        return _fail("integrity", f"The fields cannot be hashed: {exc}", "تعذر حساب بصمة الحقول")
    if leaf != bundle.leaf:
        return _fail(
            "integrity",
            "The fields do not recompute to the record's leaf: something was changed",
            "الحقول لا تطابق بصمة القيد: تم تعديل شيء ما",
        )
    return Check(
        "integrity",
        Outcome.PASS,
        f"{len(bundle.disclosed)} disclosed and {len(bundle.hidden)} hidden fields recompute to the leaf",
        f"الحقول المعروضة ({len(bundle.disclosed)}) والمخفية ({len(bundle.hidden)}) تطابق بصمة القيد",
        {"leaf": "0x" + leaf.hex()},
    )


def _inclusion(bundle: Bundle) -> Check:
    if bundle.anchor is None:
        return Check(
            "inclusion",
            Outcome.UNKNOWN,
            "Not yet anchored: the bundle has no Merkle path",
            "لم يُثبَّت بعد في دفتر القيود المشترك",
        )
    if not verify_proof(bundle.leaf, bundle.anchor.proof, bundle.anchor.root):
        return _fail(
            "inclusion",
            "The Merkle path does not lead from the leaf to the root",
            "مسار الإثبات لا يصل من بصمة القيد إلى الجذر",
        )
    return Check(
        "inclusion",
        Outcome.PASS,
        f"The leaf is in the batch tree ({len(bundle.anchor.proof)} steps)",
        "القيد ضمن دفعة التثبيت",
        {"root": "0x" + bundle.anchor.root.hex()},
    )


def _same_deployment(bundle: Bundle, chain: ChainView) -> bool:
    return (bundle.chain_id, bundle.ledger, bundle.registry) == (
        chain.chain_id,
        chain.ledger.lower(),
        chain.registry.lower(),
    )


def _anchored(bundle: Bundle, chain: ChainView) -> tuple[Check, BatchInfo | None]:
    if bundle.chain_id != chain.chain_id or bundle.ledger != chain.ledger.lower():
        return _fail(
            "anchored",
            f"The bundle names ledger {bundle.ledger} on chain ID {bundle.chain_id}; the ledger "
            f"checked is {chain.ledger.lower()} on chain ID {chain.chain_id}",
            "المستند يشير إلى دفتر قيود غير الدفتر الذي يُتحقَّق فيه",
        ), None
    if bundle.anchor is None:
        return Check("anchored", Outcome.UNKNOWN, "Not yet anchored", "لم يُثبَّت بعد"), None
    batch = chain.batch(bundle.agency, bundle.anchor.root)
    if batch is None:
        return _fail(
            "anchored",
            f"Agency {bundle.agency} never anchored this root on the ledger (chain ID {chain.chain_id})",
            f"الجهة {bundle.agency} لم تُثبِّت هذا الجذر في دفتر القيود المشترك",
        ), None
    if batch.record_type != bundle.record_type:
        return _fail(
            "anchored",
            f"The root was anchored for {batch.record_type!r} records, not {bundle.record_type!r}",
            "الجذر مثبت لنوع قيود آخر",
        ), None
    details = {
        "block": batch.block_number,
        "timestamp": batch.timestamp,
        "seq": batch.seq,
        "count": batch.count,
    }
    return Check(
        "anchored",
        Outcome.PASS,
        f"Anchored by {bundle.agency} in block {batch.block_number} (batch {batch.seq} of its log)",
        f"مُثبَّت من الجهة {bundle.agency} في الكتلة {batch.block_number}",
        details,
    ), batch


def _authority(bundle: Bundle, chain: ChainView, signer: str | None, batch: BatchInfo | None) -> Check:
    if bundle.registry != chain.registry.lower():
        return _fail(
            "authority",
            f"The bundle names registry {bundle.registry}; the ledger's is {chain.registry.lower()}",
            "المستند يشير إلى سجل جهات غير المعتمد",
        )
    status = chain.agency_status(bundle.agency)
    if status == AgencyStatus.NONE:
        return _fail(
            "authority", f"Agency {bundle.agency} is not registered", f"الجهة {bundle.agency} غير مسجلة"
        )
    if signer is None:
        return Check(
            "authority",
            Outcome.UNKNOWN,
            "The receipt's signer is unknown (bad signature)",
            "تعذر معرفة الموقّع",
        )
    block = batch.block_number if batch is not None else chain.latest_block()
    if not chain.signer_valid_at(bundle.agency, signer, block):
        return _fail(
            "authority",
            f"{signer} was not a signer of {bundle.agency} at block {block}",
            f"الموقّع {signer} لم يكن مفوضاً عن الجهة {bundle.agency} في الكتلة {block}",
        )
    note_en = "" if status == AgencyStatus.ACTIVE else " (the agency is suspended now)"
    note_ar = "" if status == AgencyStatus.ACTIVE else " (الجهة موقوفة حالياً)"
    return Check(
        "authority",
        Outcome.PASS,
        f"Signed by {signer}, a signer of {bundle.agency} at block {block}{note_en}",
        f"موقّع من مفوض معتمد عن الجهة {bundle.agency}{note_ar}",
        {"signer": signer, "block": block, "agencyStatus": status.name.lower()},
    )


def _status(bundle: Bundle, chain: ChainView) -> Check:
    info = chain.leaf_status(bundle.agency, bundle.leaf)
    if info.state == LeafState.CURRENT:
        return Check(
            "status", Outcome.PASS, "Current: neither superseded nor revoked", "ساري: لم يُعدَّل ولم يُلغَ"
        )
    if info.state == LeafState.SUPERSEDED:
        successor = "0x" + info.successor.hex()
        return _fail(
            "status",
            f"Superseded by a newer version (leaf {successor}) in block {info.block_number}",
            "صدر إصدار أحدث من هذا القيد",
            {
                "state": "superseded",
                "successor": successor,
                "reason": info.reason,
                "block": info.block_number,
            },
        )
    en, ar = REVOCATION_REASONS.get(info.reason, (f"reason code {info.reason}", f"السبب رقم {info.reason}"))
    return _fail(
        "status",
        f"Revoked in block {info.block_number}: {en}",
        f"مُلغى: {ar}",
        {"state": "revoked", "reason": info.reason, "block": info.block_number},
    )


def _receipt_signature(bundle: Bundle) -> tuple[str | None, Check | None]:
    """The recovered signer, and a failed check when the signature is bad (else None)."""
    try:
        signer = recover_receipt_signer(bundle.receipt_message(), bundle.domain, bundle.receipt.signature)
    except (ReceiptError, LedgerError) as exc:
        return None, _fail("receipt", f"The receipt signature is invalid: {exc}", "توقيع الإيصال غير صحيح")
    if signer != bundle.receipt.signer:
        return None, _fail(
            "receipt",
            f"The receipt was signed by {signer}, not by {bundle.receipt.signer}",
            "الإيصال موقّع من غير الموقّع المذكور",
        )
    return signer, None


def _promise(bundle: Bundle, batch: BatchInfo | None, now: int, anchored: Check) -> Check:
    anchor_by = bundle.receipt.anchor_by
    if batch is not None:
        if batch.timestamp <= anchor_by:
            return Check(
                "receipt",
                Outcome.PASS,
                "Valid receipt; anchored by the promised time",
                "إيصال صحيح، وتم التثبيت في الموعد",
                {"anchorBy": anchor_by, "anchoredAt": batch.timestamp},
            )
        return _fail(
            "receipt",
            f"Anchored at {batch.timestamp}, after the promised {anchor_by}",
            "تم التثبيت بعد الموعد المتعهد به",
            {"anchorBy": anchor_by, "anchoredAt": batch.timestamp},
        )
    if anchored.outcome == Outcome.UNKNOWN and bundle.anchor is not None:  # the chain was not asked
        return Check(
            "receipt",
            Outcome.UNKNOWN,
            "Valid receipt; when it was anchored could not be checked",
            "إيصال صحيح، وتعذر التحقق من موعد التثبيت",
            {"anchorBy": anchor_by},
        )
    if anchored.outcome == Outcome.FAIL or now <= anchor_by:
        return Check(
            "receipt",
            Outcome.UNKNOWN,
            f"Valid receipt; anchoring promised by {anchor_by}",
            "إيصال صحيح، بانتظار التثبيت",
            {"anchorBy": anchor_by},
        )
    return _fail(
        "receipt",
        f"Not anchored by the promised time {anchor_by}",
        "لم يتم التثبيت في الموعد المتعهد به",
        {"anchorBy": anchor_by},
    )


def _verdict(checks: tuple[Check, ...], bad_signature: bool, bundle: Bundle) -> Verdict:
    by_name = {c.name: c for c in checks}
    core = [by_name[n].outcome for n in ("integrity", "inclusion", "anchored", "authority")]
    if Outcome.FAIL in core or bad_signature:
        return Verdict.NOT_AUTHENTIC
    status = by_name["status"]
    if status.outcome == Outcome.FAIL:
        return Verdict.REVOKED if status.details.get("state") == "revoked" else Verdict.SUPERSEDED
    if bundle.anchor is None and Outcome.UNKNOWN not in (by_name["authority"].outcome, status.outcome):
        return Verdict.PENDING
    if Outcome.UNKNOWN in core or status.outcome == Outcome.UNKNOWN:
        return Verdict.UNKNOWN
    return Verdict.AUTHENTIC


def _fail(name: str, en: str, ar: str, details: dict[str, Any] | None = None) -> Check:
    return Check(name, Outcome.FAIL, en, ar, details or {})


def _unknown(name: str, exc: ChainUnavailable) -> Check:
    if isinstance(exc, NoDeployment):  # the chain answered: there is nothing at that address to ask
        return Check(name, Outcome.UNKNOWN, exc.reason_en, exc.reason_ar)
    return Check(
        name, Outcome.UNKNOWN, f"The ledger could not be asked: {exc}", "تعذر الاتصال بدفتر القيود المشترك"
    )


def _not_checked(name: str) -> Check:
    return Check(name, Outcome.UNKNOWN, "Not checked", "لم يتم التحقق")
