"""Two `sijill serve` processes of one agency on one PostgreSQL database (docs/storage.md).

Both take records and answer reads; the holder of the batcher lease alone batches, anchors and
indexes. With officers posting to both, the holder is SIGKILLed: the other takes the lease
over within seconds, and at the end every acknowledged record is anchored, exactly once, and
its bundle verifies. Amending one record from both processes at once gives one new version,
not two; the same Idempotency-Key sent to both at once creates one record."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Server, deploy_fresh, init_node_by_cli, start_server, stop_server, wait_anchored
from pg_cluster import PgCluster, wait_for
from web3 import Web3

from ledger.codes import agency_code
from ledger.records.examples import title_example
from node.chain.toolchain import CompiledContract

pytestmark = pytest.mark.chain


def _lease(cluster: PgCluster, db: str) -> dict[str, Any] | None:
    rows = cluster.sql(db, "SELECT value FROM sijill_store WHERE key = 'lease/batcher'::bytea")
    return json.loads(bytes(rows[0][0])) if rows else None


def _holder_pid(cluster: PgCluster, db: str) -> int | None:
    lease = _lease(cluster, db)
    return int(lease["holder"].split("/")[1]) if lease and lease["holder"] else None


def _batcher(server: Server) -> tuple[bool, int]:
    """Whether `server` says it holds the batcher lease: /readyz's `batcher`, and the gauge."""
    ready = httpx.get(server.url + "/readyz", timeout=30).json()["batcher"]
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    gauge = next(line for line in metrics.splitlines() if line.startswith("sijill_batcher_lease_held "))
    return ready, int(float(gauge.split()[1]))


def anchored_once(ledger: Any, cluster: PgCluster, db: str, acknowledged: int) -> int:
    """Check that the agency's batches on the chain anchor every record of the store exactly
    once: as many leaves as the store has records (the acknowledged ones, and any a killed
    process committed without answering), no root twice, seq numbers without a gap. The number
    of batches."""
    events = ledger.events.BatchAnchored().get_logs(
        argument_filters={"agency": agency_code("REPD")}, from_block=0
    )
    batches = sorted((dict(e["args"]) for e in events), key=lambda a: a["seq"])
    assert [b["seq"] for b in batches] == list(range(1, len(batches) + 1))
    assert len({b["root"] for b in batches}) == len(batches)
    stored = cluster.sql(
        db, "SELECT count(*) FROM sijill_store WHERE key >= 'leaf/'::bytea AND key < 'leaf0'::bytea"
    )
    assert sum(b["count"] for b in batches) == stored[0][0] >= acknowledged
    return len(batches)


@pytest.fixture
def pair(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, pg_cluster: PgCluster, tmp_path: Path
) -> Iterator[tuple[list[Server], str, Any]]:
    """REPD's node as two processes on one database, each with its own data directory (its
    admin socket and log) and the same signer keystore."""
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    uri = pg_cluster.create_database()
    db = uri.rsplit("/", 1)[1]
    first, second = tmp_path / "repd-a", tmp_path / "repd-b"
    officers = {"officer": "Mona Adel", "supervisor": "Karim Fathy"}
    tokens = init_node_by_cli(first, "REPD", keys["REPD"], uri, officers, also=second)
    servers = [
        # No rate limit: the officers post as fast as they can, and the check reads every bundle.
        start_server(
            d, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, "--rate-limit", "0", store=uri
        )
        for d in (first, second)
    ]
    ledger = w3.eth.contract(
        address=json.loads(deployment.read_text())["contracts"]["RecordLedger"]["address"],
        abi=compiled["RecordLedger"].abi,
    )
    try:
        yield servers, db, ledger
    finally:
        for server in servers:
            stop_server(server)


def test_the_lease_holder_is_killed_under_intake_and_nothing_is_lost_or_anchored_twice(
    pair: tuple[list[Server], str, Any], pg_cluster: PgCluster
) -> None:
    servers, db, ledger = pair
    wait_for(lambda: _holder_pid(pg_cluster, db) is not None, what="a lease holder")
    by_pid = {s.process.pid: s for s in servers}
    holder = by_pid[_holder_pid(pg_cluster, db)]  # type: ignore[index]
    follower = next(s for s in servers if s is not holder)
    assert _batcher(holder) == (True, 1) and _batcher(follower) == (False, 0)  # /readyz and /metrics say who
    acknowledged: list[dict[str, Any]] = []
    refused: list[float] = []  # when a post to the survivor failed (none expected)
    lock = threading.Lock()
    stop = threading.Event()

    def post(server: Server) -> None:
        with server.client("officer") as officer:
            while not stop.is_set():
                try:
                    answer = officer.post(
                        "/v1/records", json={"recordType": "title", "record": title_example()}
                    )
                except httpx.TransportError:
                    if server is holder:
                        return  # killed: what it acknowledged before is counted
                    with lock:
                        refused.append(time.monotonic())
                    continue
                with lock:
                    if answer.status_code == 201:
                        acknowledged.append(answer.json())
                    elif server is follower:
                        refused.append(time.monotonic())

    posters = [threading.Thread(target=post, args=(s,)) for s in (holder, follower, follower)]
    for thread in posters:
        thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 150, what="150 records taken in by both processes")
        anchored_before = ledger.functions.head(agency_code("REPD")).call()[1]
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait()
        killed_at = time.monotonic()
        wait_for(
            lambda: _holder_pid(pg_cluster, db) == follower.process.pid, what="the survivor takes the lease"
        )
        took_over = time.monotonic() - killed_at
        count_then = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= count_then + 100, what="intake going on at the survivor")
    finally:
        stop.set()
        for thread in posters:
            thread.join()
    assert took_over < 15, took_over  # the lease's 5 s, and the survivor's next look
    wait_for(lambda: _batcher(follower) == (True, 1), what="the survivor's /readyz to say it batches")
    assert refused == []  # the survivor never refused a record
    with follower.client("officer") as officer, httpx.Client(base_url=follower.url) as public:
        for made in acknowledged:  # every acknowledged record: anchored, and its bundle verifies
            bundle = wait_anchored(officer, made["links"]["bundle"], timeout=120)
            assert bundle.status_code == 200, bundle.text
        sample = acknowledged[:: max(1, len(acknowledged) // 25)]
        for made in sample:
            bundle = officer.get(made["links"]["bundle"])
            report = public.post("/v1/verify", content=bundle.content)
            assert report.json()["verdict"] == "authentic-current", report.text
        wait_for(lambda: public.get("/readyz").json()["unanchored"] == 0, what="nothing left to anchor")
    batches = anchored_once(ledger, pg_cluster, db, len(acknowledged))
    assert batches > anchored_before
    lease = _lease(pg_cluster, db)
    assert lease is not None and lease["epoch"] >= 2
    print(f"\ntakeover {took_over:.1f} s; {len(acknowledged)} acknowledged; {batches} batches")


def test_both_processes_amending_one_record_make_one_version(pair: tuple[list[Server], str, Any]) -> None:
    servers, _, _ = pair
    with servers[0].client("officer") as officer:
        made = officer.post("/v1/records", json={"recordType": "title", "record": title_example()}).json()
    path = made["links"]["self"]
    go = threading.Barrier(len(servers) * 4)
    answers: list[int] = []

    def amend(server: Server, n: int) -> None:
        body = {"amends": 1, "reason": 1, "record": {**title_example(), "area_m2": f"{100 + n}.5"}}
        with server.client("supervisor") as client:
            go.wait()
            answers.append(client.post(path + "/versions", json=body).status_code)

    threads = [threading.Thread(target=amend, args=(s, n)) for n in range(4) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] + [409] * (len(threads) - 1), answers
    with servers[1].client("officer") as officer:
        assert officer.get(path).json()["version"] == 2


def test_one_idempotency_key_sent_to_both_processes_creates_one_record(
    pair: tuple[list[Server], str, Any],
) -> None:
    servers, _, _ = pair
    for attempt in range(5):
        key = f"both-{attempt}"
        go = threading.Barrier(len(servers))
        answers: list[httpx.Response] = []

        def create(server: Server) -> None:
            headers = {"Authorization": f"Bearer {server.tokens['officer']}", "Idempotency-Key": key}  # noqa: B023
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                go.wait()  # noqa: B023
                answers.append(  # noqa: B023
                    client.post("/v1/records", json={"recordType": "title", "record": title_example()})
                )

        threads = [threading.Thread(target=create, args=(s,)) for s in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = sorted(a.status_code for a in answers)
        assert codes in ([201, 201], [201, 409]), [a.text for a in answers]
        made = {a.json()["recordId"] for a in answers if a.status_code == 201}
        assert len(made) == 1, answers  # a replay returns the first answer, never a second record


def test_a_paused_holder_resumes_as_a_follower_and_sends_nothing(
    pair: tuple[list[Server], str, Any], pg_cluster: PgCluster
) -> None:
    """SIGSTOP the lease holder (a stalled VM, a long GC pause): the other takes over; SIGCONT:
    the old holder finds the lease taken, follows, and keeps taking records that the new
    holder anchors. Its writes as batcher would be refused by the fencing number, and it sends
    nothing while its lease has run out: the chain's log stays gapless, each leaf once."""
    servers, db, ledger = pair
    wait_for(lambda: _holder_pid(pg_cluster, db) is not None, what="a lease holder")
    holder = next(s for s in servers if s.process.pid == _holder_pid(pg_cluster, db))
    follower = next(s for s in servers if s is not holder)
    made: list[dict[str, Any]] = []

    def post(server: Server, count: int) -> None:
        made.extend(post_titles_to(server, count))

    post(holder, 20)
    holder.process.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _holder_pid(pg_cluster, db) == follower.process.pid, what="the other takes over")
        post(follower, 30)
    finally:
        holder.process.send_signal(signal.SIGCONT)
    post(holder, 30)  # the resumed process takes intake as a follower
    with follower.client("officer") as officer:
        for record in made:
            assert wait_anchored(officer, record["links"]["bundle"], timeout=120).status_code == 200
    wait_for(
        lambda: "holds the batcher lease: following" in holder.log.read_text(errors="replace"),
        what="the resumed process to say it follows",
    )
    assert _holder_pid(pg_cluster, db) == follower.process.pid  # it did not take the lease back
    anchored_once(ledger, pg_cluster, db, len(made))


def post_titles_to(server: Server, count: int) -> list[dict[str, Any]]:
    with server.client("officer") as officer:
        answers = [
            officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
            for _ in range(count)
        ]
    assert [a.status_code for a in answers] == [201] * count, answers[0].text
    return [a.json() for a in answers]
