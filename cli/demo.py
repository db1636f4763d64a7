"""`sijill demo`: the whole system on one machine, to try it out (what `make run` starts).

It starts the dev chain (anvil, its state kept in DATA_DIR/chain) with the contracts deployed,
or the last run's deployment reused; sets up a node for each demo agency (REPD land titles, CSO
marriages, CRA companies) with anvil's dev accounts 1-3 and dev secrets; issues each agency a
demo officer, supervisor and auditor token (kept in DATA_DIR/officers.json, mode 0600, so a
re-run shows the same ones); starts one `sijill serve` per agency; creates two demo records per
agency through the API on the first run only (DATA_DIR/demo-records.json); prints where
everything is; and runs until Ctrl-C or SIGTERM, then stops the APIs and the chain, whose state
is saved. A second run reuses all of it.

Development only: the signer keys are anvil's public ones, and the KEK, passphrases and tokens
lie in clear beside the data.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated, Any

import requests
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from node.errors import NodeError

if TYPE_CHECKING:
    from node.chain.devchain import DevChain

out = Console(soft_wrap=True, highlight=False)

READY_TIMEOUT = 60.0
"""Seconds an API process gets to answer /readyz, and the demo records to be anchored."""
STOP_TIMEOUT = 15.0
"""Seconds an API process gets to stop after SIGTERM before it is killed."""
OFFICERS_FORMAT = "sijill-demo-officers/1"
RECORDS_FORMAT = "sijill-demo-records/1"

_LOG_MARKER = "--- sijill demo:"
# The children get the dev secrets of their own directory, never a KEK or passphrase of the shell.
_SECRET_VARIABLES = ("SIJILL_KEK", "SIJILL_SIGNER_PASSPHRASE")


@dataclass(frozen=True, slots=True)
class DemoAgency:
    """A demo agency: its code, the one record type it anchors, its anvil dev account, its API port."""

    code: str
    record_type: str
    dev_account: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def demo_agencies(api_port_base: int) -> tuple[DemoAgency, ...]:
    """The agencies of `node.chain.deploy.demo_network`, in its order, on consecutive ports."""
    kinds = (("REPD", "title"), ("CSO", "marriage"), ("CRA", "commercial"))
    return tuple(DemoAgency(code, kind, i + 1, api_port_base + i) for i, (code, kind) in enumerate(kinds))


def demo_records(record_type: str) -> list[dict[str, Any]]:
    """Two valid records of a type (the test suite's examples, copied: production code does not
    import tests), told apart by their registry numbers."""
    first = _EXAMPLES[record_type]()
    second = _EXAMPLES[record_type]()
    field, number = _SECOND_NUMBER[record_type]
    second[field] = number
    return [first, second]


def demo_command(
    data_dir: Annotated[
        Path, typer.Option(help="Where the chain state, nodes, tokens and logs live.")
    ] = Path(".data/demo"),
    chain_port: Annotated[int, typer.Option(help="Port of the chain's JSON-RPC endpoint.")] = 8545,
    api_port_base: Annotated[
        int, typer.Option(help="Port of REPD's API; CSO and CRA get the next two.")
    ] = 8601,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the demo's chain, nodes, tokens and records first.")
    ] = False,
) -> None:
    """Run the whole system to try it out: dev chain, three agency nodes and their APIs.

    Deploys the contracts, sets up the demo agencies' nodes, officer tokens and records, starts
    one API per agency and prints where everything is. Ctrl-C stops it; running it again
    reuses the chain state, nodes, tokens and records.

    Example: sijill demo --data-dir .data/demo --chain-port 8545
    """
    demo = Demo(data_dir, chain_port, demo_agencies(api_port_base))
    demo.lock()
    if reset:
        demo.reset()
    # Ctrl-C stops the demo even when it was started with SIGINT ignored (a shell's background
    # job, or a script's): Python keeps an inherited SIG_IGN, and `kill -INT` did nothing then.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    status = 0
    try:
        demo.start()
        demo.print_summary()
        status = demo.watch()
    except KeyboardInterrupt:
        out.print("Stopping…")
    finally:
        # A second Ctrl-C must not cut the shutdown short: it is bounded by STOP_TIMEOUT.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    if status:
        raise typer.Exit(status)


#: Who sees what between the demo agencies: the civil-status office checks a title's owners
#: (an inheritance, a dower paid in property), the commercial registry a company's premises, and
#: the land registry the parties of a marriage or a company; never national IDs or dates of birth.
DEMO_PEER_POLICIES: dict[str, dict[str, dict[str, list[str]]]] = {
    "REPD": {
        "CSO": {"title": ["/title_number", "/owners/*/name", "/owners/*/share"]},
        "CRA": {"title": ["/title_number", "/use"]},
    },
    "CSO": {"REPD": {"marriage": ["/contract_number", "/husband/name", "/wife/name", "/status"]}},
    "CRA": {"REPD": {"commercial": ["/registration_number", "/trade_name_ar", "/trade_name_en", "/status"]}},
}

#: What each demo certificate discloses: what a bank or a court clerk needs to see, never a
#: national ID, a date of birth or a dower.
DEMO_DISCLOSED: dict[str, list[str]] = {
    "title": [
        "/title_number",
        "/governorate",
        "/district",
        "/area_m2",
        "/use",
        "/owners/0/name",
        "/owners/0/share",
    ],
    "marriage": ["/contract_number", "/contract_date", "/husband/name", "/wife/name", "/status"],
    "commercial": ["/registration_number", "/trade_name_ar", "/trade_name_en", "/legal_form", "/status"],
}


class Demo:
    """The demo's processes and state; `start()`, then `watch()` until interrupted, `stop()`."""

    def __init__(self, data_dir: Path, chain_port: int, agencies: tuple[DemoAgency, ...]) -> None:
        self.data_dir = data_dir
        self.chain_port = chain_port
        self.agencies = agencies
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
        for path in (self.chain_dir, *(self.node_dir(a) for a in self.agencies)):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.officers_file, self.records_file):
            path.unlink(missing_ok=True)
        out.print(f"Reset: removed the demo's chain, nodes, tokens and records from {self.data_dir}")

    def start(self) -> None:
        """Chain, deployment, nodes, tokens, APIs, records: each made once, reused afterwards."""
        if _listening(self.chain_port):
            raise NodeError(f"port {self.chain_port} (the chain) is in use; choose another --chain-port")
        for agency in self.agencies:
            if _listening(agency.port):
                raise NodeError(
                    f"port {agency.port} (the {agency.code} API) is in use, perhaps by a demo still "
                    "running; stop it or choose another --api-port-base"
                )
        self._start_chain()
        for agency in self.agencies:
            self._init_node(agency)
            self._write_peer_policy(agency)
        self._issue_officers()
        for agency in self.agencies:
            self._start_api(agency)
        for agency in self.agencies:
            self._wait_ready(agency)
        self._create_records()
        self._wait_anchored()
        self._make_certificates()

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
        nodes = [a.code for a in self.agencies if (self.node_dir(a) / "node.json").exists()]
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

    def _init_node(self, agency: DemoAgency) -> None:
        node_dir = self.node_dir(agency)
        if (node_dir / "node.json").exists():
            out.print(f"Node {agency.code}: reusing {node_dir}")
            return
        init = [
            *sijill_command("node", "init"),
            *("--data-dir", str(node_dir), "--agency", agency.code, "--dev-account", str(agency.dev_account)),
        ]
        done = subprocess.run(init, env=child_env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise NodeError(
                f"`sijill node init` for {agency.code} failed ({last}); "
                "start afresh with `sijill demo --reset`"
            )
        out.print(f"Node {agency.code}: set up in {node_dir} (dev account {agency.dev_account})")

    def _write_peer_policy(self, agency: DemoAgency) -> None:
        """What the other demo agencies' nodes may see of this one's records (docs/api.md),
        written once: an operator's edits are kept."""
        path = self.node_dir(agency) / "peer-policy.json"
        if not path.exists() and agency.code in DEMO_PEER_POLICIES:
            path.write_text(json.dumps(DEMO_PEER_POLICIES[agency.code], indent=2) + "\n")

    def _issue_officers(self) -> None:
        """One token per role and agency, issued once; re-registered if a node lost it."""
        from cli.officer import ROLES, issue_token, open_node_store

        saved = _read_json(self.officers_file)
        officers: dict[str, dict[str, dict[str, Any]]] = (
            saved["agencies"] if saved and saved.get("format") == OFFICERS_FORMAT else {}
        )
        now = int(time.time())
        for agency in self.agencies:
            node_dir = self.node_dir(agency)
            tokens = officers.setdefault(agency.code, {})
            with open_node_store(node_dir, node_dir / "dev-kek") as store:
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
        _write_private(self.officers_file, {"format": OFFICERS_FORMAT, "agencies": officers})
        self.officers = officers

    def _start_api(self, agency: DemoAgency) -> None:
        node_dir = self.node_dir(agency)
        log_path = node_dir / "serve.log"
        serve = [
            *sijill_command("serve"),
            *("--data-dir", str(node_dir), "--agency", agency.code, "--rpc", self.rpc_url),
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
                env=child_env(),
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

    def _create_records(self) -> None:
        """The demo records, through the API; saved after each one so a crash repeats none
        (the Idempotency-Key covers a crash between the answer and the save)."""
        saved = _read_json(self.records_file)
        ledger_address = self.deployment["contracts"]["RecordLedger"]["address"]
        if saved and saved.get("format") == RECORDS_FORMAT:
            self.records = list(saved["records"])
            if saved.get("complete"):
                out.print(f"Records: reusing {len(self.records)} demo records ({self.records_file})")
                return
        created = 0
        for agency in self.agencies:
            mine = [r for r in self.records if r["agency"] == agency.code]
            for index, record in enumerate(demo_records(agency.record_type)):
                if index < len(mine):
                    continue
                try:
                    answer = self._request(
                        agency,
                        "post",
                        "/v1/records",
                        json={"recordType": agency.record_type, "record": record},
                        headers={"Idempotency-Key": f"sijill-demo-{agency.code}-{index}"},
                    )
                except requests.RequestException as exc:
                    raise NodeError(f"the {agency.code} API did not answer: {type(exc).__name__}") from None
                if answer.status_code != 201:
                    raise NodeError(
                        f"the {agency.code} API refused demo record {index + 1}: "
                        f"{answer.status_code} {_problem(answer)}"
                    )
                body = answer.json()
                self.records.append(
                    {
                        "agency": agency.code,
                        "recordType": body["recordType"],
                        "recordId": body["recordId"],
                        "version": body["version"],
                        "leaf": body["leaf"],
                    }
                )
                created += 1
                self._save_records(ledger_address, complete=False)
        self._save_records(ledger_address, complete=True)
        plural = "" if created == 1 else "s"
        out.print(f"Records: created {created} demo record{plural} through the APIs ({self.records_file})")

    def _save_records(self, ledger_address: str, *, complete: bool) -> None:
        doc = {"format": RECORDS_FORMAT, "recordLedger": ledger_address, "complete": complete}
        _write_private(self.records_file, {**doc, "records": self.records})

    def _wait_anchored(self) -> None:
        """Wait until every demo record's bundle is served (it is once the record is anchored)."""
        self.states = {r["recordId"]: "pending" for r in self.records}
        pending = list(self.records)
        deadline = time.monotonic() + READY_TIMEOUT
        while pending and time.monotonic() < deadline:
            for record in list(pending):
                agency = self._agency(record["agency"])
                try:
                    answer = self._request(agency, "get", _bundle_path(record))
                except requests.RequestException:
                    continue
                if answer.status_code == 200:
                    self.states[record["recordId"]] = "anchored"
                    pending.remove(record)
                elif answer.status_code not in (202, 429):
                    self.states[record["recordId"]] = f"bundle: {answer.status_code}"
                    out.print(
                        f"[yellow]warning:[/] the bundle of {record['recordType']}/{record['recordId']} "
                        f"answers {answer.status_code} {escape(_problem(answer))}"
                    )
                    pending.remove(record)
            if pending:
                time.sleep(0.5)
        if pending:
            names = ", ".join(f"{r['recordType']}/{r['recordId']}" for r in pending)
            out.print(f"[yellow]warning:[/] not anchored after {READY_TIMEOUT:g}s: {names} (see /healthz)")

    def _make_certificates(self) -> None:
        """One certificate (share) per anchored demo record, disclosing what a clerk would be shown;
        made once and kept with the records, so a re-run prints the same QR codes."""
        ledger_address = self.deployment["contracts"]["RecordLedger"]["address"]
        made = 0
        for record in self.records:
            if "certificate" in record or self.states.get(record["recordId"]) != "anchored":
                continue
            agency = self._agency(record["agency"])
            path = f"/v1/records/{record['recordType']}/{record['recordId']}/shares"
            try:
                answer = self._request(
                    agency, "post", path, json={"fields": DEMO_DISCLOSED[record["recordType"]]}
                )
            except requests.RequestException as exc:
                raise NodeError(f"the {agency.code} API did not answer: {type(exc).__name__}") from None
            if answer.status_code != 201:
                raise NodeError(f"the {agency.code} API refused a demo certificate: {_problem(answer)}")
            body = answer.json()
            record["certificate"] = {"token": body["token"], **body["links"]}
            self._save_records(ledger_address, complete=True)
            made += 1
        if made:
            out.print(f"Certificates: made {made} (a share of each record, with a QR code)")

    def _request(self, agency: DemoAgency, method: str, path: str, **kwargs: Any) -> requests.Response:
        token = self.officers[agency.code]["officer"]["token"]
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return requests.request(method, agency.api_url + path, headers=headers, timeout=10, **kwargs)

    def _agency(self, code: str) -> DemoAgency:
        return next(a for a in self.agencies if a.code == code)

    # -- run and stop ------------------------------------------------------------------------------

    def print_summary(self) -> None:
        """Where everything is: chain, contracts, APIs, tokens, records, a verify link."""
        out.print()
        out.rule("Sijill demo")
        out.print(f"Chain RPC: [bold]{self.rpc_url}[/] (chain {self.deployment['chainId']})")
        contracts = Table("contract", "address", title="Contracts", title_justify="left")
        for name, entry in self.deployment["contracts"].items():
            contracts.add_row(name, entry["address"])
        _print_whole(contracts)
        apis = Table("agency", "record type", "API", "OpenAPI", title="Agency APIs", title_justify="left")
        for agency in self.agencies:
            apis.add_row(agency.code, agency.record_type, agency.api_url, f"{agency.api_url}/openapi.json")
        _print_whole(apis)
        tokens = Table(
            "agency", "role", "token (Authorization: Bearer …)", title="Demo tokens", title_justify="left"
        )
        for agency in self.agencies:
            for role, entry in self.officers[agency.code].items():
                tokens.add_row(agency.code, role, entry["token"])
        _print_whole(tokens)
        records = Table(
            "agency", "type", "record id", "version", "state", title="Demo records", title_justify="left"
        )
        for record in self.records:
            state = self.states.get(record["recordId"], "?")
            records.add_row(
                record["agency"], record["recordType"], record["recordId"], str(record["version"]), state
            )
        _print_whole(records)
        out.print("[bold]Certificates[/] (scan or open the verify page; the PDF carries its QR code):")
        for record in self.records:
            if "certificate" in record:
                certificate = record["certificate"]
                out.print(f"  {record['agency']} {record['recordType']}/{record['recordId']}", soft_wrap=True)
                out.print(f"    verify: {certificate['verify']}", soft_wrap=True, markup=False)
                out.print(f"    PDF:    {certificate['pdf']}", soft_wrap=True, markup=False)
        first = next((r for r in self.records if r["agency"] == self.agencies[0].code), None)
        if first is not None:
            base = self.agencies[0].api_url
            out.print(f"Verify:  {base}/verify (upload or paste a bundle)")
            out.print(f"Bundle:  {base}{_bundle_path(first)} (with an officer token)")
        out.print(f"Logs:    {self.data_dir}/<agency>/serve.log, {self.chain_dir}/anvil.log")
        out.print("Sijill demo running; press Ctrl-C to stop.")

    def watch(self, interval: float = 0.5) -> int:
        """Wait until interrupted (KeyboardInterrupt); 1 if an API process dies first."""
        while True:
            for agency in self.agencies:
                process = self.apis[agency.code]
                if process.poll() is not None:
                    self._report(agency, f"exited with status {process.returncode}")
                    return 1
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM to every API (killed after STOP_TIMEOUT), then the chain, which saves its state."""
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


def sijill_command(*args: str) -> list[str]:
    """The command line running `sijill ARGS` with this interpreter (the venv's, whatever PATH holds)."""
    return [sys.executable, "-m", "cli", *args]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does


def child_env() -> dict[str, str]:
    """The environment of the `sijill` processes the demo (and the soak) starts: dev nodes read
    their secrets from their directories, none from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _print_whole(table: Table) -> None:
    """Print a table with no cell wrapped or cut to "marri…", however narrow the output.

    Rich fits a table to the console's width, which is 80 columns when the output is not a
    terminal (`make run | tee`, a log): it shortens cells to fit. The summary's cells are
    things to copy (URLs, tokens, ids, record types), so the table is drawn at its natural width
    instead and a narrow terminal wraps the lines, keeping every character."""
    for column in table.columns:
        column.no_wrap = True
    natural = out.measure(table, options=out.options.update_width(10_000)).maximum
    width = out.width
    out.width = max(width, natural)
    try:
        out.print(table)
    finally:
        out.width = width


def _bundle_path(record: dict[str, Any]) -> str:
    return f"/v1/records/{record['recordType']}/{record['recordId']}/bundle"


def _problem(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return str(body.get("detail") or body.get("title") or body) if isinstance(body, dict) else str(body)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    this_run = text[text.rfind(_LOG_MARKER) :] if _LOG_MARKER in text else text  # not earlier runs'
    return "\n".join(this_run.splitlines()[-lines:])


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read {path} ({exc}); start afresh with `sijill demo --reset`") from None
    return data if isinstance(data, dict) else None


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write JSON atomically, readable by the owner only (it holds bearer tokens)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _title() -> dict[str, Any]:
    return {
        "title_number": "2019/45873",
        "governorate": "12",
        "district": "حي شرق المنصورة",
        "parcel_number": "1843",
        "unit_number": "12",
        "area_m2": "125.5",
        "use": "residential",
        "owners": [
            {"name": "محمد عبد الرحمن السيد", "national_id": "27503221204139", "share": "1/2"},
            {"name": "فاطمة أحمد حسن", "national_id": "27811091207223", "share": "1/4"},
            {"name": "يوسف محمد عبد الرحمن", "national_id": "30308140130516", "share": "1/4"},
        ],
        "encumbrances": [
            {
                "kind": "mortgage",
                "holder": "البنك الأهلي المصري",
                "reference": "رهن 2021/3371",
                "registered_on": "2021-05-10",
            }
        ],
        "registration_date": "2019-09-17",
        "registry_office": "مكتب الشهر العقاري بالمنصورة",
    }


def _marriage() -> dict[str, Any]:
    return {
        "contract_number": "2023/118/4471",
        "contract_date": "2023-07-20",
        "place": "مدينة نصر، محافظة القاهرة",
        "husband": {
            "name": "كريم محمود عبد العزيز",
            "national_id": "29001150123457",
            "date_of_birth": "1990-01-15",
        },
        "wife": {
            "name": "سارة علي حسن الشناوي",
            "national_id": "29406032118624",
            "date_of_birth": "1994-06-03",
        },
        "notary_id": "مأذون-01-0457",
        "registry_office": "مكتب سجل مدني مدينة نصر",
        "dower": {"immediate": "50000", "deferred": "100000", "currency": "EGP"},
        "status": {"state": "married", "event_date": None},
    }


def _commercial() -> dict[str, Any]:
    return {
        "registration_number": "158234",
        "trade_name_ar": "شركة النيل للتجارة والتوزيع",
        "trade_name_en": "Nile Trading & Distribution",
        "legal_form": "llc",
        "capital": {"amount": "250000", "currency": "EGP"},
        "owners": [
            {"name": "أحمد مصطفى إبراهيم", "national_id": "26802050211071", "share": "2/3"},
            {"name": "منى سعيد عبد الله", "national_id": "28512302105082", "share": "1/3"},
        ],
        "activities": ["4690", "4711"],
        "head_office": {"governorate": "01", "address": "15 شارع طلعت حرب، وسط البلد، القاهرة"},
        "status": {"state": "active", "since": "2015-03-01"},
    }


_SECOND_NUMBER = {
    "title": ("title_number", "2019/45874"),
    "marriage": ("contract_number", "2023/118/4472"),
    "commercial": ("registration_number", "158235"),
}
_EXAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "title": _title,
    "marriage": _marriage,
    "commercial": _commercial,
}
