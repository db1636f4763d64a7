"""`sijill demo`: the whole system on one machine, to try it out (what `make run` starts).

It starts the dev chain (anvil, its state kept in DATA_DIR/chain) with the contracts deployed,
or the last run's deployment reused; sets up a node for each demo agency (REPD land titles, CSO
marriages, CRA companies) with anvil's dev accounts 1-3 and dev secrets, their stores on LevelDB
in their directories or, with `--store postgresql`, in a database each of a PostgreSQL cluster
the demo starts in DATA_DIR/postgresql (`cli.demo_postgres`); issues each agency a
demo officer, supervisor and auditor token (kept in DATA_DIR/officers.json, mode 0600, so a
re-run shows the same ones); starts one `sijill serve` per agency; creates two demo records per
agency through the API on the first run only (DATA_DIR/demo-records.json); prints where
everything is; and runs until Ctrl-C or SIGTERM, then stops the APIs, the PostgreSQL cluster and
the chain, whose states are saved. A second run reuses all of it.

Development only: the signer keys are anvil's public ones, and the KEK, passphrases and tokens
lie in clear beside the data.

This module is the command and what the demo's parts share (its agencies, records, what each
agency shows the others, its files); it imports only the standard library, typer and rich, so
`sijill --help` stays fast. The running demo is in `cli.demo_nodes` (chain, nodes, tokens, API
processes), `cli.demo_scenario` (records and certificates through the APIs) and
`cli.demo_summary` (the printed tables), imported when the command runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from node.errors import NodeError

out = Console(soft_wrap=True, highlight=False)


READY_TIMEOUT = 60.0
"""Seconds an API process gets to answer /readyz, and the demo records to be anchored."""
STOP_TIMEOUT = 15.0
"""Seconds an API process gets to stop after SIGTERM before it is killed."""
OFFICERS_FORMAT = "sijill-demo-officers/1"
RECORDS_FORMAT = "sijill-demo-records/1"

# The children get the dev secrets of their own directory, never a KEK or passphrase of the shell.
_SECRET_VARIABLES = ("SIJILL_KEK", "SIJILL_SIGNER_PASSPHRASE")


@dataclass(frozen=True, slots=True)
class DemoAgency:
    """A demo agency: its code, the one record type it anchors, its anvil dev account, its API port."""

    code: str
    record_type: str
    dev_account: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def demo_agencies(api_port_base: int) -> tuple[DemoAgency, ...]:
    """The agencies of `node.chain.deploy.demo_network`, in its order, on consecutive ports."""
    kinds = (("REPD", "title"), ("CSO", "marriage"), ("CRA", "commercial"))
    return tuple(DemoAgency(code, kind, i + 1, api_port_base + i) for i, (code, kind) in enumerate(kinds))


def demo_records(record_type: str) -> list[dict[str, Any]]:
    """Two valid records of a type (`ledger.records.examples`, the tests' examples too), told
    apart by their registry numbers."""
    from ledger.records.examples import EXAMPLES

    first = EXAMPLES[record_type]()
    second = EXAMPLES[record_type]()
    field, number = _SECOND_NUMBER[record_type]
    second[field] = number
    return [first, second]


_SECOND_NUMBER = {
    "title": ("title_number", "2019/45874"),
    "marriage": ("contract_number", "2023/118/4472"),
    "commercial": ("registration_number", "158235"),
}


class DemoStore(StrEnum):
    """Where the demo nodes keep their stores (docs/storage.md)."""

    LEVELDB = "leveldb"
    POSTGRESQL = "postgresql"


def demo_command(
    data_dir: Annotated[
        Path, typer.Option(help="Where the chain state, nodes, PostgreSQL cluster, tokens and logs live.")
    ] = Path(".data/demo"),
    chain_port: Annotated[int, typer.Option(help="Port of the chain's JSON-RPC endpoint.")] = 8545,
    api_port_base: Annotated[
        int, typer.Option(help="Port of REPD's API; CSO and CRA get the next two.")
    ] = 8601,
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Delete the demo's chain, nodes, stores, tokens and records first."),
    ] = False,
    demo_store: Annotated[
        DemoStore,
        typer.Option(
            "--store",
            envvar="SIJILL_DEMO_STORE",
            help="The nodes' stores: LevelDB in each node's directory, or a PostgreSQL 15 cluster the "
            "demo starts in DATA_DIR/postgresql (one database per node; needs the `postgresql` package).",
        ),
    ] = DemoStore.LEVELDB,
) -> None:
    """Run the whole system to try it out: dev chain, three agency nodes and their APIs.

    Deploys the contracts, sets up the demo agencies' nodes, officer tokens and records, starts
    one API per agency and prints where everything is. With --store postgresql the nodes keep
    their stores in a PostgreSQL cluster the demo starts and stops. Ctrl-C stops it; running it
    again reuses the chain state, nodes, tokens and records.

    Example: sijill demo --data-dir .data/demo --chain-port 8545 --store postgresql
    """
    from cli.demo_nodes import Demo
    from cli.demo_summary import print_summary

    demo = Demo(
        data_dir, chain_port, demo_agencies(api_port_base), postgresql=demo_store == DemoStore.POSTGRESQL
    )
    demo.lock()
    if reset:
        demo.reset()
    # Ctrl-C stops the demo even when it was started with SIGINT ignored (a shell's background
    # job, or a script's): Python keeps an inherited SIG_IGN, and `kill -INT` did nothing then.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    status = 0
    try:
        demo.start()
        print_summary(demo)
        status = demo.watch()
    except KeyboardInterrupt:
        out.print("Stopping…")
    finally:
        # A second Ctrl-C must not cut the shutdown short: it is bounded by STOP_TIMEOUT.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    if status:
        raise typer.Exit(status)


#: Who sees what between the demo agencies: the civil-status office checks a title's owners
#: (an inheritance, a dower paid in property), the commercial registry a company's premises, and
#: the land registry the parties of a marriage or a company; never national IDs or dates of birth.
DEMO_PEER_POLICIES: dict[str, dict[str, dict[str, list[str]]]] = {
    "REPD": {
        "CSO": {"title": ["/title_number", "/owners/*/name", "/owners/*/share"]},
        "CRA": {"title": ["/title_number", "/use"]},
    },
    "CSO": {"REPD": {"marriage": ["/contract_number", "/husband/name", "/wife/name", "/status"]}},
    "CRA": {"REPD": {"commercial": ["/registration_number", "/trade_name_ar", "/trade_name_en", "/status"]}},
}

#: What each demo certificate discloses: what a bank or a court clerk needs to see, never a
#: national ID, a date of birth or a dower.
DEMO_DISCLOSED: dict[str, list[str]] = {
    "title": [
        "/title_number",
        "/governorate",
        "/district",
        "/area_m2",
        "/use",
        "/owners/0/name",
        "/owners/0/share",
    ],
    "marriage": ["/contract_number", "/contract_date", "/husband/name", "/wife/name", "/status"],
    "commercial": ["/registration_number", "/trade_name_ar", "/trade_name_en", "/legal_form", "/status"],
}


def sijill_command(*args: str) -> list[str]:
    """The command line running `sijill ARGS` with this interpreter (the venv's, whatever PATH holds)."""
    return [sys.executable, "-m", "cli", *args]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does


def child_env() -> dict[str, str]:
    """The environment of the `sijill` processes the demo (and the soak) starts: dev nodes read
    their secrets from their directories, none from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object a demo file holds (None if there is no file); `NodeError` if it is damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read {path} ({exc}); start afresh with `sijill demo --reset`") from None
    return data if isinstance(data, dict) else None


def write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write JSON atomically, readable by the owner only (it holds bearer tokens)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
