"""Proof bundles made by hand on a real chain, for the verifiers' tests (the Python CLI and the
browser's JavaScript): records sealed and signed here, anchored straight through the contract."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ledger.bundle import Bundle, DisclosedField, SignedReceipt, make_bundle
from ledger.codes import agency_code, record_type
from ledger.merkle import MerkleTree, build_tree
from ledger.receipts import Receipt, ReceiptDomain, sign_receipt
from node.chain.txmanager import TxManager


def bundle_record(i: int) -> dict[str, Any]:
    """A small title record, different for each `i`."""
    return {
        "title_number": f"{7000 + i}/2026",
        "owners": [{"name": "ليلى حسن", "national_id": "29803030100051", "share": "1/1"}],
        "area_m2": "140",
        "encumbrances": [],
    }


def signed_bundle(
    sealed: Any, domain: ReceiptDomain, key: bytes, signer: str, now: int, registry: str
) -> Bundle:
    """The bundle of a sealed record with a receipt signed by `key` at `now` (anchoring promised
    within 600 s), not yet anchored."""
    k = sealed.key
    message = Receipt(k.agency, k.record_type, k.record_id, k.version, sealed.leaf, now, now + 600)
    receipt = SignedReceipt(now, now + 600, signer.lower(), sign_receipt(message, domain, key))
    return make_bundle(
        sealed, chain_id=domain.chain_id, ledger=domain.ledger, registry=registry, receipt=receipt
    )


def anchor_leaves(sender: TxManager, ledger: Any, leaves: list[bytes]) -> MerkleTree:
    """Anchor a batch of REPD title leaves as the next entry of REPD's log; its tree."""
    tree = build_tree(leaves)
    prev, seq = ledger.functions.head(agency_code("REPD")).call()
    sender.transact(ledger.functions.anchor(record_type("title"), tree.root, len(leaves), seq + 1, prev))
    return tree


def tampered(bundle: Bundle) -> Bundle:
    """The bundle with its disclosed area changed to 999."""
    disclosed = tuple(
        DisclosedField(f.path, f.salt, "999") if f.path == "/area_m2" else f for f in bundle.disclosed
    )
    return replace(bundle, disclosed=disclosed)
