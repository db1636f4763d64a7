"""`sijill network sync-permissions`: every Besu node's account allow-list, in line with the registry.

Besu 25.6 removed onchain permissioning; a node now decides whose transactions it takes from
its local permissioning (`--permissions-accounts-config-file-enabled` and the `accounts-allowlist`
of its permissions_config.toml). It checks the sender when a transaction is submitted with
`eth_sendRawTransaction`, when one arrives from a peer and when it adds one to a block it builds
(https://besu.hyperledger.org/private-networks/how-to/use-permissioning/local, "Account
allowlisting"). The AgencyRegistry stays the one source of truth: this command reads it and
brings each node's list, through the node's PERM JSON-RPC API, to exactly

    the current signers of active agencies (`IAgencyRegistry.currentSigners()`)
    + the accounts the operator keeps (--keep, --keep-file: the deployer, monitoring, ...)

so a suspended agency's signers and a retired (rotated) signer lose the right to send, and a new
agency's or a new key's signer gains it, on every validator.

The Besu calls are in `node.network.perm`, what is wanted in `node.network.wanted`; the
command (options, report, exit status) in cli/network_permissions.py.

How a node is brought in line, and what is never done:

- Read its list; add what is missing, then remove what is not wanted, each in one call. Additions
  go first on every node; removals follow only on the nodes that now hold every wanted account.
  So during a rotation the new key is accepted everywhere before the old one goes anywhere.
- Never an empty list: Besu's local permissioning accepts only listed senders
  (AccountLocalConfigPermissioningController.isPermitted), so an empty list refuses every
  transaction. A run whose wanted set is empty refuses to start.
- A node whose account allow-listing is off ("Account allowlist has not been enabled") accepts
  transactions from every account: that is reported as a failure, naming the flag to set.
- A node already in line gets only the read: running the command again changes nothing.
- The nodes allow-list (`perm_getNodesAllowlist`) is only checked, against the enode URLs of the
  manifest, and differences reported; adding a node's enode is an operator's decision
  (`perm_addNodesToAllowlist`, docs/besu-operations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.network.perm import (
    ABSENT_ENTRY,
    ACCOUNTS_NOT_ENABLED,
    EXISTING_ENTRY,
    FILE_SYNC,
    NODES_NOT_ENABLED,
    PERSIST_FAILURE,
    BesuPerm,
    PermError,
    Unreachable,
)
from node.network.wanted import (
    Registry,
    Target,
    UsageError,
    Wanted,
    enode_key,
    keep_entries,
    load_keep_file,
    load_manifest,
    read_token,
    targets,
)


@dataclass
class NodesCheck:
    """A node's nodes allow-list against the manifest's enode URLs (report only)."""

    missing: list[str] = field(default_factory=list)  # in the manifest, not allowed
    extra: list[str] = field(default_factory=list)  # allowed, not in the manifest
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"missing": self.missing, "extra": self.extra, "error": self.error}


@dataclass
class NodeOutcome:
    """What one node held, what it needed and what was done."""

    target: Target
    before: set[str] = field(default_factory=set)
    to_add: list[str] = field(default_factory=list)
    to_remove: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    error: str | None = None
    nodes_check: NodesCheck | None = None

    @property
    def in_line(self) -> bool:
        return (
            self.error is None
            and set(self.to_add) <= set(self.added)
            and set(self.to_remove) <= set(self.removed)
        )

    def status(self, dry_run: bool) -> str:
        if self.error is not None:
            return "failed"
        if not self.to_add and not self.to_remove:
            return "in line"
        return "out of line" if dry_run else "brought in line"


def _explain(exc: PermError | Unreachable) -> str:
    """A failure in words, with what to do for the cases an operator can fix."""
    text = str(exc)
    if isinstance(exc, PermError):
        if exc.message == ACCOUNTS_NOT_ENABLED:
            return (
                f"{text}: this node takes transactions from EVERY account; start it with "
                "--permissions-accounts-config-file-enabled (docs/besu-operations.md)"
            )
        if exc.code in (-32601, -32604):  # Method not found / Method not enabled
            return f"{text}: enable the PERM API on this node (--rpc-http-api=...,PERM)"
        if exc.message.startswith(PERSIST_FAILURE):
            return f"{text}: Besu must be able to rewrite its permissions_config.toml (mount, owner)"
        if exc.message.startswith(FILE_SYNC):
            return (
                f"{text}: the file was edited behind the node's back; the change holds until a "
                "restart only: call perm_reloadPermissionsFromFile on it, then sync again"
            )
    return text


def _read(outcome: NodeOutcome, node: BesuPerm, wanted: frozenset[str]) -> set[str]:
    """Read the node's list into the plan; raises as the node does."""
    current = node.accounts()
    outcome.to_add = sorted(wanted - current)
    outcome.to_remove = sorted(current - wanted)
    return current


def sync_nodes(
    nodes: Sequence[tuple[Target, BesuPerm]],
    wanted: frozenset[str],
    *,
    dry_run: bool = False,
    enodes: dict[str, str] | None = None,
) -> list[NodeOutcome]:
    """Bring every node's accounts allow-list to `wanted`: read all, add on all, then remove.

    A node that fails is left as it is after its last successful call; the others go on.
    """
    if not wanted:
        raise UsageError(
            "no account to allow: the registry has no current signer of an active agency and no "
            "account is kept; refusing to empty the allow-lists (Besu would refuse every transaction)"
        )
    outcomes = [NodeOutcome(target) for target, _ in nodes]
    for outcome, (_, node) in zip(outcomes, nodes, strict=True):
        try:
            outcome.before = _read(outcome, node, wanted)
        except (PermError, Unreachable) as exc:
            outcome.error = _explain(exc)
    if not dry_run:
        for outcome, (_, node) in zip(outcomes, nodes, strict=True):
            if outcome.error is None and outcome.to_add:
                _add(outcome, node, wanted)
        for outcome, (_, node) in zip(outcomes, nodes, strict=True):
            if outcome.error is None and outcome.to_remove:
                _remove(outcome, node, wanted)
    if enodes is not None:
        for outcome, (_, node) in zip(outcomes, nodes, strict=True):
            outcome.nodes_check = _check_nodes(node, enodes)
    return outcomes


def _add(outcome: NodeOutcome, node: BesuPerm, wanted: frozenset[str]) -> None:
    """Add the missing accounts; when another writer got there first, read again and add the rest."""
    for attempt in range(2):
        missing = sorted(set(outcome.to_add) - set(outcome.added))
        try:
            if missing:
                node.add_accounts(missing)
                outcome.added += missing
            return
        except PermError as exc:
            if exc.message != EXISTING_ENTRY or attempt:
                outcome.error = _explain(exc)
                return
        except Unreachable as exc:
            outcome.error = _explain(exc)
            return
        try:  # "Cannot add an existing account": the list changed since it was read
            current = node.accounts()
        except (PermError, Unreachable) as exc:
            outcome.error = _explain(exc)
            return
        outcome.to_add = sorted(set(outcome.added) | (wanted - current))
        outcome.to_remove = sorted(set(outcome.removed) | (current - wanted))


def _remove(outcome: NodeOutcome, node: BesuPerm, wanted: frozenset[str]) -> None:
    """Remove the unwanted accounts, only once the node holds every wanted one (never emptied)."""
    if not set(outcome.to_add) <= set(outcome.added):
        return  # its additions failed: nothing is taken away from it
    for attempt in range(2):
        extra = sorted(set(outcome.to_remove) - set(outcome.removed))
        try:
            if extra:
                node.remove_accounts(extra)
                outcome.removed += extra
            return
        except PermError as exc:
            if exc.message != ABSENT_ENTRY or attempt:
                outcome.error = _explain(exc)
                return
        except Unreachable as exc:
            outcome.error = _explain(exc)
            return
        try:  # "Cannot remove an absent account": the list changed since it was read
            current = node.accounts()
        except (PermError, Unreachable) as exc:
            outcome.error = _explain(exc)
            return
        if not wanted <= current:  # someone took a wanted account away meanwhile: stop here
            outcome.to_add = sorted(set(outcome.added) | (wanted - current))
            outcome.error = "the allow-list changed during the sync (wanted accounts missing): run again"
            return
        outcome.to_remove = sorted(set(outcome.removed) | (current - wanted))


def _check_nodes(node: BesuPerm, enodes: dict[str, str]) -> NodesCheck:
    try:
        allowed = node.nodes()
    except PermError as exc:
        note = " (node allow-listing is off on this node)" if exc.message == NODES_NOT_ENABLED else ""
        return NodesCheck(error=f"{exc}{note}")
    except Unreachable as exc:
        return NodesCheck(error=str(exc))
    allowed_keys = {enode_key(e) for e in allowed}
    expected_keys = {enode_key(e) for e in enodes}
    return NodesCheck(
        missing=sorted(e for e in enodes if enode_key(e) not in allowed_keys),
        extra=sorted(e for e in allowed if enode_key(e) not in expected_keys),
    )


# ---------------------------------------------------------------------------- one run


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a run found and did: the wanted accounts, each node's outcome, who each changed
    account is."""

    wanted: Wanted
    outcomes: list[NodeOutcome]
    labels: dict[str, str]


def sync_permissions(
    rpc: str,
    deployment: Path,
    *,
    nodes: Sequence[str] = (),
    manifest: Path | None = None,
    keep: Sequence[str] = (),
    keep_file: Path | None = None,
    auth_token_file: Path | None = None,
    timeout: float = 10.0,
    dry_run: bool = False,
) -> SyncReport:
    """Read what is wanted (registry, kept accounts, manifest) and bring every node in line
    (`sync_nodes`); `NodeError` or `LedgerError` for bad usage or an unreadable registry."""
    loaded = load_manifest(manifest) if manifest is not None else None
    found = targets(nodes, loaded)
    kept = set(keep_entries(list(keep), "--keep"))
    if keep_file is not None:
        kept |= set(load_keep_file(keep_file))
    if loaded is not None:
        kept |= set(loaded.keep)
    token = read_token(auth_token_file)
    registry = Registry(rpc, deployment)
    wanted = Wanted(registry.current_signers(), frozenset(kept), registry.address, registry.block())
    clients = [(t, BesuPerm(t.url, timeout=timeout, token=token)) for t in found]
    try:
        outcomes = sync_nodes(
            clients,
            wanted.accounts,
            dry_run=dry_run,
            enodes=loaded.enodes if loaded is not None and loaded.enodes else None,
        )
    finally:
        for _, client in clients:
            client.close()
    labels = {a: _label(a, wanted, registry) for o in outcomes for a in (*o.to_add, *o.to_remove)}
    return SyncReport(wanted, outcomes, labels)


def _label(account: str, wanted: Wanted, registry: Registry) -> str:
    """Who the account is, for the report; never fails (the changes are made by then)."""
    if account in wanted.kept and account not in wanted.signers:
        return "kept"
    try:
        return registry.describe(account)
    except Exception as exc:  # the chain went away after the sync: still report what was done
        return f"registry unreadable: {type(exc).__name__}"
