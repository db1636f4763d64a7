"""`sijill network init`: the files of the agencies' Besu QBFT network, generated into one directory.

Besu cannot run on the machines this is developed on, so everything Besu reads is generated
here, exactly, and checked by tests/python/test_besu_network.py; docs/besu.md is the runbook
and explains every choice. For N validators (4 to 30) `init` writes into one directory:

- `genesis.json` (`genesis`): chain id, every fork up to Shanghai at block 0 (`shanghaiTime:
  0`, no Cancun: docs/toolchain.md), `zeroBaseFee`, a block gas limit sized from the largest
  call the node sends, and the QBFT `extraData` naming the validators (`extradata`);
- per validator `validator-I/`: its node key (an Ethereum keystore, or with
  `--insecure-dev-keys` the plain hex file Besu reads: `nodekeys`), `config.toml` (Besu's
  options, names as on its command line) and `permissions/permissions_config.toml` (nodes and
  accounts allow-lists: `configs`), and an empty `data/`;
- `docker-compose.yml` (`compose`): the validators on the official Besu image with static
  addresses on a private network, an init container per validator that unlocks its key into a
  tmpfs, and one `sijill serve` per agency pointed at its own validator;
- `network.json`: the manifest tying it together (addresses, enodes, hosts, ports, files);
- `agencies.json` (the agencies file, for `sijill deploy`) and, unless `--deployer` names an
  existing account, a deployer key in `deployer/`.

The contracts are not in the genesis `alloc`: `sijill deploy` creates them once the chain runs
(docs/besu.md, "Contracts: deployed, not pre-allocated").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from node.network.agencies import load_agencies_file
from node.network.compose import compose_document, compose_text
from node.network.configs import Validator, besu_config, permissions_config
from node.network.genesis import genesis_document
from node.network.nodekeys import NodeKey, make_dir, write_key
from node.network.options import (
    BESU_IMAGE,
    NETWORK_FORMAT,
    NetworkConfigError,
    NetworkOptions,
    agency_hosts,
    compose_possible,
    subnet_of,
    validator_hosts,
)

GENERATED_FILES = ("network.json", "genesis.json", "docker-compose.yml", "agencies.json")


@dataclass(frozen=True, slots=True)
class GeneratedNetwork:
    out: Path
    manifest: dict[str, Any]
    compose: bool


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    make_dir(path.parent)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def prepare_out_dir(out_dir: Path, *, force: bool) -> None:
    """An absent or empty directory (an `agencies/` with agency node directories may be there);
    with --force, the files a previous run generated are removed, unless a validator holds
    chain data (a new genesis cannot use it)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NetworkConfigError(f"{out_dir} exists and is not a directory")
    present = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    others = [name for name in present if name != "agencies"]
    if not others:
        return
    if not force:
        raise NetworkConfigError(
            f"{out_dir} is not empty ({', '.join(others[:5])}{'...' if len(others) > 5 else ''}); "
            "give an empty directory, or --force to replace a network that never ran (new keys, new genesis)"
        )
    for data in sorted(out_dir.glob("validator-*/data")):
        if data.is_dir() and any(data.iterdir()):
            raise NetworkConfigError(
                f"{data} holds chain data: a new genesis cannot use it, and --force will not delete it; "
                "move the old network away first"
            )
    for name in others:
        path = out_dir / name
        if name in GENERATED_FILES:
            path.unlink()
        elif path.is_dir() and (name == "deployer" or name.startswith("validator-")):
            shutil.rmtree(path)
        else:
            raise NetworkConfigError(f"{path} was not made by `sijill network init`; move it away first")


def generate_network(
    out_dir: Path,
    options: NetworkOptions,
    agencies_path: Path,
    *,
    passphrase: str | None,
    deployer: str | None = None,
    allow_accounts: Sequence[str] = (),
    force: bool = False,
) -> GeneratedNetwork:
    """Write the network's files into `out_dir` (module docstring); `passphrase` None writes
    plain keys (--insecure-dev-keys)."""
    options.check()
    agencies_file = load_agencies_file(agencies_path)
    hosts = validator_hosts(options)
    agency_ips = agency_hosts(options, len(agencies_file.agencies))
    extra: list[str] = []
    for account in allow_accounts:
        try:
            extra.append(to_checksum_address(account))
        except ValueError:
            raise NetworkConfigError(f"--allow-account {account!r} is not an address") from None
    if deployer is not None:
        try:
            deployer = to_checksum_address(deployer)
        except ValueError:
            raise NetworkConfigError(f"--deployer {deployer!r} is not an address") from None
    if passphrase is not None and not passphrase:
        raise NetworkConfigError("refusing to encrypt the node keys with an empty passphrase")
    prepare_out_dir(out_dir, force=force)
    make_dir(out_dir)

    keys = [NodeKey.generate() for _ in hosts]
    validators = [
        Validator(i, key, host, options.p2p_port, options.rpc_port)
        for i, (key, host) in enumerate(zip(keys, hosts, strict=True), start=1)
    ]
    deployer_entry: dict[str, Any]
    if deployer is None:
        deployer_key = NodeKey.generate()
        key_file = write_key(out_dir / "deployer", deployer_key.private_key, passphrase)
        deployer_entry = {"address": deployer_key.address, "keyFile": str(key_file.relative_to(out_dir))}
    else:
        deployer_entry = {"address": deployer, "keyFile": None}
    accounts = list(dict.fromkeys([*agencies_file.signers, deployer_entry["address"], *extra]))

    genesis = genesis_document(options, [v.address for v in validators])
    _write_text(out_dir / "genesis.json", json.dumps(genesis, indent=2) + "\n")
    _write_text(
        out_dir / "agencies.json", json.dumps(agencies_file.document, indent=2, ensure_ascii=False) + "\n"
    )
    enodes = [v.enode for v in validators]
    entries = []
    for v in validators:
        node_dir = out_dir / v.name
        key_file = write_key(node_dir, v.key.private_key, passphrase)
        _write_text(node_dir / "key.pub", "0x" + v.key.public_key.hex() + "\n")
        bootnodes = [e for e in enodes if e != v.enode]
        _write_text(node_dir / "config.toml", besu_config(options, v, bootnodes))
        _write_text(
            node_dir / "permissions" / "permissions_config.toml", permissions_config(enodes, accounts)
        )
        (node_dir / "data").mkdir(mode=0o700)
        entries.append(
            {
                "index": v.index,
                "name": v.name,
                "address": v.address,
                "publicKey": "0x" + v.key.public_key.hex(),
                "enode": v.enode,
                "host": v.host,
                "p2pPort": v.p2p_port,
                "rpcPort": v.rpc_port,
                "rpcUrl": v.rpc_url,
                "keyFile": str(key_file.relative_to(out_dir)),
                "configFile": f"{v.name}/config.toml",
                "permissionsFile": f"{v.name}/permissions/permissions_config.toml",
                "dataDir": f"{v.name}/data",
                "service": v.name,
            }
        )
    agencies = []
    for j, (agency, ip) in enumerate(zip(agencies_file.agencies, agency_ips, strict=True), start=1):
        own = validators[(j - 1) % len(validators)]
        agencies.append(
            {
                "code": agency.code,
                "name": agency.name,
                "signers": list(agency.signers),
                "recordTypes": list(agency.record_types),
                "council": agency.council,
                "validator": own.index,
                "rpcUrl": own.rpc_url,
                "host": ip,
                "service": f"agency-{agency.code.lower()}",
                "apiPort": options.api_port_base + j - 1,
                "dataDir": f"agencies/{agency.code}",
            }
        )
    with_compose = compose_possible(options, hosts)
    if with_compose:
        compose = compose_document(options, validators, agencies, encrypted=passphrase is not None)
        _write_text(out_dir / "docker-compose.yml", compose_text(compose))
    manifest: dict[str, Any] = {
        "format": NETWORK_FORMAT,
        "chainId": options.chain_id,
        "besuVersion": options.besu_version,
        "besuImage": f"{BESU_IMAGE}:{options.besu_version}",
        "sijillImage": options.sijill_image,
        "consensus": {
            "protocol": "qbft",
            "blockPeriodSeconds": options.block_period,
            "epochLength": options.epoch_length,
            "requestTimeoutSeconds": options.timeout,
            "validators": len(validators),
            "faultTolerance": options.fault_tolerance,
        },
        "gasLimit": options.gas_limit,
        "subnet": str(subnet_of(options)),
        "keys": "encrypted" if passphrase is not None else "plain (--insecure-dev-keys)",
        "genesisFile": "genesis.json",
        "agenciesFile": "agencies.json",
        "composeFile": "docker-compose.yml" if with_compose else None,
        "validators": entries,
        "deployer": deployer_entry,
        "accountsAllowlist": accounts,
        # What `sijill network sync-permissions` keeps beside the registry's signers: the
        # --allow-account entries. Not the deployer: it has no power once the contracts exist.
        "keep": [{"address": a, "note": "--allow-account"} for a in dict.fromkeys(extra)],
        "threshold": agencies_file.threshold,
        "agencies": agencies,
    }
    _write_text(out_dir / "network.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return GeneratedNetwork(out_dir, manifest, with_compose)
