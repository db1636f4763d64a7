"""The running demo's processes: the dev chain and its deployment, the PostgreSQL cluster of
`--store postgresql` (`cli.demo_postgres`), a node and tokens for each demo agency, one `sijill
serve` per agency; started in order, watched, stopped in order.

`cli.demo` (the command) builds a `Demo` and drives it; the records and certificates it makes
through the APIs are `cli.demo_scenario`'s, the tables it prints `cli.demo_summary`'s.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests
import typer

from cli.demo import (
    DEMO_PEER_POLICIES,
    OFFICERS_FORMAT,
    READY_TIMEOUT,
    STOP_TIMEOUT,
    DemoAgency,
    child_env,
    out,
    read_json,
    sijill_command,
    write_private,
)
from cli.demo_postgres import DemoCluster
from cli.demo_scenario import create_records, make_certificates, wait_anchored
from node.errors import NodeError

if TYPE_CHECKING:
    from node.chain.devchain import DevChain

_LOG_MARKER = "--- sijill demo:"


class Demo:
    """The demo's processes and state; `start()`, then `watch()` until interrupted, `stop()`."""

    def __init__(
        self, data_dir: Path, chain_port: int, agencies: tuple[DemoAgency, ...], *, postgresql: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.chain_port = chain_port
        self.agencies = agencies
        #: The nodes' PostgreSQL cluster, None when their stores are on LevelDB.
        self.cluster = DemoCluster(data_dir / "postgresql") if postgresql else None
        self.chain: DevChain | None = None
        self.deployment: dict[str, Any] = {}
        self.apis: dict[str, subprocess.Popen[bytes]] = {}
        self.officers: dict[str, dict[str, dict[str, Any]]] = {}
        self.records: list[dict[str, Any]] = []
        self.states: dict[str, str] = {}  # record id -> "anchored", "pending" or what went wrong
        self._lock: IO[str] | None = None  # held for the process's lifetime

    @property
    def rpc_url(self) -> str:
        assert self.chain is not None, "the chain is started first"
        return self.chain.rpc_url

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def deployment_file(self) -> Path:
        return self.chain_dir / "deployment.json"

    @property
    def officers_file(self) -> Path:
        return self.data_dir / "officers.json"

    @property
    def records_file(self) -> Path:
        return self.data_dir / "demo-records.json"

    def node_dir(self, agency: DemoAgency) -> Path:
        return self.data_dir / agency.code.lower()

    def store(self, agency: DemoAgency, *, password: bool = False) -> str:
        """The node's `--store`: its LevelDB directory, or its database's URI (with the password
        for this process only: the nodes get it in their environment)."""
        if self.cluster is None:
            return f"leveldb:{self.node_dir(agency) / 'store'}"
        return self.cluster.uri(_database(agency), password=password)

    def child_env(self) -> dict[str, str]:
        """The environment of the `sijill` processes the demo starts."""
        return {**child_env(), **(self.cluster.env if self.cluster is not None else {})}

    # -- start ----------------------------------------------------------------------------------

    def lock(self) -> None:
        """Hold DATA_DIR/demo.lock while running: a second demo there would start a second
        chain over the same state file."""
        self.data_dir.mkdir(mode=0o755, parents=True, exist_ok=True)  # holds the tokens: not others'
        self._lock = (self.data_dir / "demo.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeError(f"a demo is already running on {self.data_dir}: stop it first") from None

    def reset(self) -> None:
        """Delete what earlier runs left (only the demo's own files: DATA_DIR may hold others)."""
        from cli.officer import open_node_store

        for agency in self.agencies:
            node_dir = self.node_dir(agency)
            try:
                open_node_store(node_dir, node_dir / "dev-kek").close()
            except NodeError as exc:
                if "in use" in str(exc):  # a `sijill serve` started by hand
                    raise
                # no node there, or a damaged one: deleted all the same
        DemoCluster(self.data_dir / "postgresql").remove()
        for path in (self.chain_dir, *(self.node_dir(a) for a in self.agencies)):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.officers_file, self.records_file):
            path.unlink(missing_ok=True)
        out.print(f"Reset: removed the demo's chain, nodes, stores, tokens and records from {self.data_dir}")

    def start(self) -> None:
        """PostgreSQL cluster, chain, deployment, nodes, tokens, APIs, records: each made once,
        reused afterwards."""
        if _listening(self.chain_port):
            raise NodeError(f"port {self.chain_port} (the chain) is in use; choose another --chain-port")
        for agency in self.agencies:
            if _listening(agency.port):
                raise NodeError(
                    f"port {agency.port} (the {agency.code} API) is in use, perhaps by a demo still "
                    "running; stop it or choose another --api-port-base"
                )
        self._check_stores()
        if self.cluster is not None:
            self._start_cluster(self.cluster)
        self._start_chain()
        for agency in self.agencies:
            self._init_node(agency)
            self._write_peer_policy(agency)
        self._issue_officers()
        for agency in self.agencies:
            self._start_api(agency)
        for agency in self.agencies:
            self._wait_ready(agency)
        create_records(self)
        wait_anchored(self)
        make_certificates(self)

    def _start_chain(self) -> None:
        from node.chain.client import connect
        from node.chain.deploy import (
            check_deployment,
            demo_network,
            deploy_network,
            dev_accounts,
            load_deployment,
        )
        from node.chain.devchain import DevChain, DevChainConfig
        from node.chain.toolchain import compile_contracts

        self.chain = DevChain(DevChainConfig(port=self.chain_port, data_dir=self.chain_dir, block_time=1.0))
        self.chain.start()
        out.print(f"Chain: anvil at {self.rpc_url}, state in {self.chain_dir}")
        w3 = connect(self.rpc_url)
        compiled = compile_contracts()
        nodes = self._set_up()
        if nodes:
            # Nodes hold batches anchored on the last deployment: a new one would not have them.
            problems = (
                check_deployment(w3, load_deployment(self.deployment_file), compiled)
                if self.deployment_file.exists()
                else [f"{self.deployment_file} is missing"]
            )
            if problems:
                raise NodeError(
                    f"the chain no longer holds the deployment the demo nodes ({', '.join(nodes)}) were set "
                    f"up with ({'; '.join(problems)}); start afresh with `sijill demo --reset`"
                )
        deployer, *signers = dev_accounts(4)
        spec = demo_network([s.address for s in signers])
        result = deploy_network(w3, deployer, spec, self.deployment_file, compiled=compiled)
        self.deployment = result.deployment
        out.print(f"Contracts: {'reused' if result.reused else 'deployed'} ({self.deployment_file})")

    def _set_up(self) -> list[str]:
        """The agencies whose nodes are set up already."""
        return [a.code for a in self.agencies if (self.node_dir(a) / "node.json").exists()]

    def _check_stores(self) -> None:
        """The nodes are set up with the stores this run asks for (LevelDB or PostgreSQL)."""
        on_leveldb = [a.code for a in self.agencies if (self.node_dir(a) / "store").is_dir()]
        if self.cluster is not None and on_leveldb:
            was, run = "LevelDB", "without --store postgresql"
        elif (
            self.cluster is None
            and self._set_up()
            and not on_leveldb
            and (self.data_dir / "postgresql").exists()
        ):
            was, run = "PostgreSQL", "with --store postgresql"
        else:
            return
        raise NodeError(
            f"the demo nodes in {self.data_dir} keep their stores on {was}: run the demo {run}, "
            "or start afresh with `sijill demo --reset`"
        )

    def _start_cluster(self, cluster: DemoCluster) -> None:
        made = cluster.start([_database(a) for a in self.agencies])
        if made and self._set_up():
            raise NodeError(
                f"the demo nodes' PostgreSQL cluster ({cluster.root}) is gone; "
                "start afresh with `sijill demo --reset`"
            )
        how = "made" if made else "reused"
        out.print(f"PostgreSQL: cluster {how} in {cluster.root}, listening on 127.0.0.1:{cluster.port}")

    def _init_node(self, agency: DemoAgency) -> None:
        node_dir = self.node_dir(agency)
        if (node_dir / "node.json").exists():
            out.print(f"Node {agency.code}: reusing {node_dir}")
            return
        init = [
            *sijill_command("node", "init"),
            *("--data-dir", str(node_dir), "--agency", agency.code, "--dev-account", str(agency.dev_account)),
            *("--store", self.store(agency)),
        ]
        done = subprocess.run(init, env=self.child_env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise NodeError(
                f"`sijill node init` for {agency.code} failed ({last}); "
                "start afresh with `sijill demo --reset`"
            )
        out.print(
            f"Node {agency.code}: set up in {node_dir} (dev account {agency.dev_account}), "
            f"store {self.store(agency)}"
        )

    def _write_peer_policy(self, agency: DemoAgency) -> None:
        """What the other demo agencies' nodes may see of this one's records (docs/api.md),
        written once: an operator's edits are kept."""
        path = self.node_dir(agency) / "peer-policy.json"
        if not path.exists() and agency.code in DEMO_PEER_POLICIES:
            path.write_text(json.dumps(DEMO_PEER_POLICIES[agency.code], indent=2) + "\n")

    def _issue_officers(self) -> None:
        """One token per role and agency, issued once; re-registered if a node lost it."""
        from cli.officer import ROLES, issue_token, open_node_store

        saved = read_json(self.officers_file)
        officers: dict[str, dict[str, dict[str, Any]]] = (
            saved["agencies"] if saved and saved.get("format") == OFFICERS_FORMAT else {}
        )
        now = int(time.time())
        for agency in self.agencies:
            node_dir = self.node_dir(agency)
            tokens = officers.setdefault(agency.code, {})
            with open_node_store(node_dir, node_dir / "dev-kek", self.store(agency, password=True)) as store:
                known = {t["tokenId"] for t in store.list_tokens()}
                for role in ROLES:
                    entry = tokens.get(role)
                    if entry is not None and store.find_token(entry["token"], now=now) is not None:
                        continue
                    # A node set up again gets back the token the demo has been showing; a
                    # revoked or expired one is replaced.
                    again = entry is not None and entry["tokenId"] not in known
                    name = f"Demo {role} ({agency.code})"
                    issued = issue_token(
                        store,
                        agency=agency.code,
                        role=role,
                        name=name,
                        expires_at=None,
                        now=now,
                        token=entry["token"] if again and entry is not None else None,
                    )
                    tokens[role] = {"token": issued.token, "tokenId": issued.token_id, "name": name}
        write_private(self.officers_file, {"format": OFFICERS_FORMAT, "agencies": officers})
        self.officers = officers

    def _start_api(self, agency: DemoAgency) -> None:
        node_dir = self.node_dir(agency)
        log_path = node_dir / "serve.log"
        serve = [
            *sijill_command("serve"),
            *("--data-dir", str(node_dir), "--agency", agency.code, "--rpc", self.rpc_url),
            *("--store", self.store(agency)),
            *("--deployment", str(self.deployment_file), "--host", "127.0.0.1", "--port", str(agency.port)),
            *("--max-age", "1.0"),
            # The verify page offers the other agencies' chain endpoints for a cross-check.
            *(
                arg
                for other in self.agencies
                if other != agency
                for arg in ("--verify-peer", f"{other.api_url}/rpc")
            ),
        ]
        with log_path.open("ab") as log:
            log.write(f"\n{_LOG_MARKER} {time.strftime('%Y-%m-%d %H:%M:%S')}: starting the API\n".encode())
            log.flush()
            self.apis[agency.code] = subprocess.Popen(
                serve,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.child_env(),
                start_new_session=True,  # Ctrl-C reaches the demo only, which stops the APIs in order
            )

    def _wait_ready(self, agency: DemoAgency) -> None:
        process = self.apis[agency.code]
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._fail(agency, f"exited with status {process.returncode} while starting")
            try:
                if requests.get(f"{agency.api_url}/readyz", timeout=2).status_code == 200:
                    out.print(f"API {agency.code}: ready at {agency.api_url}")
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self._fail(agency, f"did not answer 200 on /readyz within {READY_TIMEOUT:g}s")

    # -- run and stop ------------------------------------------------------------------------------

    def watch(self, interval: float = 0.5) -> int:
        """Wait until interrupted (KeyboardInterrupt); 1 if an API process, the chain or the
        PostgreSQL cluster dies first (the nodes would answer 503 from then on)."""
        while True:
            for agency in self.agencies:
                process = self.apis[agency.code]
                if process.poll() is not None:
                    self._report(agency, f"exited with status {process.returncode}")
                    return 1
            status = None if self.chain is None else self.chain.exit_status()
            if status is not None:
                log = self.chain_dir / "anvil.log"
                out.print(f"[red]error:[/] the chain (anvil) exited with status {status}; its log is {log}")
                return 1
            if self.cluster is not None and not self.cluster.alive():
                out.print(f"[red]error:[/] the PostgreSQL cluster stopped; its log is {self.cluster.log}")
                return 1
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM to every API (killed after STOP_TIMEOUT), then the PostgreSQL cluster and the
        chain, which save their states."""
        running = {code: p for code, p in self.apis.items() if p.poll() is None}
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for code, process in running.items():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                out.print(f"[yellow]warning:[/] the {code} API did not stop within {STOP_TIMEOUT:g}s: killed")
                process.kill()
                process.wait()
        if running:
            out.print(f"Stopped the APIs ({', '.join(running)})")
        if self.cluster is not None and self.cluster.running():
            try:
                self.cluster.stop()
                out.print(f"Stopped the PostgreSQL cluster; its databases are kept in {self.cluster.root}")
            except NodeError as exc:  # the chain is stopped all the same
                out.print(f"[yellow]warning:[/] {exc}")
        if self.chain is not None:
            self.chain.stop()
            self.chain = None
            out.print(f"Stopped the chain; its state is saved in {self.chain_dir}")

    def _report(self, agency: DemoAgency, what: str) -> None:
        log_path = self.node_dir(agency) / "serve.log"
        out.print(f"[red]error:[/] the {agency.code} API (port {agency.port}) {what}; the end of {log_path}:")
        out.print(_tail(log_path), markup=False)

    def _fail(self, agency: DemoAgency, what: str) -> None:
        self._report(agency, what)
        raise typer.Exit(1)


def _database(agency: DemoAgency) -> str:
    """The PostgreSQL database of an agency's node."""
    return f"sijill_{agency.code.lower()}"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    this_run = text[text.rfind(_LOG_MARKER) :] if _LOG_MARKER in text else text  # not earlier runs'
    return "\n".join(this_run.splitlines()[-lines:])
