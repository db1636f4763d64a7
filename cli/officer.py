"""`sijill officer ...`: issue, list and revoke the bearer tokens officers use on their agency's API.

A token is shown once, when it is issued: the node keeps only its SHA-256 (`Store.add_token`),
so a lost token is revoked and a new one issued. It is named everywhere else by its id, the
first 16 hex digits of that hash. Every change goes into the node's audit trail (actor
`cli:officer`), never the token itself.

The commands open the node's store (--store, else LevelDB in <data-dir>/store) when the node is
stopped; while `sijill serve` (or `sijill node run`) holds it, they ask the running node over
its admin socket (`<data-dir>/admin.sock`,
node/admin.py), with the same output. The key-encryption key (needed only when the node is
stopped) comes from --kek-file, else SIJILL_KEK, else the dev node's `dev-kek` file (written by
`node init --dev-account`). Every error exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.node import Agency, DataDir, KekFile, StoreOption, store_location
from ledger.errors import LedgerError
from node.admin_actions import ROLES, IssuedToken, issue_token, revoke_token
from node.errors import NodeError, StoreError

if TYPE_CHECKING:
    from node.store import Store  # imported by the functions that open one (LevelDB, cryptography)

__all__ = ["ROLES", "IssuedToken", "issue_token", "on_node_store", "open_node_store", "revoke_token"]

officer_app = typer.Typer(help="Issue, list and revoke officers' API tokens.", no_args_is_help=True)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def on_node_store(
    data_dir: Path, kek_file: Path | None, request: dict[str, Any], store: str | None = None
) -> Any:
    """Run the admin action `request` (node/admin_actions.py) on the node's store: through the
    running node's admin socket (node/admin.py) when a node answers there, else on the store
    opened here (the node is stopped). The answer is the same either way."""
    from node.admin import admin_socket_path, call_admin, node_answers
    from node.admin_actions import store_actions

    socket = admin_socket_path(data_dir)
    if socket.is_socket() and node_answers(socket):
        return call_admin(socket, request)
    with open_node_store(data_dir, kek_file, store) as opened:  # a stopped node does not ask the chain
        actions = store_actions(opened, agency=node_agency(data_dir), chain_head=lambda: None)
        return actions[request["action"]](request)


def open_node_store(data_dir: Path, kek_file: Path | None = None, store: str | None = None) -> Store:
    """The store of the node in `data_dir` (or `store`: --store), with a message that says what
    to do when it is in use."""
    from node.store import Store, load_kek

    if store is None and not (data_dir / "store").is_dir():
        raise NodeError(f"there is no node in {data_dir}: set it up with `sijill node init` first")
    dev_kek = data_dir / "dev-kek"
    if kek_file is None and not os.environ.get("SIJILL_KEK") and dev_kek.exists():
        kek_file = dev_kek
    try:
        return Store(store_location(data_dir, store), load_kek(None, kek_file))
    except StoreError as exc:
        if "in use by another process" in str(exc):
            raise NodeError(
                f"the node's store in {data_dir} is in use (is `sijill serve` running for this "
                "directory?); stop it first"
            ) from None
        raise


def node_agency(data_dir: Path) -> str | None:
    """The agency in the node's `node.json` (written by `sijill node init`), if there is one."""
    path = data_dir / "node.json"
    if not path.exists():
        return None
    try:
        agency = json.loads(path.read_text())["agency"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"cannot read the agency from {path}: {exc}") from None
    return str(agency)


@officer_app.command("add")
def add_command(
    data_dir: DataDir,
    agency: Agency,
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="The officer's name, as shown in the audit trail.")],
    expires_days: Annotated[
        int | None, typer.Option(help="Days until the token expires (default: it does not).")
    ] = None,
    kek_file: KekFile = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a token for an officer of the node's agency and print it, once.

    Example: sijill officer add --data-dir .data/repd --agency REPD --role officer --name "Mona Adel"
    """
    from ledger.codes import agency_code

    with _errors():
        if role not in ROLES:
            raise NodeError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if expires_days is not None and expires_days < 1:
            raise NodeError("--expires-days must be 1 or more")
        agency_code(agency)
        expected = node_agency(data_dir)
        if expected is not None and agency != expected:
            raise NodeError(f"the node in {data_dir} is {expected}'s, not {agency}'s")
        now = int(time.time())
        expires_at = now + expires_days * 86_400 if expires_days is not None else None
        request = {"action": "officer.add", "agency": agency, "role": role, "name": name}
        answer = on_node_store(data_dir, kek_file, {**request, "expiresAt": expires_at, "now": now}, store)
        issued = IssuedToken(answer["token"], answer["tokenId"], name, role, agency, answer["expiresAt"])
    if as_json:
        print(json.dumps(issued.to_json(), ensure_ascii=False))
        return
    out.print(f"Token {issued.token_id} for {escape(name)} ({role}, {agency}), expires {_when(expires_at)}:")
    print(issued.token)
    out.print(
        "Shown only now: the node keeps its hash. Give it to the officer as "
        f"`Authorization: Bearer <token>`; revoke it with `sijill officer revoke {issued.token_id}`."
    )


@officer_app.command("list")
def list_command(
    data_dir: DataDir, kek_file: KekFile = None, store: StoreOption = None, as_json: JsonFlag = False
) -> None:
    """List the node's tokens by id (the tokens themselves are not stored).

    Example: sijill officer list --data-dir .data/repd
    """
    with _errors():
        tokens = on_node_store(data_dir, kek_file, {"action": "officer.list"}, store)
    rows = [
        {
            "tokenId": t["tokenId"],
            "name": t["officer"].get("name"),
            "role": t["officer"].get("role"),
            "agency": t["officer"].get("agency"),
            "createdAt": t["officer"].get("createdAt"),
            "expiresAt": t["expiresAt"],
            "revoked": t["revoked"],
        }
        for t in tokens
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    now = int(time.time())
    table = Table("tokenId", "name", "role", "agency", "expires", "revoked")
    for column in (table.columns[0], table.columns[4]):
        column.no_wrap = True
    for row in rows:
        expired = row["expiresAt"] is not None and row["expiresAt"] <= now
        expires = _when(row["expiresAt"]) + (" (expired)" if expired else "")
        table.add_row(
            row["tokenId"],
            escape(str(row["name"])),
            str(row["role"]),
            str(row["agency"]),
            expires,
            "yes" if row["revoked"] else "no",
        )
    out.print(table if rows else f"No tokens in {data_dir}.")


@officer_app.command("revoke")
def revoke_command(
    token_id: Annotated[str, typer.Argument(help="The token's id (8 to 16 hex digits, as `list` shows).")],
    data_dir: DataDir,
    kek_file: KekFile = None,
    store: StoreOption = None,
) -> None:
    """Revoke a token: the API refuses it from then on.

    Example: sijill officer revoke 3f2a9c0d4e5b6a71 --data-dir .data/repd
    """
    with _errors():
        answer = on_node_store(data_dir, kek_file, {"action": "officer.revoke", "tokenId": token_id}, store)
    revoked_id, officer, already = answer["tokenId"], answer["officer"], answer["alreadyRevoked"]
    who = f"{escape(str(officer.get('name')))} ({officer.get('role')}, {officer.get('agency')})"
    out.print(f"Token {revoked_id} of {who} {'was already' if already else 'is now'} revoked.")


@contextmanager
def _errors() -> Iterator[None]:
    """The project's errors as one line on stderr and exit status 2."""
    try:
        yield
    except (NodeError, LedgerError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _when(at: int | None) -> str:
    return "never" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
