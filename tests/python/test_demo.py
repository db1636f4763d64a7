"""`sijill demo` (what `make run` starts), as a real process on free ports: chain, three APIs,
tokens and anchored demo records; Ctrl-C stops every child and exits 0; a second run reuses
the chain, nodes, tokens and records and creates nothing new, nor does a run after a crash
that lost the last record's id. And the chain's genesis survives restarts."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from node.chain import connect
from node.deploy import dev_accounts
from node.devchain import DevChain, DevChainConfig, free_port
from node.peer import PeerClient
from node.store import Store
from node.toolchain import PROJECT_ROOT

pytestmark = [pytest.mark.chain, pytest.mark.timeout(600)]

SUMMARY = "Sijill demo running; press Ctrl-C to stop."
AGENCIES = ("REPD", "CSO", "CRA")


def _port_base() -> int:
    """A random base in 20000-40000 with it and the next two ports free."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randint(20_000, 40_000 - 2)
        if all(_bindable(base + i) for i in range(3)):
            return base
    raise AssertionError("no three consecutive free ports between 20000 and 40000")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class DemoProcess:
    """`sijill demo` running in the background, its output collected line by line."""

    def __init__(self, data_dir: Path, chain_port: int, api_base: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
        args = [
            "--data-dir",
            str(data_dir),
            "--chain-port",
            str(chain_port),
            "--api-port-base",
            str(api_base),
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "demo", *args],
            cwd=PROJECT_ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_summary(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while SUMMARY not in self.lines:
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"demo exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no summary within {timeout}s:\n{self.output}")
            time.sleep(0.2)

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C; the exit status, which must come within `timeout`."""
        self.process.send_signal(signal.SIGINT)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"demo still running {timeout}s after SIGINT:\n{self.output}") from None
        self._reader.join(5)
        return status

    def stop(self) -> None:
        """Leave nothing behind whatever happened (a failing test)."""
        for pid in _children(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()


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
        # Each record has a certificate whose QR code opens its verify page and disclosed bundle.
        for record in records["records"]:
            certificate = record["certificate"]
            assert certificate["verify"] in demo.output and certificate["pdf"] in demo.output
            page = requests.get(certificate["verify"], timeout=10)
            assert page.status_code == 200 and "sijill-config" in page.text
            shared = requests.get(certificate["bundle"], timeout=10)
            assert shared.status_code == 200, shared.text
            assert not any("national_id" in d["path"] for d in shared.json()["disclosed"])
        children = _children(demo.process.pid)
        assert len(children) == 4, children  # anvil and three APIs
        status = demo.interrupt()
    except BaseException:
        demo.stop()
        raise
    assert status == 0, demo.output
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children), demo.output
    assert not any(_listening(port) for port in (chain_port, *ports))
    assert "Stopped the APIs (REPD, CSO, CRA)" in demo.output and "Stopped the chain" in demo.output
    return {"output": demo.output, "officers": officers, "records": records}


def _audit_actions(node_dir: Path) -> list[str]:
    kek = bytes.fromhex((node_dir / "dev-kek").read_text())
    with Store(node_dir / "store", kek) as store:
        return [entry["action"] for entry in store.export_audit()]


def test_demo_runs_stops_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    chain_port, api_base = free_port(), _port_base()

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
