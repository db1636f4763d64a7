"""`sijill network`: the production chain, a Hyperledger Besu QBFT network whose validators the
agencies run (docs/besu.md). Its commands live in their own modules, each adding itself to the
group: `init` (node/network/besu.py) and `sync-permissions` (node/network/allowlist.py)."""

from __future__ import annotations

import typer

network_app = typer.Typer(
    help="The Besu QBFT network of the agencies: generate its files, keep its allow-lists in line "
    "with the on-chain registry (docs/besu.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `network` group and its commands to the `sijill` app."""
    from node.network import allowlist as besu_permissions
    from node.network import besu as besu_network

    besu_network.register(network_app)
    besu_permissions.register(network_app)
    app.add_typer(network_app, name="network")
