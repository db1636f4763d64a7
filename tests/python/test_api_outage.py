"""The API while its chain is down: /healthz still answers, /readyz says why it is not ready,
officers can still create records (intake is durable without the chain), and once the chain
is back the records are anchored and verify."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import KEK, deploy_fresh, init_node, start_server, stop_server, wait_anchored

from ledger.codes import agency_code
from ledger.records.examples import numbered_records, title_example
from node.chain.client import connect
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import CompiledContract
from node.proofs import read_proof
from node.store import Store

pytestmark = pytest.mark.chain


def _until(predicate: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def test_the_api_through_a_chain_outage(compiled: dict[str, CompiledContract], tmp_path: Path) -> None:
    config = DevChainConfig(port=free_port(), block_time=1.0, data_dir=tmp_path / "chain")
    chain = DevChain(config).start()
    server = None
    try:
        keys, deployment = deploy_fresh(connect(chain.rpc_url), compiled, tmp_path / "deployment.json")
        data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
        server = start_server(data_dir, "REPD", keys["REPD"], tokens, chain.rpc_url, deployment)
        with server.client("officer") as officer, httpx.Client(base_url=server.url) as public:
            before = officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
            assert wait_anchored(officer, before.json()["links"]["bundle"]).status_code == 200

            chain.stop()
            assert _until(lambda: public.get("/readyz").status_code == 503)
            ready = public.get("/readyz").json()
            assert ready["ready"] is False and ready["chain"] is False
            assert any("chain unreachable" in p for p in ready["problems"])
            assert public.get("/healthz").status_code == 200

            during = officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
            assert during.status_code == 201, during.text  # accepted and durable, receipt signed
            assert officer.get(during.json()["links"]["bundle"]).status_code == 202
            assert officer.get(before.json()["links"]["self"]).json()["state"] == "anchored"

            chain = DevChain(config).start()
            assert _until(lambda: public.get("/readyz").status_code == 200, timeout=90)
            bundle = wait_anchored(officer, during.json()["links"]["bundle"], timeout=90)
            assert bundle.status_code == 200, bundle.text
            report = public.post("/v1/verify", content=bundle.content).json()
            assert report["verdict"] == "authentic-current", report
            last_read = officer.get(during.json()["links"]["self"]).headers["x-request-id"]
        # SIGTERM at once: the read's audit entry, still in the 50 ms buffer, must be flushed.
        assert stop_server(server) == 0, server.log_tail()
        with Store(data_dir / "store", bytes.fromhex(KEK)) as store:
            assert last_read in {e["requestId"] for e in store.export_audit()}
    finally:
        if server is not None:
            stop_server(server)
        chain.stop()


def _says(public: httpx.Client, problem: str) -> bool:
    """Whether /readyz names `problem`."""
    return any(problem in p for p in public.get("/readyz").json()["problems"])


def _bulk(officer: httpx.Client, count: int, start: int) -> list[dict[str, Any]]:
    """Create `count` title records in one bulk upload; their accepted lines."""
    body = "".join(
        json.dumps({"recordType": "title", "record": r}, ensure_ascii=False) + "\n"
        for r in numbered_records("title", count, start=start)
    )
    headers = {"Content-Type": "application/x-ndjson"}
    response = officer.post("/v1/records/bulk", content=body, headers=headers)
    assert response.status_code == 200, response.text[:2000]
    lines = [json.loads(line) for line in response.text.splitlines()][:-1]
    assert [line["status"] for line in lines] == ["accepted"] * count, lines[:3]
    return lines


def _all_anchored(public: httpx.Client, officer: httpx.Client, records: list[dict[str, Any]]) -> bool:
    """Nothing left to anchor (by /readyz) and the last of `records` anchored (by its record)."""
    if public.get("/readyz").json()["unanchored"] != 0:
        return False
    return bool(officer.get(f"/v1/records/title/{records[-1]['recordId']}").json()["state"] == "anchored")


def _chain_log(ledger: Any, agency: str) -> list[dict[str, Any]]:
    """The agency's BatchAnchored events on the chain, in seq order."""
    events = ledger.events.BatchAnchored().get_logs(
        argument_filters={"agency": agency_code(agency)}, from_block=0
    )
    return sorted((dict(e["args"]) for e in events), key=lambda a: a["seq"])


def test_a_chain_that_lost_the_last_blocks_gets_them_again(
    compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    """anvil is SIGKILLed under a loaded node, so its state file lacks the blocks of the node's
    last batches and revocation; started again from it, the chain's log is behind the node's.
    The node must notice, send those batches again in order with their own seq and prev root
    (every receipt's leaf anchored exactly once), redo the revocation, and say on /readyz, while
    it cannot anchor, that anchoring makes no progress.

    The loss is made certain, not left to when anvil's periodic dump falls: anvil dumps only when
    stopped (a day between dumps), so a stop and start after the first load is the last dump,
    and the kill loses everything after it."""
    config = DevChainConfig(
        port=free_port(), block_time=1.0, data_dir=tmp_path / "chain", state_interval=86_400
    )
    chain = DevChain(config).start()
    server = None
    try:
        w3 = connect(chain.rpc_url)
        keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
        ledger = w3.eth.contract(
            address=json.loads(deployment.read_text())["contracts"]["RecordLedger"]["address"],
            abi=compiled["RecordLedger"].abi,
        )
        data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
        server = start_server(
            data_dir,
            "REPD",
            keys["REPD"],
            tokens,
            chain.rpc_url,
            deployment,
            "--batch-size",
            "300",
            "--ready-max-stall",
            "5",
            # Receipts promise anchoring within 600 s: a promise is at risk here once a leaf has
            # waited 10 s, so the outage below shows that rule too.
            "--ready-anchor-margin",
            "590",
        )
        with server.client("officer") as officer, httpx.Client(base_url=server.url) as public:
            kept = _bulk(officer, 900, start=1)
            assert _until(lambda: _all_anchored(public, officer, kept), timeout=120)
            chain.stop()  # SIGINT: anvil dumps its state, the last dump it will make
            chain = DevChain(config).start()
            kept_log = _chain_log(ledger, "REPD")
            lost = _bulk(officer, 1500, start=10_000)
            revoked = kept[0]
            with server.client("supervisor") as supervisor:
                answer = supervisor.post(
                    f"/v1/records/title/{revoked['recordId']}/revocation", json={"version": 1, "reason": 1}
                )
            assert answer.status_code == 200, answer.text
            leaf = bytes.fromhex(revoked["leaf"].removeprefix("0x"))
            assert _until(lambda: _all_anchored(public, officer, lost), timeout=120)
            assert _until(lambda: ledger.functions.leafStatus(agency_code("REPD"), leaf).call()[0] == 2)
            before_kill = _chain_log(ledger, "REPD")
            assert len(before_kill) > len(kept_log)

            # Kill anvil under load: once the node anchors from a third upload, still under way
            # or just done, with more batches in flight and queued. The blocks since the dump
            # are gone with it.
            with ThreadPoolExecutor(1) as pool, server.client("officer") as loader:
                loading = pool.submit(_bulk, loader, 3000, 20_000)
                assert _until(lambda: len(_chain_log(ledger, "REPD")) > len(before_kill), timeout=120)
                chain.kill()
                during = loading.result(timeout=120)
            during += _bulk(officer, 600, start=30_000)  # taken in while the chain is away
            assert _until(lambda: _says(public, "anchoring has made no progress"), timeout=60)
            assert _until(lambda: _says(public, "anchoring promise at risk"), timeout=60)
            ready = public.get("/readyz")
            assert ready.status_code == 503 and ready.json()["unanchored"] >= 600, ready.json()
            # At risk means less than 590 s left, so the oldest leaf has waited more than 10 s; the
            # JSON gives tenths, so 589.96 reads 590.0 and an age of 10.04 reads 10.0.
            assert 0 < ready.json()["anchorBySlack"] <= 590 and ready.json()["oldestUnanchoredAge"] >= 10
            metrics = public.get("/metrics").text
            assert f"sijill_unanchored_leaves {ready.json()['unanchored']}" in metrics
            assert public.get("/healthz").status_code == 200  # liveness: the process answers
            chain = DevChain(config).start()
            assert _chain_log(ledger, "REPD") == kept_log, "the kill lost the later batches"
            assert ledger.functions.leafStatus(agency_code("REPD"), leaf).call()[0] == 0

            # Healed: every record anchored, the chain's log as long as the node's, revocation redone.
            assert _until(lambda: _all_anchored(public, officer, kept + lost + during), timeout=180), (
                public.get("/readyz").json()
            )
            assert _until(lambda: ledger.functions.leafStatus(agency_code("REPD"), leaf).call()[0] == 2)
            assert _until(lambda: public.get("/readyz").status_code == 200, timeout=90)
            ready = public.get("/readyz").json()
            assert ready["unanchored"] == 0 and ready["anchoringStalledFor"] == 0, ready
            for record in (kept[1], lost[-1], during[0]):
                bundle = wait_anchored(officer, f"/v1/records/title/{record['recordId']}/bundle")
                report = public.post("/v1/verify", content=bundle.content).json()
                assert report["verdict"] == "authentic-current", report
        assert stop_server(server) == 0, server.log_tail()
        chain_log = _chain_log(ledger, "REPD")
        assert [e["seq"] for e in chain_log] == list(range(1, len(chain_log) + 1)), "gapless"
        assert all(e["prevRoot"] == p["root"] for p, e in itertools.pairwise(chain_log))
        assert sum(e["count"] for e in chain_log) == 900 + 1500 + 3600, "every leaf anchored once"
        with Store(data_dir / "store", bytes.fromhex(KEK)) as store:
            node_log = [entry["root"] for _, entry in store.iter_json(b"log/")]
            assert node_log == [e["root"].hex() for e in chain_log], "the node's log is the chain's"
            for record in kept + lost + during:
                found = read_proof(store, bytes.fromhex(record["leaf"].removeprefix("0x")))
                assert found is not None and found[0].hex() in node_log
        assert "are not on it and are sent again" in server.log.read_text(errors="replace")
    finally:
        if server is not None:
            stop_server(server)
        chain.stop()
