"""A node whose PostgreSQL store goes away and comes back: `sijill serve --store postgresql://...`
answers 503 `store-unavailable` with Retry-After (never a 500) while the server is down, for
writes and reads alike; `/readyz` is 503 naming the store and `/metrics` says
`sijill_store_up 0`; once the server is back, the write refused with 503 is retried with the
same Idempotency-Key and done once, and the record taken in before the outage is still there,
anchored (docs/api.md, docs/storage.md)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import KEK, PASSPHRASE, Server, deploy_fresh, expect_problem, start_server, stop_server
from pg_cluster import PgCluster
from web3 import Web3

from ledger.records.examples import title_example
from node.chain.toolchain import CompiledContract
from node.keys import create_keystore
from node.store import Store

pytestmark = pytest.mark.chain


def test_store_outage_answers_503_and_loses_nothing(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path: Path
) -> None:
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    # A cluster of its own: this test stops it, and other tests share the session's.
    with PgCluster() as cluster:
        uri = cluster.create_database("repd")
        data_dir, tokens = _init_node_on(uri, tmp_path / "repd", keys["REPD"])
        server = start_server(
            data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, "--store", uri
        )
        try:
            reads = _outage(server, cluster)
        finally:
            if not cluster.ready():
                cluster.up()
            stop_server(server)
        log = server.log.read_text(errors="replace")
        with Store(uri, bytes.fromhex(KEK)) as kept:  # reads are audited in groups: none was dropped
            audited = {e["requestId"] for e in kept.export_audit() if e["action"] == "record.read"}
        assert set(reads) <= audited, set(reads) - audited
    store = f"postgresql://postgres@127.0.0.1:{cluster.port}/repd"
    assert re.search(rf"store unavailable on POST /v1/records \[\w+\]: the store at {store}", log), log[
        -4000:
    ]
    assert "unexpected error" not in log and cluster.password not in log, log[-4000:]
    # The API logged no traceback; any in the log is the batcher's own ("batcher step failed").
    assert log.count("Traceback") == log.count("batcher step failed, retrying"), log[-4000:]


def _outage(server: Server, cluster: PgCluster) -> list[str]:
    """The outage, as a client sees it; the request ids of the reads answered 200."""
    store = f"postgresql://postgres@127.0.0.1:{cluster.port}/repd"
    title = {"recordType": "title", "record": title_example()}
    with server.client("officer") as officer, httpx.Client(base_url=server.url, timeout=60) as public:
        before = officer.post("/v1/records", json=title, headers={"Idempotency-Key": "before-the-outage"})
        assert before.status_code == 201, before.text
        assert _anchored(officer, before.json()["links"]["self"]), before.text

        last_read = officer.get(before.json()["links"]["self"])  # its audit entry may wait for the store
        assert last_read.status_code == 200, last_read.text
        cluster.down()
        refused = officer.post("/v1/records", json=title, headers={"Idempotency-Key": "during-the-outage"})
        problem = expect_problem(refused, 503, "store-unavailable")
        assert int(refused.headers["Retry-After"]) >= 1
        assert store in problem["detail"], problem
        assert cluster.password not in refused.text and "Traceback" not in refused.text
        expect_problem(officer.get(before.json()["links"]["self"]), 503, "store-unavailable")

        ready = public.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store"] is False, ready.text
        assert any(p.startswith("store unreachable: ") and store in p for p in ready.json()["problems"]), (
            ready.text
        )
        _wait(lambda: "\nsijill_store_up 0\n" in public.get("/metrics").text, "sijill_store_up 0")

        cluster.up()
        _wait(lambda: public.get("/readyz").status_code == 200, "/readyz 200 after the store came back")
        assert "\nsijill_store_up 1\n" in public.get("/metrics").text
        again = _retry(
            lambda: officer.post("/v1/records", json=title, headers={"Idempotency-Key": "during-the-outage"})
        )
        assert again.status_code == 201, again.text
        replay = officer.post("/v1/records", json=title, headers={"Idempotency-Key": "during-the-outage"})
        assert replay.status_code == 201 and replay.json() == again.json(), replay.text  # done once
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert _anchored(officer, again.json()["links"]["self"]), again.text
        kept = officer.get(before.json()["links"]["self"])
        assert kept.status_code == 200 and kept.json()["state"] == "anchored", kept.text
        assert kept.json()["leaf"] == before.json()["leaf"]
    return [last_read.headers["X-Request-Id"], kept.headers["X-Request-Id"]]


def _init_node_on(uri: str, data_dir: Path, key: bytes) -> tuple[Path, dict[str, str]]:
    """A node directory (its signer's keystore) whose store is the database `uri`, with an
    officer token (api_helpers.init_node does the same on LevelDB)."""
    data_dir.mkdir(parents=True)
    create_keystore(data_dir / "signer.json", PASSPHRASE, key, kdf_iterations=2**10)
    token = secrets.token_urlsafe(32)
    with Store(uri, bytes.fromhex(KEK), create=True) as store:
        store.add_token(token, {"name": "officer of REPD", "role": "officer", "agency": "REPD"}, None)
    return data_dir, {"officer": token}


def _anchored(client: httpx.Client, path: str, timeout: float = 60.0) -> bool:
    """GET the record at `path` until the node says it is anchored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(path).json().get("state") == "anchored":
            return True
        time.sleep(0.2)
    return False


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.2)


def _retry(send: Callable[[], httpx.Response], timeout: float = 60.0) -> httpx.Response:
    """What a client does with 503: send again after Retry-After, until another answer."""
    deadline = time.monotonic() + timeout
    while (response := send()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0))
    return response
