"""`sijill network sync-permissions` against a real registry and stand-in Besu PERM endpoints.

Besu cannot run here, so each Besu node is `FakeBesu`: a threaded local JSON-RPC endpoint that
keeps an accounts allow-list and a nodes allow-list and answers the PERM methods the way the
Besu docs and source describe them (private-networks/reference/api, "PERM methods";
AccountLocalConfigPermissioningController and RpcErrorType in hyperledger/besu): the address list
as the one parameter, "Success", accounts kept in lower case, and the -32000 errors for an
existing, absent, invalid or duplicate account, an empty list, or allow-listing switched off.
It records every call, so the tests assert the exact methods, parameters and order sent.

The registry side is real: a deployment of the test's own on the session's anvil, changed by
council proposals through `sijill agency`, and the command runs as the real program
(`python -m cli network sync-permissions ...`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from local_http import LocalServer
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from node.chain.deploy import AgencySpec, NetworkSpec, deploy_network, dev_accounts
from node.chain.devchain import DevChain, free_port
from node.chain.toolchain import CompiledContract
from node.network.allowlist import sync_nodes
from node.network.perm import (
    ABSENT_ENTRY,
    ACCOUNTS_NOT_ENABLED,
    ADD_ACCOUNTS,
    EXISTING_ENTRY,
    GET_ACCOUNTS,
    GET_NODES,
    REMOVE_ACCOUNTS,
    BesuPerm,
    PermError,
)
from node.network.wanted import Target, UsageError

runner = CliRunner()
GET: tuple[str, list[Any]] = (GET_ACCOUNTS, [])

# Besu's RpcErrorType messages for the account allow-list methods (all code -32000).
EMPTY_ENTRY = "Request contains an empty list of accounts"
INVALID_ENTRY = "Request contains an invalid account"
DUPLICATED_ENTRY = "Request contains duplicate accounts"
PERSIST_FAILURE = "Unable to persist changes to allowlist configuration file. Changes reverted"


class FakeBesu:
    """One Besu node's PERM API, as documented, on a free local port; records every call."""

    def __init__(
        self,
        name: str,
        journal: list[tuple[str, str, list[Any]]],
        accounts: tuple[str, ...] = (),
        nodes: tuple[str, ...] = (),
        *,
        accounts_enabled: bool = True,
    ) -> None:
        self.name = name
        self.accounts = [a.lower() for a in accounts]
        self.nodes = list(nodes)
        self.accounts_enabled = accounts_enabled
        self.calls: list[tuple[str, list[Any]]] = []
        self.journal = journal  # every node's calls, in the order they came
        self.before_write: Any = None  # called once before the next write: a race, or its refusal
        self._lock = threading.Lock()
        self._server = LocalServer(self._serve)
        self.url = self._server.url

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        request = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        answer = {"jsonrpc": "2.0", "id": request.get("id"), **self.answer(request)}
        body = json.dumps(answer).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.close()

    def writes(self) -> list[tuple[str, list[Any]]]:
        return [c for c in self.calls if c[0] != GET_ACCOUNTS and c[0] != GET_NODES]

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request.get("method", ""), request.get("params", [])
        with self._lock:
            self.calls.append((method, params))
            self.journal.append((self.name, method, params))
            if method == GET_NODES:
                return {"result": list(self.nodes)}
            if method not in (GET_ACCOUNTS, ADD_ACCOUNTS, REMOVE_ACCOUNTS):
                return _error(-32601, "Method not found")
            if not self.accounts_enabled:
                return _error(-32000, ACCOUNTS_NOT_ENABLED)
            if method == GET_ACCOUNTS:
                return {"result": list(self.accounts)}
            # getRequiredParameter(0, List.class): the one parameter is the list of addresses.
            if not isinstance(params, list) or not params or not isinstance(params[0], list):
                return _error(-32602, "Invalid params")
            accounts = [str(a).lower() for a in params[0]]
            problem = _validate(accounts)
            if problem:
                return _error(-32000, problem)
            hook, self.before_write = self.before_write, None
            refusal = hook(self) if hook is not None else None
            if refusal is not None:
                return dict(refusal)
            if method == ADD_ACCOUNTS:
                if any(a in self.accounts for a in accounts):
                    return _error(-32000, EXISTING_ENTRY)
                self.accounts += accounts
            else:
                if not all(a in self.accounts for a in accounts):
                    return _error(-32000, ABSENT_ENTRY)
                self.accounts = [a for a in self.accounts if a not in accounts]
            return {"result": "Success"}


def _validate(accounts: list[str]) -> str | None:
    """AccountLocalConfigPermissioningController.inputValidation, in order."""
    if not accounts:
        return EMPTY_ENTRY
    for account in accounts:
        try:
            valid = account.startswith("0x") and len(bytes.fromhex(account[2:])) == 20
        except ValueError:
            valid = False
        if not valid:
            return INVALID_ENTRY
    if len(set(accounts)) != len(accounts):
        return DUPLICATED_ENTRY
    return None


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _addr() -> str:
    return str(Account.create().address)


def _lower(*accounts: str) -> list[str]:
    return sorted(a.lower() for a in accounts)


@pytest.fixture
def journal() -> list[tuple[str, str, list[Any]]]:
    return []


@pytest.fixture
def fakes(journal: list[tuple[str, str, list[Any]]]) -> Iterator[list[FakeBesu]]:
    made: list[FakeBesu] = []
    yield made
    for fake in made:
        fake.close()


def _fake(fakes: list[FakeBesu], journal: list[Any], name: str, *accounts: str, **kw: Any) -> FakeBesu:
    fake = FakeBesu(name, journal, tuple(accounts), **kw)
    fakes.append(fake)
    return fake


# ---------------------------------------------------------------------------- the stand-in


def test_the_stand_in_answers_as_besu_documents(fakes: list[FakeBesu], journal: list[Any]) -> None:
    """What the sync relies on: "Success", lower case, all-or-nothing requests and the errors."""
    one, two = _addr(), _addr()
    node = BesuPerm(_fake(fakes, journal, "v1", one).url)
    assert node.accounts() == {one.lower()}
    node.add_accounts([two])  # any case in, lower case kept
    assert node.accounts() == {one.lower(), two.lower()}
    cases = [
        (ADD_ACCOUNTS, [one.lower(), _addr()], EXISTING_ENTRY),  # nothing is added
        (REMOVE_ACCOUNTS, [one.lower(), _addr()], ABSENT_ENTRY),  # nothing is removed
        (ADD_ACCOUNTS, ["0x1234"], INVALID_ENTRY),
        (ADD_ACCOUNTS, [one[2:]], INVALID_ENTRY),  # no 0x
        (ADD_ACCOUNTS, [two, two.lower()], DUPLICATED_ENTRY),
        (REMOVE_ACCOUNTS, [], EMPTY_ENTRY),
    ]
    for method, accounts, message in cases:
        with pytest.raises(PermError) as refused:
            node.call(method, [accounts])
        assert (refused.value.code, refused.value.message) == (-32000, message)
    with pytest.raises(PermError) as bad:
        node.call(ADD_ACCOUNTS, [one])  # the list not wrapped in the params list
    assert bad.value.code == -32602
    assert node.accounts() == {one.lower(), two.lower()}
    node.close()


# ---------------------------------------------------------------------------- the sync, in memory


def test_adds_go_first_everywhere_and_a_node_whose_add_failed_loses_nothing(
    fakes: list[FakeBesu], journal: list[tuple[str, str, list[Any]]]
) -> None:
    keep, old, new = _addr(), _addr(), _addr()
    a = _fake(fakes, journal, "a", keep, old)
    b = _fake(fakes, journal, "b", keep, old)
    c = _fake(fakes, journal, "c", keep, old)
    c.accounts_enabled = False  # c says "Account allowlist has not been enabled": every account may send
    wanted = frozenset(_lower(keep, new))
    nodes = [(Target(f.url, f.name), BesuPerm(f.url)) for f in (a, b, c)]
    outcomes = sync_nodes(nodes, wanted)

    writes = [(name, method) for name, method, _ in journal if method != GET_ACCOUNTS]
    assert writes == [
        ("a", ADD_ACCOUNTS),
        ("b", ADD_ACCOUNTS),
        ("a", REMOVE_ACCOUNTS),
        ("b", REMOVE_ACCOUNTS),
    ]
    for fake in (a, b):
        assert fake.calls == [GET, (ADD_ACCOUNTS, [[new.lower()]]), (REMOVE_ACCOUNTS, [[old.lower()]])]
        assert sorted(fake.accounts) == sorted(wanted)
    assert [o.in_line for o in outcomes] == [True, True, False]
    assert outcomes[2].error is not None and "--permissions-accounts-config-file-enabled" in outcomes[2].error

    # A node that refuses the addition keeps what it had: nothing is taken away from it.
    journal.clear()
    newer = _addr()
    a.before_write = lambda fake: _error(-32000, PERSIST_FAILURE)
    outcomes = sync_nodes(nodes[:2], frozenset(_lower(keep, newer)))
    assert [m for n, m, _ in journal if n == "a"] == [GET_ACCOUNTS, ADD_ACCOUNTS]
    assert sorted(a.accounts) == _lower(keep, new)
    assert outcomes[0].error is not None and PERSIST_FAILURE in outcomes[0].error
    assert "rewrite its permissions_config.toml" in outcomes[0].error
    assert outcomes[0].removed == []
    assert b.calls[-2:] == [(ADD_ACCOUNTS, [[newer.lower()]]), (REMOVE_ACCOUNTS, [[new.lower()]])]
    for _, node in nodes:
        node.close()


def test_another_writer_between_read_and_write_is_absorbed(fakes: list[FakeBesu], journal: list[Any]) -> None:
    keep, stale, new, other = _addr(), _addr(), _addr(), _addr()
    fake = _fake(fakes, journal, "a", keep, stale)

    def race(node: FakeBesu) -> None:  # another sync adds `new` and removes `stale` meanwhile
        node.accounts = [keep.lower(), new.lower()]

    fake.before_write = race
    node = BesuPerm(fake.url)
    (outcome,) = sync_nodes([(Target(fake.url), node)], frozenset(_lower(keep, new, other)))
    assert outcome.in_line and outcome.error is None
    assert fake.calls == [
        GET,
        (ADD_ACCOUNTS, [_lower(new, other)]),  # "Cannot add an existing account to allowlist"
        GET,
        (ADD_ACCOUNTS, [[other.lower()]]),
    ]
    assert sorted(fake.accounts) == _lower(keep, new, other)
    node.close()


def test_an_empty_wanted_set_is_refused_before_any_call(fakes: list[FakeBesu], journal: list[Any]) -> None:
    fake = _fake(fakes, journal, "a", _addr())
    with pytest.raises(UsageError, match="refusing to empty the allow-lists"):
        sync_nodes([(Target(fake.url), BesuPerm(fake.url))], frozenset())
    assert fake.calls == []


# ---------------------------------------------------------------------------- the command, for real


@dataclass
class Net:
    """A deployment of the test's own: REPD, CSO, CRA on a 2-of-3 council (dev accounts 4-6 sign
    and vote), MOJ without a seat; the deployer is dev account 0."""

    rpc: str
    deployment: Path
    root: Path
    keys: dict[str, Path]
    signers: dict[str, str]
    deployer: str

    def agency(self, *args: str, key: str) -> dict[str, Any]:
        """`sijill agency ... --json`, in-process (the council's side of the test)."""
        extra = ["--rpc", self.rpc, "--deployment", str(self.deployment), "--key-file", str(self.keys[key])]
        result = runner.invoke(app, ["agency", *args, *extra, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    def sync(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real program in a process of its own."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
        command = [sys.executable, "-m", "cli", "network", "sync-permissions"]
        return subprocess.run(
            [*command, "--rpc", self.rpc, "--deployment", str(self.deployment), *args],
            cwd=self.root,
            env=clean,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def sync_here(self, *args: str) -> Any:
        """The same command in-process (quicker: no interpreter to start); `exit_code`, `stdout`."""
        unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SIJILL_")}
        base = ["network", "sync-permissions", "--rpc", self.rpc, "--deployment", str(self.deployment)]
        return runner.invoke(app, [*base, *args], env=unset)

    def sync_json(self, *args: str, status: int = 0) -> dict[str, Any]:
        done = self.sync_here(*args, "--json")
        assert done.exit_code == status, (done.stdout, done.stderr)
        return dict(json.loads(done.stdout))


def _deploy(w3: Web3, compiled: dict[str, CompiledContract], rpc: str, root: Path) -> Net:
    dev = dev_accounts(7)
    council = {"REPD": dev[4], "CSO": dev[5], "CRA": dev[6]}
    moj = Account.create()
    kinds = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
    spec = NetworkSpec(
        (
            *(AgencySpec(c, f"{c} test agency", (a.address,), (kinds[c],)) for c, a in council.items()),
            AgencySpec("MOJ", "Ministry of Justice", (moj.address,), ("court-order",), False),
        ),
        threshold=2,
    )
    deployment = root / "deployment.json"
    deploy_network(w3, dev[0], spec, deployment, compiled=compiled)
    keys = {}
    for code, account in council.items():
        keys[code] = root / f"{code.lower()}.key"
        keys[code].write_text(bytes(account.key).hex())
    signers = {code: str(a.address) for code, a in council.items()} | {"MOJ": str(moj.address)}
    return Net(rpc, deployment, root, keys, signers, str(dev[0].address))


@pytest.fixture
def net(devchain: DevChain, w3: Web3, compiled: dict[str, CompiledContract], tmp_path: Path) -> Net:
    return _deploy(w3, compiled, devchain.rpc_url, tmp_path)


@pytest.fixture(scope="module")
def shared_net(
    devchain: DevChain,
    w3: Web3,
    compiled: dict[str, CompiledContract],
    tmp_path_factory: pytest.TempPathFactory,
) -> Net:
    """A deployment the tests below only read."""
    return _deploy(w3, compiled, devchain.rpc_url, tmp_path_factory.mktemp("perm-shared"))


def _nodes(*fakes: FakeBesu) -> list[str]:
    return [arg for f in fakes for arg in ("--node", f.url)]


@pytest.mark.chain
def test_the_allow_lists_follow_the_registry(
    net: Net, fakes: list[FakeBesu], journal: list[tuple[str, str, list[Any]]]
) -> None:
    s = net.signers
    monitoring, stray = _addr(), _addr()
    (net.root / "keep.toml").write_text(f'keep = [{{ address = "{monitoring}", note = "monitoring" }}]\n')
    # As `sijill network init` left them: the deployer and the founding signers; v2 also has a
    # stray account added by hand.
    founding = (net.deployer, s["REPD"], s["CSO"], s["CRA"], s["MOJ"])
    v1 = _fake(fakes, journal, "v1", net.deployer)
    v2 = _fake(fakes, journal, "v2", *founding, stray)
    v3 = _fake(fakes, journal, "v3", net.deployer, s["REPD"])
    keep = ("--keep", net.deployer, "--keep-file", str(net.root / "keep.toml"))
    every = _lower(*founding, monitoring)

    first = net.sync(*_nodes(v1, v2, v3), *keep)  # the real program
    assert first.returncode == 0, first.stderr
    assert v1.calls == [GET, (ADD_ACCOUNTS, [_lower(s["REPD"], s["CSO"], s["CRA"], s["MOJ"], monitoring)])]
    assert v2.calls == [GET, (ADD_ACCOUNTS, [[monitoring.lower()]]), (REMOVE_ACCOUNTS, [[stray.lower()]])]
    assert v3.calls == [GET, (ADD_ACCOUNTS, [_lower(s["CSO"], s["CRA"], s["MOJ"], monitoring)])]
    assert all(sorted(f.accounts) == every for f in (v1, v2, v3))
    assert f"{v1.url}: brought in line: 5 added, 0 removed" in first.stdout
    assert f"  added   {s['MOJ']} (signer of MOJ)" in first.stdout
    assert f"  added   {monitoring} (kept)" in first.stdout
    assert f"  removed {stray} (not a signer in the registry)" in first.stdout

    # Nothing changed: a second run only reads.
    for f in (v1, v2, v3):
        f.calls.clear()
    again = net.sync_json(*_nodes(v1, v2, v3), *keep)
    assert [f.calls for f in (v1, v2, v3)] == [[GET]] * 3
    assert again["inLine"] and [n["status"] for n in again["nodes"]] == ["in line"] * 3

    # The council suspends MOJ: its signer goes from every node.
    proposed = net.agency("propose", "suspend-agency", "MOJ", key="REPD")
    assert net.agency("approve", str(proposed["id"]), key="CSO")["executed"]
    for f in (v1, v2, v3):
        f.calls.clear()
    suspended = net.sync_json(*_nodes(v1, v2, v3), *keep)
    assert [f.calls for f in (v1, v2, v3)] == [[GET, (REMOVE_ACCOUNTS, [[s["MOJ"].lower()]])]] * 3
    assert suspended["nodes"][0]["toRemove"] == [
        {"address": s["MOJ"], "who": "signer of MOJ, which is suspended"}
    ]

    # CRA rotates its only signer: two rounds, then one sync adds the new key before it removes
    # the old one, on every node before any node; the kept accounts stay whatever happens.
    new = _addr()
    rotation = ("propose", "rotate-signer", "CRA", "--old", s["CRA"], "--new", new)
    add_id = net.agency(*rotation, key="REPD")["add"]["id"]
    net.agency("approve", str(add_id), key="CSO")
    remove_id = net.agency(*rotation, key="REPD")["remove"]["id"]
    net.agency("approve", str(remove_id), key="CSO")
    journal.clear()
    for f in (v1, v2, v3):
        f.calls.clear()
    rotated = net.sync(*_nodes(v1, v2, v3), *keep)
    assert rotated.returncode == 0, rotated.stderr
    for f in (v1, v2, v3):
        assert f.calls == [GET, (ADD_ACCOUNTS, [[new.lower()]]), (REMOVE_ACCOUNTS, [[s["CRA"].lower()]])]
    assert [(n, m) for n, m, _ in journal if m != GET_ACCOUNTS] == [
        *((f, ADD_ACCOUNTS) for f in ("v1", "v2", "v3")),
        *((f, REMOVE_ACCOUNTS) for f in ("v1", "v2", "v3")),
    ]
    assert f"  added   {new} (signer of CRA)" in rotated.stdout
    assert f"  removed {s['CRA']} (retired signer of CRA, valid to block" in rotated.stdout
    expected = _lower(net.deployer, monitoring, s["REPD"], s["CSO"], new)
    assert all(sorted(f.accounts) == expected for f in (v1, v2, v3))
    kept = {net.deployer.lower(), monitoring.lower()}
    removed = {a for _, m, params in journal if m == REMOVE_ACCOUNTS for a in params[0]}
    assert not removed & kept


@pytest.mark.chain
def test_an_unreachable_node_fails_the_run_and_the_others_are_synced(
    shared_net: Net, fakes: list[FakeBesu], journal: list[Any]
) -> None:
    s = shared_net.signers
    v1 = _fake(fakes, journal, "v1", shared_net.deployer)
    v3 = _fake(fakes, journal, "v3", shared_net.deployer)
    gone = f"http://127.0.0.1:{free_port()}"
    done = shared_net.sync("--node", v1.url, "--node", gone, "--node", v3.url, "--keep", shared_net.deployer)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{gone}: FAILED: no answer to {GET_ACCOUNTS} (ConnectError); not in line" in done.stdout
    assert "1 of 3 nodes could not be brought in line" in done.stderr
    every = _lower(shared_net.deployer, s["REPD"], s["CSO"], s["CRA"], s["MOJ"])
    assert sorted(v1.accounts) == sorted(v3.accounts) == every


@pytest.mark.chain
def test_dry_run_and_check_change_nothing(shared_net: Net, fakes: list[FakeBesu], journal: list[Any]) -> None:
    s = shared_net.signers
    stray = _addr()
    v1 = _fake(fakes, journal, "v1", shared_net.deployer, s["REPD"], stray)
    done = shared_net.sync("--node", v1.url, "--keep", shared_net.deployer, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert v1.calls == [GET]
    assert f"{v1.url}: out of line: 3 to add, 1 to remove" in done.stdout
    assert f"  would add    {s['CSO']} (signer of CSO)" in done.stdout
    assert f"  would remove {stray} (not a signer in the registry)" in done.stdout
    assert "Dry run: nothing was changed." in done.stdout

    report = shared_net.sync_json("--node", v1.url, "--keep", shared_net.deployer, "--check", status=1)
    assert v1.calls == [GET, GET]
    assert report["dryRun"] and not report["inLine"] and report["nodes"][0]["status"] == "out of line"
    assert [e["address"] for e in report["nodes"][0]["toRemove"]] == [stray]


@pytest.mark.chain
def test_a_node_with_allow_listing_off_is_a_failure_naming_the_flag(
    shared_net: Net, fakes: list[FakeBesu], journal: list[Any]
) -> None:
    off = _fake(fakes, journal, "off", accounts_enabled=False)
    report = shared_net.sync_json("--node", off.url, "--keep", shared_net.deployer, status=1)
    (node,) = report["nodes"]
    assert node["status"] == "failed" and ACCOUNTS_NOT_ENABLED in node["error"]
    assert "EVERY account" in node["error"] and "--permissions-accounts-config-file-enabled" in node["error"]
    assert off.writes() == []


@pytest.mark.chain
def test_the_manifest_names_the_nodes_and_the_enodes_to_check(
    shared_net: Net, fakes: list[FakeBesu], journal: list[Any]
) -> None:
    ids = [secrets.token_hex(64) for _ in range(3)]
    enodes = [f"enode://{node_id}@10.0.1.{i + 1}:30303" for i, node_id in enumerate(ids)]
    stranger = f"enode://{secrets.token_hex(64)}@10.9.9.9:30303"
    monitoring = _addr()
    v1 = _fake(fakes, journal, "v1", shared_net.deployer, nodes=(*enodes[:2], stranger))
    v2 = _fake(fakes, journal, "v2", shared_net.deployer, nodes=(f"{enodes[0]}?discport=0", *enodes[1:]))
    manifest = shared_net.root / "network.json"
    manifest.write_text(
        json.dumps(
            {  # the keys `sijill network init` writes (node/network/generate.py)
                "format": "sijill-network/1",
                "validators": [
                    {"index": i + 1, "name": f"validator-{i + 1}", "rpcUrl": url, "enode": enodes[i]}
                    for i, url in enumerate((v1.url, v2.url, None))
                ],
                "keep": [
                    {"address": shared_net.deployer, "note": "--allow-account"},
                    {"address": monitoring, "note": "--allow-account"},
                ],
            }
        )
    )
    done = shared_net.sync_here("--manifest", str(manifest))
    assert done.exit_code == 0, done.output
    assert v1.calls[0] == GET and v1.calls[-1] == (GET_NODES, [])
    assert monitoring.lower() in v1.accounts and monitoring.lower() in v2.accounts
    assert f"{v1.url} (validator-1): brought in line: 5 added, 0 removed" in done.stdout
    assert f"nodes allow-list lacks {enodes[2]} (in the manifest)" in done.stdout
    assert f"nodes allow-list has {stranger}, which the manifest does not name" in done.stdout
    assert done.stdout.count("nodes allow-list") == 2  # v2's list matches (the query does not count)
    # --node picks nodes of the manifest (named from it); the manifest still gives the enodes.
    only = shared_net.sync_json("--manifest", str(manifest), "--node", v2.url)
    assert [n["name"] for n in only["nodes"]] == ["validator-2"]
    assert only["nodes"][0]["nodesAllowlist"] == {"missing": [], "extra": [], "error": None}


@pytest.mark.chain
def test_bad_usage_and_an_unreadable_registry_exit_2(
    shared_net: Net, fakes: list[FakeBesu], journal: list[Any]
) -> None:
    v1 = _fake(fakes, journal, "v1", shared_net.deployer)

    def refused(*args: str, needle: str, net: Net = shared_net) -> None:
        done = net.sync_here(*args)
        assert done.exit_code == 2, (done.stdout, done.stderr)
        assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr

    real = shared_net.sync("--keep", shared_net.deployer)
    assert real.returncode == 2 and real.stderr.startswith("error: no Besu node to bring in line"), (
        real.stderr
    )
    refused("--node", v1.url, "--keep", "0x1234", needle="'0x1234' is not an account address")
    refused("--node", "10.0.1.1:8545", needle="is not a node's JSON-RPC URL")
    refused(
        "--node", v1.url, "--keep-file", str(shared_net.root / "none.toml"), needle="cannot read keep file"
    )
    other = shared_net.root / "other.json"
    other.write_text(json.dumps({"format": "sijill-deployment/1", "validators": []}))
    refused("--manifest", str(other), needle="is not a sijill-network/1 network manifest")
    away = Net(f"http://127.0.0.1:{free_port()}", *list(vars(shared_net).values())[1:])
    refused("--node", v1.url, needle="no JSON-RPC node answers at", net=away)
    assert v1.calls == []
