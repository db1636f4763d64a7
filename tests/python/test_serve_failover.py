"""A PostgreSQL failover under two running `sijill serve` processes of one agency (issue 17,
docs/storage.md "High availability"): a primary with two synchronous standbys (`ANY 1 (s1,
s2)`), the nodes on a multi-host connection string (`target_session_attrs=read-write`), officers
posting to both. The primary's postmaster is SIGKILLed, the standby with the most WAL promoted
and the other repointed at it; intake goes on by itself, and at the end every acknowledged
record is on the new primary, anchored exactly once, and its bundle verifies. The seconds
during which intake was refused are printed (a benchmark figure, not a timed assertion)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    KEK,
    Server,
    deploy_fresh,
    init_node_by_cli,
    start_server,
    stop_server,
    wait_anchored,
)
from pg_cluster import PgCluster, wait_for
from test_serve_processes import anchored_once
from test_store_failover import QUORUM, conninfo
from web3 import Web3

from ledger.records.examples import title_example
from node.chain.toolchain import CompiledContract
from node.errors import StoreError
from node.store import Store

pytestmark = pytest.mark.chain


class Officers:
    """Threads posting titles to the nodes, keeping what was acknowledged and when a post was
    refused (an error answer or no answer)."""

    def __init__(self, servers: list[Server], per_server: int = 2) -> None:
        self.acked: list[tuple[float, dict[str, Any]]] = []
        self.refused: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._post, args=(s,), daemon=True)
            for s in servers
            for _ in range(per_server)
        ]
        for thread in self._threads:
            thread.start()

    def _post(self, server: Server) -> None:
        with server.client("officer") as officer:
            while not self._stop.is_set():
                try:
                    answer = officer.post(
                        "/v1/records", json={"recordType": "title", "record": title_example()}
                    )
                except httpx.TransportError as exc:
                    outcome: tuple[float, Any] | None = None
                    why = type(exc).__name__
                else:
                    outcome = (time.monotonic(), answer.json()) if answer.status_code == 201 else None
                    why = f"{answer.status_code} {answer.text[:200]}"
                with self._lock:
                    if outcome is not None:
                        self.acked.append(outcome)
                    else:
                        self.refused.append((time.monotonic(), why))
                if outcome is None:
                    self._stop.wait(0.1)

    def wait(self, count: int, what: str) -> None:
        wait_for(lambda: len(self.acked) >= count, what=what, timeout=120)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def test_intake_goes_on_across_a_failover_and_every_acknowledged_record_is_anchored_once(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path: Path
) -> None:
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    ledger = w3.eth.contract(
        address=json.loads(deployment.read_text())["contracts"]["RecordLedger"]["address"],
        abi=compiled["RecordLedger"].abi,
    )
    with ExitStack() as stack:
        primary = stack.enter_context(PgCluster())
        primary.create_database("repd")
        primary.set("synchronous_standby_names", QUORUM)
        s1 = primary.base_backup(standby="s1")
        stack.callback(s1.stop)
        s2 = primary.base_backup(standby="s2")
        stack.callback(s2.stop)
        primary.wait_standby("s1", "quorum")
        primary.wait_standby("s2", "quorum")
        store = conninfo(primary.password, primary, s1, s2, dbname="repd")

        first, second = tmp_path / "repd-a", tmp_path / "repd-b"
        tokens = init_node_by_cli(first, "REPD", keys["REPD"], store, {"officer": "Mona Adel"}, also=second)
        servers = []
        for data_dir in (first, second):
            server = start_server(
                data_dir,
                "REPD",
                keys["REPD"],
                tokens,
                devchain.rpc_url,
                deployment,
                "--rate-limit",
                "0",
                store=store,
            )  # no rate limit: the officers post as fast as they can, and the check reads every bundle
            stack.callback(stop_server, server)
            servers.append(server)

        officers = Officers(servers)
        try:
            officers.wait(100, "100 records before the failover")
            primary.kill()
            died = time.monotonic()
            acked_before = len(officers.acked)
            new, other = (s1, s2) if s1.receive_lsn() >= s2.receive_lsn() else (s2, s1)
            new.promote()
            other.follow(new, "s2" if other is s2 else "s1")
            officers.wait(acked_before + 150, "150 records after the failover")
        finally:
            officers.stop()
        # How long intake stood still: the longest time without an acknowledgement from the
        # last one before the kill on (requests already committed may still be answered just
        # after it; the gap that follows is what officers saw).
        times = sorted(at for at, _ in officers.acked)
        last_before = max(at for at in times if at <= died)
        after = [last_before] + [at for at in times if at > died]
        stood_still = max(b - a for a, b in pairwise(after))
        refused_after = [why for at, why in officers.refused if at >= died]
        new.wait_standby("s2" if other is s2 else "s1", "quorum")  # synchronous again

        # The nodes took their shared lock again on the new primary: a tool that needs the store
        # alone is refused again while they run.
        def tool_refused() -> bool:
            try:
                Store(store, bytes.fromhex(KEK)).close()
            except StoreError as exc:
                return "in use by another process" in str(exc)
            return False

        wait_for(tool_refused, what="the nodes' shared lock on the new primary")

        # Every acknowledged record: on the new primary, anchored, its bundle verifying.
        acknowledged = [made for _, made in officers.acked]
        with servers[0].client("officer") as officer, httpx.Client(base_url=servers[1].url) as public:
            for made in acknowledged:
                bundle = wait_anchored(officer, made["links"]["bundle"], timeout=180)
                assert bundle.status_code == 200, bundle.text
            for made in acknowledged[:: max(1, len(acknowledged) // 20)]:
                report = public.post("/v1/verify", content=officer.get(made["links"]["bundle"]).content)
                assert report.json()["verdict"] == "authentic-current", report.text
            wait_for(lambda: public.get("/readyz").json()["unanchored"] == 0, what="nothing left to anchor")
        batches = anchored_once(ledger, new, "repd", len(acknowledged))
        for server in servers:
            assert server.process.poll() is None, server.log_tail()  # both served throughout
            assert "Traceback" not in server.log.read_text(errors="replace")  # 503s, warnings
        print(
            f"\nfailover under two nodes: no record acknowledged for {stood_still:.2f} s at most "
            f"({len(refused_after)} refused posts, e.g. {refused_after[:1]}); {len(acknowledged)} "
            f"acknowledged, all anchored once in {batches} batches"
        )
