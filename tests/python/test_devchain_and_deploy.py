"""The dev chain behaves like the Besu network, and deployment is idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node.chain.client import RevertDecoder, connect
from node.chain.deploy import (
    DEPLOYMENT_FORMAT,
    AgencySpec,
    NetworkSpec,
    check_deployment,
    demo_network,
    deploy_network,
    load_deployment,
)
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import CompiledContract
from node.chain.txmanager import TxManager
from node.errors import ChainError, DeploymentError

pytestmark = pytest.mark.chain


def test_free_gas_like_besu(w3: Web3, accounts: list[LocalAccount], decoder: RevertDecoder) -> None:
    latest = w3.eth.get_block("latest")
    assert latest["baseFeePerGas"] == 0
    sender = TxManager(w3, accounts[6], decoder)
    receipt = sender.wait(sender.send({"to": accounts[5].address, "value": 1}, label="transfer"))
    assert receipt["status"] == 1 and receipt["effectiveGasPrice"] == 0
    sent = w3.eth.get_transaction(receipt["transactionHash"])
    assert sent["type"] == 0 and sent["gasPrice"] == 0, "a legacy transaction at gas price 0, as Besu takes"


def test_blocks_come_on_a_timer_not_per_transaction(w3: Web3) -> None:
    first = w3.eth.block_number
    time.sleep(2.5)
    assert w3.eth.block_number - first >= 2
    a, b = w3.eth.get_block(first), w3.eth.get_block(first + 1)
    assert b["timestamp"] - a["timestamp"] >= 1


def test_fork_rules_are_shanghai_like_the_genesis(
    w3: Web3, accounts: list[LocalAccount], decoder: RevertDecoder
) -> None:
    sender = TxManager(w3, accounts[6], decoder)
    # Init code running PUSH0 (Shanghai) deploys; init code running MCOPY (Cancun) must not.
    push0_ok = bytes.fromhex("5f5ff3")  # PUSH0 PUSH0 RETURN -> empty contract
    assert sender.wait(sender.send({"data": push0_ok}, label="deploy"))["status"] == 1
    mcopy = bytes.fromhex("5f5f5f5e00")  # PUSH0 x3, MCOPY, STOP
    with pytest.raises(ChainError, match="NotActivated"):
        sender.send({"data": mcopy}, label="deploy")


def test_deployment_file_describes_the_deployment(
    w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract]
) -> None:
    assert deployment["format"] == DEPLOYMENT_FORMAT
    assert deployment["chainId"] == w3.eth.chain_id == 31337
    assert deployment["compiler"]["version"] == "0.8.30"
    assert deployment["compiler"]["settings"]["evmVersion"] == "shanghai"
    for name, entry in deployment["contracts"].items():
        assert w3.eth.get_code(entry["address"]), name
        assert entry["abiHash"] == compiled[name].abi_hash
    assert [a["code"] for a in deployment["agencies"]] == ["REPD", "CSO", "CRA"]
    assert check_deployment(w3, deployment, compiled) == []


def test_redeploy_reuses_a_valid_deployment(
    w3: Web3, accounts: list[LocalAccount], compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    out = tmp_path / "deployment.json"
    spec = demo_network([a.address for a in accounts[1:4]])
    first = deploy_network(w3, accounts[0], spec, out, compiled=compiled)
    nonce = w3.eth.get_transaction_count(accounts[0].address)
    second = deploy_network(w3, accounts[0], spec, out, compiled=compiled)
    assert not first.reused and second.reused
    assert second.deployment == first.deployment
    assert w3.eth.get_transaction_count(accounts[0].address) == nonce, "reuse sent no transaction"
    assert load_deployment(out) == first.deployment

    forced = deploy_network(w3, accounts[0], spec, out, compiled=compiled, force=True)
    assert not forced.reused
    assert (
        forced.deployment["contracts"]["RecordLedger"]["address"]
        != first.deployment["contracts"]["RecordLedger"]["address"]
    )


def test_a_stale_deployment_is_replaced_with_the_reason(
    w3: Web3, accounts: list[LocalAccount], compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    out = tmp_path / "deployment.json"
    spec = demo_network([a.address for a in accounts[1:4]])
    original = deploy_network(w3, accounts[0], spec, out, compiled=compiled).deployment

    tampered = json.loads(json.dumps(original))
    tampered["contracts"]["RecordLedger"]["address"] = tampered["contracts"]["AgencyRegistry"]["address"]
    assert any("is not the RecordLedger recorded" in p for p in check_deployment(w3, tampered, compiled))

    tampered = json.loads(json.dumps(original))
    tampered["contracts"]["AgencyRegistry"]["abiHash"] = "sha256:old"
    out.write_text(json.dumps(tampered))
    result = deploy_network(w3, accounts[0], spec, out, compiled=compiled)
    assert not result.reused
    assert result.problems == ["AgencyRegistry's ABI changed since it was deployed"]

    tampered["genesisHash"] = "0x" + "00" * 32
    assert "another chain" in check_deployment(w3, tampered, compiled)[0]


def test_deployment_survives_a_dev_chain_restart(
    accounts: list[LocalAccount], compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    config = DevChainConfig(port=free_port(), block_time=1.0, data_dir=tmp_path / "chain")
    out = tmp_path / "deployment.json"
    spec = demo_network([a.address for a in accounts[1:4]])
    with DevChain(config) as chain:
        first = deploy_network(connect(chain.rpc_url), accounts[0], spec, out, compiled=compiled)
    assert (tmp_path / "chain" / "state.json").exists()
    with DevChain(config) as chain:
        again = deploy_network(connect(chain.rpc_url), accounts[0], spec, out, compiled=compiled)
    assert again.reused and again.deployment == first.deployment

    # A fresh chain with the same id is another chain: the file is not reused.
    with DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain:
        fresh = deploy_network(connect(chain.rpc_url), accounts[0], spec, out, compiled=compiled)
    assert not fresh.reused
    assert "another chain" in fresh.problems[0]


def test_dev_keys_are_refused_off_the_dev_chain(
    accounts: list[LocalAccount], compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    spec = demo_network([a.address for a in accounts[1:4]])
    with DevChain(DevChainConfig(port=free_port(), chain_id=2024, block_time=1.0)) as chain:
        w3 = connect(chain.rpc_url)
        with pytest.raises(
            DeploymentError, match=r"refusing to use anvil's public development keys .* on chain 2024"
        ):
            deploy_network(w3, accounts[0], spec, tmp_path / "d.json", compiled=compiled)
    assert not (tmp_path / "d.json").exists()


def _sijill(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).parent / "sijill"
    return subprocess.run(
        [str(cli), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_deploys_then_reuses(devchain: DevChain, tmp_path: Path) -> None:
    out = tmp_path / "cli-deployment.json"
    first = _sijill("deploy", "--rpc", devchain.rpc_url, "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Deployed" in first.stdout and "RecordLedger" in first.stdout
    second = _sijill("deploy", "--rpc", devchain.rpc_url, "--out", str(out), cwd=tmp_path)
    assert second.returncode == 0 and "Reusing the valid deployment" in second.stdout


def test_cli_errors_are_clear_and_without_traceback(tmp_path: Path) -> None:
    unreachable = _sijill("deploy", "--rpc", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert unreachable.returncode == 2
    assert "no JSON-RPC node answers" in unreachable.stderr

    key = tmp_path / "key"
    key.write_text("not a key")
    bad_key = _sijill("deploy", "--rpc", "http://127.0.0.1:1", "--deployer-key-file", str(key), cwd=tmp_path)
    assert bad_key.returncode == 1 and "holds neither a hex private key nor a keystore" in bad_key.stderr

    bad = tmp_path / "agencies.json"
    bad.write_text('{"threshold": 1, "agencies": [{"code": "X1"}]}')
    bad_agencies = _sijill("deploy", "--rpc", "http://127.0.0.1:1", "--agencies", str(bad), cwd=tmp_path)
    assert bad_agencies.returncode == 1
    assert "agency entry {'code': 'X1'} is invalid" in bad_agencies.stderr

    missing = _sijill("deploy", "--agencies", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert missing.returncode == 1 and "cannot read the agencies file" in missing.stderr

    # A damaged keystore (it was a KeyError's traceback), then one others may read: one line each.
    keystore = tmp_path / "deployer.json"
    keystore.write_text('{"version": 3, "crypto": {}}')
    keystore.chmod(0o600)
    args = ("deploy", "--rpc", "http://127.0.0.1:1", "--deployer-key-file", str(keystore))
    damaged = _sijill(*args, cwd=tmp_path, env={"SIJILL_DEPLOYER_PASSPHRASE": "x"})
    assert damaged.returncode == 1
    assert damaged.stderr == f"error: cannot unlock {keystore}: wrong passphrase or damaged keystore\n"
    keystore.chmod(0o644)
    readable = _sijill(*args, cwd=tmp_path, env={"SIJILL_DEPLOYER_PASSPHRASE": "x"})
    assert readable.returncode == 1 and len(readable.stderr.splitlines()) == 1
    assert "mode 0644, so group or others may read it" in readable.stderr
    for run in (unreachable, bad_key, bad_agencies, missing, damaged, readable):
        assert "Traceback" not in run.stderr + run.stdout


def test_cli_deploy_with_a_keystore_and_an_agencies_file(
    devchain: DevChain, accounts: list[LocalAccount], tmp_path: Path
) -> None:
    keystore = tmp_path / "deployer.json"
    keystore.write_text(json.dumps(Account.encrypt(accounts[6].key, "correct horse", iterations=2)))
    keystore.chmod(0o600)
    agencies = tmp_path / "agencies.json"
    agencies.write_text(
        json.dumps(
            {
                "threshold": 1,
                "agencies": [
                    {
                        "code": "MOJ",
                        "name": "Ministry of Justice",
                        "signers": [accounts[4].address],
                        "recordTypes": ["marriage", "title"],
                        "council": True,
                    }
                ],
            }
        )
    )
    args = [
        "deploy",
        "--rpc",
        devchain.rpc_url,
        "--agencies",
        str(agencies),
        "--deployer-key-file",
        str(keystore),
        "--out",
        str(tmp_path / "d.json"),
    ]
    wrong = _sijill(*args, cwd=tmp_path, env={"SIJILL_DEPLOYER_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    assert "correct horse" not in wrong.stderr + wrong.stdout
    ok = _sijill(*args, cwd=tmp_path, env={"SIJILL_DEPLOYER_PASSPHRASE": "correct horse"})
    assert ok.returncode == 0, ok.stderr
    deployment = load_deployment(tmp_path / "d.json")
    assert deployment["deployer"] == accounts[6].address
    assert deployment["agencies"][0]["code"] == "MOJ" and deployment["threshold"] == 1


def test_agency_names_are_canonical_before_any_deployment(
    devchain: DevChain, accounts: list[LocalAccount], compiled: dict[str, CompiledContract], tmp_path: Path
) -> None:
    """An agencies file's names are normalised as record text is, and one holding a direction
    control is refused in one line naming it, before anything is sent; a name given in code that is
    not canonical is refused too (node/chain/deploy.py, ledger/codes.py agency_name)."""

    def agencies_file(name: str) -> Path:
        path = tmp_path / "agencies.json"
        entry = {"code": "MOJ", "name": name, "signers": [accounts[4].address], "recordTypes": ["title"]}
        path.write_text(json.dumps({"threshold": 1, "agencies": [entry]}, ensure_ascii=False))
        return path

    out = tmp_path / "d.json"
    args = ("deploy", "--rpc", devchain.rpc_url, "--out", str(out), "--agencies")
    spoofed = _sijill(*args, str(agencies_file("وزارة العدل / \u202eecitsuj fo yrtsiniM")), cwd=tmp_path)
    assert spoofed.returncode == 1 and len(spoofed.stderr.splitlines()) == 1, spoofed.stderr
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in spoofed.stderr and "Traceback" not in spoofed.stderr
    assert "\u202e" not in spoofed.stderr and not out.exists()

    typed = _sijill(*args, str(agencies_file("وزارة العـــدل\u200f  / Ministry of Justice ")), cwd=tmp_path)
    assert typed.returncode == 0, typed.stderr
    assert load_deployment(out)["agencies"][0]["name"] == "وزارة العدل / Ministry of Justice"

    w3 = connect(devchain.rpc_url)
    spec = NetworkSpec(
        (AgencySpec("MOJ", "Ministry\u2066 of Justice", (accounts[4].address,), ("title",)),), 1
    )
    with pytest.raises(
        DeploymentError, match="agency MOJ: the agency name holds U\\+2066 LEFT-TO-RIGHT ISOLATE"
    ):
        deploy_network(w3, accounts[0], spec, tmp_path / "e.json", compiled=compiled)
    spec = NetworkSpec((AgencySpec("MOJ", "Ministry  of Justice", (accounts[4].address,), ("title",)),), 1)
    with pytest.raises(DeploymentError, match="not in canonical form"):
        deploy_network(w3, accounts[0], spec, tmp_path / "e.json", compiled=compiled)
