"""`sijill`: the one command of the project.

Exit status: 0 success, 1 the operation failed (a revert, a check that did not pass),
2 bad usage or an unreachable chain.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.errors import LedgerError
from node.errors import ChainError, NodeError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# The commands import web3, eth_account and the node's modules when they run, not here: every
# `sijill` invocation, `--help` included, imports this module and each command module.

app = typer.Typer(
    name="sijill",
    help="Anchor and verify registry records on a permissioned Ethereum ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

DEPLOYER_PASSPHRASE_ENV = "SIJILL_DEPLOYER_PASSPHRASE"

RpcOption = Annotated[
    str, typer.Option("--rpc", envvar="SIJILL_RPC_URL", help="JSON-RPC endpoint of the chain.")
]


from cli.demo import demo_command  # noqa: E402 - the `make run` command
from cli.node import node_app  # noqa: E402 - a sub-command group
from cli.officer import officer_app  # noqa: E402 - a sub-command group

app.add_typer(node_app, name="node")


def _serve_command() -> None:  # imported lazily: FastAPI and uvicorn load only when serving
    from cli.serve import serve_command

    app.command("serve")(serve_command)


_serve_command()
app.add_typer(officer_app, name="officer")
app.command("demo")(demo_command)

from cli import agency as agency_cli  # noqa: E402 - command modules
from cli import audit as audit_cli  # noqa: E402
from cli import config  # noqa: E402
from cli import network as network_cli  # noqa: E402
from cli import verify as verify_cli  # noqa: E402

for _module in (verify_cli, audit_cli, agency_cli, network_cli):
    _module.register(app)
config.install(app)


@app.command("compile")
def compile_command() -> None:
    """Compile the contracts with py-solc-x (offline) and print their sizes.

    Example: sijill compile
    """
    from node.chain.toolchain import compile_contracts

    compiled = compile_contracts()
    table = Table("contract", "runtime bytes", "ABI hash")
    for name, contract in compiled.items():
        table.add_row(name, str(len(contract.deployed_bytecode)), contract.abi_hash[:23] + "…")
    out.print(table)


@app.command("deploy")
def deploy_command(
    rpc: RpcOption = "http://127.0.0.1:8545",
    out_file: Annotated[Path, typer.Option("--out", help="Deployment file to write (and reuse).")] = Path(
        ".data/deployment.json"
    ),
    agencies: Annotated[
        Path | None,
        typer.Option(help="JSON file: founding agencies and threshold. Default: the three demo agencies."),
    ] = None,
    deployer_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the deployer's private key (hex) or an encrypted keystore. "
            "Default: anvil's public dev key, accepted on the dev chain only.",
            envvar="SIJILL_DEPLOYER_KEY_FILE",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Deploy anew even if the deployment file is valid.")] = False,
) -> None:
    """Deploy AgencyRegistry and RecordLedger with the council and founding agencies, or reuse
    the valid deployment recorded in --out.

    Without --agencies and --deployer-key-file it deploys the demo network (REPD/title,
    CSO/marriage, CRA/commercial, 2-of-3 council) with anvil's public dev keys, which are
    refused on any chain but the dev chain.

    Example: sijill deploy --rpc http://127.0.0.1:8545 --out .data/deployment.json
    """
    from node.chain.client import connect
    from node.chain.deploy import demo_network, deploy_network, dev_accounts, load_network_spec

    dev = dev_accounts(4)
    deployer = _load_key(deployer_key_file) if deployer_key_file is not None else dev[0]
    spec = load_network_spec(agencies) if agencies is not None else demo_network([a.address for a in dev[1:]])
    result = deploy_network(connect(rpc), deployer, spec, out_file, force=force)
    _print_deployment(result.deployment, out_file, reused=result.reused, why=result.problems)


@app.command("devchain")
def devchain_command(
    port: Annotated[int, typer.Option(help="Port for the JSON-RPC endpoint.")] = 8545,
    data_dir: Annotated[Path, typer.Option(help="Where the chain state and deployment live.")] = Path(
        ".data/devchain"
    ),
    block_time: Annotated[float, typer.Option(help="Seconds between blocks.")] = 1.0,
    deploy: Annotated[
        bool, typer.Option(help="Deploy (or reuse) the contracts with the demo agencies.")
    ] = True,
) -> None:
    """Run the development chain (anvil configured like Besu) with the contracts deployed.

    Keeps running until interrupted; the chain state persists in DATA_DIR, and running it
    again reuses the deployment. Example: sijill devchain --port 8545 --data-dir .data/devchain
    """
    from node.chain.client import connect
    from node.chain.deploy import demo_network, deploy_network, dev_accounts
    from node.chain.devchain import DevChain, DevChainConfig

    chain = DevChain(DevChainConfig(port=port, data_dir=data_dir, block_time=block_time))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with chain:
        out.print(
            f"anvil (chain {chain.config.chain_id}, block time {block_time:g}s) at [bold]{chain.rpc_url}[/]"
        )
        if deploy:
            w3 = connect(chain.rpc_url)
            deployer, *signers = dev_accounts(4)
            out_file = data_dir / "deployment.json"
            result = deploy_network(w3, deployer, demo_network([s.address for s in signers]), out_file)
            _print_deployment(result.deployment, out_file, reused=result.reused, why=result.problems)
        out.print("Running; press Ctrl-C to stop (the chain state is saved on exit).")
        with contextlib.suppress(KeyboardInterrupt):
            chain.wait()


def _load_key(path: Path) -> LocalAccount:
    from eth_account import Account

    from node.keys import load_signer

    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise NodeError(f"cannot read key file {path}: {exc.strerror}") from None
    if text.startswith("{"):
        passphrase = os.environ.get(DEPLOYER_PASSPHRASE_ENV)
        if passphrase is None:
            raise NodeError(f"{path} is an encrypted keystore: set {DEPLOYER_PASSPHRASE_ENV}")
        # As every keystore is read: refused if others may read it, and one line (no traceback)
        # for a wrong passphrase or a damaged file.
        return load_signer(path, passphrase=passphrase)
    try:
        account: LocalAccount = Account.from_key(text)
        return account
    except (ValueError, TypeError):
        raise NodeError(f"{path} holds neither a hex private key nor a keystore") from None


def _print_deployment(deployment: dict[str, object], path: Path, *, reused: bool, why: list[str]) -> None:
    if reused:
        out.print(f"Reusing the valid deployment in {path}")
    elif why:
        out.print(f"Deployed anew ({'; '.join(why)}); written to {path}")
    else:
        out.print(f"Deployed; written to {path}")
    table = Table("contract", "address", "block")
    contracts = deployment["contracts"]
    assert isinstance(contracts, dict)
    for name, entry in contracts.items():
        table.add_row(name, entry["address"], str(entry["block"]))
    out.print(table)


def main() -> None:
    """Entry point: run the app, turning the project's errors into a message and an exit status."""
    try:
        app()
    except ChainError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except (NodeError, LedgerError) as exc:
        # Escaped: a path or a rule name in brackets is text, not rich markup to drop.
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
