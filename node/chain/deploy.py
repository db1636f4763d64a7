"""Deploying AgencyRegistry and RecordLedger, idempotently.

`deploy_network` deploys the registry (with its founding agencies and council) and the ledger
over it, and writes a deployment file. Run again with the same file, it checks the recorded
deployment against the chain and reuses it when it is still valid: same chain id and genesis
block, the recorded code at both addresses, ABIs and bytecode unchanged since, and the ledger
pointing at the registry. Anything else (a fresh dev chain, changed contracts) deploys anew.

Deployment file (JSON, `format: sijill-deployment/1`): chain id, genesis hash, deployer,
compiler version, per contract its address, transaction, block, runtime-code keccak and ABI
hash, and the founding agencies. Documented in docs/deployment.md.

Development keys (anvil's public mnemonic) are refused on any chain but the dev chain id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from ledger.codes import agency_code, agency_name, record_type
from ledger.errors import InvalidAgencyName
from node.chain.client import RevertDecoder
from node.chain.devchain import DEV_CHAIN_ID, DEV_MNEMONIC
from node.chain.toolchain import CompiledContract, compile_contracts, compiler_config
from node.chain.txmanager import TxManager, TxSettings
from node.errors import DeploymentError

DEPLOYMENT_FORMAT = "sijill-deployment/1"
DEFAULT_PROPOSAL_LIFETIME = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class AgencySpec:
    """A founding agency: code, display name (public, canonical: `ledger.codes.agency_name`),
    signers, record types, council seat."""

    code: str
    name: str
    signers: tuple[str, ...]
    record_types: tuple[str, ...]
    council: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "signers": list(self.signers),
            "recordTypes": list(self.record_types),
            "council": self.council,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgencySpec:
        try:
            return cls(
                code=str(data["code"]),
                name=agency_name(data["name"]),
                signers=tuple(to_checksum_address(s) for s in data["signers"]),
                record_types=tuple(str(t) for t in data["recordTypes"]),
                council=bool(data.get("council", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentError(f"agency entry {data!r} is invalid: {exc}") from None


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """What the registry is bootstrapped with."""

    agencies: tuple[AgencySpec, ...]
    threshold: int
    proposal_lifetime: int = DEFAULT_PROPOSAL_LIFETIME

    def constructor_args(self) -> bytes:
        for a in self.agencies:
            _check_name(a)
        inits = [
            (
                agency_code(a.code),
                a.name,
                a.council,
                list(a.signers),
                [record_type(t) for t in a.record_types],
            )
            for a in self.agencies
        ]
        return abi_encode(
            ["(bytes32,string,bool,address[],bytes32[])[]", "uint32", "uint64"],
            [inits, self.threshold, self.proposal_lifetime],
        )


def _check_name(agency: AgencySpec) -> None:
    """Refuse to put a name on-chain that is not a canonical agency name (ledger.codes): names
    read from an agencies file are normalised on the way in, so only code can get here with one."""
    try:
        canonical = agency_name(agency.name)
    except InvalidAgencyName as exc:
        raise DeploymentError(f"agency {agency.code}: {exc}") from None
    if canonical != agency.name:
        raise DeploymentError(
            f"agency {agency.code}: the name {agency.name!r} is not in canonical form ({canonical!r})"
        )


@dataclass(frozen=True, slots=True)
class DeployResult:
    deployment: dict[str, Any]
    reused: bool
    problems: list[str] = field(default_factory=list)  # why an old deployment was not reused


def dev_accounts(count: int = 4) -> list[LocalAccount]:
    """anvil's well-known development accounts (public keys: for the dev chain only)."""
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)]


def demo_network(signers: Sequence[str]) -> NetworkSpec:
    """The three demo agencies (land titles, marriages, companies), all on the council, 2 of 3."""
    if len(signers) != 3:
        raise DeploymentError("the demo network needs exactly three signer addresses")
    return NetworkSpec(
        agencies=(
            AgencySpec(
                "REPD",
                "مصلحة الشهر العقاري والتوثيق / Real Estate Publicity Department",
                (signers[0],),
                ("title",),
            ),
            AgencySpec(
                "CSO", "قطاع الأحوال المدنية / Civil Status Organization", (signers[1],), ("marriage",)
            ),
            AgencySpec(
                "CRA", "مصلحة السجل التجاري / Commercial Registry Authority", (signers[2],), ("commercial",)
            ),
        ),
        threshold=2,
    )


def load_network_spec(path: Path) -> NetworkSpec:
    """A network spec from JSON: {"threshold": 2, "proposalLifetime": 604800, "agencies": [...]}."""
    try:
        data = json.loads(path.read_text())
        agencies = tuple(AgencySpec.from_json(a) for a in data["agencies"])
        return NetworkSpec(
            agencies, int(data["threshold"]), int(data.get("proposalLifetime", DEFAULT_PROPOSAL_LIFETIME))
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"cannot read the agencies file {path}: {exc}") from None


def refuse_dev_keys_off_devchain(w3: Web3, addresses: Sequence[str]) -> None:
    """Development keys are public: refuse them anywhere but the dev chain."""
    chain_id = w3.eth.chain_id
    if chain_id == DEV_CHAIN_ID:
        return
    public = {a.address for a in dev_accounts(10)}
    used = sorted(set(addresses) & public)
    if used:
        raise DeploymentError(
            f"refusing to use anvil's public development keys ({', '.join(used)}) on chain {chain_id}; "
            f"they are accepted only on the dev chain ({DEV_CHAIN_ID})"
        )


def load_deployment(path: Path) -> dict[str, Any]:
    """A deployment file, checked for its format."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DeploymentError(f"cannot read deployment file {path}: {exc}") from None
    if data.get("format") != DEPLOYMENT_FORMAT:
        raise DeploymentError(f"{path} is not a {DEPLOYMENT_FORMAT} file (format={data.get('format')!r})")
    return data


def check_deployment(
    w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract]
) -> list[str]:
    """Why `deployment` is not a valid deployment of these contracts on this chain (empty: valid)."""
    problems = []
    chain_id = w3.eth.chain_id
    if deployment.get("chainId") != chain_id:
        return [f"it is for chain {deployment.get('chainId')}, this chain is {chain_id}"]
    genesis = w3.eth.get_block(0)["hash"].to_0x_hex()
    if deployment.get("genesisHash") != genesis:
        recorded = deployment.get("genesisHash")
        return [f"it is for another chain with id {chain_id} (genesis {recorded}, now {genesis})"]
    for name, contract in compiled.items():
        entry = deployment.get("contracts", {}).get(name)
        if not entry:
            problems.append(f"{name} is missing from it")
            continue
        if entry.get("abiHash") != contract.abi_hash:
            problems.append(f"{name}'s ABI changed since it was deployed")
        if entry.get("bytecodeHash") != "0x" + keccak(contract.bytecode).hex():
            problems.append(f"{name}'s bytecode changed since it was deployed")
        code = w3.eth.get_code(to_checksum_address(entry["address"]))
        if not code:
            problems.append(f"no code at {name}'s address {entry['address']}")
        elif "0x" + keccak(bytes(code)).hex() != entry.get("codeHash"):
            problems.append(f"the code at {entry['address']} is not the {name} recorded")
    if not problems:
        ledger = w3.eth.contract(
            address=deployment["contracts"]["RecordLedger"]["address"], abi=compiled["RecordLedger"].abi
        )
        if ledger.functions.registry().call() != deployment["contracts"]["AgencyRegistry"]["address"]:
            problems.append("the RecordLedger points at another registry")
    return problems


def deploy_network(
    w3: Web3,
    deployer: LocalAccount,
    spec: NetworkSpec,
    out: Path,
    *,
    compiled: dict[str, CompiledContract] | None = None,
    force: bool = False,
    gas_price: int | None = None,
) -> DeployResult:
    """Deploy both contracts (or reuse the valid deployment in `out`) and write `out`."""
    compiled = compiled or compile_contracts()
    refuse_dev_keys_off_devchain(w3, [deployer.address, *(s for a in spec.agencies for s in a.signers)])
    problems: list[str] = []
    if out.exists() and not force:
        previous = load_deployment(out)
        problems = check_deployment(w3, previous, compiled)
        if not problems:
            return DeployResult(previous, reused=True)

    decoder = RevertDecoder({name: c.abi for name, c in compiled.items()})
    sender = TxManager(w3, deployer, decoder, TxSettings(gas_price=gas_price))
    registry_receipt = _create(
        sender, compiled["AgencyRegistry"].bytecode + spec.constructor_args(), "AgencyRegistry"
    )
    registry_address = registry_receipt["contractAddress"]
    ledger_init = compiled["RecordLedger"].bytecode + abi_encode(["address"], [registry_address])
    ledger_receipt = _create(sender, ledger_init, "RecordLedger")
    receipts = {"AgencyRegistry": registry_receipt, "RecordLedger": ledger_receipt}

    deployment: dict[str, Any] = {
        "format": DEPLOYMENT_FORMAT,
        "chainId": w3.eth.chain_id,
        "genesisHash": w3.eth.get_block(0)["hash"].to_0x_hex(),
        "deployer": deployer.address,
        "block": ledger_receipt["blockNumber"],
        "compiler": {"version": compiler_config()["version"], "settings": compiler_config()["settings"]},
        "contracts": {},
        "threshold": spec.threshold,
        "proposalLifetime": spec.proposal_lifetime,
        "agencies": [a.to_json() for a in spec.agencies],
    }
    for name, receipt in receipts.items():
        address = receipt["contractAddress"]
        assert address is not None, "a creation receipt has a contract address"
        deployment["contracts"][name] = {
            "address": address,
            "transaction": receipt["transactionHash"].to_0x_hex(),
            "block": receipt["blockNumber"],
            "gasUsed": receipt["gasUsed"],
            "codeHash": "0x" + keccak(bytes(w3.eth.get_code(address))).hex(),
            "bytecodeHash": "0x" + keccak(compiled[name].bytecode).hex(),
            "abiHash": compiled[name].abi_hash,
        }
    write_deployment(out, deployment)
    return DeployResult(deployment, reused=False, problems=problems)


def _create(sender: TxManager, init_code: bytes, name: str) -> TxReceipt:
    """Send a contract creation and wait for its receipt."""
    return sender.wait(sender.send({"data": HexBytes(init_code)}, label=f"deploy {name}"))


def write_deployment(path: Path, deployment: dict[str, Any]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(deployment, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def bound_contracts(
    w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract]
) -> dict[str, Any]:
    """web3 contract objects for a deployment, by contract name."""
    return {
        name: w3.eth.contract(address=deployment["contracts"][name]["address"], abi=compiled[name].abi)
        for name in compiled
    }
