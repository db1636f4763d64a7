"""`sijill demo` (what `make run` starts), as a real process on free ports: chain, three APIs,
tokens and anchored demo records; Ctrl-C stops every child and exits 0; a second run reuses
the chain, nodes, tokens and records and creates nothing new, nor does a run after a crash
that lost the last record's id. With `--store postgresql` the nodes keep their stores in a
PostgreSQL cluster the demo starts, and stops when Ctrl-C stops it. And the chain's genesis
survives restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import demo_helpers
import pytest
import requests
from demo_helpers import AGENCIES, KINDS, DemoProcess, alive, children, listening, port_base

from node.chain.client import connect
from node.chain.deploy import dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.peer.client import PeerClient
from node.store import Store

pytestmark = [pytest.mark.chain, pytest.mark.timeout(600)]


def _run_once(data_dir: Path, chain_port: int, api_base: int) -> dict[str, Any]:
    """One run: up, checked, interrupted; what it showed."""
    demo = DemoProcess(data_dir, chain_port, api_base)
    try:
        demo.wait_for_summary()
        ports = [api_base + i for i in range(3)]
        for port in ports:
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        officers = json.loads((data_dir / "officers.json").read_text())["agencies"]
        records = json.loads((data_dir / "demo-records.json").read_text())
        assert records["complete"] and len(records["records"]) == 6
        for code, port in zip(AGENCIES, ports, strict=True):
            mine = [r for r in records["records"] if r["agency"] == code]
            assert len(mine) == 2 and all(r["version"] == 1 for r in mine)
            token = officers[code]["officer"]["token"]
            bundle = requests.get(
                f"http://127.0.0.1:{port}/v1/records/{mine[0]['recordType']}/{mine[0]['recordId']}/bundle",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert bundle.status_code == 200, bundle.text
            for role in ("officer", "supervisor", "auditor"):
                assert officers[code][role]["token"] in demo.output
        for record in records["records"]:
            assert record["recordId"] in demo.output
        # Node to node: CSO's node (dev account 2) reads a REPD title as its peer policy allows.
        title = next(r for r in records["records"] if r["agency"] == "REPD")
        cso_key = bytes(dev_accounts(3)[2].key)
        with PeerClient(
            f"http://127.0.0.1:{api_base}", agency="CSO", audience="REPD", account_key=cso_key
        ) as peer:
            shown = peer.fetch_bundle("title", title["recordId"])
        assert {d.path for d in shown.disclosed} >= {"/title_number", "/owners/0/name"}
        assert not any("national_id" in d.path for d in shown.disclosed)
        assert f"http://127.0.0.1:{chain_port}" in demo.output
        assert f"http://127.0.0.1:{api_base}/openapi.json" in demo.output
        # The summary's tables keep every cell whole on a piped output (80 columns by default).
        lines = demo.output.splitlines()
        for code, port in zip(AGENCIES, ports, strict=True):
            row = next(line for line in lines if f"http://127.0.0.1:{port}/openapi.json" in line)
            assert f" {code} " in row and f" {KINDS[code]} " in row, row
        for record in records["records"]:
            row = next(line for line in lines if record["recordId"] in line and "│" in line)
            assert f" {record['recordType']} " in row and "…" not in row, row
        # Each record has a certificate whose QR code opens its verify page and disclosed bundle.
        for record in records["records"]:
            certificate = record["certificate"]
            assert certificate["verify"] in demo.output and certificate["pdf"] in demo.output
            page = requests.get(certificate["verify"], timeout=10)
            assert page.status_code == 200 and "sijill-config" in page.text
            shared = requests.get(certificate["bundle"], timeout=10)
            assert shared.status_code == 200, shared.text
            assert not any("national_id" in d["path"] for d in shared.json()["disclosed"])
        pids = children(demo.process.pid)
        assert len(pids) == 4, pids  # anvil and three APIs
        status = demo.interrupt()
    except BaseException:
        demo.stop()
        raise
    assert status == 0, demo.output
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids), demo.output
    assert not any(listening(port) for port in (chain_port, *ports))
    assert "Stopped the APIs (REPD, CSO, CRA)" in demo.output and "Stopped the chain" in demo.output
    for code in AGENCIES:  # the summary names each node's store
        assert f"leveldb:{data_dir / code.lower() / 'store'}" in demo.output
    return {"output": demo.output, "officers": officers, "records": records}


def _audit_actions(node_dir: Path) -> list[str]:
    kek = bytes.fromhex((node_dir / "dev-kek").read_text())
    with Store(node_dir / "store", kek) as store:
        return [entry["action"] for entry in store.export_audit()]


def test_demo_runs_stops_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    chain_port, api_base = free_port(), port_base()

    first = _run_once(data_dir, chain_port, api_base)
    assert "Contracts: deployed" in first["output"]
    assert "Records: created 6 demo records" in first["output"]
    assert (data_dir / "officers.json").stat().st_mode & 0o777 == 0o600
    for code in AGENCIES:
        assert (data_dir / code.lower() / "serve.log").exists()

    second = _run_once(data_dir, chain_port, api_base)
    assert "Contracts: reused" in second["output"]
    assert "Records: created" not in second["output"]
    assert second["officers"] == first["officers"]
    assert second["records"] == first["records"]

    # Killed between a record's creation and its saving: the Idempotency-Key gets the same record back.
    marker = data_dir / "demo-records.json"
    unsaved = {**first["records"], "records": first["records"]["records"][:-1], "complete": False}
    marker.write_text(json.dumps(unsaved))
    third = _run_once(data_dir, chain_port, api_base)
    assert "Records: created 1 demo record " in third["output"]
    assert "Certificates: made 1 " in third["output"]  # the unsaved record's certificate is made anew
    without_last_certificate = [
        {k: v for k, v in r.items() if k != "certificate"} for r in third["records"]["records"]
    ]
    assert without_last_certificate == [
        {k: v for k, v in r.items() if k != "certificate"} for r in first["records"]["records"]
    ]
    assert third["records"]["records"][:-1] == first["records"]["records"][:-1]
    for code in AGENCIES:
        actions = _audit_actions(data_dir / code.lower())
        assert actions.count("record.create") == 2, actions
        assert actions.count("officer.add") == 3, actions


def test_a_restarted_chain_keeps_its_genesis(tmp_path: Path) -> None:
    """anvil adds a genesis of its own to each dump of a loaded state and later picks one of the
    saved ones; DevChain.start keeps the first (`keep_first_genesis`), or block 0 would change
    within a few restarts and the deployment would no longer match."""
    port, hashes = free_port(), []
    for _ in range(6):
        with DevChain(DevChainConfig(port=port, data_dir=tmp_path, block_time=1.0)) as chain:
            hashes.append(connect(chain.rpc_url).eth.get_block(0)["hash"])
            time.sleep(1.2)
    assert len(set(hashes)) == 1, hashes
    state = json.loads((tmp_path / "state.json").read_text())
    assert [int(b["header"]["number"], 16) for b in state["blocks"]].count(
        0
    ) == 2  # the first, and this run's


def test_demo_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sijill demo --store postgresql` (here through SIJILL_DEMO_STORE, as a shell exporting it
    gives it): each node's store is a database of a PostgreSQL cluster the demo starts in its
    directory; the summary names them without the password; a record verifies; Ctrl-C leaves no
    process of the cluster running."""
    # As root the cluster runs as the postgres user, which must reach the demo's directory: not
    # one under pytest's tmp_path (mode 0700).
    base = Path(tempfile.mkdtemp(prefix="sijill-demo-pg-"))
    os.chmod(base, 0o755)
    data_dir = base / "demo"
    env = demo_helpers.clean_env
    monkeypatch.setattr(demo_helpers, "clean_env", lambda: {**env(), "SIJILL_DEMO_STORE": "postgresql"})
    chain_port, api_base = free_port(), port_base()
    pid_file = data_dir / "postgresql" / "data" / "postmaster.pid"
    try:
        demo = DemoProcess(data_dir, chain_port, api_base)
        try:
            demo.wait_for_summary()
            postmaster, pg_port, server = _server(pid_file)
            assert alive(postmaster) and listening(pg_port)
            _check_postgresql_demo(demo, data_dir, api_base, pg_port)
            status = demo.interrupt()
        except BaseException:
            demo.stop()
            raise
        assert status == 0, demo.output
        assert "Stopped the PostgreSQL cluster" in demo.output, demo.output
        assert not pid_file.exists()
        assert not any(alive(pid) for pid in server), server
        assert not listening(pg_port)
    finally:
        if pid_file.exists():  # a failed run's server: killed with its backends (its own session)
            os.killpg(_server(pid_file)[0], signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


def _server(pid_file: Path) -> tuple[int, int, list[int]]:
    """The postmaster's pid and port (postmaster.pid) and its processes, itself included."""
    lines = pid_file.read_text().splitlines()
    postmaster = int(lines[0])
    return postmaster, int(lines[3]), [postmaster, *children(postmaster)]


def _check_postgresql_demo(demo: DemoProcess, data_dir: Path, api_base: int, pg_port: int) -> None:
    """The stores are the cluster's databases, named without the password, and a record verifies."""
    password = (data_dir / "postgresql" / "password").read_text().strip()
    for code in AGENCIES:
        assert f"postgresql://postgres@127.0.0.1:{pg_port}/sijill_{code.lower()}" in demo.output
        assert not (data_dir / code.lower() / "store").exists()  # not on LevelDB
        assert password not in (data_dir / code.lower() / "serve.log").read_text()
    assert password not in demo.output
    for pid in children(demo.process.pid):  # nor on a command line, which any user can read
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    records = json.loads((data_dir / "demo-records.json").read_text())["records"]
    officers = json.loads((data_dir / "officers.json").read_text())["agencies"]
    assert len(records) == 6 and all(r["version"] == 1 for r in records)
    record = next(r for r in records if r["agency"] == "CSO")
    url = f"http://127.0.0.1:{api_base + 1}"
    bundle = requests.get(
        f"{url}/v1/records/{record['recordType']}/{record['recordId']}/bundle",
        headers={"Authorization": f"Bearer {officers['CSO']['officer']['token']}"},
        timeout=10,
    )
    assert bundle.status_code == 200, bundle.text
    report = requests.post(f"{url}/v1/verify", data=bundle.content, timeout=10).json()
    assert report["verdict"] == "authentic-current", report


@pytest.mark.parametrize("store", ["leveldb", "postgresql"])
def test_demo_stops_when_what_it_started_dies(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo watches what it started, not only its APIs: when its chain (on LevelDB) or its
    PostgreSQL server (on PostgreSQL) dies under it, it says which, stops the rest and exits 1,
    instead of going on with nodes that can only answer 503 or no longer anchor."""
    base = Path(tempfile.mkdtemp(prefix="sijill-demo-dies-"))
    os.chmod(base, 0o755)  # as root the cluster's server runs as postgres, which must reach it
    data_dir = base / "demo"
    env = demo_helpers.clean_env
    monkeypatch.setattr(demo_helpers, "clean_env", lambda: {**env(), "SIJILL_DEMO_STORE": store})
    pid_file = data_dir / "postgresql" / "data" / "postmaster.pid"
    try:
        demo = DemoProcess(data_dir, free_port(), port_base())
        try:
            demo.wait_for_summary()
            helpers = children(demo.process.pid)
            if store == "postgresql":
                os.kill(_server(pid_file)[0], signal.SIGKILL)
                said = "the PostgreSQL cluster stopped"
            else:
                anvil = [pid for pid in helpers if b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()]
                assert len(anvil) == 1, helpers
                os.kill(anvil[0], signal.SIGKILL)
                said = "the chain (anvil) exited with status -9"
            status = demo.process.wait(60)
            demo._reader.join(5)
        except BaseException:
            demo.stop()
            raise
        assert status == 1, demo.output
        assert said in demo.output and "Stopped the APIs (REPD, CSO, CRA)" in demo.output, demo.output
        assert not any(alive(pid) for pid in helpers), demo.output
    finally:
        if pid_file.exists() and alive(_server(pid_file)[0]):
            os.killpg(_server(pid_file)[0], signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
