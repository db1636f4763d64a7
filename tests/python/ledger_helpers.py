"""Builders shared by the ledger tests, vectors and benchmarks: sealed records, signed bundles,
and an in-memory chain on which they are anchored."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ledger.bundle import Bundle, SignedReceipt, make_bundle, with_anchor
from ledger.chainview import AgencyStatus, BatchInfo, MemoryChain
from ledger.fields import RecordKey, SealedRecord, seal_record
from ledger.merkle import build_tree
from ledger.receipts import Receipt, ReceiptDomain, address_of, sign_receipt

CHAIN_ID = 31337
LEDGER = "0x" + "e7" * 20
REGISTRY = "0x" + "5f" * 20
SIGNER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")  # anvil dev #1
SIGNER = address_of(SIGNER_KEY)
INTAKE, ANCHOR_BY, ANCHORED_AT, NOW = 1_790_000_000, 1_790_000_600, 1_790_000_300, 1_790_001_000


def new_chain() -> MemoryChain:
    return MemoryChain(
        CHAIN_ID,
        LEDGER,
        REGISTRY,
        agencies={"REPD": AgencyStatus.ACTIVE, "CSO": AgencyStatus.ACTIVE},
        signers={SIGNER: ("REPD", 1, 2**64 - 1)},
        block=100,
    )


def signed_bundle(sealed: SealedRecord, key: bytes = SIGNER_KEY) -> Bundle:
    k = sealed.key
    message = Receipt(k.agency, k.record_type, k.record_id, k.version, sealed.leaf, INTAKE, ANCHOR_BY)
    signature = sign_receipt(message, ReceiptDomain(CHAIN_ID, LEDGER), key)
    receipt = SignedReceipt(INTAKE, ANCHOR_BY, address_of(key), signature)
    return make_bundle(sealed, chain_id=CHAIN_ID, ledger=LEDGER, registry=REGISTRY, receipt=receipt)


def anchored_bundles(
    chain: MemoryChain,
    records: list[Mapping[str, Any]],
    *,
    agency: str = "REPD",
    record_type: str = "title",
    seq: int = 1,
    salts: list[dict[str, bytes]] | None = None,
) -> list[Bundle]:
    """Seal, sign and anchor records as one batch on `chain`; their full bundles."""
    sealed = [
        seal_record(
            RecordKey(agency, record_type, f"R{seq}-{i}", 1), record, None if salts is None else salts[i]
        )
        for i, record in enumerate(records)
    ]
    tree = build_tree([s.leaf for s in sealed])
    chain.batches[(agency, tree.root)] = BatchInfo(record_type, seq, 50 + seq, ANCHORED_AT, len(sealed))
    return [with_anchor(signed_bundle(s), tree.root, tree.proof(s.leaf)) for s in sealed]


def sample_record(i: int = 0) -> dict[str, Any]:
    """A small title-like record (field shapes only; schema validation is tested elsewhere)."""
    return {
        "title_number": f"{1000 + i}/2026",
        "governorate": "01",
        "area_m2": "125.5",
        "owners": [
            {"name": "محمد أحمد علي", "national_id": "29001010100015", "share": "1/2"},
            {"name": "Fatma Hassan", "national_id": "29505050100022", "share": "1/2"},
        ],
        "encumbrances": [],
        "registered": True,
        "unit_number": None,
        "floors": 3 + i,
    }


def random_salts(record: Mapping[str, Any]) -> dict[str, bytes]:
    from ledger.fields import flatten

    return {p: os.urandom(16) for p in flatten(record)}
