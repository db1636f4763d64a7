"""`sijill node migrate-store`: a node that took records on LevelDB (some anchored, one revoked)
is stopped and moved to a fresh PostgreSQL database; `sijill serve --store postgresql://...`
starts on the copy, the old records' bundles verify, new records are anchored with the batch
log continuing (no gap, no root twice), the queue count is right, and `sijill audit` of the
moved node is clean. Refused with one line: a running node, a non-empty target, a wrong KEK."""

from __future__ import annotations

import json
import re
import secrets
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
from pg_cluster import PgCluster
from web3 import Web3

from node.chain.toolchain import CompiledContract
from node.errors import StoreError
from node.store import Store, verify_audit_chain
from node.store.migrate import migrate_store

pytestmark = pytest.mark.chain


def _log(location: str | Path) -> dict[int, str]:
    """The node's batch log: batch number -> root."""
    with Store(location, bytes.fromhex(KEK)) as store:
        return {int(k[4:], 16): json.loads(v)["root"] for k, v in store.iter_prefix(b"log/")}


def _verdict(public: httpx.Client, officer: httpx.Client, record: dict[str, Any]) -> str:
    bundle = wait_anchored(officer, record["links"]["bundle"])
    assert bundle.status_code == 200, bundle.text
    return str(public.post("/v1/verify", content=bundle.content).json()["verdict"])


def test_a_leveldb_node_moves_to_postgresql_and_goes_on(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
    source = f"leveldb:{data_dir / 'store'}"
    uri = pg_cluster.create_database("migrated")
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment)
    try:
        with server.client("officer") as officer, server.client("supervisor") as supervisor:
            old = post_titles(officer, 4)
            for record in old:
                assert wait_anchored(officer, record["links"]["bundle"]).status_code == 200
            revoked = supervisor.post(
                old[0]["links"]["self"] + "/revocation", json={"version": 1, "reason": 3}
            )
            assert revoked.status_code == 200, revoked.text
            old += post_titles(officer, 2)  # anchored or still queued when the node stops
        refused(
            run_sijill("node", "migrate-store", "--from", source, "--to", uri), "in use by another process"
        )
    finally:
        assert stop_server(server) == 0
    before = _log(data_dir / "store")
    assert before

    other = pg_cluster.create_database("taken")
    pg_cluster.sql("taken", "CREATE TABLE sijill_store (key bytea PRIMARY KEY, value bytea NOT NULL)")
    pg_cluster.sql("taken", "INSERT INTO sijill_store VALUES ('\\x6b'::bytea, '\\x76'::bytea)")
    refused(run_sijill("node", "migrate-store", "--from", source, "--to", other), "is not empty (1 keys)")
    refused(
        run_sijill("node", "migrate-store", "--from", source, "--to", uri, kek=secrets.token_hex(32)),
        "does not match this store",
    )
    # A copy that does not come out equal (here a trigger changes a value) fails the check.
    altered = pg_cluster.create_database("altered")
    for statement in (
        "CREATE TABLE sijill_store (key bytea PRIMARY KEY, value bytea NOT NULL)",
        "CREATE FUNCTION alter_row() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.value := NEW.value || '\\x20'::bytea; RETURN NEW; END $$",
        "CREATE TRIGGER alter_row BEFORE INSERT ON sijill_store FOR EACH ROW "
        "WHEN (NEW.key = 'meta/schema'::bytea) EXECUTE FUNCTION alter_row()",
    ):
        pg_cluster.sql("altered", statement)
    done = run_sijill("node", "migrate-store", "--from", source, "--to", altered)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"error: the copy in {altered.replace(pg_cluster.password, '***')} differs from the LevelDB store"
    ]
    done = run_sijill("node", "migrate-store", "--from", source, "--to", uri)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "The copy matches" in done.stdout and "--store" in done.stdout
    assert pg_cluster.password not in done.stdout + done.stderr

    server = start_server(
        data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, "--store", uri
    )
    try:
        with server.client("officer") as officer, httpx.Client(base_url=server.url) as public:
            verdicts = [_verdict(public, officer, record) for record in old]
            assert verdicts[1:] == ["authentic-current"] * 5
            assert verdicts[0] in ("revoked", "authentic-current")  # revoked once its batch is anchored
            new = post_titles(officer, 3)
            assert [_verdict(public, officer, record) for record in new] == ["authentic-current"] * 3
            assert officer.get(old[0]["links"]["self"]).json()["revoked"] is True
            deadline = time.monotonic() + 60  # the revocation anchored, before the move or after it
            while verdicts[0] != "revoked" and time.monotonic() < deadline:
                time.sleep(0.5)
                verdicts[0] = _verdict(public, officer, old[0])
            assert verdicts[0] == "revoked"
            metrics = public.get("/metrics").text
            backlog = re.search(r"^sijill_backlog_leaves (\S+)$", metrics, re.MULTILINE)
            assert backlog is not None and float(backlog.group(1)) == 0, metrics
        export = tmp_path / "export"
        done = run_sijill(
            "export", "--api", server.url, "--token", tokens["auditor"],
            "--deployment", str(deployment), "--out", str(export),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        assert stop_server(server) == 0
    after = _log(uri)
    with Store(uri, bytes.fromhex(KEK)) as store:
        trail = list(store.export_audit())
    assert verify_audit_chain(trail) == len(trail)
    moved = [entry for entry in trail if entry["action"] == "node.migrate-store"]
    assert len(moved) == 1 and moved[0]["subject"] == str(data_dir / "store")
    assert sorted(after) == list(range(1, len(after) + 1)) and len(after) > len(before)
    assert {seq: after[seq] for seq in before} == before  # the old log, then new batches after it
    assert len(set(after.values())) == len(after)  # no root anchored twice
    done = run_sijill(
        "audit", "--agency", "REPD", "--rpc", devchain.rpc_url, "--export", str(export),
        "--deployment", str(deployment), "--json",
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["findings"] == [] and done.returncode == 0, report


def test_counters_a_postgresql_node_could_not_continue_arerefused(tmp_path: Path) -> None:
    with Store(tmp_path / "store", bytes.fromhex(KEK), create=True) as store:
        with store.write_batch() as wb:
            store.enqueue(wb, "title", b"\x01" * 32)
        store._db.put(b"seq/queue/title", b"0", sync=True)  # behind its queue's entry 1
    with pytest.raises(StoreError, match=r"seq/queue/title \(0\) is below its queue's entry 1"):
        migrate_store(
            f"leveldb:{tmp_path / 'store'}", "postgresql://nobody@127.0.0.1:1/none", bytes.fromhex(KEK)
        )
