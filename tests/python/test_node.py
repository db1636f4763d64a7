"""The agency node against a real anvil: intake -> batches -> anchored -> bundles that verify;
amendments and revocations; three node processes side by side; SIGKILL at random moments
during a bulk load; the chain stopping and coming back."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Backend
from eth_account import Account
from local_http import FaultyRpc
from web3 import Web3

from ledger.chainview import ChainView, LeafState
from ledger.codes import agency_code, record_type
from ledger.merkle import verify_proof
from ledger.records.examples import commercial_example, marriage_example, ndjson_lines, numbered_records
from ledger.verify import Verdict, verify
from node.batcher import BatcherSettings
from node.chain.deploy import AgencySpec, NetworkSpec, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.limits import ANCHOR_GAS
from node.chain.toolchain import CompiledContract
from node.chain.views import Web3ChainView
from node.errors import NodeError
from node.intake import IntakeError
from node.keys import create_keystore
from node.proofs import read_proof
from node.service import AgencyNode, NodeSettings
from node.store import Store

pytestmark = pytest.mark.chain

PASSPHRASE = "a passphrase for tests only"
KEK = secrets.token_hex(32)
ENV = {"SIJILL_SIGNER_PASSPHRASE": PASSPHRASE, "SIJILL_KEK": KEK}


def _network(keys: dict[str, bytes]) -> NetworkSpec:
    kinds = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
    return NetworkSpec(
        tuple(
            AgencySpec(code, f"{code} test agency", (Account.from_key(key).address,), (kinds[code],))
            for code, key in keys.items()
        ),
        threshold=2,
    )


@pytest.fixture(scope="module")
def network(
    w3: Web3, compiled: dict[str, CompiledContract], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A deployment of its own, with fresh signer keys (gas is free: they need no funds)."""
    keys = {code: secrets.token_bytes(32) for code in ("REPD", "CSO", "CRA")}
    path = tmp_path_factory.mktemp("network") / "deployment.json"
    deployment = deploy_network(w3, dev_accounts(1)[0], _network(keys), path, compiled=compiled).deployment
    return {"keys": keys, "path": path, "deployment": deployment}


_STORES: dict[Path, str | None] = {}  # a node's data directory -> its --store (None: LevelDB in it)


def _init_node(root: Path, code: str, key: bytes, store: str | None = None) -> Path:
    """A node directory with its keystore, and its store: at `store` (a PostgreSQL database,
    `backend.new_store()`), else LevelDB in the directory."""
    data_dir = root / code.lower()
    data_dir.mkdir(parents=True)
    create_keystore(data_dir / "signer.json", PASSPHRASE, key, kdf_iterations=2**10)
    Store(store or data_dir / "store", bytes.fromhex(KEK), create=True).close()
    _STORES[data_dir] = store
    return data_dir


def _ledger(w3: Web3, network: dict[str, Any], compiled: dict[str, CompiledContract]) -> Any:
    """The network's RecordLedger, to ask the chain itself what a node anchored or revoked."""
    return w3.eth.contract(
        address=network["deployment"]["contracts"]["RecordLedger"]["address"],
        abi=compiled["RecordLedger"].abi,
    )


def _node(data_dir: Path, code: str, network: dict[str, Any], rpc: str, **batcher: Any) -> AgencyNode:
    # Secrets by settings, not os.environ: the worker runs other test files (and the soak
    # script) after this one, and a SIJILL_KEK left behind would be taken for their nodes' KEK.
    passphrase = data_dir / "passphrase"
    if not passphrase.exists():
        passphrase.touch(mode=0o600)
        passphrase.write_text(PASSPHRASE + "\n")
    settings = NodeSettings(
        data_dir=data_dir,
        passphrase_file=passphrase,
        kek_hex=KEK,
        deployment=network["path"],
        rpc_url=rpc,
        agency=code,
        keystore=data_dir / "signer.json",
        batcher=BatcherSettings(**{"batch_size": 500, "max_age": 0.5, **batcher}),
        store=_STORES.get(data_dir),
    )
    return AgencyNode(settings, create=False)


def test_submit_anchor_and_verify(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    node = _node(
        _init_node(tmp_path, "REPD", network["keys"]["REPD"], backend.new_store()),
        "REPD",
        network,
        devchain.rpc_url,
    )
    try:
        accepted = [
            node.intake.submit("title", r, actor="officer:1", request_id=f"req-{i}")
            for i, r in enumerate(numbered_records("title", 40))
        ]
        pending = node.intake.bundle("title", accepted[0].record_id)
        live = Web3ChainView(w3, network["deployment"], compiled)
        assert verify(pending, live, now=int(time.time())).verdict == Verdict.PENDING
        node.batcher.drain(timeout=120)
        while not node.indexer.step():
            pass
        for item in accepted[:10]:
            bundle = node.intake.bundle("title", item.record_id)
            for view in (live, node.chain_view):
                report = verify(bundle, view, now=int(time.time()))
                assert report.verdict == Verdict.AUTHENTIC, report.to_json()
        stored = node.intake.stored("title", accepted[0].record_id)
        assert stored.state == "anchored" and stored.record["title_number"] == "0100000"
        audit = list(node.store.export_audit())
        assert len(audit) == 40 and audit[0]["actor"] == "officer:1"
        assert "0100000" not in json.dumps(audit, ensure_ascii=False), "no field values in the audit trail"
        assert node.health()["backlog"] == 0
    finally:
        node.stop()


def test_amend_revoke_and_conflicts(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    node = _node(
        _init_node(tmp_path, "REPD", network["keys"]["REPD"], backend.new_store()),
        "REPD",
        network,
        devchain.rpc_url,
    )
    live = Web3ChainView(w3, network["deployment"], compiled)
    try:
        first, second = (
            node.intake.submit("title", r, actor="o", request_id="r")
            for r in numbered_records("title", 2, start=500)
        )
        node.batcher.drain(timeout=120)
        changed = dict(next(numbered_records("title", 1, start=500)), area_m2="130")
        amended = node.intake.amend(
            "title",
            first.record_id,
            expected_version=1,
            data=changed,
            reason=1,
            actor="supervisor",
            request_id="r2",
        )
        assert amended.version == 2
        with pytest.raises(IntakeError, match="is at version 2, not 1") as stale:
            node.intake.amend(
                "title",
                first.record_id,
                expected_version=1,
                data=changed,
                reason=1,
                actor="supervisor",
                request_id="r3",
            )
        assert stale.value.kind == "conflict"
        node.intake.revoke(
            "title", second.record_id, expected_version=1, reason=2, actor="supervisor", request_id="r4"
        )
        with pytest.raises(IntakeError, match="revoked"):
            node.intake.revoke(
                "title", second.record_id, expected_version=1, reason=2, actor="s", request_id="r5"
            )
        node.batcher.drain(timeout=180)
        now = int(time.time())
        old = verify(node.intake.bundle("title", first.record_id, 1), live, now=now)
        assert old.verdict == Verdict.SUPERSEDED
        assert old.check("status").details["successor"] == "0x" + amended.leaf.hex()
        assert (
            verify(node.intake.bundle("title", first.record_id), live, now=now).verdict == Verdict.AUTHENTIC
        )
        revoked = verify(node.intake.bundle("title", second.record_id), live, now=now)
        assert revoked.verdict == Verdict.REVOKED and "court order" in revoked.check("status").reason_en
        with pytest.raises(IntakeError, match="may not anchor 'marriage'") as forbidden:
            node.intake.submit("marriage", next(numbered_records("marriage", 1)), actor="o", request_id="r6")
        assert forbidden.value.kind == "forbidden"
    finally:
        node.stop()


def test_a_batch_mined_after_recover_asked_is_finalised_not_dissolved(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    """The race behind a batch anchored twice under SIGKILL: a process sent batch s and died
    before marking it sent; its successor's recover() asked the chain about s (not yet mined),
    the block came, and lining the local log up with the chain's head then found s at or below
    that head. s is on the chain: it must be finalised, not dissolved and its leaves anchored
    again in a new batch."""
    node = _node(
        _init_node(tmp_path, "REPD", network["keys"]["REPD"], backend.new_store()),
        "REPD",
        network,
        devchain.rpc_url,
    )
    ledger = _ledger(w3, network, compiled)
    try:
        node.batcher.recover()  # a fresh store starts at the chain's head
        seq_before = ledger.functions.head(agency_code("REPD")).call()[1]
        records = list(numbered_records("title", 20, start=700))
        accepted = []
        for half in (records[:10], records[10:]):
            accepted += [
                node.intake.submit("title", r, actor="o", request_id=f"q{len(accepted) + i}")
                for i, r in enumerate(half)
            ]
            assert node.batcher.close_batch("title", force=True)
        built = [
            (entry["root"], node.store.get_json(f"batch/{entry['root']}".encode()))
            for _, entry in node.store.iter_json(b"log/")
        ]
        first_root, first = built[-2]
        assert first["status"] == "built" and first["seq"] == seq_before + 1
        # What the killed process did: anchor s, mined, never recorded in the store.
        call = node.batcher.ledger.functions.anchor(
            record_type("title"),
            bytes.fromhex(first_root),
            first["count"],
            first["seq"],
            bytes.fromhex(first["prev"]),
        )
        node.batcher.tx.wait(
            node.batcher.tx.send_call(call, label="anchor before the kill", gas=ANCHOR_GAS), timeout=60
        )
        node.batcher._rebase_if_behind()  # the step after recover()'s own question, as it found the chain
        after = node.store.get_json(f"batch/{first_root}".encode())
        assert after is not None and after["status"] == "anchored", "a batch on the chain was dissolved"
        node.batcher.drain(timeout=120)
        head_seq = ledger.functions.head(agency_code("REPD")).call()[1]
        assert head_seq - seq_before == 2, "two batches, each anchored once"
        live = Web3ChainView(w3, network["deployment"], compiled)
        for item in accepted:
            report = verify(node.intake.bundle("title", item.record_id), live, now=int(time.time()))
            assert report.verdict == Verdict.AUTHENTIC, report.to_json()
    finally:
        node.stop()


def test_an_amended_then_revoked_record_reaches_the_chain_in_that_order(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    """v1 superseded by v2, then v2 revoked: the supersession goes first, though the revocation
    (grouped with an earlier one of the same reason) would be sent first. Found by the soak: the
    contract refused the supersession of v1 by a revoked v2 (InvalidSuccessor) for ever, and
    every supersession grouped with it."""
    node = _node(
        _init_node(tmp_path, "REPD", network["keys"]["REPD"], backend.new_store()),
        "REPD",
        network,
        devchain.rpc_url,
    )
    live = Web3ChainView(w3, network["deployment"], compiled)
    try:
        record = node.intake.submit(
            "title", next(numbered_records("title", 1, start=700)), actor="o", request_id="r"
        )
        node.batcher.drain(timeout=120)
        # Queued first and anchored in the same batch as v2, so all three are ready at once.
        other = node.intake.submit(
            "title", next(numbered_records("title", 1, start=702)), actor="o", request_id="r0"
        )
        node.intake.revoke("title", other.record_id, expected_version=1, reason=3, actor="s", request_id="r1")
        changed = dict(next(numbered_records("title", 1, start=701)), area_m2="131")
        v2 = node.intake.amend(
            "title", record.record_id, expected_version=1, data=changed, reason=1, actor="s", request_id="r2"
        )
        node.intake.revoke(
            "title", record.record_id, expected_version=2, reason=3, actor="s", request_id="r3"
        )
        node.batcher.drain(timeout=90)
        now = int(time.time())
        old = verify(node.intake.bundle("title", record.record_id, 1), live, now=now)
        assert old.verdict == Verdict.SUPERSEDED
        assert old.check("status").details["successor"] == "0x" + v2.leaf.hex()
        assert (
            verify(node.intake.bundle("title", record.record_id, 2), live, now=now).verdict == Verdict.REVOKED
        )
        assert verify(node.intake.bundle("title", other.record_id), live, now=now).verdict == Verdict.REVOKED
    finally:
        node.stop()


def test_a_revocation_the_pool_lost_is_sent_again_by_a_restarted_node(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
    compiled: dict[str, CompiledContract],
) -> None:
    """The revocation's transaction is accepted and then lost (a pool emptied by a chain restart)
    and the node restarts, so nothing remembers to resend it: once `receipt_timeout` has passed
    without the transaction being mined or held, the revocation is sent again. It used to stay
    `sent` for ever."""
    proxy = FaultyRpc(devchain.rpc_url)
    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"], backend.new_store())
    ledger = _ledger(w3, network, compiled)
    node = _node(data_dir, "CRA", network, proxy.url, receipt_timeout=1.0)
    try:
        accepted = node.intake.submit("commercial", commercial_example(), actor="o", request_id="r1")
        node.batcher.drain(timeout=120)
        node.intake.revoke(
            "commercial", accepted.record_id, expected_version=1, reason=2, actor="s", request_id="r2"
        )
        sends = proxy.calls["eth_sendRawTransaction"]
        proxy.swallow_sends = True
        node.batcher.step()
        assert [op["status"] for _, op in node.store.iter_json(b"op/")] == ["sent"]
    finally:
        node.stop()
    proxy.swallow_sends = False
    again = _node(data_dir, "CRA", network, proxy.url, receipt_timeout=1.0)
    try:
        again.batcher.drain(timeout=60)
        assert ledger.functions.leafStatus(agency_code("CRA"), accepted.leaf).call()[0] == 2
        assert proxy.calls["eth_sendRawTransaction"] == sends + 2, "swallowed once, sent again once"
    finally:
        again.stop()
        proxy.close()


def test_a_revocation_found_in_effect_names_the_transaction_that_made_it_so(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
    compiled: dict[str, CompiledContract],
) -> None:
    """The race of issue 15, made certain: the revocation's transaction went out and was mined,
    but its send's answer was lost, so the node recorded nothing and next finds the revocation
    already in effect on the chain. The operation and the audit trail must name the transaction
    that made it so (from its LeafRevoked event), not None."""
    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"], backend.new_store())
    node = _node(data_dir, "CRA", network, devchain.rpc_url)
    try:
        accepted = node.intake.submit("commercial", commercial_example(), actor="o", request_id="e1")
        node.batcher.drain(timeout=120)
        node.intake.revoke(
            "commercial", accepted.record_id, expected_version=1, reason=3, actor="s", request_id="e2"
        )
        # What the lost send did: the revocation mined, nothing of it stored by the node.
        receipt = node.batcher.tx.transact(
            node.batcher.ledger.functions.revoke([accepted.leaf], 3), label="revoke, answer lost"
        )
        node.batcher.step()
        [op] = [op for _, op in node.store.iter_json(b"op/")]
        assert op["status"] == "done"
        assert op["tx"] == receipt["transactionHash"].to_0x_hex() and op["block"] == receipt["blockNumber"]
        assert w3.eth.get_transaction(op["tx"])["blockNumber"] == op["block"]
        [entry] = [e for e in node.store.export_audit() if e["action"] == "record.revoke.effective"]
        assert entry["details"] == {"leaf": accepted.leaf.hex(), "tx": op["tx"], "block": op["block"]}
        assert entry["subject"] == f"commercial/{accepted.record_id}"
    finally:
        node.stop()


def test_a_revocation_the_chain_lost_with_its_block_is_sent_again(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
    compiled: dict[str, CompiledContract],
) -> None:
    """The chain goes back past a revocation's block but keeps every batch (anvil's evm_revert:
    its blocks since the snapshot are gone, the next ones mined under the same numbers): no
    batch seq shows the loss, so the block where the last operation took effect is what the
    node checks. The revocation is queued again and sent, and the chain shows the leaf revoked."""
    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"], backend.new_store())
    node = _node(data_dir, "CRA", network, devchain.rpc_url)
    ledger = _ledger(w3, network, compiled)
    try:
        accepted = node.intake.submit("commercial", commercial_example(), actor="o", request_id="g1")
        node.batcher.drain(timeout=120)
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        node.intake.revoke(
            "commercial", accepted.record_id, expected_version=1, reason=4, actor="s", request_id="g2"
        )
        node.batcher.drain(timeout=120)
        [(_, first)] = list(node.store.iter_json(b"op/"))
        assert first["status"] == "done"
        assert ledger.functions.leafStatus(agency_code("CRA"), accepted.leaf).call()[0] == 2
        assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
        assert ledger.functions.leafStatus(agency_code("CRA"), accepted.leaf).call()[0] == 0
        node.batcher.line_up()
        assert [op["status"] for _, op in node.store.iter_json(b"op/")] == ["queued"]
        node.batcher.drain(timeout=120)
        assert ledger.functions.leafStatus(agency_code("CRA"), accepted.leaf).call()[0] == 2
        [(_, again)] = list(node.store.iter_json(b"op/"))
        assert again["status"] == "done"  # its transaction, perhaps the very same signed bytes, mined anew
        receipt = w3.eth.get_transaction_receipt(again["tx"])
        assert receipt["status"] == 1 and receipt["blockNumber"] == again["block"]
    finally:
        node.stop()


def test_the_indexer_reads_again_a_chain_that_lost_blocks(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
    compiled: dict[str, CompiledContract],
) -> None:
    """The chain goes back past a revocation and grows past the indexed block again before the
    indexer looks (evm_revert, then anvil_mine): the block under the checkpoint's number is
    another one now. The index, which said the leaf was revoked, must be read again and say
    what the chain says, keeping the batch the chain still has."""
    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"], backend.new_store())
    node = _node(data_dir, "CRA", network, devchain.rpc_url)
    ledger = _ledger(w3, network, compiled)

    def index_to_the_head() -> None:
        deadline = time.monotonic() + 60
        while not node.indexer.step():
            assert time.monotonic() < deadline, "the indexer did not catch up"

    try:
        accepted = node.intake.submit("commercial", commercial_example(), actor="o", request_id="i1")
        node.batcher.drain(timeout=120)
        found = read_proof(node.store, accepted.leaf)
        assert found is not None
        root = found[0]
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        node.intake.revoke(
            "commercial", accepted.record_id, expected_version=1, reason=6, actor="s", request_id="i2"
        )
        node.batcher.drain(timeout=120)
        index_to_the_head()
        assert node.chain_view.leaf_status("CRA", accepted.leaf).state == LeafState.REVOKED
        checkpoint = node.indexer.checkpoint
        assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
        w3.provider.make_request("anvil_mine", [hex(checkpoint - w3.eth.block_number + 2)])  # type: ignore[arg-type]
        assert w3.eth.block_number > checkpoint
        assert ledger.functions.leafStatus(agency_code("CRA"), accepted.leaf).call()[0] == 0
        index_to_the_head()
        assert node.chain_view.leaf_status("CRA", accepted.leaf).state == LeafState.CURRENT
        batch = node.chain_view.batch("CRA", root)
        assert batch is not None and batch.count == 1
    finally:
        node.stop()


def test_a_reader_of_a_trailing_index_asks_the_chain_only_about_leaves_changed_since(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
) -> None:
    """POST /v1/verify reads leaf states from the index (api.app.CachedChainView). While the
    index trails the chain, a leaf revoked in the blocks it has not read must still show
    revoked: the reader learns which leaves changed there (`unindexed_leaf_changes`, one
    eth_getLogs) and asks the chain about those alone, not about every leaf the index calls
    current, which tripled the cost of a verification half the time with 1 s blocks."""
    from api.app import CachedChainView

    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"], backend.new_store())
    node = _node(data_dir, "CRA", network, devchain.rpc_url)

    def index_to_the_head() -> None:
        deadline = time.monotonic() + 60
        while not node.indexer.step():
            assert time.monotonic() < deadline, "the indexer did not catch up"

    class Counting:
        def __init__(self, live: Any) -> None:
            self.live, self.asked = live, []

        def leaf_status(self, agency: str, leaf: bytes) -> Any:
            self.asked.append(leaf)
            return self.live.leaf_status(agency, leaf)

    try:
        kept, revoked = (
            node.intake.submit("commercial", record, actor="o", request_id=f"k{i}")
            for i, record in enumerate(numbered_records("commercial", 2))
        )
        node.batcher.drain(timeout=120)
        index_to_the_head()
        assert node.indexer.unindexed_leaf_changes() == frozenset()
        node.intake.revoke(
            "commercial", revoked.record_id, expected_version=1, reason=6, actor="s", request_id="r"
        )
        node.batcher.drain(timeout=120)  # the revocation is mined; the index has not read it
        assert node.chain_view.leaf_status("CRA", revoked.leaf).state == LeafState.CURRENT
        assert node.indexer.unindexed_leaf_changes() == frozenset({("CRA", revoked.leaf.hex())})

        reader = CachedChainView(node.chain_view, 60.0, node.indexer)
        counting = Counting(reader.live)
        reader.live = counting
        assert reader.leaf_status("CRA", revoked.leaf).state == LeafState.REVOKED
        for _ in range(3):
            assert reader.leaf_status("CRA", kept.leaf).state == LeafState.CURRENT
        assert counting.asked == [revoked.leaf]  # the unchanged leaf was never asked of the chain

        index_to_the_head()
        assert node.indexer.unindexed_leaf_changes() == frozenset()
        assert node.chain_view.leaf_status("CRA", revoked.leaf).state == LeafState.REVOKED
    finally:
        node.stop()


def test_the_batcher_outlives_a_chain_error_while_settling_a_revocation(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    backend: Backend,
    w3: Web3,
    compiled: dict[str, CompiledContract],
) -> None:
    """A 502 from the chain while the batcher reads a leaf's status (a proxy in front of a
    restarting chain) is retried like any chain error: it once ended the batcher thread, and the
    node took records and revocations that nothing would ever anchor, /healthz still ok."""
    proxy = FaultyRpc(devchain.rpc_url)
    node = _node(
        _init_node(tmp_path, "CSO", network["keys"]["CSO"], backend.new_store()), "CSO", network, proxy.url
    )
    ledger = _ledger(w3, network, compiled)
    try:
        accepted = node.intake.submit("marriage", marriage_example(), actor="o", request_id="r1")
        node.batcher.drain(timeout=120)
        node.start()
        time.sleep(1.0)  # recovered and idle: the faults below reach the revocation's status reads
        # More 502s in a row than web3's provider retries by itself (six attempts).
        proxy.inject("502", "eth_call", times=8)
        node.intake.revoke(
            "marriage", accepted.record_id, expected_version=1, reason=3, actor="s", request_id="r2"
        )
        deadline = time.monotonic() + 60
        while ledger.functions.leafStatus(agency_code("CSO"), accepted.leaf).call()[0] != 2:
            assert time.monotonic() < deadline, f"revocation not anchored; batcher: {node.batcher.last_error}"
            time.sleep(0.5)
        assert proxy.calls["eth_call"] >= 9, "the faults were met"
        assert all(thread.is_alive() for thread in node._threads)
    finally:
        node.stop()
        proxy.close()


def test_a_node_refuses_a_key_the_registry_does_not_know(
    network: dict[str, Any], devchain: DevChain, tmp_path: Path, backend: Backend
) -> None:
    data_dir = _init_node(tmp_path, "REPD", secrets.token_bytes(32), backend.new_store())
    with pytest.raises(NodeError, match="is not a signer of REPD"):
        _node(data_dir, "REPD", network, devchain.rpc_url)


# ------------------------------------------------------------------------------ processes


def _sijill(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "sijill"), *args]


def _ingest_args(
    data_dir: Path, code: str, file: Path, network: dict[str, Any], rpc: str, batch: int
) -> list[str]:
    return _sijill(
        "node",
        "ingest",
        str(file),
        "--data-dir",
        str(data_dir),
        "--rpc",
        rpc,
        "--deployment",
        str(network["path"]),
        "--agency",
        code,
        "--batch-size",
        str(batch),
        "--max-age",
        "0.5",
    )


def _check_node(data_dir: Path, code: str, expected: int, chain: ChainView) -> dict[str, int]:
    """accepted = anchored, no root twice, every stored proof verifies against its anchored root."""
    store = Store(data_dir / "store", bytes.fromhex(KEK))
    try:
        leaves = [bytes.fromhex(k.decode().split("/")[1]) for k, _ in store.iter_prefix(b"leaf/")]
        assert len(leaves) == expected, "every record of the file accepted exactly once"
        assert not any(True for _ in store.iter_prefix(b"queue/", limit=1))
        roots = [entry["root"] for _, entry in store.iter_json(b"log/")]
        assert len(roots) == len(set(roots)), "no root twice in the agency log"
        anchored = {}
        for root in roots:
            batch = chain.batch(code, bytes.fromhex(root))
            assert batch is not None, f"root {root} is not on chain"
            anchored[root] = batch
        assert sum(b.count for b in anchored.values()) == expected, "accepted = anchored"
        for leaf in leaves:
            found = read_proof(store, leaf)
            assert found is not None, "every accepted leaf anchored"
            root, proof = found
            assert root.hex() in anchored and verify_proof(leaf, proof, root)
        return {"leaves": len(leaves), "batches": len(roots)}
    finally:
        store.close()


def test_three_agency_nodes_side_by_side(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    kinds = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
    processes, dirs = {}, {}
    for code, kind in kinds.items():
        dirs[code] = _init_node(tmp_path, code, network["keys"][code])
        file = tmp_path / f"{code}.ndjson"
        file.write_text("".join(ndjson_lines(600, start=10_000, record_type=kind)), encoding="utf-8")
        args, env = (
            _ingest_args(dirs[code], code, file, network, devchain.rpc_url, 250),
            {**os.environ, **ENV},
        )
        if code == "CRA":  # secrets from files given by flags, not from the environment
            (tmp_path / "pass").write_text(PASSPHRASE + "\n")
            (tmp_path / "kek").write_text(KEK)
            args += ["--passphrase-file", str(tmp_path / "pass"), "--kek-file", str(tmp_path / "kek")]
            env = {k: v for k, v in env.items() if k not in ENV}
        processes[code] = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    live = Web3ChainView(w3, network["deployment"], compiled)
    for code, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert json.loads(stdout.splitlines()[-1])["accepted"] == 600
        assert _check_node(dirs[code], code, 600, live)["batches"] >= 3


def test_sigkill_at_random_moments_during_a_bulk_load(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    """Kill the node process again and again during a 20,000-record load; restart it each time."""
    records = int(os.environ.get("SIJILL_FAULT_RECORDS", "20000"))
    data_dir = _init_node(tmp_path, "CRA", network["keys"]["CRA"])
    file = tmp_path / "bulk.ndjson"
    file.write_text("".join(ndjson_lines(records, start=50_000, record_type="commercial")), encoding="utf-8")
    args = _ingest_args(data_dir, "CRA", file, network, devchain.rpc_url, 2000)
    ledger = _ledger(w3, network, compiled)
    seq_before = ledger.functions.head(agency_code("CRA")).call()[1]
    rng = random.Random(int(os.environ.get("SIJILL_FAULT_SEED", "7")))
    kills, runs, loads = 0, 0, 1
    while True:
        runs += 1
        process = subprocess.Popen(
            args, env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if kills < 6:
            time.sleep(rng.uniform(1.5, 7.0))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                continue
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        if kills >= 3 or loads == 5:
            break
        # A fast machine finished before it was interrupted three times: load more into the
        # same node, so the interruptions do not depend on the machine's speed.
        file = tmp_path / f"bulk-{loads}.ndjson"
        file.write_text(
            "".join(
                ndjson_lines(records // 2, start=50_000 + records + 100_000 * loads, record_type="commercial")
            ),
            encoding="utf-8",
        )
        args = _ingest_args(data_dir, "CRA", file, network, devchain.rpc_url, 2000)
        loads += 1
    assert kills >= 3, "the load was actually interrupted"
    records += (loads - 1) * (records // 2)
    outcome = _check_node(data_dir, "CRA", records, Web3ChainView(w3, network["deployment"], compiled))
    head_seq = ledger.functions.head(agency_code("CRA")).call()[1]
    assert head_seq - seq_before == outcome["batches"], "the chain's log grew by exactly the node's batches"
    print(f"\n{records} records in {loads} loads, {kills} kills, {runs} runs, {outcome['batches']} batches")


def test_the_chain_stops_and_comes_back(compiled: dict[str, CompiledContract], tmp_path: Path) -> None:
    """anvil (state saved) is stopped during a load and started again; the node finishes the work."""
    keys = {code: secrets.token_bytes(32) for code in ("REPD", "CSO", "CRA")}
    config = DevChainConfig(port=free_port(), block_time=1.0, data_dir=tmp_path / "chain")
    chain = DevChain(config).start()
    try:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        path = tmp_path / "deployment.json"
        deployment = deploy_network(
            w3, dev_accounts(1)[0], _network(keys), path, compiled=compiled
        ).deployment
        network = {"keys": keys, "path": path, "deployment": deployment}
        data_dir = _init_node(tmp_path, "REPD", keys["REPD"])
        file = tmp_path / "load.ndjson"
        file.write_text("".join(ndjson_lines(3000, start=90_000)), encoding="utf-8")
        process = subprocess.Popen(
            _ingest_args(data_dir, "REPD", file, network, chain.rpc_url, 500),
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Stop the chain only once the node is at work (its first batch on-chain): a node that
        # finds no chain at start-up exits at once (2), which is another test's subject.
        ledger = w3.eth.contract(
            address=deployment["contracts"]["RecordLedger"]["address"], abi=compiled["RecordLedger"].abi
        )
        deadline = time.monotonic() + 120
        while ledger.functions.head(agency_code("REPD")).call()[1] == 0:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the node anchored nothing within 120 s"
            time.sleep(0.2)
        chain.stop()
        time.sleep(4)
        chain = DevChain(config).start()
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        _check_node(
            data_dir,
            "REPD",
            3000,
            Web3ChainView(Web3(Web3.HTTPProvider(chain.rpc_url)), deployment, compiled),
        )
    finally:
        chain.stop()


def test_each_failpoint_is_survived(
    network: dict[str, Any],
    devchain: DevChain,
    tmp_path: Path,
    compiled: dict[str, CompiledContract],
    w3: Web3,
) -> None:
    """Die at each named step of intake and anchoring, then finish: nothing lost, nothing twice."""
    from node.failpoints import POINTS

    data_dir = _init_node(tmp_path, "CSO", network["keys"]["CSO"])
    live = Web3ChainView(w3, network["deployment"], compiled)
    total = 0
    for i, point in enumerate(POINTS):
        file = tmp_path / f"{point}.ndjson"
        file.write_text(
            "".join(ndjson_lines(1200, start=200_000 + 10_000 * i, record_type="marriage")), encoding="utf-8"
        )
        args = _ingest_args(data_dir, "CSO", file, network, devchain.rpc_url, 500)
        dying = subprocess.run(
            args,
            env={**os.environ, **ENV, "SIJILL_FAILPOINT": point},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert dying.returncode == 137, f"{point} was never reached: {dying.stderr[-500:]}"
        finishing = subprocess.run(
            args, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=300
        )
        assert finishing.returncode == 0, finishing.stderr
        total += 1200
        _check_node(data_dir, "CSO", total, live)
