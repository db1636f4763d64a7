"""A node on the PostgreSQL store, end to end: `sijill node init` and `sijill officer add` with
SIJILL_STORE, then `sijill serve --store postgresql://...`, which accepts records, anchors them
and serves bundles that verify; neither the cluster's files nor a `pg_dump` of its database
hold any of a record's field values, and neither the node's log, the server's log nor /metrics
the database password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import KEK, deploy_fresh, init_node_by_cli, start_server, stop_server, wait_anchored
from pg_cluster import PgCluster
from web3 import Web3

from ledger.records.examples import title_example
from node.chain.toolchain import CompiledContract
from node.store import Store

pytestmark = pytest.mark.chain

OWNER = "محمد عبد الرحمن السيد"  # title_example()'s owner and national ID
NATIONAL_ID = "27503221204139"


def test_serve_on_postgresql_anchors_records_and_keeps_them_private(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    uri = pg_cluster.create_database("repd")
    data_dir = tmp_path / "repd"
    # As an operator sets it up, the store's setting from the environment (SIJILL_STORE).
    tokens = init_node_by_cli(data_dir, "REPD", keys["REPD"], uri, {"officer": "Mona Adel"})
    server = start_server(
        data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, "--store", uri
    )
    try:
        with server.client("officer") as officer, httpx.Client(base_url=server.url) as public:
            created = [
                officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
                for _ in range(3)
            ]
            assert [c.status_code for c in created] == [201] * 3, created[0].text
            for response in created:
                bundle = wait_anchored(officer, response.json()["links"]["bundle"])
                assert bundle.status_code == 200, bundle.text
                report = public.post("/v1/verify", content=bundle.content)
                assert report.json()["verdict"] == "authentic-current", report.text
            record = officer.get(created[0].json()["links"]["self"]).json()
            assert record["record"]["owners"][0]["name"] == OWNER
            metrics = public.get("/metrics").text
            assert "sijill_backlog_leaves" in metrics and pg_cluster.password not in metrics
        assert not (data_dir / "store").exists()  # nothing went to LevelDB
    finally:
        stop_server(server)
    with Store(uri, bytes.fromhex(KEK)) as store:  # the node closed it: free again
        actions = [e["action"] for e in store.export_audit()]
        assert actions[0] == "officer.add" and actions.count("record.create") == 3
    disk = pg_cluster.files() + pg_cluster.dump("repd")
    assert b"record/title/" in disk  # the scan sees the store's rows
    values = sorted(v for v in _strings(title_example()) if len(v) >= 5)
    assert OWNER in values and NATIONAL_ID in values and "2019-09-17" in values
    assert [v for v in values if v.encode() in disk] == []
    for text in (server.log.read_text(errors="replace"), pg_cluster.log()):
        assert pg_cluster.password not in text


def _strings(value: Any) -> Iterator[str]:
    """Every string in a record (its field values), however deep."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
