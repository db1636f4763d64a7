"""Bulk intake with worker processes (node/intake_workers.py) against bulk intake in the
store's process: on real LevelDB stores, asking the demo registry on anvil what REPD may
anchor, the same items are accepted or refused with the same messages, in the same order, and
what is stored reads back, re-seals to the leaf and carries a receipt signed by the node's key.
A worker killed half way costs nothing: its chunk is prepared again here."""

from __future__ import annotations

import logging
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from ledger.receipts import Receipt, ReceiptDomain, recover_receipt_signer
from ledger.records import RecordInvalid
from ledger.records.examples import numbered_records
from node.authority import Authority
from node.intake import Accepted, Intake
from node.store import Store

DOMAIN = ReceiptDomain(31337, "0x" + "11" * 20)
NOW = 1_800_000_000.25


def _items() -> list[tuple[str, Any]]:
    """Valid titles, with an invalid one, a type REPD may not anchor and an unknown type among them."""
    items: list[tuple[str, Any]] = [("title", r) for r in numbered_records("title", 23)]
    items[3] = ("title", {**items[3][1], "area_m2": -5})
    items[8] = ("marriage", items[8][1])
    items[12] = ("no-such-type", items[12][1])
    items[20] = ("title", "not a record")
    return items


def _intake(store: Store, contracts: dict[str, Any], account: LocalAccount, workers: int) -> Intake:
    return Intake(
        store,
        agency="REPD",
        signer=account,
        domain=DOMAIN,
        registry=contracts["AgencyRegistry"].address,
        authority=Authority(contracts["AgencyRegistry"], "REPD", account.address),
        clock=lambda: NOW,
        workers=workers,
    )


def _load(tmp: Path, contracts: dict[str, Any], account: LocalAccount, workers: int) -> list[Any]:
    with Store(tmp / f"store{workers}", secrets.token_bytes(32), create=True) as store:
        intake = _intake(store, contracts, account, workers)
        try:
            results = list(intake.submit_many(_items(), actor="t", request_id="r", chunk=5))
            for result in results:
                if isinstance(result, Accepted):
                    stored = intake.stored("title", result.record_id)
                    assert stored.sealed.leaf == result.leaf  # the secret re-seals to the leaf
                    assert stored.receipt == result.receipt
                    receipt = Receipt(
                        "REPD", "title", result.record_id, 1, result.leaf, int(NOW), int(NOW) + 600
                    )
                    assert recover_receipt_signer(receipt, DOMAIN, result.receipt.signature) == (
                        account.address.lower()
                    )
            assert store.queued_leaves == sum(isinstance(r, Accepted) for r in results)
            audit = list(store.export_audit())
            assert [e["details"] for e in audit] == [
                {"accepted": 4, "rejected": 1},
                {"accepted": 4, "rejected": 1},
                {"accepted": 4, "rejected": 1},
                {"accepted": 5, "rejected": 0},
                {"accepted": 2, "rejected": 1},
            ]
            return results
        finally:
            intake.close()


def _shape(result: Any) -> Any:
    if isinstance(result, RecordInvalid):
        return ("invalid", str(result), result.record_type, result.problems)
    assert isinstance(result, Accepted)
    receipt = result.receipt
    return ("accepted", result.record_type, result.version, receipt.intake_time, receipt.anchor_by)


def test_workers_accept_and_refuse_what_this_process_does(
    tmp_path: Path, contracts: dict[str, Any], accounts: list[LocalAccount]
) -> None:
    here = _load(tmp_path, contracts, accounts[1], 0)
    there = _load(tmp_path, contracts, accounts[1], 2)
    assert [_shape(r) for r in there] == [_shape(r) for r in here]
    assert [type(r) for r in here].count(RecordInvalid) == 4


def test_a_killed_worker_costs_nothing(
    tmp_path: Path, contracts: dict[str, Any], accounts: list[LocalAccount], caplog: pytest.LogCaptureFixture
) -> None:
    with Store(tmp_path / "store", secrets.token_bytes(32), create=True) as store:
        intake = _intake(store, contracts, accounts[1], 1)
        try:
            records = (("title", r) for r in numbered_records("title", 60))
            results = intake.submit_many(records, actor="t", request_id="r", chunk=10)
            first = [next(results) for _ in range(10)]
            pool = intake._preparer._pool
            assert pool is not None
            for pid in list(pool._processes):  # type: ignore[attr-defined]
                os.kill(pid, signal.SIGKILL)
            with caplog.at_level(logging.WARNING, logger="sijill.intake"):
                rest = list(results)
            assert all(isinstance(r, Accepted) for r in first + rest) and len(first + rest) == 60
            assert "intake workers failed" in caplog.text
            assert store.queued_leaves == 60
        finally:
            intake.close()
