"""`sijill network`: the production chain, a Hyperledger Besu QBFT network whose validators the
agencies run (docs/besu.md). `init` and `unlock-key` are defined here (their work is done in
node/network/: `generate`, `nodekeys`); `sync-permissions` in cli/network_permissions.py.

Cheap to import: the option defaults come from `node.network.options` (standard library only);
the modules that generate a network, with eth-account and PyYAML, load inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from node.network.options import (
    DEFAULT_API_PORT_BASE,
    DEFAULT_BESU_VERSION,
    DEFAULT_CHAIN_ID,
    DEFAULT_GAS_LIMIT,
    DEFAULT_SUBNET,
    MAX_VALIDATORS,
    MIN_GAS_LIMIT,
    MIN_VALIDATORS,
    P2P_PORT,
    PASSPHRASE_ENV,
    RPC_PORT,
    validators_problem,
)

if TYPE_CHECKING:
    from node.network.generate import GeneratedNetwork

network_app = typer.Typer(
    help="The Besu QBFT network of the agencies: generate its files, keep its allow-lists in line "
    "with the on-chain registry (docs/besu.md).",
    no_args_is_help=True,
)
out = Console()


def register(app: typer.Typer) -> None:
    """Add the `network` group and its commands to the `sijill` app."""
    from cli import network_permissions

    network_app.command("init")(init_command)
    network_app.command("unlock-key")(unlock_key_command)
    network_permissions.register(network_app)
    app.add_typer(network_app, name="network")


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
    from node.network.generate import generate_network
    from node.network.options import NetworkOptions

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
    from node.network.nodekeys import unlock_key

    address = unlock_key(node, out_path, passphrase_file=passphrase_file, owner=owner)
    out.print(f"Node key of {address} written to {out_path} (mode 0600)")
