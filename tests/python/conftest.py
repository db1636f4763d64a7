"""Shared fixtures: a real anvil node (configured like Besu) started once per test session,
the compiled contracts, and a demo deployment on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
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
