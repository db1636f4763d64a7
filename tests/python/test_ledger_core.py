"""ledger/ unit and property tests: fields, receipts, bundles, disclosure and verification.
No chain: verification runs against an in-memory ChainView."""

from __future__ import annotations

import itertools
import json
import os
import re
import unicodedata

import eth_account  # noqa: F401 - raises the recursion limit, as in the node
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_helpers import (
    ANCHOR_BY,
    NOW,
    SIGNER_KEY,
    anchored_bundles,
    new_chain,
    sample_record,
    signed_bundle,
)

from ledger.bundle import BundleError, bundle_to_json, disclose, dump_bundle, load_bundle
from ledger.canonical import (
    REFUSED_RANGES,
    NotCanonical,
    canonical_json,
    is_canonical_text,
    normalize_text,
    refused_character,
    show_refused,
)
from ledger.chainview import AgencyStatus, ChainUnavailable, LeafState, LeafStatusInfo, MemoryChain
from ledger.fields import FieldError, RecordKey, field_hash, flatten, seal_record, unflatten
from ledger.hashing import KECCAK_BACKEND, keccak256
from ledger.merkle import build_tree, verify_proof
from ledger.receipts import Receipt, ReceiptDomain, ReceiptError, address_of, recover_signer, sign_receipt
from ledger.verify import CHECKS, Outcome, Verdict, verify

KEY = RecordKey("REPD", "title", "01JTEST", 1)


# ------------------------------------------------------------------------------ canonical form


def test_keccak_is_ethereums_and_fast_backend_is_used() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert KECCAK_BACKEND == "safe-pysha3"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("محمـــد", "محمد"),  # tatweel
        ("  محمد   علي\t\n", "محمد علي"),  # whitespace
        ("٢٩٠٠١٠١٠١٠٠٠١٥", "29001010100015"),  # Arabic-Indic digits
        ("۲۹۰", "290"),  # extended (Persian) digits
        ("علی", "علي"),  # Farsi yeh
        ("کمال", "كمال"),  # keheh
        ("\u200fمحمد\u200e", "محمد"),  # direction marks
        ("e\u0301", "\u00e9"),  # NFC
        ("أحمد", "أحمد"),  # hamza kept
        ("مصطفى", "مصطفى"),  # alef maqsura kept
        ("\u06cc\u0654", "\u0626"),  # Farsi yeh + hamza above: mapped, then composed
        ("\u0627\u0640\u0654", "\u0623"),  # alef, tatweel, hamza above: removed, then composed
    ],
)
def test_normalisation(typed: str, canonical: str) -> None:
    assert normalize_text(typed) == canonical


# Characters that normalisation removes or maps, letters and the marks they compose with, and
# white space: where the order of the steps matters.
_NORMALISATION_ALPHABET = "\u0640\u200b\u200c\u200d\ufeff\u200e\u200f\u061c\u06a9\u06cc\u0661\u06f2" + (
    "\u0627\u0648\u064a\u0654\u0653\u0655ae\u0301\u0316\u0323 \t\u00a0\u2000\u3000"
)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=_NORMALISATION_ALPHABET, max_size=8) | st.text(max_size=8))
def test_normalised_text_is_canonical(text: str) -> None:
    """What intake stores must pass the verifier's check, or the record can never verify: any
    normalised text that intake does not refuse for a character it holds."""
    normalised = normalize_text(text)
    assert is_canonical_text(normalised) or refused_character(normalised) is not None, ascii(text)


def test_canonical_json_is_rfc8785_and_refuses_floats() -> None:
    assert canonical_json({"b": 1, "a": ["x", None, True]}) == b'{"a":["x",null,true],"b":1}'
    assert canonical_json("محمد") == '"محمد"'.encode()
    with pytest.raises(NotCanonical, match="floating-point"):
        canonical_json({"area": 1.5})
    with pytest.raises(NotCanonical, match="exact JSON range"):
        canonical_json(2**60)


# Characters normalize_text removes, maps or folds into a space: they are never refused.
NORMALISED = {0x0640, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0xFEFF, 0x061C, 0x06A9, 0x06CC}
NORMALISED |= {*range(0x0660, 0x066A), *range(0x06F0, 0x06FA)}
NORMALISED |= {c for c in range(0x110000) if chr(c).isspace()}
REFUSED_CODE_POINTS = {c for first, last, _ in REFUSED_RANGES for c in range(first, last + 1)}


@pytest.mark.parametrize(
    ("text", "label", "kind"),
    [
        ("محمد\u202eعبد الله", "U+202E", "bidi"),  # issue 15
        ("\u202aNile\u202c", "U+202A", "bidi"),
        ("2019/\u202d45873", "U+202D", "bidi"),
        ("\u2067123\u2069", "U+2067", "bidi"),
        ("\u2068x", "U+2068", "bidi"),
        ("abc\u2069", "U+2069", "bidi"),
        ("محم\u00add", "U+00AD", "format"),  # soft hyphen
        ("عبد\u2060الله", "U+2060", "format"),  # word joiner
        ("\u06001234", "U+0600", "format"),  # Arabic number sign
        ("a\ufff9b", "U+FFF9", "format"),  # interlinear annotation anchor
        ("علي\ufe0f", "U+FE0F", "format"),  # a variation selector (Mn, but invisible)
        ("x\U000e0065", "U+E0065", "format"),  # a tag
        ("a\x00b", "U+0000", "control"),
        ("a\x9fb", "U+009F", "control"),
        ("\ud800", "U+D800", "surrogate"),
        ("\ue000", "U+E000", "private-use"),
        ("\U0010fffd", "U+10FFFD", "private-use"),
        ("\ufdd0", "U+FDD0", "noncharacter"),
        ("\U0001fffe", "U+1FFFE", "noncharacter"),
    ],
)
def test_refused_characters_make_text_not_canonical(text: str, label: str, kind: str) -> None:
    refused = refused_character(text)
    assert refused is not None and (refused.label, refused.kind) == (label, kind)
    assert normalize_text(text) == text  # normalisation keeps them: they are refused, not removed
    assert not is_canonical_text(text)


def test_unassigned_code_points_are_refused_at_intake_but_not_by_a_verifier() -> None:
    assert unicodedata.category("\u0378") == "Cn"
    refused = refused_character("Ab\u0378")
    assert refused is not None and (refused.label, refused.kind) == ("U+0378", "unassigned")
    # Which code points are assigned depends on a verifier's Unicode version: it does not ask.
    assert is_canonical_text("Ab\u0378")


def test_what_normalisation_removes_is_still_removed_not_refused() -> None:
    assert normalize_text("\u200fمحمـد\u200b\u200c\u200d\ufeff\u061c\u200e") == "محمد"
    assert not REFUSED_CODE_POINTS & NORMALISED
    for first, last, _ in REFUSED_RANGES:
        assert normalize_text(chr(first)) == chr(first) and normalize_text(chr(last)) == chr(last)


def test_the_refused_table_covers_this_pythons_format_controls_private_use_and_surrogates() -> None:
    """REFUSED_RANGES is written out (every verifier refuses the same code points, whatever its
    Unicode version): it holds every code point of these categories in this Python's database."""
    expected = {
        c
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs", "Co") and c not in NORMALISED
    }
    assert not expected - REFUSED_CODE_POINTS, sorted(map(hex, expected - REFUSED_CODE_POINTS))[:20]
    assert {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069} == {
        c for first, last, kind in REFUSED_RANGES if kind == "bidi" for c in range(first, last + 1)
    }
    # ... and every entry is one intake refuses too, sorted and without overlaps.
    assert all(refused_character(chr(c)) is not None for c in REFUSED_CODE_POINTS)
    assert not any(is_canonical_text(f"a{chr(c)}") for c in REFUSED_CODE_POINTS)
    bounds = [(first, last) for first, last, _ in REFUSED_RANGES]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(bounds))


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(sorted(REFUSED_CODE_POINTS)), st.data())
def test_no_text_holding_a_refused_character_is_canonical(
    text: str, refused: int, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(text)))
    spoofed = normalize_text(text[:at] + chr(refused) + text[at:])
    assert not is_canonical_text(spoofed)
    assert refused_character(spoofed) is not None


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_whatever_intake_accepts_a_verifier_accepts(text: str) -> None:
    canonical = normalize_text(text)
    if refused_character(canonical) is None:
        assert is_canonical_text(canonical)
    if is_canonical_text(canonical):  # intake refuses more: code points unassigned in its Unicode
        assert not {ord(c) for c in canonical} & REFUSED_CODE_POINTS


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(sorted(REFUSED_CODE_POINTS)), st.data())
def test_show_refused_writes_every_refused_character_out(
    text: str, refused: int, data: st.DataObject
) -> None:
    """Text that may not be canonical (an agency name from the chain) is shown with each refused
    character as ⟨U+XXXX⟩: none is left to act, and text without one comes back as it is."""
    at = data.draw(st.integers(0, len(text)))
    shown = show_refused(text[:at] + chr(refused) + text[at:])
    assert f"⟨U+{refused:04X}⟩" in shown
    assert not {ord(c) for c in shown} & REFUSED_CODE_POINTS
    canonical = normalize_text(text)
    if is_canonical_text(canonical):
        assert show_refused(canonical) == canonical
    assert show_refused("وزارة \u202eecitsuj\u2069 / Justice") == "وزارة ⟨U+202E⟩ecitsuj⟨U+2069⟩ / Justice"


def test_a_bundle_whose_disclosed_value_holds_an_override_is_not_authentic() -> None:
    """A node without the rule (or a forger) sealed and anchored a name with U+202E: the leaf
    recomputes, but a verifier refuses the value, so the name cannot show as something it is not."""
    chain = new_chain()
    record = sample_record()
    record["owners"][0]["name"] = "محمد \u202eأحمد علي"
    (bundle,) = anchored_bundles(chain, [record])
    report = verify(bundle, chain, now=NOW)
    assert report.verdict == Verdict.NOT_AUTHENTIC
    assert (report.checks[0].name, report.checks[0].outcome) == ("integrity", Outcome.FAIL)
    assert report.checks[0].reason_en == "The value of /owners/0/name is not in canonical form"
    hidden = disclose(bundle, ["/title_number"])  # hidden, it is only a hash: nothing to show
    assert verify(hidden, chain, now=NOW).verdict == Verdict.AUTHENTIC


# ------------------------------------------------------------------------------ fields


def test_flatten_uses_json_pointers_and_keeps_empty_containers() -> None:
    fields = flatten({"a": {"b/c": 1, "d~e": [2, {}]}, "f": []})
    assert fields == {"/a/b~1c": 1, "/a/d~0e/0": 2, "/a/d~0e/1": {}, "/f": []}
    assert unflatten(fields) == {"a": {"b/c": 1, "d~e": [2, {}]}, "f": []}
    with pytest.raises(FieldError, match="at least one field"):
        flatten({})


def test_field_hash_binds_salt_path_and_value() -> None:
    salt = bytes(16)
    base = field_hash("/name", salt, "محمد")
    assert base != field_hash("/name", b"\1" + bytes(15), "محمد")
    assert base != field_hash("/nam", salt, "محمد")
    assert base != field_hash("/name", salt, "محمود")
    assert base != field_hash("/name", salt, ["محمد"])
    with pytest.raises(FieldError, match="16 bytes"):
        field_hash("/name", bytes(8), "x")


def test_sealing_with_the_same_salts_is_deterministic_and_salts_are_fresh() -> None:
    record = sample_record()
    a = seal_record(KEY, record)
    b = seal_record(KEY, record, a.salts)
    assert a.leaf == b.leaf and a.digest == b.digest
    c = seal_record(KEY, record)
    assert c.leaf != a.leaf and set(c.salts.values()).isdisjoint(a.salts.values())
    assert a.leaf == keccak256(a.digest)
    assert seal_record(RecordKey("REPD", "title", "01JTEST", 2), record, a.salts).leaf != a.leaf
    assert seal_record(RecordKey("CSO", "title", "01JTEST", 1), record, a.salts).leaf != a.leaf


# ------------------------------------------------------------------------------ receipts


def test_receipt_signature_matches_eth_account_eip712() -> None:
    sealed = seal_record(KEY, sample_record())
    receipt = Receipt("REPD", "title", "01JTEST", 1, sealed.leaf, 10, 20)
    domain = ReceiptDomain(31337, "0x" + "e7" * 20)
    signature = sign_receipt(receipt, domain, SIGNER_KEY)
    message = encode_typed_data(
        domain_data={
            "name": "Sijill RecordLedger",
            "version": "1",
            "chainId": 31337,
            "verifyingContract": domain.ledger,
        },
        message_types={
            "Receipt": [
                {"name": "agency", "type": "bytes32"},
                {"name": "recordType", "type": "bytes32"},
                {"name": "recordId", "type": "bytes32"},
                {"name": "version", "type": "uint32"},
                {"name": "leaf", "type": "bytes32"},
                {"name": "intakeTime", "type": "uint64"},
                {"name": "anchorBy", "type": "uint64"},
            ]
        },
        message_data={
            "agency": b"REPD".ljust(32, b"\0"),
            "recordType": b"title".ljust(32, b"\0"),
            "recordId": b"01JTEST".ljust(32, b"\0"),
            "version": 1,
            "leaf": sealed.leaf,
            "intakeTime": 10,
            "anchorBy": 20,
        },
    )
    assert Account.recover_message(message, signature=signature).lower() == address_of(SIGNER_KEY)


def test_malformed_and_malleable_signatures_are_refused() -> None:
    digest = os.urandom(32)
    good = sign_receipt(
        Receipt("REPD", "title", "X", 1, digest, 1, 2), ReceiptDomain(1, "0x" + "00" * 20), SIGNER_KEY
    )
    with pytest.raises(ReceiptError, match="65 bytes"):
        recover_signer(digest, good[:64])
    with pytest.raises(ReceiptError, match="v must be 27 or 28"):
        recover_signer(digest, good[:64] + b"\x01")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
    with pytest.raises(ReceiptError, match="malleable"):
        recover_signer(digest, good[:32] + high_s + bytes([55 - good[64]]))


# ------------------------------------------------------------------------------ bundles


def test_bundle_round_trips_through_json() -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    text = dump_bundle(bundle)
    assert load_bundle(text) == bundle
    assert load_bundle(text.decode()) == bundle
    assert json.loads(text)["format"] == "sijill-bundle/1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="sijill-bundle/2"), "not a known bundle format"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d.pop("leaf"), "missing 'leaf'"),
        (lambda d: d.update(leaf=d["leaf"].upper().replace("0X", "0x")), "lower-case hex"),
        (lambda d: d.update(version=0), "version: expected an integer"),
        (lambda d: d.update(chainId=True), "chainId: expected an integer"),
        (lambda d: d["disclosed"].reverse(), "increasing path order"),
        (lambda d: d["disclosed"][0].update(value=[1]), "scalar"),
        (lambda d: d.update(agency="repd"), "not a valid agency"),
        (lambda d: d["anchor"].update(proof=["0x" + "00" * 32] * 33), "at most 32"),
        (lambda d: d["receipt"].update(signature="0x00"), "receipt.signature"),
    ],
)
def test_bad_bundles_are_rejected_by_name(mutate: object, message: str) -> None:
    (bundle,) = anchored_bundles(new_chain(), [sample_record()])
    document = bundle_to_json(bundle)
    mutate(document)  # type: ignore[operator]
    with pytest.raises(BundleError, match=message):
        load_bundle(json.dumps(document))


def test_json_tricks_are_rejected() -> None:
    (bundle,) = anchored_bundles(new_chain(), [sample_record()])
    text = dump_bundle(bundle).decode()
    with pytest.raises(BundleError, match="appears twice"):
        load_bundle(text[:-1] + ',"version":1}')
    with pytest.raises(BundleError, match="floating-point"):
        load_bundle(text.replace('"version":1', '"version":1.0'))
    with pytest.raises(BundleError, match="not a JSON document"):
        load_bundle(text + "garbage")
    import sys

    assert sys.getrecursionlimit() >= 100_000, "eth-account (py_ecc) raised it: the case that used to crash"
    for deep in ("[" * 100_000, "[[]," * 50_000, '["]]]]]]]]",' + "[" * 100_000, '{"a":' * 50_000):
        with pytest.raises(BundleError, match="nested deeper than 6 levels"):
            load_bundle(deep)
    with pytest.raises(BundleError, match="at most"):
        load_bundle(" " * (256 * 1024 + 1))


def test_disclosure_hides_the_rest_and_still_verifies() -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    shown = disclose(bundle, ["/title_number", "/owners/0"])
    assert set(shown.disclosed_values()) == {
        "/title_number",
        "/owners/0/name",
        "/owners/0/national_id",
        "/owners/0/share",
    }
    assert {h.path for h in shown.hidden} >= {"/owners/1/national_id", "/area_m2"}
    assert verify(shown, chain, now=NOW).verdict == Verdict.AUTHENTIC
    again = disclose(shown, ["/title_number"])
    assert (
        len(again.disclosed) == 1 and verify(dump_bundle(again), chain, now=NOW).verdict == Verdict.AUTHENTIC
    )
    with pytest.raises(BundleError, match="not a disclosed field"):
        disclose(again, ["/owners/0/name"])


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_every_subset_of_fields_can_be_disclosed(data: st.DataObject) -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    paths = sorted(bundle.disclosed_values())
    chosen = data.draw(st.lists(st.sampled_from(paths), unique=True))
    shown = disclose(bundle, chosen) if chosen else disclose_none(bundle)
    assert sorted(shown.disclosed_values()) == sorted(chosen)
    assert verify(load_bundle(dump_bundle(shown)), chain, now=NOW).verdict == Verdict.AUTHENTIC


def disclose_none(bundle):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from ledger.bundle import HiddenField

    hidden = tuple(HiddenField(f.path, field_hash(f.path, f.salt, f.value)) for f in bundle.disclosed)
    return replace(bundle, disclosed=(), hidden=hidden)


# ------------------------------------------------------------------------------ merkle


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=10_000), st.binary(min_size=8, max_size=8))
def test_proofs_hold_for_every_leaf_of_random_trees(size: int, seed: bytes) -> None:
    leaves = [keccak256(seed + i.to_bytes(4, "big")) for i in range(size)]
    tree = build_tree(leaves)
    for leaf in leaves:
        assert verify_proof(leaf, tree.proof(leaf), tree.root)
    outsider = keccak256(seed + b"outsider")
    assert not verify_proof(outsider, tree.proof(leaves[0]), tree.root)


# ------------------------------------------------------------------------------ verification


def test_verdicts_follow_the_chain() -> None:
    chain = new_chain()
    bundles = anchored_bundles(chain, [sample_record(i) for i in range(5)])
    report = verify(bundles[0], chain, now=NOW)
    assert report.verdict == Verdict.AUTHENTIC
    assert [c.name for c in report.checks] == list(CHECKS)
    assert all(c.outcome == Outcome.PASS and c.reason_en and c.reason_ar for c in report.checks)

    chain.leaves[("REPD", bundles[1].leaf)] = LeafStatusInfo(LeafState.REVOKED, 3, 77)
    revoked = verify(bundles[1], chain, now=NOW)
    assert revoked.verdict == Verdict.REVOKED and "fraud" in revoked.check("status").reason_en
    assert "تزوير" in revoked.check("status").reason_ar

    chain.leaves[("REPD", bundles[2].leaf)] = LeafStatusInfo(LeafState.SUPERSEDED, 1, 78, bundles[3].leaf)
    superseded = verify(bundles[2], chain, now=NOW)
    assert superseded.verdict == Verdict.SUPERSEDED
    assert superseded.check("status").details["successor"] == "0x" + bundles[3].leaf.hex()

    # The same leaf revoked under another agency changes nothing for REPD's record.
    chain.leaves[("CSO", bundles[4].leaf)] = LeafStatusInfo(LeafState.REVOKED, 1, 79)
    assert verify(bundles[4], chain, now=NOW).verdict == Verdict.AUTHENTIC


def test_pending_bundles_and_broken_promises() -> None:
    chain = new_chain()
    pending = signed_bundle(seal_record(KEY, sample_record()))
    report = verify(pending, chain, now=ANCHOR_BY - 1)
    assert report.verdict == Verdict.PENDING
    assert report.check("inclusion").outcome == Outcome.UNKNOWN
    assert report.check("receipt").outcome == Outcome.UNKNOWN
    late = verify(pending, chain, now=ANCHOR_BY + 1)
    assert late.check("receipt").outcome == Outcome.FAIL and "promised" in late.check("receipt").reason_en

    (anchored,) = anchored_bundles(chain, [sample_record()])
    root = anchored.anchor.root  # type: ignore[union-attr]
    batch = chain.batches[("REPD", root)]
    chain.batches[("REPD", root)] = type(batch)(
        batch.record_type, batch.seq, batch.block_number, ANCHOR_BY + 5, 1
    )
    overdue = verify(anchored, chain, now=NOW)
    assert overdue.check("receipt").outcome == Outcome.FAIL
    assert overdue.verdict == Verdict.AUTHENTIC, "late anchoring is reported, the record is still authentic"


def test_authority_failures() -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    chain.signers[next(iter(chain.signers))] = ("REPD", 1, 10)  # retired before the anchoring block
    report = verify(bundle, chain, now=NOW)
    assert report.check("authority").outcome == Outcome.FAIL and report.verdict == Verdict.NOT_AUTHENTIC

    other = os.urandom(32)  # a key that is no signer at all
    chain = new_chain()
    sealed = seal_record(KEY, sample_record())
    forged = signed_bundle(sealed, key=other)
    report = verify(forged, chain, now=NOW)
    assert report.check("authority").outcome == Outcome.FAIL

    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    chain.agencies["REPD"] = AgencyStatus.SUSPENDED
    report = verify(bundle, chain, now=NOW)
    assert report.verdict == Verdict.AUTHENTIC and "suspended" in report.check("authority").reason_en


def test_an_unreachable_chain_gives_unknown_never_pass() -> None:
    class Down(MemoryChain):
        def batch(self, agency: str, root: bytes):  # type: ignore[no-untyped-def]
            raise ChainUnavailable("connection refused")

    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    down = Down(chain.chain_id, chain.ledger, chain.registry)
    report = verify(bundle, down, now=NOW)
    assert report.verdict == Verdict.UNKNOWN
    assert {report.check(n).outcome for n in ("anchored", "authority", "status")} == {Outcome.UNKNOWN}
    # Long past its promised anchoring time, the receipt is not called late: the chain was not asked.
    late = verify(bundle, down, now=bundle.receipt.anchor_by + 10_000)
    assert (
        late.check("receipt").outcome == Outcome.UNKNOWN
        and "could not be checked" in late.check("receipt").reason_en
    )


def test_reasons_name_the_ledger_and_a_version_by_one_plain_term_each() -> None:
    """The verify page shows these reasons to experts, a clerk reads them too (issue 15.7): the
    ledger is "دفتر القيود المشترك" (a blockchain is "سلسلة", which a clerk does not know), a
    version "الإصدار" ("نسخة" is also a copy), a record "القيد" (the page's word; "السجل" reads
    as the registry). In English, the ledger, the chain only in "chain ID"."""

    class Down(MemoryChain):
        def batch(self, agency: str, root: bytes):  # type: ignore[no-untyped-def]
            raise ChainUnavailable("connection refused")

    chain = new_chain()
    bundles = anchored_bundles(chain, [sample_record(i) for i in range(3)])
    chain.leaves[("REPD", bundles[1].leaf)] = LeafStatusInfo(LeafState.SUPERSEDED, 1, 78, bundles[2].leaf)
    pending = signed_bundle(seal_record(KEY, sample_record()))
    elsewhere = MemoryChain(
        1, chain.ledger, chain.registry, chain.batches, agencies=chain.agencies, signers=chain.signers
    )
    never = MemoryChain(chain.chain_id, chain.ledger, chain.registry, agencies=chain.agencies)
    reports = {
        "authentic": verify(bundles[0], chain, now=NOW),
        "superseded": verify(bundles[1], chain, now=NOW),
        "pending": verify(pending, chain, now=ANCHOR_BY - 1),
        "elsewhere": verify(bundles[0], elsewhere, now=NOW),
        "never": verify(bundles[0], never, now=NOW),
        "down": verify(bundles[0], Down(chain.chain_id, chain.ledger, chain.registry), now=NOW),
    }
    assert reports["superseded"].check("status").reason_ar == "صدر إصدار أحدث من هذا القيد"
    assert reports["pending"].check("inclusion").reason_ar == "لم يُثبَّت بعد في دفتر القيود المشترك"
    never = reports["never"].check("anchored")
    assert never.reason_ar == "الجهة REPD لم تُثبِّت هذا الجذر في دفتر القيود المشترك"
    assert never.reason_en == (
        f"Agency REPD never anchored this root on the ledger (chain ID {chain.chain_id})"
    )
    elsewhere_reason = reports["elsewhere"].check("anchored").reason_ar
    assert elsewhere_reason == "المستند يشير إلى دفتر قيود غير الدفتر الذي يُتحقَّق فيه"
    down = reports["down"].check("anchored")
    assert (down.reason_en, down.reason_ar) == (
        "The ledger could not be asked: connection refused",
        "تعذر الاتصال بدفتر القيود المشترك",
    )
    for name, report in reports.items():
        for check in report.checks:
            assert not re.search("سلسلة|نسخة|السجل|سجلات", check.reason_ar), (name, check)
            assert not re.search(r"\bchain\b(?! ID)", check.reason_en), (name, check)


def test_a_bundle_for_another_chain_is_not_anchored_here() -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    elsewhere = MemoryChain(
        1, chain.ledger, chain.registry, chain.batches, agencies=chain.agencies, signers=chain.signers
    )
    report = verify(bundle, elsewhere, now=NOW)
    assert report.check("anchored").outcome == Outcome.FAIL and report.verdict == Verdict.NOT_AUTHENTIC


def test_a_path_that_is_not_unicode_text_is_unreadable_not_a_crash() -> None:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    document = bundle_to_json(bundle)
    document["hidden"] = [{"path": "/\ud800", "hash": "0x" + "00" * 32}]
    report = verify(document, chain, now=NOW)
    assert report.verdict == Verdict.NOT_AUTHENTIC and "unreadable" in report.check("integrity").reason_en


@pytest.mark.parametrize("garbage", [b"", b"{}", b"null", b"\xff\xfe", "[]", {"format": 1}])
def test_garbage_never_raises(garbage: object) -> None:
    report = verify(garbage, new_chain(), now=NOW)  # type: ignore[arg-type]
    assert report.verdict == Verdict.NOT_AUTHENTIC
    assert report.check("integrity").outcome == Outcome.FAIL


def _value_positions(text: str) -> list[int]:
    """Byte offsets inside JSON string and number values (not keys, not punctuation)."""
    document = json.loads(text)
    positions = []
    for token in _scalar_tokens(document):
        start = 0
        while (index := text.find(token, start)) != -1:
            positions.extend(range(index, index + len(token)))
            start = index + 1
    return sorted(set(positions))


def _scalar_tokens(node: object) -> list[str]:
    if isinstance(node, dict):
        return [t for v in node.values() for t in _scalar_tokens(v)]
    if isinstance(node, list):
        return [t for v in node for t in _scalar_tokens(v)]
    if isinstance(node, bool) or node is None:
        return [json.dumps(node)]
    if isinstance(node, int):
        return [str(node)]
    return [json.dumps(node, ensure_ascii=False)[1:-1]] if node else []


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_change_in_a_field_is_caught(data: st.DataObject) -> None:
    chain, text = _MUTATION_BASE
    raw = text.encode()
    positions = _MUTATION_POSITIONS
    at = data.draw(st.sampled_from(positions))
    new_byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
    mutated = raw[:at] + bytes([new_byte]) + raw[at + 1 :]
    report = verify(mutated, chain, now=NOW)
    assert report.verdict != Verdict.AUTHENTIC, (at, new_byte, raw[at - 20 : at + 20])
    assert any(c.outcome == Outcome.FAIL for c in report.checks)


def _mutation_base() -> tuple[MemoryChain, str]:
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record(), sample_record(1), sample_record(2)])[:1]
    shown = disclose(bundle, ["/title_number", "/owners/0/name", "/registered", "/floors", "/encumbrances"])
    text = dump_bundle(shown).decode()
    assert verify(text, chain, now=NOW).verdict == Verdict.AUTHENTIC
    return chain, text


_MUTATION_BASE = _mutation_base()
_MUTATION_POSITIONS = [p for p in _value_positions(_MUTATION_BASE[1]) if p < len(_MUTATION_BASE[1].encode())]


def test_mutation_positions_cover_every_part_of_the_bundle() -> None:
    text = _MUTATION_BASE[1]
    covered = {text.encode()[p : p + 1] for p in _MUTATION_POSITIONS}
    assert len(_MUTATION_POSITIONS) > 1000 and b"x" in covered  # hex, text and numbers
    for key in ("leaf", "root", "signature", "salt", "hash", "chainId", "ledger", "recordId"):
        assert key in text


def test_every_byte_of_every_value_is_caught_exhaustively() -> None:
    """Every position, one mutation each (the property test above samples many mutations)."""
    chain, text = _MUTATION_BASE
    raw = text.encode()
    for at in _MUTATION_POSITIONS:
        mutated = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
        assert verify(mutated, chain, now=NOW).verdict != Verdict.AUTHENTIC, (at, raw[at - 20 : at + 20])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.integers(-(2**53) + 1, 2**53 - 1), st.booleans(), st.none()))
def test_fast_canonical_scalars_agree_with_rfc8785(value: object) -> None:
    import rfc8785

    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 31, 33, 100, 1000, 1025])
def test_all_proofs_equal_one_walk_per_leaf(size: int) -> None:
    leaves = [keccak256(i.to_bytes(4, "big")) for i in range(size)]
    tree = build_tree(leaves)
    proofs = tree.all_proofs()
    assert [list(p) for p in proofs] == [tree.proof(leaf) for leaf in tree.leaves]


def test_bundles_match_the_published_json_schema() -> None:
    from pathlib import Path

    import jsonschema

    schema = json.loads((Path(__file__).parents[2] / "docs" / "proof-bundle.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    chain = new_chain()
    (bundle,) = anchored_bundles(chain, [sample_record()])
    for variant in (
        bundle,
        disclose(bundle, ["/owners/1"]),
        signed_bundle(seal_record(KEY, sample_record())),
    ):
        jsonschema.validate(json.loads(dump_bundle(variant)), schema)
    broken = bundle_to_json(bundle)
    broken["receipt"]["signer"] = "0xABC"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
