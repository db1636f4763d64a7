"""The operator's acts on a node's store, the same whether the node runs or not.

`sijill officer add|list|revoke` and `sijill node backup` call these over an open `Store`:
their own when the node is stopped, the running node's through its admin socket
(node/admin.py, `node_actions`) when it runs. Each change writes its audit entry in the same
write batch as the change (actor `cli:officer` for tokens, `cli:node` for a backup), never a
token itself.

Imports the store only inside the functions that use one, so the CLI loads this module cheaply.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.admin import Action
from node.errors import NodeError

if TYPE_CHECKING:  # plyvel and cryptography load when a store is opened, not with the CLI
    from node.store import Store

ROLES = ("officer", "supervisor", "auditor")
"""What a token lets its holder do on the API: officers write records, supervisors also amend
and revoke, auditors read the audit trail."""

ACTOR = "cli:officer"
BACKUP_ACTOR = "cli:node"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued token and what it was registered with. `token` exists nowhere else."""

    token: str
    token_id: str
    name: str
    role: str
    agency: str
    expires_at: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "tokenId": self.token_id,
            "role": self.role,
            "agency": self.agency,
            "name": self.name,
            "expiresAt": self.expires_at,
        }


def issue_token(
    store: Store,
    *,
    agency: str,
    role: str,
    name: str,
    expires_at: int | None,
    now: int,
    token: str | None = None,
) -> IssuedToken:
    """Register a new random token (or `token`, which must be as random) for an officer, with
    its audit entry, in one write batch."""
    if role not in ROLES:
        raise NodeError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip():
        raise NodeError("give the officer's name with --name")
    if expires_at is not None and expires_at <= now:
        raise NodeError("a token must expire in the future")
    token = token if token is not None else secrets.token_urlsafe(32)
    officer = {"name": name, "role": role, "agency": agency, "createdAt": now}
    with store.write_batch() as wb:
        token_id = store.add_token(token, officer, expires_at, wb=wb)[:16]
        store.audit(
            wb,
            actor=ACTOR,
            action="officer.add",
            request_id=secrets.token_hex(8),
            subject=token_id,
            at=now,
            details={"role": role, "name": name, "agency": agency, "expiresAt": expires_at},
        )
    return IssuedToken(token, token_id, name, role, agency, expires_at)


def revoke_token(store: Store, token_id: str, *, now: int) -> tuple[str, dict[str, Any], bool]:
    """Revoke the token whose id starts with `token_id`, with its audit entry; return its id,
    its officer and whether it was already revoked (then without a new audit entry)."""
    from node.store import make_key

    with store.write_batch() as wb:
        full = store.revoke_token(token_id.strip().lower(), wb=wb)  # names the problem if 0 or 2+ match
        entry = store.get_json(make_key("token", full)) or {}  # as it was before this batch
        officer: dict[str, Any] = entry["officer"]
        if entry["revoked"]:
            return full[:16], officer, True  # rewrites the same value: no audit entry
        store.audit(
            wb,
            actor=ACTOR,
            action="officer.revoke",
            request_id=secrets.token_hex(8),
            subject=full[:16],
            at=now,
            details={"role": officer.get("role"), "name": officer.get("name")},
        )
    return full[:16], officer, False


def back_up(
    store: Store, out: Path, *, agency: str | None, chain_head: tuple[int, str] | None
) -> dict[str, Any]:
    """Write a backup of `store` to `out` (node/backup.py) and audit it; return its manifest."""
    from node.backup import write_backup

    if not out.is_absolute():
        raise NodeError(f"give the backup file as an absolute path, not {out}")
    if not out.parent.is_dir():
        raise NodeError(f"there is no directory {out.parent} to write the backup into")
    manifest = write_backup(store, out, agency=agency, chain_head=chain_head)
    store.audit(
        None,
        actor=BACKUP_ACTOR,
        action="node.backup",
        request_id=secrets.token_hex(8),
        subject=out.name,
        at=int(time.time()),
        details={"contentDigest": manifest.contentDigest, "counts": manifest.counts},
    )
    return manifest.to_json()


def store_actions(
    store: Store, *, agency: str | None, chain_head: Callable[[], tuple[int, str] | None]
) -> dict[str, Action]:
    """The admin actions over `store` (the running node's), as `AdminServer` serves them;
    `chain_head` is the agency's (seq, root hex) on the chain now, or None if unknown."""

    def add(request: dict[str, Any]) -> Any:
        return issue_token(
            store,
            agency=str(request["agency"]),
            role=str(request["role"]),
            name=str(request["name"]),
            expires_at=request.get("expiresAt"),
            now=int(request.get("now") or time.time()),
        ).to_json()

    def revoke(request: dict[str, Any]) -> Any:
        token_id, officer, already = revoke_token(store, str(request["tokenId"]), now=int(time.time()))
        return {"tokenId": token_id, "officer": officer, "alreadyRevoked": already}

    def backup(request: dict[str, Any]) -> Any:
        return back_up(store, Path(str(request["out"])), agency=agency, chain_head=chain_head())

    return {
        "officer.add": _fields(add, "agency", "role", "name"),
        "officer.list": lambda _: store.list_tokens(),
        "officer.revoke": _fields(revoke, "tokenId"),
        "node.backup": _fields(backup, "out"),
    }


def _fields(action: Action, *names: str) -> Action:
    def checked(request: dict[str, Any]) -> Any:
        missing = [name for name in names if name not in request]
        if missing:
            raise NodeError(f"the request {request['action']!r} lacks {', '.join(missing)}")
        return action(request)

    return checked
