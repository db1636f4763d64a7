"""Real `sijill serve` processes for API tests: a deployment of their own on the session anvil,
one node directory per agency with officer tokens, and the processes started and stopped.

A node's store is LevelDB in its directory, as `sijill serve` keeps it by default, or a
database of its own on a PostgreSQL cluster: `init_node(..., store=URI)` and
`start_server(..., store=URI)` (`--store`, docs/storage.md); `servers(..., backend=...)` gives
each of its nodes a new store of that `Backend`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_account import Account
from pg_cluster import PgCluster
from web3 import Web3

from ledger.records.examples import title_example
from node.chain.deploy import AgencySpec, NetworkSpec, deploy_network, dev_accounts
from node.chain.devchain import free_port
from node.chain.toolchain import CompiledContract
from node.keys import create_keystore
from node.store import Store

PASSPHRASE = "a passphrase for API tests only"
KEK = secrets.token_hex(32)


SIJILL = str(Path(sys.executable).with_name("sijill"))


def run_sijill(*args: str, kek: str = KEK) -> subprocess.CompletedProcess[str]:
    """`sijill ARGS` as a process, with the test's KEK and no other SIJILL_ setting of this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    return subprocess.run(
        [SIJILL, *args],
        env={**env, "SIJILL_KEK": kek},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    """The command was refused with exit 2 and one line naming `message`, no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def post_titles(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    """`count` example title records created through the API; their 201 answers."""
    made = [
        client.post("/v1/records", json={"recordType": "title", "record": title_example()})
        for _ in range(count)
    ]
    assert all(r.status_code == 201 for r in made), [r.text for r in made if r.status_code != 201]
    return [r.json() for r in made]


ENV = {"SIJILL_SIGNER_PASSPHRASE": PASSPHRASE, "SIJILL_KEK": KEK}
KINDS = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
ROLES = ("officer", "supervisor", "auditor")


@dataclass
class Server:
    agency: str
    url: str
    data_dir: Path
    key: bytes
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)
    store: str | None = None  # its --store; None: LevelDB in <data_dir>/store

    def client(self, role: str | None = "officer", **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120.0, **kwargs)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass(frozen=True)
class Backend:
    """Where a test's nodes keep their stores: LevelDB in each node's directory (no `cluster`),
    or a new database per node on a PostgreSQL `cluster`."""

    cluster: PgCluster | None = None

    @property
    def name(self) -> str:
        return "leveldb" if self.cluster is None else "postgresql"

    def new_store(self) -> str | None:
        """A new node's --store: None (LevelDB in its directory) or a new database's URI."""
        return None if self.cluster is None else self.cluster.create_database()

    def raw_bytes(self, server: Server) -> bytes:
        """Every byte the store of `server` keeps, as whoever holds its disk would read it:
        LevelDB's tables and log; or a `pg_dump` of its database and the cluster's files."""
        if self.cluster is None:
            files = (server.data_dir / "store").iterdir()
            return b"".join(p.read_bytes() for p in files if p.is_file())
        assert server.store is not None, f"{server.agency}'s node was started on LevelDB"
        return self.cluster.dump(urlsplit(server.store).path.lstrip("/")) + self.cluster.files()


LEVELDB = Backend()


def deploy_fresh(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    out: Path,
    *,
    more_signers: dict[str, tuple[str, ...]] | None = None,
    more_agencies: tuple[AgencySpec, ...] = (),
    threshold: int = 2,
    names: Mapping[str, str] | None = None,
) -> tuple[dict[str, bytes], Path]:
    """A deployment of the three demo agencies with fresh signer keys (gas is free); the node's
    key of each agency first, then its `more_signers` addresses; then `more_agencies`. Each
    agency is named "<code> API test agency" unless `names` names it."""
    keys = {code: secrets.token_bytes(32) for code in KINDS}
    more = more_signers or {}
    named = names or {}
    spec = NetworkSpec(
        (
            *(
                AgencySpec(
                    code,
                    named.get(code, f"{code} API test agency"),
                    (Account.from_key(key).address, *more.get(code, ())),
                    (KINDS[code],),
                )
                for code, key in keys.items()
            ),
            *more_agencies,
        ),
        threshold=threshold,
    )
    deploy_network(w3, dev_accounts(1)[0], spec, out, compiled=compiled)
    return keys, out


def init_node_by_cli(
    data_dir: Path,
    code: str,
    key: bytes,
    store: str,
    officers: Mapping[str, str],
    *,
    also: Path | None = None,
) -> dict[str, str]:
    """A node set up as an operator does it: `sijill node init` with the key, then `sijill
    officer add` of each role in `officers` (role -> name), with the store given in
    SIJILL_STORE; the tokens by role. `also`: a second data directory for another process of
    the same node (the signer's keystore copied into it)."""
    env = {**os.environ, **ENV, "SIJILL_STORE": store}
    (key_file := data_dir.with_name(data_dir.name + ".key")).write_text(key.hex())
    init = [SIJILL, "node", "init", "--data-dir", str(data_dir), "--agency", code]
    subprocess.run([*init, "--private-key-file", str(key_file)], env=env, check=True, capture_output=True)
    add = [SIJILL, "officer", "add", "--data-dir", str(data_dir), "--agency", code, "--json"]
    tokens = {}
    for role, name in officers.items():
        issued = subprocess.run(
            [*add, "--role", role, "--name", name], env=env, check=True, capture_output=True, text=True
        )
        tokens[role] = json.loads(issued.stdout)["token"]
    if also is not None:
        also.mkdir()
        shutil.copy(data_dir / "signer.json", also / "signer.json")  # with its 0600 mode
    return tokens


def init_node(
    root: Path, code: str, key: bytes, policy: dict[str, Any] | None = None, *, store: str | None = None
) -> tuple[Path, dict[str, str]]:
    """A node directory `root/<code>` with its keystore, its store (at `store`, else LevelDB in
    the directory) holding a token of each role and an expired and a revoked one, and `policy`
    as its peer policy; the directory and the tokens by role."""
    data_dir = root / code.lower()
    data_dir.mkdir(parents=True)
    create_keystore(data_dir / "signer.json", PASSPHRASE, key, kdf_iterations=2**10)
    tokens = {}
    with Store(store or data_dir / "store", bytes.fromhex(KEK), create=True) as node_store:
        for role in ROLES:
            token = secrets.token_urlsafe(32)
            node_store.add_token(token, {"name": f"{role} of {code}", "role": role, "agency": code}, None)
            tokens[role] = token
        # Two tokens that must not work: one expired, one revoked.
        tokens["expired"] = secrets.token_urlsafe(32)
        node_store.add_token(tokens["expired"], {"name": "expired", "role": "officer", "agency": code}, 1)
        tokens["revoked"] = secrets.token_urlsafe(32)
        node_store.revoke_token(
            node_store.add_token(
                tokens["revoked"], {"name": "revoked", "role": "officer", "agency": code}, None
            )
        )
    if policy is not None:
        (data_dir / "peer-policy.json").write_text(json.dumps(policy))
    return data_dir, tokens


def start_server(
    data_dir: Path,
    code: str,
    key: bytes,
    tokens: dict[str, str],
    rpc: str,
    deployment: Path,
    *extra: str,
    port: int | None = None,
    store: str | None = None,
) -> Server:
    """`sijill serve` of the node in `data_dir` (on its `store`, else LevelDB in the directory)
    with `extra` flags; returns once /readyz answers 200."""
    port = port or free_port()
    log = data_dir / "serve.log"
    args = [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--data-dir",
        str(data_dir),
        "--agency",
        code,
        "--rpc",
        rpc,
        "--deployment",
        str(deployment),
        "--port",
        str(port),
        "--max-age",
        "0.5",
        "--batch-size",
        "20000",
        *(("--store", store) if store else ()),
        *extra,
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(args, env={**os.environ, **ENV}, stdout=out, stderr=subprocess.STDOUT)
    server = Server(code, f"http://127.0.0.1:{port}", data_dir, key, tokens, process, log, store=store)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sijill serve for {code} exited {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"sijill serve for {code} not ready in 90 s:\n{server.log_tail()}")


def stop_server(server: Server) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextmanager
def servers(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    root: Path,
    rpc: str,
    policies: dict[str, dict[str, Any]] | None = None,
    extra: Mapping[str, tuple[str, ...]]
    | Callable[[dict[str, str]], Mapping[str, tuple[str, ...]]]
    | None = None,
    names: Mapping[str, str] | None = None,
    more_signers: dict[str, tuple[str, ...]] | None = None,
    backend: Backend = LEVELDB,
) -> Iterator[dict[str, Server]]:
    """REPD, CSO and CRA serving a fresh deployment. `extra` is each node's further flags, or a
    function of every node's URL that gives them (for flags that name another node, such as
    `--verify-peer`): the ports are chosen before any node starts. `names`: agencies' on-chain
    names other than "<code> API test agency"; `more_signers`: further signer addresses of an
    agency besides its node's key (a test's own voting key, say); `backend`: where each node's
    store is (a new one each)."""
    keys, deployment = deploy_fresh(
        w3, compiled, root / "deployment.json", names=names, more_signers=more_signers
    )
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(keys):  # three free ports, not one free port thrice
        ports = {code: free_port() for code in keys}
    if callable(extra):
        extra = extra({code: f"http://127.0.0.1:{port}" for code, port in ports.items()})
    started: dict[str, Server] = {}
    try:
        for code, key in keys.items():
            store = backend.new_store()
            data_dir, tokens = init_node(root, code, key, (policies or {}).get(code), store=store)
            more = (extra or {}).get(code, ())
            started[code] = start_server(
                data_dir, code, key, tokens, rpc, deployment, *more, port=ports[code], store=store
            )
            started[code].extra["deployment"] = deployment
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def expect_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The RFC 9457 problem an answer carries: of `status` and `kind`, with its title and detail
    in English and Arabic and the request's instance."""
    where = (response.request.method, str(response.request.url), response.text)
    assert response.status_code == status, where
    assert response.headers["content-type"].startswith("application/problem+json"), where
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}", body
    assert body["status"] == status, body
    assert body["title"] and body["titleAr"] and body["detail"] and body["detailAr"], body
    assert body["instance"].startswith("/"), body
    return body


def wait_anchored(client: httpx.Client, path: str, timeout: float = 60.0) -> httpx.Response:
    """GET `path` (a bundle) until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code != 202 or time.monotonic() > deadline:
            return response
        time.sleep(0.3)
