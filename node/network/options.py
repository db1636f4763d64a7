"""What `sijill network init` is asked for, and the numbers every generated file shares.

Owns the network's constants (Besu release, validator counts, chain ids, the gas the largest
call needs, ports, addresses, paths inside the containers), `NetworkOptions` with its checks,
and where each validator and agency node sits on the network (`validator_hosts`,
`agency_hosts`). Light on purpose: the `sijill network` command reads its option defaults here
at import time, so it imports only the standard library, `node.chain.limits` and `node.errors`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from node.chain.limits import MAX_LEAVES_PER_CALL
from node.errors import NodeError

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
#: The gas limit TxManager gives that call: its estimate * 1.2 + 10,000 (node/chain/txrpc.py).
#: Besu refuses a transaction whose gas limit exceeds the block's, so no block may be smaller.
MIN_GAS_LIMIT = int(LARGEST_CALL_GAS * 1.2) + 10_000
#: 100 M: the largest call with its headroom (61.8 M) and some 150 anchors (250,000 gas limit each).
DEFAULT_GAS_LIMIT = 100_000_000
#: Per sender, future nonces the layered pool keeps (Besu's default 200): far above what a node
#: has in flight (TxManager keeps 4 per signer), so a burst or a resubmission is never dropped.
TX_POOL_MAX_FUTURE_BY_SENDER = 1000

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
