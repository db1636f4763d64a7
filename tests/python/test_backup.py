"""`sijill node backup` and `sijill node restore`: a consistent snapshot of a node's store, taken
while a real `sijill serve` takes records on anvil, put back, and the restored node started
against a chain that moved on: it starts, /readyz is truthful, it reports the batches anchored
after the backup, and `sijill audit` of it finds exactly those batches missing, nothing else.
Offline: the file's manifest and digest, and the refusals (damaged file, store in place, wrong
KEK, a running node)."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    KEK,
    deploy_fresh,
    init_node,
    post_titles,
    refused,
    run_sijill,
    start_server,
    stop_server,
    wait_anchored,
)
from web3 import Web3

from ledger.records.examples import title_example
from node.backup import check_backup, read_manifest
from node.chain.toolchain import CompiledContract
from node.errors import NodeError
from node.store import Store, verify_audit_chain

NO_LIMIT = ("--rate-limit", "0")  # the test's intake runs as fast as the node takes it


def _items(store_dir: Path) -> dict[bytes, bytes]:
    with Store(store_dir, bytes.fromhex(KEK)) as store:
        return dict(store.iter_snapshot())


@pytest.fixture
def stopped_node(tmp_path: Path) -> Path:
    """A node directory with a store holding tokens, clear values and sealed secrets."""
    data_dir = tmp_path / "repd"
    data_dir.mkdir()
    (data_dir / "node.json").write_text(json.dumps({"agency": "REPD", "signer": "0x" + "11" * 20}))
    with Store(data_dir / "store", bytes.fromhex(KEK), create=True) as store, store.write_batch() as wb:
        store.add_token(
            secrets.token_urlsafe(32), {"name": "x", "role": "officer", "agency": "REPD"}, None, wb=wb
        )
        store.put_json(wb, b"head/title/r1", {"version": 1})
        store.put_secret(wb, b"record/title/r1/00000001", b'{"owner":"a name"}')
        store.put_json(wb, b"log/0000000000000001", {"root": "ab" * 32})
        store.put_json(wb, b"batch/" + b"ab" * 32, {"status": "anchored", "count": 1})
    return data_dir


def test_backup_and_restore_of_a_stopped_node(stopped_node: Path, tmp_path: Path) -> None:
    backup = tmp_path / "repd.sjb"
    before = _items(stopped_node / "store")
    done = run_sijill("node", "backup", "--data-dir", str(stopped_node), "--out", str(backup), "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest == read_manifest(backup).to_json() == check_backup(backup).to_json()
    assert manifest["agency"] == "REPD" and manifest["chainHead"] is None
    assert manifest["counts"] == {"records": 1, "leaves": 0, "batches": 1, "tokens": 1, "keys": 7}
    assert manifest["lastAnchored"] == {"seq": 1, "root": "ab" * 32}
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert b"a name" not in backup.read_bytes()  # secrets stay sealed

    # Into a new machine's directory: the same keys, plus the restore's note and audit entry.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(backup))
    assert done.returncode == 0, done.stderr
    after = _items(fresh / "store")
    added = {key for key in after.keys() - before.keys()}
    assert added == {b"meta/restored", b"audit/0000000000000001"}
    assert all(after[key] == value for key, value in before.items())
    with Store(fresh / "store", bytes.fromhex(KEK)) as store:
        trail = list(store.export_audit())
        assert verify_audit_chain(trail) == 1 and trail[0]["action"] == "node.restore"
        assert store.get_secret(b"record/title/r1/00000001") == b'{"owner":"a name"}'
    with Store(stopped_node / "store", bytes.fromhex(KEK)) as store:  # audited after its snapshot
        assert [entry["action"] for entry in store.export_audit()] == ["node.backup"]

    # A store in place is replaced only when told, and kept aside.
    refused(
        run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(backup)),
        f"the node in {fresh} has a store already: give --force",
    )
    done = run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(backup), "--force")
    assert done.returncode == 0, done.stderr
    assert len(list(fresh.glob("store.before-restore-*"))) == 1


def test_restore_refuses_a_damaged_file_a_wrong_kek_and_another_agency(
    stopped_node: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "repd.sjb"
    assert run_sijill("node", "backup", "--data-dir", str(stopped_node), "--out", str(backup)).returncode == 0
    damaged = tmp_path / "damaged.sjb"
    data = bytearray(backup.read_bytes())
    data[40] ^= 1
    damaged.write_bytes(bytes(data))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    refused(
        run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(damaged)),
        "does not match its manifest",
    )
    cut = tmp_path / "cut.sjb"
    cut.write_bytes(backup.read_bytes()[:-3])
    refused(run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(cut)), "cut short")
    refused(
        run_sijill(
            "node", "restore", "--data-dir", str(fresh), "--from", str(backup), kek=secrets.token_hex(32)
        ),
        "key-encryption key",
    )
    assert not (fresh / "store").exists() and not (fresh / "store.restoring").exists()
    (fresh / "node.json").write_text(json.dumps({"agency": "CSO"}))
    refused(
        run_sijill("node", "restore", "--data-dir", str(fresh), "--from", str(backup)),
        "is a backup of REPD's node, and the node in",
    )
    with pytest.raises(NodeError, match="not a Sijill backup"):
        read_manifest(stopped_node / "node.json")


def test_restore_refuses_while_the_node_holds_its_store(stopped_node: Path, tmp_path: Path) -> None:
    backup = tmp_path / "repd.sjb"
    assert run_sijill("node", "backup", "--data-dir", str(stopped_node), "--out", str(backup)).returncode == 0
    with Store(stopped_node / "store", bytes.fromhex(KEK)):
        refused(
            run_sijill("node", "restore", "--data-dir", str(stopped_node), "--from", str(backup), "--force"),
            "is in use",
        )


@pytest.mark.chain
def test_backup_under_intake_restore_and_the_chain_moved_on(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path: Path
) -> None:
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
    backup = tmp_path / "repd.sjb"
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, *NO_LIMIT)
    try:
        with server.client("officer") as officer:
            before = post_titles(officer, 20)
            assert wait_anchored(officer, before[-1]["links"]["bundle"]).status_code == 200
            during: list[dict[str, Any]] = []
            stop = threading.Event()

            def intake() -> None:
                with server.client("officer") as client:
                    while not stop.is_set():
                        during.extend(post_titles(client, 5))

            feeder = threading.Thread(target=intake)
            feeder.start()
            time.sleep(1.0)
            done = run_sijill("node", "backup", "--data-dir", str(data_dir), "--out", str(backup), "--json")
            time.sleep(1.5)
            stop.set()
            feeder.join()
            assert done.returncode == 0, done.stderr
            manifest = json.loads(done.stdout)
            after = post_titles(officer, 10)
            _officer_while_serving(server.url, data_dir)
            for record in (*during, *after):
                assert wait_anchored(officer, record["links"]["bundle"]).status_code == 200
    finally:
        assert stop_server(server) == 0
    assert not (data_dir / "admin.sock").exists()  # removed at stop
    assert manifest["chainHead"] is not None and manifest["lastAnchored"] is not None
    assert manifest["chainHead"]["seq"] >= manifest["lastAnchored"]["seq"]
    backed_up = manifest["counts"]["records"]
    assert 20 < backed_up < 20 + len(during) + len(after) + 1

    done = run_sijill("node", "restore", "--data-dir", str(data_dir), "--from", str(backup), "--force")
    assert done.returncode == 0, done.stderr
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, *NO_LIMIT)
    try:
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert "were anchored after the backup and are not in it" in server.log_tail()
        with server.client("officer") as officer:
            assert all(officer.get(r["links"]["self"]).status_code == 200 for r in before)
            kept = [r for r in (*during, *after) if officer.get(r["links"]["self"]).status_code == 200]
            assert len(kept) == backed_up - 20  # the records taken before the snapshot, no other
            # Every record in the backup is provable: those in its batches by their proofs, those
            # that were queued at backup time once the restored node has anchored them again.
            for record in kept:
                assert wait_anchored(officer, record["links"]["bundle"]).status_code == 200
            newer = post_titles(officer, 3)
            assert wait_anchored(officer, newer[-1]["links"]["bundle"]).status_code == 200
        export = tmp_path / "export"
        done = run_sijill(
            "export", "--api", server.url, "--token", tokens["auditor"],
            "--deployment", str(deployment), "--out", str(export),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        assert stop_server(server) == 0
    done = run_sijill(
        "audit", "--agency", "REPD", "--rpc", devchain.rpc_url, "--export", str(export),
        "--deployment", str(deployment), "--json",
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert {finding["id"] for finding in report["findings"]} == {"batch-missing"}, report["findings"]
    assert done.returncode == 1
    # Exactly the batches the node reported at its start as anchored after the backup.
    with Store(data_dir / "store", bytes.fromhex(KEK)) as store:
        gap = store.get_json(b"meta/restored")["gap"]
    missing = {int(re.match(r"batch (\d+) ", f["message"]).group(1)) for f in report["findings"]}  # type: ignore[union-attr]
    assert missing == set(range(gap["from"], gap["to"] + 1)) - set(gap["adopted"]) and missing


@pytest.mark.chain
def test_a_batch_of_exactly_the_queued_leaves_is_taken_back(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path: Path
) -> None:
    """The backup holds leaves still queued; the running node then anchors exactly them in one
    batch. The restored node would build the same root, which the chain refuses: it takes that
    batch back from the chain instead (proofs and all), and anchors nothing twice."""
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
    backup = tmp_path / "repd.sjb"
    slow = ("--max-age", "4")  # the leaves are still queued when the backup is taken
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, *slow)
    try:
        with server.client("officer") as officer:
            queued = post_titles(officer, 5)
            done = run_sijill("node", "backup", "--data-dir", str(data_dir), "--out", str(backup), "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["lastAnchored"] is None
            assert wait_anchored(officer, queued[-1]["links"]["bundle"]).status_code == 200
            later = post_titles(officer, 2)
            assert wait_anchored(officer, later[-1]["links"]["bundle"]).status_code == 200
    finally:
        assert stop_server(server) == 0
    assert (
        run_sijill(
            "node", "restore", "--data-dir", str(data_dir), "--from", str(backup), "--force"
        ).returncode
        == 0
    )
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, *slow)
    try:
        with server.client("officer") as officer:
            bundles = [wait_anchored(officer, r["links"]["bundle"]) for r in queued]
            assert all(b.status_code == 200 for b in bundles)
            newer = post_titles(officer, 1)
            assert wait_anchored(officer, newer[0]["links"]["bundle"]).status_code == 200
            assert officer.get(later[0]["links"]["self"]).status_code == 404
        assert "batches 1 to 2 (but 1, made of leaves queued in the backup" in server.log_tail()
    finally:
        assert stop_server(server) == 0
    with Store(data_dir / "store", bytes.fromhex(KEK)) as store:
        assert store.get_json(b"meta/restored")["gap"] == {"from": 1, "to": 2, "queued": 0, "adopted": [1]}
        assert [
            store.get_json(b"batch/" + e["root"].encode())["seq"] for _, e in store.iter_json(b"log/")
        ] == [1, 3]


def _officer_while_serving(url: str, data_dir: Path) -> None:
    """`sijill officer add|list|revoke` on the running node, over its admin socket: the token
    works at once, and is refused once revoked."""
    assert oct((data_dir / "admin.sock").stat().st_mode & 0o777) == "0o600"
    done = run_sijill(
        "officer", "add", "--data-dir", str(data_dir), "--agency", "REPD",
        "--role", "officer", "--name", "Mona Adel", "--json", kek="",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    issued = json.loads(done.stdout)
    headers = {"Authorization": f"Bearer {issued['token']}"}
    record = {"recordType": "title", "record": title_example()}
    assert httpx.post(url + "/v1/records", json=record, headers=headers, timeout=30).status_code == 201
    listed = run_sijill("officer", "list", "--data-dir", str(data_dir), "--json", kek="")
    assert issued["tokenId"] in {row["tokenId"] for row in json.loads(listed.stdout)}
    done = run_sijill("officer", "revoke", issued["tokenId"], "--data-dir", str(data_dir), kek="")
    assert done.returncode == 0 and "is now revoked" in done.stdout, done.stderr
    assert httpx.post(url + "/v1/records", json=record, headers=headers, timeout=30).status_code == 401
