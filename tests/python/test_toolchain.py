"""The Python build (py-solc-x over npm solc) and the Hardhat build agree byte for byte."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from node.chain.toolchain import PROJECT_ROOT, CompiledContract, collect_sources, compile_contracts
from node.errors import ToolchainError

HARDHAT_ARTIFACTS = PROJECT_ROOT / "build" / "hardhat" / "artifacts" / "contracts"


@pytest.fixture(scope="module")
def hardhat_build() -> Path:
    subprocess.run(["npx", "hardhat", "compile", "--quiet"], cwd=PROJECT_ROOT, check=True, timeout=300)
    return HARDHAT_ARTIFACTS


@pytest.mark.parametrize("name", ["AgencyRegistry", "RecordLedger"])
def test_python_and_hardhat_builds_are_identical(
    name: str, compiled: dict[str, CompiledContract], hardhat_build: Path
) -> None:
    artifact = json.loads((hardhat_build / f"{name}.sol" / f"{name}.json").read_text())
    ours = compiled[name]
    # Full creation and runtime code, metadata hash included: same sources, same settings.
    assert "0x" + ours.bytecode.hex() == artifact["bytecode"]
    assert "0x" + ours.deployed_bytecode.hex() == artifact["deployedBytecode"]
    assert ours.abi == artifact["abi"]
    assert len(ours.deployed_bytecode) <= 24_576, "EIP-170 contract size limit"


def test_sources_are_named_as_hardhat_names_them() -> None:
    units = collect_sources()
    assert "contracts/AgencyRegistry.sol" in units
    assert "contracts/IRecordLedger.sol" in units
    assert "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol" in units
    assert not any(unit.startswith(("./", "../", "/")) for unit in units)


def test_a_fresh_compile_matches_the_cached_one(compiled: dict[str, CompiledContract]) -> None:
    fresh = compile_contracts(use_cache=False)
    assert {n: c.bytecode for n, c in fresh.items()} == {n: c.bytecode for n, c in compiled.items()}


def test_solc_binary_setting_is_honoured_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOLC_BINARY", str(tmp_path / "no-such-solc"))
    with pytest.raises(ToolchainError, match=r"solc not found at .*no-such-solc"):
        compile_contracts(use_cache=False)

    wrong = tmp_path / "solc-0.8.19"
    wrong.write_text(
        "#!/bin/sh\n"
        "echo 'solc, the solidity compiler commandline interface'\n"
        "echo 'Version: 0.8.19+commit.7dd6d404.Linux.g++'\n"
    )
    wrong.chmod(0o755)
    monkeypatch.setenv("SOLC_BINARY", str(wrong))
    with pytest.raises(ToolchainError, match=r"is solc 0\.8\.19 but contracts/compiler.json pins 0\.8\.30"):
        compile_contracts(use_cache=False)


def test_compile_errors_are_reported_with_the_compiler_message(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "contracts").mkdir(parents=True)
    (root / "scripts").symlink_to(PROJECT_ROOT / "scripts")
    (root / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    (root / "contracts" / "compiler.json").write_text(
        (PROJECT_ROOT / "contracts" / "compiler.json").read_text()
    )
    (root / "contracts" / "Broken.sol").write_text(
        "pragma solidity 0.8.30;\ncontract Broken { uint x = ; }\n"
    )
    with pytest.raises(ToolchainError, match="compilation failed"):
        compile_contracts(root, use_cache=False)
