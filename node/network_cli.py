"""`sijill network`: the production chain, a Hyperledger Besu QBFT network whose validators the
agencies run (docs/besu.md). Its commands live in their own modules, each adding itself to the
group: `init` (node/besu_network.py) and `sync-permissions` (node/besu_permissions.py)."""

from __future__ import annotations

import typer

network_app = typer.Typer(
    help="The Besu QBFT network of the agencies: generate its files, keep its allow-lists in line "
    "with the on-chain registry (docs/besu.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `network` group and its commands to the `sijill` app."""
    from node import besu_network, besu_permissions

    besu_network.register(network_app)
    besu_permissions.register(network_app)
    app.add_typer(network_app, name="network")
