"""The API while its chain is down: /healthz still answers, /readyz says why it is not ready,
officers can still create records (intake is durable without the chain), and once the chain
is back the records are anchored and verify."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from api_helpers import KEK, deploy_fresh, init_node, start_server, stop_server, wait_anchored
from records_examples import title_example

from node.chain import connect
from node.devchain import DevChain, DevChainConfig, free_port
from node.store import Store
from node.toolchain import CompiledContract

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
