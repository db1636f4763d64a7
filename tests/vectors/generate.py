"""Writes the published test vectors in tests/vectors/*.json.

Every implementation that hashes, proves or verifies Sijill records (the Python core, the
browser verifier, the contracts) must reproduce these byte for byte. Regenerate only on a
deliberate format change:  .venv/bin/python tests/vectors/generate.py
Everything is deterministic: salts are derived from the record id and path, the signer key is
anvil's public dev key #1, and ECDSA signatures are RFC 6979 (deterministic).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from ledger.bundle import SignedReceipt, bundle_to_json, disclose, make_bundle, with_anchor  # noqa: E402
from ledger.canonical import REFUSED_RANGES, canonical_json, normalize_text, refused_character  # noqa: E402
from ledger.chainview import AgencyStatus, BatchInfo, LeafState, LeafStatusInfo, MemoryChain  # noqa: E402
from ledger.fields import RecordKey, flatten, seal_record  # noqa: E402
from ledger.hashing import keccak256  # noqa: E402
from ledger.merkle import build_tree  # noqa: E402
from ledger.receipts import Receipt, ReceiptDomain, address_of, receipt_digest, sign_receipt  # noqa: E402
from ledger.records import validate_record  # noqa: E402
from ledger.records.examples import TODAY, commercial_example, marriage_example, title_example  # noqa: E402
from ledger.verify import verify  # noqa: E402

CHAIN_ID = 31337
LEDGER = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
SIGNER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")  # anvil #1
OTHER_KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")  # anvil #2
INTAKE, ANCHOR_BY, ANCHORED_AT, NOW = 1_790_000_000, 1_790_000_600, 1_790_000_300, 1_790_001_000


def hexs(data: bytes) -> str:
    return "0x" + data.hex()


def vector_salts(record_id: str, record: dict[str, Any]) -> dict[str, bytes]:
    return {path: keccak256(f"vector-salt/{record_id}{path}".encode())[:16] for path in flatten(record)}


def canonical_vectors() -> dict[str, Any]:
    texts = [
        "  محمـــد   علي ",
        "٢٩٠٠١٠١٠١٠٠٠١٥",
        "۱۲۳",
        "علی کمال",
        "\u200fأحمد\u200e",
        "e\u0301",
        "مصطفى",
        "a\tb\nc",
        # Composed only once the Farsi yeh is mapped, or the tatweel removed: NFC comes last.
        "\u06cc\u0654",
        "\u0627\u0640\u0654",
        "a\u0301\u200d\u0316",
    ]
    values: list[Any] = [
        "محمد",
        'quote " backslash \\ newline \n tab \t',
        "\u0001\u001f\u007f\u2028/",
        0,
        -42,
        9007199254740991,
        True,
        False,
        None,
        [],
        {},
    ]
    return {
        "description": "normalize_text(input) == output; jcs(value) == hex of its RFC 8785 UTF-8 bytes",
        "text": [{"input": t, "output": normalize_text(t)} for t in texts],
        "jcs": [{"value": v, "jcs": hexs(canonical_json(v))} for v in values],
    }


def code_point(value: int) -> str:
    return f"U+{value:04X}"


def character_vectors() -> dict[str, Any]:
    refused = [
        "محمد\u202eعبد الله",  # RIGHT-TO-LEFT OVERRIDE in a name (issue 15)
        "2019/\u202d45873",  # LEFT-TO-RIGHT OVERRIDE in a registry number
        "\u202aNile\u202c",  # LEFT-TO-RIGHT EMBEDDING ... POP DIRECTIONAL FORMATTING
        "\u202bمصر",  # RIGHT-TO-LEFT EMBEDDING
        "\u2067123\u2069",  # RIGHT-TO-LEFT ISOLATE ... POP DIRECTIONAL ISOLATE
        "\u2066Cairo",  # LEFT-TO-RIGHT ISOLATE
        "\u2068الجيزة",  # FIRST STRONG ISOLATE
        "محم\u00add",  # SOFT HYPHEN
        "عبد\u2060الله",  # WORD JOINER
        "\u06001234",  # ARABIC NUMBER SIGN
        "a\ufff9b\ufffac\ufffb",  # INTERLINEAR ANNOTATION ANCHOR
        "\u206eNILE",  # NATIONAL DIGIT SHAPES (deprecated)
        "علي\ufe0f",  # VARIATION SELECTOR-16 (Mn, but default-ignorable)
        "\U0001f1ea\U0001f1ec\U000e0065",  # a tag character
        "a\x00b",  # NULL
        "a\x7fb",  # DELETE
        "\ue000",  # private use
        "\U0010fffd",  # supplementary private use
        "\ufdd0",  # a noncharacter
        "\U0001ffff",  # a noncharacter
        "a\ud800",  # a lone surrogate
    ]
    accepted = [
        "مُحَمَّد",  # harakat are letters' marks, not format characters
        "Zoë Ångström",
        "شركة النيل 😀",
        "\ufffd",  # the replacement character is a symbol
        "\u0378",  # unassigned: intake refuses it, a verifier does not (see docs/canonical-form.md)
    ]
    for text in refused + accepted:
        assert normalize_text(text) == text, text  # each differs from canonical text only by its characters
    return {
        "description": "canonical text holds no code point of refusedRanges: every refused text is already "
        "normalised, yet not canonical, for codePoint; every accepted text is canonical",
        "refusedRanges": [
            {"first": code_point(a), "last": code_point(b), "kind": k} for a, b, k in REFUSED_RANGES
        ],
        "refused": [
            {"text": t, "codePoint": code_point(r.code_point), "kind": r.kind}
            for t in refused
            if (r := refused_character(t)) is not None
        ],
        "accepted": accepted,
    }


def sealed_records() -> list[Any]:
    examples = [
        ("REPD", "title", "T2019-45873", title_example()),
        ("CSO", "marriage", "M2024-001122", marriage_example()),
        ("CRA", "commercial", "C-000981", commercial_example()),
    ]
    sealed = []
    for agency, kind, rid, data in examples:
        record = validate_record(kind, data, today=TODAY)
        sealed.append(
            (record, seal_record(RecordKey(agency, kind, rid, 1), record, vector_salts(rid, record)))
        )
    return sealed


def field_vectors() -> dict[str, Any]:
    out = []
    for record, sealed in sealed_records():
        key = sealed.key
        out.append(
            {
                "agency": key.agency,
                "recordType": key.record_type,
                "recordId": key.record_id,
                "version": key.version,
                "record": record,
                "fields": [
                    {
                        "path": p,
                        "salt": hexs(sealed.salts[p]),
                        "value": sealed.fields[p],
                        "jcs": hexs(canonical_json(sealed.fields[p])),
                        "hash": hexs(sealed.field_hashes[p]),
                    }
                    for p in sorted(sealed.fields, key=str.encode)
                ],
                "digest": hexs(sealed.digest),
                "leaf": hexs(sealed.leaf),
            }
        )
    return {
        "description": "flatten(record) -> fields; field_hash, record digest and leaf (docs/proof-bundle.md)",
        "records": out,
    }


def merkle_vectors() -> dict[str, Any]:
    trees = []
    for size in (1, 2, 3, 4, 5, 7, 8, 13):
        leaves = [keccak256(f"leaf-{i}".encode()) for i in range(size)]
        tree = build_tree(leaves)
        trees.append(
            {
                "leaves": [hexs(x) for x in leaves],
                "root": hexs(tree.root),
                "proofs": [{"leaf": hexs(x), "proof": [hexs(p) for p in tree.proof(x)]} for x in leaves],
            }
        )
    return {
        "description": "sorted-pair keccak trees (leaves sorted, odd last node moves up); MerkleProof.verify",
        "trees": trees,
    }


def receipt_vectors() -> dict[str, Any]:
    domain = ReceiptDomain(CHAIN_ID, LEDGER)
    out = []
    for _, sealed in sealed_records():
        k = sealed.key
        receipt = Receipt(k.agency, k.record_type, k.record_id, k.version, sealed.leaf, INTAKE, ANCHOR_BY)
        out.append(
            {
                "domain": {
                    "name": "Sijill RecordLedger",
                    "version": "1",
                    "chainId": CHAIN_ID,
                    "verifyingContract": LEDGER,
                },
                "message": {
                    "agency": k.agency,
                    "recordType": k.record_type,
                    "recordId": k.record_id,
                    "version": k.version,
                    "leaf": hexs(sealed.leaf),
                    "intakeTime": INTAKE,
                    "anchorBy": ANCHOR_BY,
                },
                "digest": hexs(receipt_digest(receipt, domain)),
                "signature": hexs(sign_receipt(receipt, domain, SIGNER_KEY)),
                "signer": address_of(SIGNER_KEY),
            }
        )
    return {"description": "EIP-712 receipts signed by anvil dev key #1 (RFC 6979)", "receipts": out}


def bundle_vectors() -> dict[str, Any]:
    domain = ReceiptDomain(CHAIN_ID, LEDGER)
    chain = MemoryChain(
        CHAIN_ID,
        LEDGER,
        REGISTRY,
        block=120,
        agencies={"REPD": AgencyStatus.ACTIVE, "CSO": AgencyStatus.ACTIVE, "CRA": AgencyStatus.ACTIVE},
        signers={address_of(SIGNER_KEY): ("REPD", 1, 2**64 - 1)},
    )

    def signed(sealed: Any, key: bytes = SIGNER_KEY) -> Any:
        k = sealed.key
        message = Receipt(k.agency, k.record_type, k.record_id, k.version, sealed.leaf, INTAKE, ANCHOR_BY)
        receipt = SignedReceipt(INTAKE, ANCHOR_BY, address_of(key), sign_receipt(message, domain, key))
        return make_bundle(sealed, chain_id=CHAIN_ID, ledger=LEDGER, registry=REGISTRY, receipt=receipt)

    title_record = validate_record("title", title_example(), today=TODAY)
    versions = [
        seal_record(
            RecordKey("REPD", "title", f"T-{i}", 1), title_record, vector_salts(f"T-{i}", title_record)
        )
        for i in range(5)
    ]
    tree = build_tree([s.leaf for s in versions])
    chain.batches[("REPD", tree.root)] = BatchInfo("title", 1, 101, ANCHORED_AT, len(versions))
    anchored = [with_anchor(signed(s), tree.root, tree.proof(s.leaf)) for s in versions]
    chain.leaves[("REPD", versions[2].leaf)] = LeafStatusInfo(LeafState.REVOKED, 2, 110)
    chain.leaves[("REPD", versions[3].leaf)] = LeafStatusInfo(LeafState.SUPERSEDED, 1, 111, versions[4].leaf)

    tampered = bundle_to_json(anchored[0])
    tampered["disclosed"][0]["value"] = tampered["disclosed"][0]["value"] + "1"
    wrong_proof = bundle_to_json(anchored[0])
    wrong_proof["anchor"]["proof"][0] = hexs(keccak256(b"not a sibling"))
    unanchored = with_anchor(anchored[0], keccak256(b"a root nobody anchored"), [])
    forged = signed(versions[1], OTHER_KEY)
    forged = replace(forged, anchor=anchored[1].anchor)
    # A record intake would refuse (issue 15), sealed and signed as a node without the rule would.
    overridden = dict(title_record, owners=[dict(title_record["owners"][0]), *title_record["owners"][1:]])
    overridden["owners"][0]["name"] = overridden["owners"][0]["name"].replace(" ", " \u202e", 1)
    override = seal_record(
        RecordKey("REPD", "title", "T-RLO", 1), overridden, vector_salts("T-RLO", overridden)
    )
    # A bad receipt signature: it recovers an address other than the stated signer, or none.
    misattributed = bundle_to_json(anchored[0])
    misattributed["receipt"]["signer"] = address_of(OTHER_KEY)
    high_v = bundle_to_json(anchored[0])
    high_v["receipt"]["signature"] = high_v["receipt"]["signature"][:-2] + "1d"  # v = 29

    cases = [
        ("authentic, every field disclosed", bundle_to_json(anchored[0])),
        (
            "authentic, owners' names and the title number disclosed",
            bundle_to_json(disclose(anchored[1], ["/title_number", "/owners/0/name", "/owners/1/name"])),
        ),
        ("revoked by court order", bundle_to_json(disclose(anchored[2], ["/title_number"]))),
        ("superseded by a newer version", bundle_to_json(anchored[3])),
        (
            "pending: accepted, not yet anchored, within its promised time",
            bundle_to_json(signed(versions[4])),
        ),
        ("pending past its promised anchoring time", bundle_to_json(signed(versions[4]))),
        ("a disclosed value was changed", tampered),
        ("a Merkle proof hash was changed", wrong_proof),
        ("the root was never anchored", bundle_to_json(unanchored)),
        ("receipt signed by a key that is not the agency's", bundle_to_json(forged)),
        (
            "pending within its promised time, but a disclosed name holds a right-to-left override (U+202E)",
            bundle_to_json(disclose(signed(override), ["/title_number", "/owners/0/name"])),
        ),
        ("receipt signature recovers another address than its stated signer", misattributed),
        ("receipt signature with v 29 recovers no signer", high_v),
    ]
    out = []
    for name, document in cases:
        now = INTAKE + 60 if "within its promised time" in name else NOW
        report = verify(document, chain, now=now).to_json()
        out.append(
            {
                "name": name,
                "now": now,
                "bundle": document,
                "expected": {
                    "verdict": report["verdict"],
                    "checks": {c["name"]: c["outcome"] for c in report["checks"]},
                },
            }
        )
    return {
        "description": "verify(bundle, chain, now) -> verdict and outcome per named check",
        "chain": chain.to_json(),
        "cases": out,
    }


VECTORS = {
    "canonical.json": canonical_vectors,
    "fields.json": field_vectors,
    "merkle.json": merkle_vectors,
    "receipts.json": receipt_vectors,
    "bundles.json": bundle_vectors,
    "characters.json": character_vectors,
}


def render(name: str) -> str:
    text = json.dumps(VECTORS[name](), indent=1, ensure_ascii=False) + "\n"
    if name != "canonical.json":  # which was published with a raw DEL (U+007F) in it
        # Characters a reader would not see, or that move text around (and a lone surrogate, which
        # UTF-8 cannot hold) are written as \\u escapes.
        text = "".join(_escaped(c) if refused_character(c) else c for c in text)
    return text


def _escaped(character: str) -> str:
    """A character as JSON \\u escapes (a surrogate pair above the BMP)."""
    units = character.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2))


if __name__ == "__main__":
    for name in VECTORS:
        (HERE / name).write_text(render(name))
        print(f"wrote tests/vectors/{name}")
