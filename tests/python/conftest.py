"""Shared fixtures: a real anvil node (configured like Besu) started once per test session,
the compiled contracts, and a demo deployment on it; and `--fast`, the inner loop's selection.

`pytest --fast` (`make test-fast`) runs the tests that need no chain, no browser, no running
node and none of `make setup-test`'s tools. It leaves out every test marked `chain` or
`toolchain`. A module says so itself (`pytestmark = pytest.mark.chain`), or the fixtures a test
uses do, whatever its module: `devchain` (the session's anvil, under `w3`, `deployment`,
`contracts`, `senders`) marks it `chain`, `hardhat_build` and `slither` mark it `toolchain`. A
test that starts such a process all the same (anvil, `sijill serve`, `demo`, `devchain` or `node
run`, the browser, Hardhat, slither) is skipped under --fast, saying so, instead of failing or
stalling the loop: give it the marker.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Backend
from eth_account.signers.local import LocalAccount
from pg_cluster import PgCluster
from web3 import Web3

from node.chain.client import RevertDecoder, connect
from node.chain.deploy import bound_contracts, demo_network, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import CompiledContract, compile_contracts
from node.chain.txmanager import TxManager


@pytest.fixture(scope="session")
def compiled() -> dict[str, CompiledContract]:
    return compile_contracts()


@pytest.fixture(scope="session")
def decoder(compiled: dict[str, CompiledContract]) -> RevertDecoder:
    return RevertDecoder({name: c.abi for name, c in compiled.items()})


@pytest.fixture(scope="session")
def devchain() -> Iterator[DevChain]:
    with DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain:
        yield chain


@pytest.fixture(scope="session")
def w3(devchain: DevChain) -> Web3:
    return connect(devchain.rpc_url)


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    """anvil's dev accounts: 0 deploys, 1-3 sign for REPD, CSO, CRA; 4+ are spare."""
    return dev_accounts(8)


@pytest.fixture(scope="session")
def deployment(
    w3: Web3,
    accounts: list[LocalAccount],
    compiled: dict[str, CompiledContract],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    out: Path = tmp_path_factory.mktemp("deploy") / "deployment.json"
    spec = demo_network([a.address for a in accounts[1:4]])
    return deploy_network(w3, accounts[0], spec, out, compiled=compiled).deployment


@pytest.fixture(scope="session")
def contracts(w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract]) -> dict[str, Any]:
    return bound_contracts(w3, deployment, compiled)


@pytest.fixture(scope="session")
def senders(w3: Web3, accounts: list[LocalAccount], decoder: RevertDecoder) -> dict[str, TxManager]:
    """One transaction sender per demo agency signer, plus an outsider with no role."""
    return {
        "REPD": TxManager(w3, accounts[1], decoder),
        "CSO": TxManager(w3, accounts[2], decoder),
        "CRA": TxManager(w3, accounts[3], decoder),
        "outsider": TxManager(w3, accounts[7], decoder),
    }


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL 15 cluster for the session (tests/python/pg_cluster.py); each test
    makes its own database in it with `pg_cluster.create_database()`."""
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="module", params=["leveldb", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Where a module's nodes keep their stores, once each way: LevelDB in each node's
    directory, then a database per node on the session's `pg_cluster` (started only then). A
    module whose servers are module-scoped makes them take this, and every test in it runs on
    both (docs/storage.md: the same behaviour on either backend)."""
    if request.param == "leveldb":
        return Backend()
    return Backend(request.getfixturevalue("pg_cluster"))


# ---------------------------------------------------------------------------- pytest --fast


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="Only the tests that need no chain, browser or running node (make test-fast).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "toolchain: runs Hardhat (Node) or slither (.venv-slither)")
    if config.getoption("--fast"):
        _refuse_slow_processes()


#: Fixtures whose tests are left out of --fast, and the marker they give a test.
SLOW_FIXTURES = {"devchain": "chain", "hardhat_build": "toolchain", "slither": "toolchain"}
SLOW_MARKERS = ("chain", "toolchain")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(SLOW_FIXTURES[fixture])
    if not config.getoption("--fast"):
        return
    slow = [item for item in items if any(item.get_closest_marker(m) for m in SLOW_MARKERS)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        left_out = set(slow)
        items[:] = [item for item in items if item not in left_out]


#: The `sijill` (or `python -m cli`) commands that start a chain, a node or an API and keep running.
_NODE_COMMANDS = {("serve",), ("demo",), ("devchain",), ("node", "run")}


def _slow_process(args: Any) -> str | None:
    """What the command line `args` starts that has no place in the fast loop, or None."""
    argv = (
        [str(os.fspath(a)) for a in args] if isinstance(args, Sequence) and not isinstance(args, str) else []
    )
    if not argv:
        return None
    program = Path(argv[0]).name
    if program == "anvil":
        return "a chain (anvil)"
    if program == "slither":
        return "slither (.venv-slither, from make setup-test)"
    if program == "npx" and "hardhat" in argv:
        return "the Hardhat build (Node)"
    if any("chromium" in a or a.endswith("browse.mjs") for a in argv):
        return "a browser"
    if program == "sijill":
        words = argv[1:]
    elif "-m" in argv and argv[argv.index("-m") + 1 :][:1] == ["cli"]:
        words = argv[argv.index("-m") + 2 :]
    else:
        return None
    while words[:1] == ["--config"]:  # the one option before the command
        words = words[2:]
    for command in _NODE_COMMANDS:
        if tuple(words[: len(command)]) == command:
            return f"a running node (sijill {' '.join(command)})"
    return None


def _refuse_slow_processes() -> None:
    """Under --fast, a test starting anvil, a node, a browser, Hardhat or slither is skipped, by name."""
    real_init = subprocess.Popen.__init__

    def init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        if (what := _slow_process(args)) is not None:
            pytest.skip(f"needs {what}: not a --fast test (mark it `chain` or `toolchain`)")
        real_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
