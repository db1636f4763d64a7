"""End to end on a real anvil: seal records, sign receipts, anchor the batch through the
RecordLedger, then verify bundles with ledger.verify reading the chain over JSON-RPC."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.bundle import SignedReceipt, disclose, dump_bundle, make_bundle, with_anchor
from ledger.chainview import ChainUnavailable
from ledger.codes import record_type
from ledger.fields import RecordKey, seal_record
from ledger.merkle import build_tree
from ledger.receipts import Receipt, ReceiptDomain, receipt_digest, sign_receipt
from ledger.verify import Outcome, Verdict, verify
from node.chain.devchain import free_port
from node.chain.toolchain import CompiledContract
from node.chain.txmanager import TxManager
from node.chain.views import Web3ChainView

pytestmark = pytest.mark.chain


def _record(i: int) -> dict[str, Any]:
    return {
        "title_number": f"{5000 + i}/2026",
        "owners": [{"name": "سارة محمود", "national_id": "29912120100042", "share": "1/1"}],
        "area_m2": "88",
        "encumbrances": [],
    }


@pytest.fixture(scope="module")
def anchored(
    w3: Web3,
    deployment: dict[str, Any],
    contracts: dict[str, Any],
    senders: dict[str, TxManager],
    accounts: list[LocalAccount],
) -> dict[str, Any]:
    ledger = contracts["RecordLedger"]
    domain = ReceiptDomain(w3.eth.chain_id, ledger.address)
    registry = contracts["AgencyRegistry"].address
    now = int(time.time())
    sealed = [seal_record(RecordKey("REPD", "title", f"E2E{i}", 1), _record(i)) for i in range(6)]
    bundles = []
    for s in sealed:
        message = Receipt("REPD", "title", s.key.record_id, 1, s.leaf, now, now + 600)
        signature = sign_receipt(message, domain, accounts[1].key)
        # The contract computes the same EIP-712 digest and recovers the same signer.
        assert ledger.functions.receiptDigest(_as_tuple(message)).call() == receipt_digest(message, domain)
        assert ledger.functions.receiptSigner(_as_tuple(message), signature).call() == accounts[1].address
        receipt = SignedReceipt(now, now + 600, accounts[1].address.lower(), signature)
        bundles.append(
            make_bundle(
                s, chain_id=domain.chain_id, ledger=ledger.address, registry=registry, receipt=receipt
            )
        )
    tree = build_tree([s.leaf for s in sealed])
    sender = senders["REPD"]
    prev, seq = ledger.functions.head(b"REPD".ljust(32, b"\0")).call()
    sender.transact(ledger.functions.anchor(record_type("title"), tree.root, len(sealed), seq + 1, prev))
    anchored_bundles = [with_anchor(b, tree.root, tree.proof(b.leaf)) for b in bundles]
    return {"bundles": anchored_bundles, "pending": bundles, "ledger": ledger}


def _as_tuple(r: Receipt) -> tuple[Any, ...]:
    pad = lambda t: t.encode().ljust(32, b"\0")  # noqa: E731
    return (
        pad(r.agency),
        pad(r.record_type),
        pad(r.record_id),
        r.version,
        r.leaf,
        r.intake_time,
        r.anchor_by,
    )


def test_bundles_verify_against_the_real_chain(
    w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract], anchored: dict[str, Any]
) -> None:
    view = Web3ChainView(w3, deployment, compiled)
    now = int(time.time())
    for bundle in anchored["bundles"][:3]:
        report = verify(dump_bundle(disclose(bundle, ["/title_number"])), view, now=now)
        assert report.verdict == Verdict.AUTHENTIC, report.to_json()
        assert all(c.outcome == Outcome.PASS for c in report.checks)
    # Not yet given its proof: pending, with a valid receipt.
    assert verify(anchored["pending"][0], view, now=now).verdict == Verdict.PENDING


def test_revocation_and_supersession_show_up(
    w3: Web3,
    deployment: dict[str, Any],
    compiled: dict[str, CompiledContract],
    anchored: dict[str, Any],
    senders: dict[str, TxManager],
) -> None:
    view = Web3ChainView(w3, deployment, compiled)
    ledger = anchored["ledger"]
    revoked, replaced, successor = anchored["bundles"][3], anchored["bundles"][4], anchored["bundles"][5]
    senders["REPD"].transact(ledger.functions.revoke([revoked.leaf], 2))
    senders["REPD"].transact(ledger.functions.supersede([replaced.leaf], [successor.leaf], 1))
    now = int(time.time())
    report = verify(revoked, view, now=now)
    assert report.verdict == Verdict.REVOKED and "court order" in report.check("status").reason_en
    report = verify(replaced, view, now=now)
    assert report.verdict == Verdict.SUPERSEDED
    assert report.check("status").details["successor"] == "0x" + successor.leaf.hex()


def test_a_forged_receipt_and_an_unreachable_chain(
    w3: Web3,
    deployment: dict[str, Any],
    compiled: dict[str, CompiledContract],
    anchored: dict[str, Any],
    accounts: list[LocalAccount],
) -> None:
    view = Web3ChainView(w3, deployment, compiled)
    bundle = anchored["bundles"][0]
    message = bundle.receipt_message()
    forged_sig = sign_receipt(message, bundle.domain, accounts[7].key)  # not a signer of REPD
    from dataclasses import replace

    forged = replace(
        bundle,
        receipt=SignedReceipt(
            message.intake_time, message.anchor_by, accounts[7].address.lower(), forged_sig
        ),
    )
    report = verify(forged, view, now=int(time.time()))
    assert report.verdict == Verdict.NOT_AUTHENTIC and report.check("authority").outcome == Outcome.FAIL

    dead = connect_lazily(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChainUnavailable, match="ConnectionError"):
        Web3ChainView(dead, deployment, compiled)


def connect_lazily(url: str) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2}))
