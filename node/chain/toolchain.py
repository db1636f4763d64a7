"""Compiling the contracts with py-solc-x, offline.

Every build reads the compiler version and settings from `contracts/compiler.json`, the file
Hardhat reads too, and names its sources exactly as Hardhat does (`contracts/X.sol`,
`@openzeppelin/contracts/...`), so this build and Hardhat's produce identical bytecode
(metadata hash included): a test checks it.

No solc can be downloaded on these machines. The default compiler is `scripts/solcjs`, a
`solc`-compatible command over the npm `solc` package; `SOLC_BINARY` names a native solc
instead. Imports are resolved here and every source's text is put in the standard JSON input,
so the compiler needs no file-system access and native solc and solcjs see the same input.

Output is cached under `build/solc/`, keyed by a hash of the input and the compiler version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import ToolchainError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_NAMES = ("AgencyRegistry", "RecordLedger")

_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*\bfrom\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class CompiledContract:
    """One contract's build output."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes

    @property
    def abi_hash(self) -> str:
        """A stable fingerprint of the ABI: sha256 of its canonical JSON."""
        return "sha256:" + hashlib.sha256(canonical_json(self.abi).encode()).hexdigest()


def canonical_json(value: object) -> str:
    """Compact JSON with sorted keys: the same text for the same value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compiler_config(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The pinned compiler version and settings (`contracts/compiler.json`)."""
    path = root / "contracts" / "compiler.json"
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"cannot read the compiler settings {path}: {exc}") from exc
    return config


def solc_binary(root: Path = PROJECT_ROOT) -> Path:
    """The compiler: `SOLC_BINARY` if set, else the solcjs wrapper over npm `solc`."""
    configured = os.environ.get("SOLC_BINARY")
    binary = Path(configured) if configured else root / "scripts" / "solcjs"
    if not binary.exists():
        raise ToolchainError(f"solc not found at {binary} (set SOLC_BINARY to a native solc)")
    if not configured and not (root / "node_modules" / "solc" / "soljson.js").exists():
        raise ToolchainError("the npm solc package is missing: run `npm ci` (or `make setup`) first")
    return binary


def collect_sources(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Every source unit the contracts need, by Hardhat-style source name, with its text."""
    pending = [f"contracts/{p.name}" for p in sorted((root / "contracts").glob("*.sol"))]
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        sources[unit] = _read_unit(root, unit)
        for target in _IMPORT.findall(sources[unit]):
            pending.append(_resolve(unit, target))
    return dict(sorted(sources.items()))


def standard_input(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The solc standard-JSON input for the project's contracts."""
    settings = dict(compiler_config(root)["settings"])
    settings["outputSelection"] = {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    }
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in collect_sources(root).items()},
        "settings": settings,
    }


def compile_contracts(root: Path = PROJECT_ROOT, *, use_cache: bool = True) -> dict[str, CompiledContract]:
    """Compile (or load from cache) `AgencyRegistry` and `RecordLedger`."""
    import solcx  # imported here: only compiling needs it

    config = compiler_config(root)
    binary = solc_binary(root)
    input_json = standard_input(root)
    key = hashlib.sha256((canonical_json(input_json) + str(binary) + config["version"]).encode()).hexdigest()[
        :16
    ]
    cache = root / "build" / "solc" / f"output-{key}.json"
    if use_cache and cache.exists():
        output = json.loads(cache.read_text())
    else:
        try:
            version = solcx.wrapper.get_solc_version(binary)
        except Exception as exc:  # a broken binary raises anything from OSError to SolcError
            raise ToolchainError(f"{binary} --version failed: {exc}") from exc
        if str(version) != config["version"]:
            raise ToolchainError(
                f"{binary} is solc {version} but contracts/compiler.json pins {config['version']}"
            )
        try:
            output = solcx.compile_standard(input_json, solc_binary=binary, base_path=str(root))
        except solcx.exceptions.SolcError as exc:
            raise ToolchainError(f"compilation failed:\n{exc}") from exc
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(output))

    compiled: dict[str, CompiledContract] = {}
    for name in CONTRACT_NAMES:
        unit = f"contracts/{name}.sol"
        try:
            out = output["contracts"][unit][name]
        except KeyError:
            raise ToolchainError(f"the compiler output has no {unit}:{name}") from None
        compiled[name] = CompiledContract(
            name=name,
            source=unit,
            abi=out["abi"],
            bytecode=bytes.fromhex(out["evm"]["bytecode"]["object"]),
            deployed_bytecode=bytes.fromhex(out["evm"]["deployedBytecode"]["object"]),
        )
    return compiled


def _read_unit(root: Path, unit: str) -> str:
    path = root / unit if unit.startswith("contracts/") else root / "node_modules" / unit
    try:
        return path.read_text()
    except OSError:
        raise ToolchainError(f"source {unit} not found at {path} (run `npm ci`?)") from None


def _resolve(importer: str, target: str) -> str:
    """Hardhat's source-name resolution: relative to the importer, else a package path."""
    if not target.startswith("."):
        return target
    parts = importer.split("/")[:-1]
    for piece in target.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)
