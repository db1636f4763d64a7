"""`sijill network init` and `unlock-key`: the files of the agencies' Besu QBFT network.

Besu cannot run on the machines this is developed on, so everything Besu reads is generated
here, exactly, and checked by tests/python/test_besu_network.py; docs/besu.md is the runbook
and explains every choice. For N validators (4 to 30) `init` writes into one directory:

- `genesis.json`: chain id, every fork up to Shanghai at block 0 (`shanghaiTime: 0`, no
  Cancun: docs/toolchain.md), `zeroBaseFee`, a block gas limit sized from the largest call the
  node sends, and the QBFT `extraData` naming the validators (`encode_qbft_extra_data`);
- per validator `validator-I/`: its node key (an Ethereum keystore, or with
  `--insecure-dev-keys` the plain hex file Besu reads), `config.toml` (Besu's options, names
  as on its command line), `permissions/permissions_config.toml` (nodes and accounts
  allow-lists) and an empty `data/`;
- `docker-compose.yml`: the validators on the official Besu image with static addresses on a
  private network, an init container per validator that unlocks its key into a tmpfs, and one
  `sijill serve` per agency pointed at its own validator;
- `network.json`: the manifest tying it together (addresses, enodes, hosts, ports, files);
- `agencies.json` (the agencies file, for `sijill deploy`) and, unless `--deployer` names an
  existing account, a deployer key in `deployer/`.

The contracts are not in the genesis `alloc`: `sijill deploy` creates them once the chain runs
(docs/besu.md, "Contracts: deployed, not pre-allocated").
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import rlp  # type: ignore[import-untyped]
import typer
import yaml  # type: ignore[import-untyped]
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address
from rich.console import Console

from ledger.codes import agency_code, record_type
from ledger.errors import InvalidCode
from node.chain.limits import MAX_LEAVES_PER_CALL
from node.errors import DeploymentError, NodeError
from node.keys import KeystoreError, create_keystore, load_signer

out = Console()

#: The Besu release the network is generated for (Docker image `hyperledger/besu:<version>`).
#: Needs >= 24.3 (QBFT with Shanghai) and is past 25.6, which removed on-chain permissioning.
DEFAULT_BESU_VERSION = "25.11.0"
BESU_IMAGE = "hyperledger/besu"
MIN_VALIDATORS, MAX_VALIDATORS = 4, 30
DEFAULT_CHAIN_ID = 745_545
#: Chain ids a production network must not use: 31337 is the dev chain, on which `sijill deploy`
#: accepts anvil's public development keys.
RESERVED_CHAIN_IDS = {1: "Ethereum Mainnet", 31337: "the dev chain (where anvil's public keys are accepted)"}
NETWORK_FORMAT = "sijill-network/1"
PASSPHRASE_ENV = "SIJILL_NETWORK_PASSPHRASE"
#: QBFT's genesis mixHash (Besu's BFT "magic" mix hash; the QBFT genesis examples in Besu's docs).
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
VANITY_LENGTH = 32
#: scrypt work factor n of the encrypted keys; None is eth-keyfile's default, 262144 (about a
#: second per key). Tests lower it; nothing else should.
KEYSTORE_KDF_ITERATIONS: int | None = None
#: Besu runs as this uid in its image (docker/Dockerfile: `adduser --uid 1000 ... besu`).
BESU_UID = 1000

# ---------------------------------------------------------------------------------- gas
# Measured on the anvil dev chain (shanghai, optimizer 200 runs), as scripts/gas_report.py does:
# `supersede` costs 83,048 for 1 leaf and 51,507,257 for 1,024 (fresh leaves), so about
# 32,780 + 50,269 a leaf; a 1,024-leaf `revoke` 25,547,671; an anchor 128,741 (an agency's
# first) or 94,937. The largest call a node sends is a supersede of MAX_LEAVES_PER_CALL leaves.
SUPERSEDE_BASE_GAS, SUPERSEDE_GAS_PER_LEAF = 32_780, 50_269
LARGEST_CALL_GAS = SUPERSEDE_BASE_GAS + SUPERSEDE_GAS_PER_LEAF * MAX_LEAVES_PER_CALL
ANCHOR_GAS = 94_937
#: The gas limit TxManager gives that call: its estimate * 1.2 + 10,000 (node/txmanager.py).
#: Besu refuses a transaction whose gas limit exceeds the block's, so no block may be smaller.
MIN_GAS_LIMIT = int(LARGEST_CALL_GAS * 1.2) + 10_000
#: 100 M: the largest call with its headroom (61.8 M) and some 150 anchors (250,000 gas limit each).
DEFAULT_GAS_LIMIT = 100_000_000
#: Per sender, future nonces the layered pool keeps (Besu's default 200): far above what a node
#: has in flight (TxManager keeps 4 per signer), so a burst or a resubmission is never dropped.
TX_POOL_MAX_FUTURE_BY_SENDER = 1000

GENERATED_FILES = ("network.json", "genesis.json", "docker-compose.yml", "agencies.json")
DEFAULT_SUBNET = "172.30.40.0/24"
VALIDATOR_HOST_OFFSET = 10  # validator I at network address + 10 + I
AGENCY_HOST_OFFSET = 100  # agency node J (1-based, in file order) at network address + 100 + J
P2P_PORT, RPC_PORT, API_PORT = 30303, 8545, 8600
DEFAULT_API_PORT_BASE = 8601  # agency J's API published on 127.0.0.1:<base + J - 1>
RPC_APIS = ("ETH", "NET", "WEB3", "QBFT", "PERM", "TXPOOL")

# Paths inside the containers (docker-compose.yml) and so in every config.toml.
BESU_DATA = "/var/lib/besu"
BESU_GENESIS = "/config/genesis.json"
BESU_CONFIG = "/config/config.toml"
BESU_PERMISSIONS_DIR = "/config/permissions"
BESU_PERMISSIONS = f"{BESU_PERMISSIONS_DIR}/permissions_config.toml"
BESU_KEY_DIR = "/run/besu"
BESU_KEY = f"{BESU_KEY_DIR}/key"


class NetworkConfigError(NodeError):
    """The network cannot be generated as asked (bad option, bad agencies file, out dir in use)."""


# ------------------------------------------------------------------------ QBFT extraData


@dataclass(frozen=True, slots=True)
class QbftExtraData:
    """The fields of a QBFT block's extraData, as Besu's QbftExtraDataCodec reads them.

    `vote` is (recipient, add?) or None; `seals` are 65-byte signatures (r, s, recovery id)."""

    vanity: bytes
    validators: tuple[str, ...]
    vote: tuple[str, bool] | None = None
    round: int = 0
    seals: tuple[bytes, ...] = field(default=())


def encode_qbft_extra_data(
    validators: Sequence[str],
    vanity: bytes = b"\0" * VANITY_LENGTH,
    *,
    vote: tuple[str, bool] | None = None,
    round_number: int = 0,
    seals: Sequence[bytes] = (),
) -> bytes:
    """RLP([vanity, [validators], vote, round, [seals]]) exactly as Besu encodes QBFT extraData.

    Mirrors QbftExtraDataCodec.encode (hyperledger/besu, consensus/qbft): the vanity as bytes,
    each validator as its 20 address bytes, no vote as an empty list (a vote is
    [recipient, 0xff to add | empty to drop]), the round with `writeIntScalar` (minimal
    big-endian bytes, so round 0 is the empty string 0x80) and the seals as a list of byte
    strings. A genesis has validators only: `RLP([32 zero bytes, [addresses], [], 0, []])`.
    """
    if len(vanity) != VANITY_LENGTH:
        raise ValueError(f"the vanity is {VANITY_LENGTH} bytes, got {len(vanity)}")
    if round_number < 0 or round_number >= 2**31:
        raise ValueError(f"a round is a non-negative Java int, got {round_number}")
    encoded_vote: list[bytes] = []
    if vote is not None:
        encoded_vote = [_address_bytes(vote[0]), b"\xff" if vote[1] else b""]
    for seal in seals:
        if len(seal) != 65:
            raise ValueError(f"a seal is 65 bytes (r, s, recovery id), got {len(seal)}")
    item = [bytes(vanity), [_address_bytes(v) for v in validators], encoded_vote, round_number, list(seals)]
    encoded: bytes = rlp.encode(item)
    return encoded


def decode_qbft_extra_data(data: bytes | str) -> QbftExtraData:
    """The fields of QBFT extraData (bytes or 0x-hex); `ValueError` if Besu would not read it.

    As strict as QbftExtraDataCodec.decodeRaw: canonical RLP with nothing after the list, a
    32-byte vanity, 20-byte validators, a vote that is an empty list or [address, 0xff | empty],
    a scalar round without leading zero bytes, and 65-byte seals."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if not raw:
        raise ValueError("extraData is empty (QBFT needs its RLP list)")
    try:
        items = rlp.decode(raw, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"extraData is not canonical RLP: {exc}") from None
    if not isinstance(items, list) or len(items) != 5:
        raise ValueError("QBFT extraData is a list of 5 items: vanity, validators, vote, round, seals")
    vanity, validators, vote, round_bytes, seals = items
    if not isinstance(vanity, bytes) or len(vanity) != VANITY_LENGTH:
        raise ValueError(f"the vanity must be {VANITY_LENGTH} bytes")
    if not isinstance(validators, list) or any(not isinstance(v, bytes) or len(v) != 20 for v in validators):
        raise ValueError("the validators must be a list of 20-byte addresses")
    decoded_vote: tuple[str, bool] | None = None
    if not isinstance(vote, list):
        raise ValueError("the vote must be a list (empty for no vote)")
    if vote:
        if (
            len(vote) != 2
            or not isinstance(vote[0], bytes)
            or len(vote[0]) != 20
            or vote[1] not in (b"", b"\xff")
        ):
            raise ValueError("a vote is [20-byte address, 0xff (add) or empty (drop)]")
        decoded_vote = (to_checksum_address(vote[0]), vote[1] == b"\xff")
    if not isinstance(round_bytes, bytes) or len(round_bytes) > 4 or round_bytes[:1] == b"\0":
        raise ValueError("the round must be a scalar of at most 4 bytes without leading zeros")
    if not isinstance(seals, list) or any(not isinstance(s, bytes) or len(s) != 65 for s in seals):
        raise ValueError("the seals must be a list of 65-byte signatures")
    return QbftExtraData(
        vanity=vanity,
        validators=tuple(to_checksum_address(v) for v in validators),
        vote=decoded_vote,
        round=int.from_bytes(round_bytes, "big"),
        seals=tuple(seals),
    )


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(to_checksum_address(address)[2:])


# ------------------------------------------------------------------------------ node keys


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A validator's secp256k1 node key: its address is the validator address, its public key
    the enode id."""

    private_key: bytes

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed public key without its 0x04 prefix (the enode id)."""
        return bytes(PrivateKey(self.private_key).public_key.to_bytes())

    @property
    def address(self) -> str:
        return str(PrivateKey(self.private_key).public_key.to_checksum_address())

    @classmethod
    def generate(cls) -> NodeKey:
        while True:  # a uniformly random 32-byte string is a valid key but for ~2^-128 of them
            candidate = secrets.token_bytes(32)
            try:
                PrivateKey(candidate)
            except Exception:  # out of the curve order's range: draw again
                continue
            return cls(candidate)


def enode_url(public_key: bytes, host: str, port: int) -> str:
    """`enode://<128 hex digits of the public key>@<host>:<port>` (Besu's node-keys docs)."""
    if len(public_key) != 64:
        raise ValueError(f"an enode id is the 64-byte public key, got {len(public_key)} bytes")
    ip = ipaddress.ip_address(host)
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"enode://{public_key.hex()}@{shown}:{port}"


# -------------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    """What `sijill network init` is asked for (defaults: docs/besu.md)."""

    validators: int = MIN_VALIDATORS
    chain_id: int = DEFAULT_CHAIN_ID
    block_period: int = 2
    epoch_length: int = 30_000
    request_timeout: int | None = None  # None: twice the block period (Besu's QBFT tuning advice)
    gas_limit: int = DEFAULT_GAS_LIMIT
    besu_version: str = DEFAULT_BESU_VERSION
    subnet: str = DEFAULT_SUBNET
    host_template: str | None = None
    p2p_port: int = P2P_PORT
    rpc_port: int = RPC_PORT
    sijill_image: str = "sijill:0.1.0"
    api_port_base: int = DEFAULT_API_PORT_BASE

    @property
    def timeout(self) -> int:
        return self.request_timeout if self.request_timeout is not None else 2 * self.block_period

    @property
    def fault_tolerance(self) -> int:
        """f: with N = 3f + 1 validators (or more), up to f may fail and blocks still come."""
        return (self.validators - 1) // 3

    def check(self) -> None:
        """`NetworkConfigError` naming the first option that cannot make a working network."""
        if not MIN_VALIDATORS <= self.validators <= MAX_VALIDATORS:
            raise NetworkConfigError(validators_problem(self.validators))
        if self.chain_id <= 0 or self.chain_id >= 2**53:
            raise NetworkConfigError(f"--chain-id must be between 1 and 2^53 - 1, got {self.chain_id}")
        if self.chain_id in RESERVED_CHAIN_IDS:
            raise NetworkConfigError(
                f"--chain-id {self.chain_id} is {RESERVED_CHAIN_IDS[self.chain_id]}: choose your own id"
            )
        if self.block_period < 1:
            raise NetworkConfigError("--block-period is whole seconds, at least 1")
        if self.epoch_length < 1:
            raise NetworkConfigError("--epoch-length must be at least 1 block")
        if self.timeout <= self.block_period:
            raise NetworkConfigError(
                f"--request-timeout ({self.timeout}s) must exceed --block-period ({self.block_period}s); "
                "Besu's QBFT guide starts at twice the block period"
            )
        if not MIN_GAS_LIMIT <= self.gas_limit < 2**63:
            raise NetworkConfigError(
                f"--gas-limit {self.gas_limit:,} is below {MIN_GAS_LIMIT:,}, the gas limit the node "
                f"gives its largest call (a {MAX_LEAVES_PER_CALL:,}-leaf supersede, about "
                f"{LARGEST_CALL_GAS:,} gas): Besu would not take it"
            )
        for name, port in (("--p2p-port", self.p2p_port), ("--rpc-port", self.rpc_port)):
            if not 1 <= port <= 65535:
                raise NetworkConfigError(f"{name} must be a TCP port, got {port}")
        if not all(c.isalnum() or c in "._-" for c in self.besu_version) or not self.besu_version:
            raise NetworkConfigError(f"--besu-version {self.besu_version!r} is not a Docker image tag")


def validators_problem(count: int) -> str:
    return (
        f"{count} validators: a QBFT network here has {MIN_VALIDATORS} to {MAX_VALIDATORS}. "
        f"{MIN_VALIDATORS} is the least that tolerates a failed validator (N = 3f + 1: 4 tolerate 1, "
        f"7 tolerate 2); above {MAX_VALIDATORS} every block's messages and seals grow with no gain "
        "for a few agencies"
    )


@dataclass(frozen=True, slots=True)
class AgencyEntry:
    code: str
    name: str
    signers: tuple[str, ...]
    record_types: tuple[str, ...]
    council: bool


@dataclass(frozen=True, slots=True)
class AgenciesFile:
    """The agencies file as `sijill deploy --agencies` reads it, checked for what deploy would
    reject later on a running chain."""

    document: dict[str, Any]
    agencies: tuple[AgencyEntry, ...]
    threshold: int

    @property
    def signers(self) -> list[str]:
        return [s for a in self.agencies for s in a.signers]


def load_agencies_file(path: Path) -> AgenciesFile:
    """Read and check an agencies file (docs/deployment.md); `NetworkConfigError` on any fault."""
    from node.chain.deploy import dev_accounts, load_network_spec

    try:
        spec = load_network_spec(path)
    except DeploymentError as exc:
        message = str(exc)
        raise NetworkConfigError(
            message if message.startswith("cannot read") else f"the agencies file {path}: {message}"
        ) from None
    document: dict[str, Any] = json.loads(path.read_text())
    where = f"the agencies file {path}"
    if not spec.agencies:
        raise NetworkConfigError(f"{where} names no agency")
    seen_codes: set[str] = set()
    owner: dict[str, str] = {}
    for agency in spec.agencies:
        try:
            agency_code(agency.code)
            for kind in agency.record_types:
                record_type(kind)
        except InvalidCode as exc:
            raise NetworkConfigError(f"{where}: {exc}") from None
        if agency.code in seen_codes:
            raise NetworkConfigError(f"{where} lists agency {agency.code} twice")
        seen_codes.add(agency.code)
        if not agency.signers:
            raise NetworkConfigError(f"{where}: agency {agency.code} has no signer")
        for signer in agency.signers:
            if signer in owner:
                raise NetworkConfigError(
                    f"{where}: signer {signer} is listed for {owner[signer]} and {agency.code} "
                    "(an account signs for one agency)"
                )
            owner[signer] = agency.code
    council = sum(1 for a in spec.agencies if a.council)
    if not 1 <= spec.threshold <= council:
        raise NetworkConfigError(
            f"{where}: threshold {spec.threshold} must be between 1 and the {council} council agencies"
        )
    public = sorted(set(owner) & {a.address for a in dev_accounts(10)})
    if public:
        raise NetworkConfigError(
            f"{where} names anvil's public development accounts ({', '.join(public)}): "
            "their keys are published; give each agency a signer of its own (`sijill node init`)"
        )
    agencies = tuple(AgencyEntry(a.code, a.name, a.signers, a.record_types, a.council) for a in spec.agencies)
    return AgenciesFile(document, agencies, spec.threshold)


def subnet_of(options: NetworkOptions) -> ipaddress.IPv4Network:
    """--subnet: IPv4, as the compose file gives each container an `ipv4_address` in it."""
    try:
        network = ipaddress.ip_network(options.subnet, strict=True)
    except ValueError as exc:
        raise NetworkConfigError(f"--subnet {options.subnet!r} is not a network address: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise NetworkConfigError(f"--subnet {options.subnet!r} must be an IPv4 network")
    return network


def _host_in(network: ipaddress.IPv4Network, offset: int, what: str) -> str:
    if offset >= network.num_addresses - 1:
        raise NetworkConfigError(f"--subnet {network} is too small for {what} (host offset {offset})")
    return str(network.network_address + offset)


def validator_hosts(options: NetworkOptions) -> list[str]:
    """Validator I's address: --host-template with {i}, else network address + 10 + I."""
    hosts: list[str] = []
    for index in range(1, options.validators + 1):
        if options.host_template is None:
            hosts.append(_host_in(subnet_of(options), VALIDATOR_HOST_OFFSET + index, f"validator {index}"))
            continue
        try:
            text = options.host_template.format(i=index)
            hosts.append(str(ipaddress.ip_address(text)))
        except (KeyError, IndexError, ValueError) as exc:
            raise NetworkConfigError(
                f"--host-template {options.host_template!r} must give an IP address for {{i}} = {index} "
                f"(node allow-lists match enodes by IP): {exc}"
            ) from None
    if len(set(hosts)) != len(hosts):
        raise NetworkConfigError(
            f"--host-template {options.host_template!r} gives two validators one address"
        )
    return hosts


def agency_hosts(options: NetworkOptions, count: int) -> list[str]:
    network = subnet_of(options)
    return [_host_in(network, AGENCY_HOST_OFFSET + j, f"agency node {j}") for j in range(1, count + 1)]


def compose_possible(options: NetworkOptions, hosts: Sequence[str]) -> bool:
    """A one-machine compose file only works when every validator lies in --subnet."""
    network = subnet_of(options)
    return all(ipaddress.ip_address(h) in network for h in hosts)


# ------------------------------------------------------------------------------- genesis


def genesis_document(options: NetworkOptions, validator_addresses: Sequence[str]) -> dict[str, Any]:
    """Besu's genesis for the network (docs/besu.md, "The genesis").

    Every fork to Shanghai at block 0 under the names Besu reads (config/JsonGenesisConfigOptions:
    homesteadBlock ... grayGlacierBlock, shanghaiTime); `eip155Block` is for geth-style readers
    such as anvil (Besu applies EIP-155 with eip158Block). Free gas: `zeroBaseFee` and a
    genesis `baseFeePerGas` of 0. Validators sorted ascending, as `besu rlp encode` expects them.
    """
    validators = sorted((to_checksum_address(a) for a in validator_addresses), key=lambda a: a.lower())
    forks = (
        "homesteadBlock",
        "eip150Block",
        "eip155Block",
        "eip158Block",
        "byzantiumBlock",
        "constantinopleBlock",
        "petersburgBlock",
        "istanbulBlock",
        "muirGlacierBlock",
        "berlinBlock",
        "londonBlock",
        "arrowGlacierBlock",
        "grayGlacierBlock",
    )
    config: dict[str, Any] = {"chainId": options.chain_id}
    config.update(dict.fromkeys(forks, 0))
    config["shanghaiTime"] = 0
    config["zeroBaseFee"] = True
    config["qbft"] = {
        "blockperiodseconds": options.block_period,
        "epochlength": options.epoch_length,
        "requesttimeoutseconds": options.timeout,
    }
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": hex(options.gas_limit),
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "baseFeePerGas": "0x0",
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
        "extraData": "0x" + encode_qbft_extra_data(validators).hex(),
        "alloc": {},
    }


# --------------------------------------------------------------------------- Besu's TOML


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # ASCII with \uXXXX escapes: a valid TOML basic string
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(f"  {_toml_value(v)}" for v in value) + "\n]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(sections: Sequence[tuple[str, dict[str, object]]], header: str) -> str:
    """Top-level `key = value` lines in commented groups (Besu's config has no tables)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for comment, values in sections:
        lines += ["", *(f"# {c}" for c in comment.splitlines())]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Validator:
    index: int
    key: NodeKey
    host: str
    p2p_port: int
    rpc_port: int

    @property
    def name(self) -> str:
        return f"validator-{self.index}"

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def enode(self) -> str:
        return enode_url(self.key.public_key, self.host, self.p2p_port)

    @property
    def rpc_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.rpc_port}"


def besu_config(options: NetworkOptions, validator: Validator, bootnodes: Sequence[str]) -> str:
    """The validator's config.toml. Every key is a Besu command-line option without `--`."""
    header = (
        f"Besu {options.besu_version} configuration of {validator.name} (address {validator.address})\n"
        f"on Sijill chain {options.chain_id}. Generated by `sijill network init`; docs/besu.md explains\n"
        "every line. Keys are Besu's command-line options without `--`\n"
        "(https://besu.hyperledger.org/public-networks/reference/cli/options)."
    )
    sections: list[tuple[str, dict[str, object]]] = [
        (
            "Node. The key is the unlocked node key (`sijill network unlock-key`), on a tmpfs.",
            {
                "identity": validator.name,
                "data-path": BESU_DATA,
                "genesis-file": BESU_GENESIS,
                "node-private-key-file": BESU_KEY,
            },
        ),
        (
            "P2P on the private address only. nat-method NONE: Besu advertises exactly p2p-host,\n"
            "the address in every nodes-allowlist (the Docker NAT manager could replace it).\n"
            "max-peers: room for every other validator (Besu's default 25 is too few above 26).",
            {
                "p2p-host": validator.host,
                "p2p-interface": validator.host,
                "p2p-port": validator.p2p_port,
                "nat-method": "NONE",
                "max-peers": max(25, options.validators + 10),
                "bootnodes": list(bootnodes),
            },
        ),
        (
            "JSON-RPC over HTTP on the private address only (never 0.0.0.0). QBFT for validator\n"
            "votes, PERM for the allow-list sync (docs/besu-operations.md); no ADMIN, no DEBUG.\n"
            "Batches of 1,024 calls (Sijill sends 1,000) and eth_getLogs over 5,000 blocks (the\n"
            "audit's span) are Besu's defaults, set here so they cannot drift.",
            {
                "rpc-http-enabled": True,
                "rpc-http-host": validator.host,
                "rpc-http-port": validator.rpc_port,
                "rpc-http-api": list(RPC_APIS),
                "host-allowlist": [validator.host, validator.name, "localhost", "127.0.0.1"],
                "rpc-http-max-batch-size": 1024,
                "rpc-max-logs-range": 5000,
                "revert-reason-enabled": True,
            },
        ),
        (
            "Free gas: on every node, or a node with a higher floor silently drops zero-price\n"
            "transactions (Besu's free-gas guide). The pool's floor is set too, explicitly.",
            {"min-gas-price": 0, "tx-pool-min-gas-price": 0},
        ),
        (
            "Transaction pool: layered (Besu's default), keeping up to this many future nonces per\n"
            "sender, so one signer's batches in flight are never dropped. No tx-pool-price-bump:\n"
            "with zeroBaseFee it is 0, and Besu refuses a value for it.",
            {"tx-pool": "layered", "tx-pool-max-future-by-sender": TX_POOL_MAX_FUTURE_BY_SENDER},
        ),
        (
            "Local permissioning (on-chain permissioning left Besu in 25.6): the validators' enodes and\n"
            "the accounts that may send transactions. Besu rewrites this file on perm_ calls.",
            {
                "permissions-nodes-config-file-enabled": True,
                "permissions-nodes-config-file": BESU_PERMISSIONS,
                "permissions-accounts-config-file-enabled": True,
                "permissions-accounts-config-file": BESU_PERMISSIONS,
            },
        ),
    ]
    return toml_text(sections, header)


def permissions_config(enodes: Sequence[str], accounts: Sequence[str]) -> str:
    """permissions_config.toml. Accounts in lower case: Besu keeps its allow-list lower-cased
    and, before rewriting the file on a perm_ call, checks that the file still matches it."""
    header = (
        "Besu local permissioning (nodes and accounts allow-lists). Generated by `sijill network init`;\n"
        "`sijill network sync-permissions` keeps accounts-allowlist in line with the registry\n"
        "(docs/besu-operations.md). Every validator has the same lists."
    )
    return toml_text(
        [
            ("Every validator's enode.", {"nodes-allowlist": list(enodes)}),
            (
                "The agencies' signers, the deployer and any --allow-account.",
                {"accounts-allowlist": [a.lower() for a in accounts]},
            ),
        ],
        header,
    )


# -------------------------------------------------------------------------- compose file


def env_name(code: str) -> str:
    return code.upper().replace("-", "_")


def compose_document(
    options: NetworkOptions,
    validators: Sequence[Validator],
    agencies: Sequence[dict[str, Any]],
    *,
    encrypted: bool,
) -> dict[str, Any]:
    """docker-compose.yml: validators on the official Besu image, agency nodes on Sijill's."""
    network = "sijill"
    besu_image = f"{BESU_IMAGE}:{options.besu_version}"
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets_: dict[str, Any] = {}
    if encrypted:
        secrets_["network_passphrase"] = {"environment": PASSPHRASE_ENV}
    for v in validators:
        key_volume = f"{v.name}-key"
        volumes[key_volume] = {
            "driver": "local",
            "driver_opts": {
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size=64k,mode=0700,uid={BESU_UID},gid={BESU_UID}",
            },
        }
        unlock = [
            f"chown {BESU_UID}:{BESU_UID} /data /permissions /permissions/permissions_config.toml",
            f"sijill network unlock-key /network/{v.name} --out {BESU_KEY} --owner {BESU_UID}:{BESU_UID}"
            + (" --passphrase-file /run/secrets/network_passphrase" if encrypted else ""),
            # Root only for the chown and the key; the holder then sleeps as Besu's user.
            f"exec setpriv --reuid={BESU_UID} --regid={BESU_UID} --clear-groups sleep infinity",
        ]
        init: dict[str, Any] = {
            "image": options.sijill_image,
            "restart": "unless-stopped",
            "user": "0:0",
            "network_mode": "none",
            "entrypoint": ["/bin/sh", "-c"],
            "command": [" && ".join(unlock)],
            "volumes": [
                f"./{v.name}:/network/{v.name}:ro",
                "./network.json:/network/network.json:ro",
                f"./{v.name}/data:/data",
                f"./{v.name}/permissions:/permissions",
                f"{key_volume}:{BESU_KEY_DIR}",
            ],
            "healthcheck": {
                "test": ["CMD", "test", "-s", BESU_KEY],
                "interval": "2s",
                "timeout": "2s",
                "retries": 60,
            },
        }
        if encrypted:
            init["secrets"] = ["network_passphrase"]
        services[f"init-{v.name}"] = init
        probe = (
            f"exec 3<>/dev/tcp/{v.host}/{v.rpc_port} && "
            f"printf 'GET /readiness?minPeers=1 HTTP/1.0\\r\\nHost: {v.host}\\r\\n\\r\\n' >&3 && "
            "head -n 1 <&3 | grep -q ' 200 '"
        )
        services[v.name] = {
            "image": besu_image,
            "restart": "unless-stopped",
            "depends_on": {f"init-{v.name}": {"condition": "service_healthy"}},
            # The image sets BESU_RPC_HTTP_HOST=0.0.0.0 (and WS, GraphQL): environment beats the
            # config file, so they are set back to the node's private address here.
            "environment": {
                "BESU_RPC_HTTP_HOST": v.host,
                "BESU_RPC_WS_HOST": v.host,
                "BESU_GRAPHQL_HTTP_HOST": v.host,
            },
            # The image's own entrypoint (besu-entry.sh) starts as root and drops to uid 1000;
            # this one replaces it, so the service names the user itself, or the JVM runs as root.
            "user": f"{BESU_UID}:{BESU_UID}",
            "entrypoint": ["/bin/bash", "-c"],
            "command": [
                f"until [ -s {BESU_KEY} ]; do echo 'waiting for the node key'; sleep 1; done; "
                f"exec /opt/besu/bin/besu --config-file={BESU_CONFIG}"
            ],
            "volumes": [
                f"./genesis.json:{BESU_GENESIS}:ro",
                f"./{v.name}/config.toml:{BESU_CONFIG}:ro",
                f"./{v.name}/permissions:{BESU_PERMISSIONS_DIR}",
                f"./{v.name}/data:{BESU_DATA}",
                f"{key_volume}:{BESU_KEY_DIR}:ro",
            ],
            "networks": {network: {"ipv4_address": v.host}},
            "healthcheck": {
                "test": ["CMD", "bash", "-c", probe],
                "interval": "10s",
                "timeout": "5s",
                "retries": 30,
                "start_period": "60s",
            },
            "stop_grace_period": "60s",
        }
    for agency in agencies:
        code, service = agency["code"], agency["service"]
        base = env_name(code)
        passphrase_secret, kek_secret = f"{base.lower()}_signer_passphrase", f"{base.lower()}_kek"
        secrets_[passphrase_secret] = {"environment": f"SIJILL_{base}_SIGNER_PASSPHRASE"}
        secrets_[kek_secret] = {"environment": f"SIJILL_{base}_KEK"}
        services[service] = {
            "image": options.sijill_image,
            "restart": "unless-stopped",
            "user": "${SIJILL_UID:-1000}:${SIJILL_GID:-1000}",
            "depends_on": {f"validator-{agency['validator']}": {"condition": "service_healthy"}},
            "command": [
                "serve",
                "--data-dir",
                "/var/lib/sijill",
                "--rpc",
                agency["rpcUrl"],
                "--deployment",
                "/network/deployment.json",
                "--agency",
                code,
                "--host",
                "0.0.0.0",
                "--port",
                str(API_PORT),
                "--passphrase-file",
                f"/run/secrets/{passphrase_secret}",
                "--kek-file",
                f"/run/secrets/{kek_secret}",
            ],
            "volumes": [
                f"./agencies/{code}:/var/lib/sijill",
                "./deployment.json:/network/deployment.json:ro",
            ],
            "secrets": [passphrase_secret, kek_secret],
            "ports": [f"127.0.0.1:{agency['apiPort']}:{API_PORT}"],
            "networks": {network: {"ipv4_address": agency["host"]}},
            "healthcheck": {
                "test": [
                    "CMD",
                    "python",
                    "-c",
                    "import urllib.request; "
                    f"urllib.request.urlopen('http://127.0.0.1:{API_PORT}/healthz', timeout=3)",
                ],
                "interval": "10s",
                "timeout": "5s",
                "retries": 12,
                "start_period": "30s",
            },
        }
    document: dict[str, Any] = {
        "name": f"sijill-{options.chain_id}",
        "services": services,
        "networks": {
            network: {"driver": "bridge", "ipam": {"config": [{"subnet": str(subnet_of(options))}]}}
        },
        "volumes": volumes,
        "secrets": secrets_,
    }
    return document


class _NoAliasDumper(yaml.SafeDumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _quote_colons(dumper: yaml.SafeDumper, value: str) -> Any:
    """Strings with a colon (user "0:0", ports, volumes) in single quotes: a YAML 1.1 reader could
    take an unquoted `12:34` for a base-60 number, and Compose documents quoting them."""
    style = "'" if ":" in value and "\n" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NoAliasDumper.add_representer(str, _quote_colons)


def compose_text(document: dict[str, Any]) -> str:
    header = (
        '# The Sijill network on one Docker host (docs/besu.md, "Bring-up"). Generated by\n'
        "# `sijill network init`. Needs SIJILL_NETWORK_PASSPHRASE (encrypted node keys) and, per\n"
        "# agency, SIJILL_<CODE>_SIGNER_PASSPHRASE and SIJILL_<CODE>_KEK in the environment.\n"
    )
    body: str = yaml.dump(
        document, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=4096
    )
    return header + body


# ----------------------------------------------------------------------------- generate


@dataclass(frozen=True, slots=True)
class GeneratedNetwork:
    out: Path
    manifest: dict[str, Any]
    compose: bool


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    _make_dir(path.parent)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _make_dir(path: Path) -> None:
    """A directory others may read but, whatever the umask, not write: it holds keys, or
    allow-lists Besu trusts (missing parents are made as `mkdir -p` makes them)."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 in one step; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_key(directory: Path, key: bytes, passphrase: str | None) -> Path:
    """The key as a keystore (`key.json`) or, without a passphrase, the plain hex file Besu's
    --node-private-key-file reads (`key`: 0x and 64 hex digits, as Besu writes its own)."""
    _make_dir(directory)
    if passphrase is None:
        path = directory / "key"
        _write_private(path, ("0x" + key.hex()).encode())
    else:
        path = directory / "key.json"
        create_keystore(path, passphrase, key, kdf_iterations=KEYSTORE_KDF_ITERATIONS)
    return path


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
    _make_dir(out_dir)

    keys = [NodeKey.generate() for _ in hosts]
    validators = [
        Validator(i, key, host, options.p2p_port, options.rpc_port)
        for i, (key, host) in enumerate(zip(keys, hosts, strict=True), start=1)
    ]
    deployer_entry: dict[str, Any]
    if deployer is None:
        deployer_key = NodeKey.generate()
        key_file = _write_key(out_dir / "deployer", deployer_key.private_key, passphrase)
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
        key_file = _write_key(node_dir, v.key.private_key, passphrase)
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


# ---------------------------------------------------------------------------- unlock-key


def _read_node_key(path: Path, passphrase_file: Path | None) -> tuple[bytes, str]:
    """The private key in `path` (a keystore, or a plain hex key file) and its address."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        account = load_signer(path, passphrase_file=passphrase_file, passphrase_env=PASSPHRASE_ENV)
        return bytes(account.key), account.address
    _refuse_shared(path)
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
        address = Account.from_key(key).address
    except (ValueError, TypeError):
        raise KeystoreError(f"{path} holds neither a keystore nor a 32-byte hex key") from None
    if len(key) != 32:
        raise KeystoreError(f"{path} holds neither a keystore nor a 32-byte hex key")
    return key, address


def _refuse_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise KeystoreError(f"{path} has mode {mode:04o}, so group or others may read it: `chmod 600 {path}`")


def find_key_file(node: Path) -> Path:
    """The key of a validator directory (`key.json`, else `key`), or `node` itself if a file."""
    if node.is_dir():
        for name in ("key.json", "key"):
            if (node / name).is_file():
                return node / name
        raise KeystoreError(f"{node} holds no node key (key.json or key)")
    if not node.exists():
        raise KeystoreError(f"no node key at {node}")
    return node


def expected_address(node: Path) -> str | None:
    """The address the manifest (network.json beside the validator directory) records for it."""
    directory = node if node.is_dir() else node.parent
    manifest = directory.parent / "network.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        for entry in data.get("validators", []):
            if entry.get("name") == directory.name:
                return to_checksum_address(entry["address"])
    except (OSError, ValueError, KeyError, TypeError):
        raise KeystoreError(f"{manifest} is not a readable network manifest") from None
    return None


def unlock_key(
    node: Path, out_path: Path, *, passphrase_file: Path | None = None, owner: str | None = None
) -> str:
    """Write the node key of `node` as the plain hex file Besu reads, mode 0600, atomically;
    return the validator address. Meant for a tmpfs (docs/besu.md, "Node keys")."""
    key_file = find_key_file(node)
    key, address = _read_node_key(key_file, passphrase_file)
    wanted = expected_address(node)
    if wanted is not None and wanted != address:
        raise KeystoreError(f"{key_file} is the key of {address}, but network.json names {wanted} for it")
    uid = gid = None
    if owner is not None:
        try:
            uid_text, _, gid_text = owner.partition(":")
            uid, gid = int(uid_text), int(gid_text or uid_text)
        except ValueError:
            raise NetworkConfigError(f"--owner {owner!r} is not UID[:GID]") from None
    _make_dir(out_path.parent)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        _write_private(tmp, ("0x" + key.hex()).encode())
        if uid is not None and gid is not None:
            os.chown(tmp, uid, gid)
        os.replace(tmp, out_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write {out_path}: {exc.strerror}") from None
    return address


# ------------------------------------------------------------------------------ commands


def _check_validators(value: int) -> int:
    if not MIN_VALIDATORS <= value <= MAX_VALIDATORS:
        raise typer.BadParameter(validators_problem(value))
    return value


def init_command(
    agencies: Annotated[
        Path,
        typer.Option(help="Agencies file (docs/deployment.md): their signers go on the accounts allow-list."),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory to write the network into (empty or absent).")
    ],
    validators: Annotated[
        int, typer.Option(help="Number of QBFT validators, 4 to 30.", callback=_check_validators)
    ] = MIN_VALIDATORS,
    chain_id: Annotated[
        int, typer.Option(help="Chain id (not 1, nor the dev chain's 31337).")
    ] = DEFAULT_CHAIN_ID,
    block_period: Annotated[int, typer.Option(help="Seconds between blocks (QBFT blockperiodseconds).")] = 2,
    epoch_length: Annotated[
        int, typer.Option(help="Blocks after which pending validator votes are dropped (QBFT epochlength).")
    ] = 30_000,
    request_timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds before a QBFT round changes (requesttimeoutseconds). Default: 2 x block period."
        ),
    ] = None,
    gas_limit: Annotated[
        int, typer.Option(help=f"Block gas limit (at least {MIN_GAS_LIMIT:,}: the largest call's gas limit).")
    ] = DEFAULT_GAS_LIMIT,
    besu_version: Annotated[
        str, typer.Option(help="Besu release: the hyperledger/besu image tag the compose file pins.")
    ] = DEFAULT_BESU_VERSION,
    subnet: Annotated[
        str,
        typer.Option(
            help="Private network of the compose file: validator I at .10+I, agency node J at .100+J."
        ),
    ] = DEFAULT_SUBNET,
    host_template: Annotated[
        str | None,
        typer.Option(
            help="Validator I's IP address as a template with {i}, e.g. 10.8.{i}.10, for validators on "
            "separate machines (no compose file then)."
        ),
    ] = None,
    p2p_port: Annotated[int, typer.Option(help="Besu P2P port (TCP and UDP) on every validator.")] = P2P_PORT,
    rpc_port: Annotated[int, typer.Option(help="Besu JSON-RPC HTTP port on every validator.")] = RPC_PORT,
    sijill_image: Annotated[
        str,
        typer.Option(
            help="Image built from the repository's Dockerfile, for agency nodes and key unlocking."
        ),
    ] = "sijill:0.1.0",
    api_port_base: Annotated[
        int,
        typer.Option(help="Host port (on 127.0.0.1) of the first agency's API; the next agencies count up."),
    ] = DEFAULT_API_PORT_BASE,
    deployer: Annotated[
        str | None,
        typer.Option(
            help="Address that will run `sijill deploy` (default: a new key written to DIR/deployer)."
        ),
    ] = None,
    allow_account: Annotated[
        list[str] | None, typer.Option(help="Another account for the accounts allow-list (repeat).")
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help=f"File holding the passphrase that encrypts the keys (else {PASSPHRASE_ENV})."),
    ] = None,
    insecure_dev_keys: Annotated[
        bool, typer.Option(help="Write plain, unencrypted keys (throw-away test networks only).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(help="Replace a network generated before in --out (new keys; refused with chain data)."),
    ] = False,
) -> None:
    """Generate a Besu QBFT network: genesis, node keys, Besu configs, allow-lists, compose file.

    Example: sijill network init --validators 4 --agencies agencies.json --out network
    """
    from node.keys import _passphrase

    passphrase = None if insecure_dev_keys else _passphrase(None, passphrase_file, PASSPHRASE_ENV)
    options = NetworkOptions(
        validators=validators,
        chain_id=chain_id,
        block_period=block_period,
        epoch_length=epoch_length,
        request_timeout=request_timeout,
        gas_limit=gas_limit,
        besu_version=besu_version,
        subnet=subnet,
        host_template=host_template,
        p2p_port=p2p_port,
        rpc_port=rpc_port,
        sijill_image=sijill_image,
        api_port_base=api_port_base,
    )
    result = generate_network(
        out_dir,
        options,
        agencies,
        passphrase=passphrase,
        deployer=deployer,
        allow_accounts=allow_account or (),
        force=force,
    )
    _print_summary(result)


def _print_summary(result: GeneratedNetwork) -> None:
    from rich.table import Table

    manifest = result.manifest
    consensus = manifest["consensus"]
    out.print(
        f"Network for chain {manifest['chainId']} in {result.out}: {consensus['validators']} QBFT validators "
        f"(up to {consensus['faultTolerance']} may fail), Besu {manifest['besuVersion']}, "
        f"keys {manifest['keys']}"
    )
    table = Table("validator", "address", "host", "RPC")
    for v in manifest["validators"]:
        table.add_row(v["name"], v["address"], v["host"], v["rpcUrl"])
    out.print(table)
    deployer = manifest["deployer"]
    where = f" (key {result.out / deployer['keyFile']})" if deployer["keyFile"] else ""
    out.print(f"Deployer: {deployer['address']}{where}")
    if result.compose:
        out.print(
            f'Next: docs/besu.md, "Bring-up" (docker compose -f {result.out / "docker-compose.yml"} ...)'
        )
    else:
        out.print(
            "No docker-compose.yml (validators outside --subnet): run each config.toml as docs/besu.md says."
        )


def unlock_key_command(
    node: Annotated[Path, typer.Argument(help="A validator directory (DIR/validator-I) or its key file.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="Where to write the plain key Besu reads (a tmpfs).")
    ],
    passphrase_file: Annotated[
        Path | None, typer.Option(help=f"File holding the keys' passphrase (else {PASSPHRASE_ENV}).")
    ] = None,
    owner: Annotated[
        str | None, typer.Option(help="UID[:GID] to give the written file (Besu's image runs as 1000).")
    ] = None,
) -> None:
    """Decrypt a validator's node key into the plain file Besu's --node-private-key-file reads (mode 0600).

    Example: sijill network unlock-key network/validator-1 --out /run/besu/key
    """
    address = unlock_key(node, out_path, passphrase_file=passphrase_file, owner=owner)
    out.print(f"Node key of {address} written to {out_path} (mode 0600)")


def register(group: typer.Typer) -> None:
    """Add `init` and `unlock-key` to the `sijill network` group."""
    group.command("init")(init_command)
    group.command("unlock-key")(unlock_key_command)


__all__ = [
    "QbftExtraData",
    "decode_qbft_extra_data",
    "encode_qbft_extra_data",
    "generate_network",
    "register",
    "unlock_key",
]
