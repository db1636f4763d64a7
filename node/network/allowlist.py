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

Besu's PERM methods, as documented in the private network API reference
(https://besu.hyperledger.org/private-networks/reference/api, "PERM (Permissioning) methods";
not enabled by default: `--rpc-http-api=...,PERM`):

    perm_getAccountsAllowlist         params: []                  result: ["0x…", …]
    perm_addAccountsToAllowlist       params: [["0x…", "0x…"]]    result: "Success"
    perm_removeAccountsFromAllowlist  params: [["0x…", "0x…"]]    result: "Success"
    perm_getNodesAllowlist            params: []                  result: ["enode://…", …]

The address list is the one parameter, hence the double brackets. Besu keeps accounts in lower
case and answers errors with code -32000 (RpcErrorType in Besu's source): "Cannot add an existing
account to allowlist", "Cannot remove an absent account from allowlist", "Request contains an
invalid account", "Request contains duplicate accounts", "Request contains an empty list of
accounts", "Account allowlist has not been enabled", and, when it cannot write the permissions
file, "Unable to persist changes ... Changes reverted" or "... out of sync. The changes have been
applied, but not persisted to disk". One bad entry fails the whole request, nothing applied.

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

Exit status: 0 every node is in line (with --dry-run: every node answered); 1 some node could not
be read or brought in line (the others are still processed), or with --check some node is not
in line; 2 bad usage (no node, an invalid address, an unreadable file) or a registry that cannot
be read.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import typer
from eth_utils.address import is_address, to_checksum_address
from rich.console import Console
from rich.markup import escape

from cli.node import Deployment, Rpc
from ledger.codes import decode_code
from ledger.errors import InvalidCode, LedgerError
from node.chain.client import call_view
from node.chain.registry import Council
from node.errors import NodeError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

GET_ACCOUNTS = "perm_getAccountsAllowlist"
ADD_ACCOUNTS = "perm_addAccountsToAllowlist"
REMOVE_ACCOUNTS = "perm_removeAccountsFromAllowlist"
GET_NODES = "perm_getNodesAllowlist"

# Besu's answers the sync reacts to (RpcErrorType; all with code -32000).
EXISTING_ENTRY = "Cannot add an existing account to allowlist"
ABSENT_ENTRY = "Cannot remove an absent account from allowlist"
ACCOUNTS_NOT_ENABLED = "Account allowlist has not been enabled"
NODES_NOT_ENABLED = "Node allowlist has not been enabled"
PERSIST_FAILURE = "Unable to persist changes to allowlist configuration file"  # "... Changes reverted"
FILE_SYNC = "The permissioning allowlist configuration file is out of sync"  # "... not persisted to disk"

MANIFEST_FORMAT = "sijill-network/1"  # network.json of `sijill network init` (node/network/generate.py)
_OPEN = 2**64 - 1  # Signer.validTo while the signer is current
_STATUSES = ("none", "active", "suspended")  # IAgencyRegistry.AgencyStatus


class UsageError(NodeError):
    """Bad usage or an unreadable file (exit status 2)."""


class PermError(Exception):
    """A node answered a PERM call with a JSON-RPC error."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.code = code
        self.message = message


class Unreachable(Exception):
    """A node did not answer a PERM call (or answered something that is not JSON-RPC)."""


def register(group: typer.Typer) -> None:
    """Add `sync-permissions` to the `sijill network` group."""
    group.command("sync-permissions")(sync_permissions_command)


# ---------------------------------------------------------------------------- one Besu node


class BesuPerm:
    """The PERM JSON-RPC API of one Besu node, over HTTP."""

    def __init__(self, url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, params: list[Any]) -> Any:
        """The result of `method`; `PermError` for a JSON-RPC error, `Unreachable` for no answer."""
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        try:
            response = self._client.post(self.url, json=request)
        except httpx.HTTPError as exc:
            raise Unreachable(f"no answer to {method} ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise PermError(method, None, "HTTP 401: the node wants a JSON-RPC token (--auth-token-file)")
        if response.status_code == 403:  # Besu's --host-allowlist refuses the Host header
            raise PermError(method, None, "HTTP 403: call the node by a name its host-allowlist has")
        try:
            answer = response.json()
        except ValueError:
            raise Unreachable(f"{method}: HTTP {response.status_code}, not a JSON-RPC answer") from None
        if not isinstance(answer, dict):
            raise Unreachable(f"{method}: HTTP {response.status_code}, not a JSON-RPC answer")
        error = answer.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                raise PermError(method, code if isinstance(code, int) else None, str(error.get("message")))
            raise PermError(method, None, str(error))
        if "result" not in answer:
            raise Unreachable(f"{method}: HTTP {response.status_code}, an answer without a result")
        return answer["result"]

    def accounts(self) -> set[str]:
        """The accounts allow-list, in lower case (as Besu keeps it)."""
        result = self.call(GET_ACCOUNTS, [])
        if not isinstance(result, list):
            raise Unreachable(f"{GET_ACCOUNTS}: a result that is not a list of accounts: {result!r}")
        return {str(a).lower() for a in result}

    def add_accounts(self, accounts: Sequence[str]) -> None:
        self._expect_success(ADD_ACCOUNTS, accounts)

    def remove_accounts(self, accounts: Sequence[str]) -> None:
        self._expect_success(REMOVE_ACCOUNTS, accounts)

    def nodes(self) -> list[str]:
        result = self.call(GET_NODES, [])
        if not isinstance(result, list):
            raise Unreachable(f"{GET_NODES}: a result that is not a list of enode URLs: {result!r}")
        return [str(e) for e in result]

    def _expect_success(self, method: str, accounts: Sequence[str]) -> None:
        result = self.call(method, [list(accounts)])  # one parameter: the list of addresses
        if result != "Success":
            raise Unreachable(f'{method}: answered {result!r}, not "Success"')


# ---------------------------------------------------------------------------- what is wanted


@dataclass(frozen=True, slots=True)
class Target:
    """One Besu node to bring in line: its JSON-RPC URL and, from a manifest, its name."""

    url: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.url} ({self.name})" if self.name else self.url


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the sync reads from the network manifest (network.json of `sijill network init`)."""

    path: Path
    targets: tuple[Target, ...]
    enodes: dict[str, str]  # enode URL -> the node's name
    keep: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The accounts every node must allow (lower case), and why each."""

    signers: frozenset[str]
    kept: frozenset[str]
    registry: str
    block: int

    @property
    def accounts(self) -> frozenset[str]:
        return self.signers | self.kept


class Registry:
    """The AgencyRegistry of a deployment: its current signers and who an account is."""

    def __init__(self, rpc: str, deployment: Path) -> None:
        self._council = Council(rpc, deployment)
        self.address = str(self._council.registry.address)
        self._labels: dict[str, str] = {}

    def _view(self, function: str, *args: Any) -> Any:
        return call_view(getattr(self._council.registry.functions, function)(*args), self._council.decoder)

    def block(self) -> int:
        return int(self._council.w3.eth.block_number)

    def current_signers(self) -> frozenset[str]:
        """Every current signer of every active agency."""
        return frozenset(str(a).lower() for a in self._view("currentSigners"))

    def describe(self, account: str) -> str:
        """Who `account` is in the registry, in words (read once per account)."""
        if account not in self._labels:
            agency_word, _, valid_to = self._view("signerInfo", to_checksum_address(account))
            if bytes(agency_word) == bytes(32):
                self._labels[account] = "not a signer in the registry"
            else:
                code = _code_text(bytes(agency_word))
                status = _STATUSES[self._view("agencyInfo", agency_word)[1]]
                if valid_to != _OPEN:
                    self._labels[account] = f"retired signer of {code}, valid to block {valid_to}"
                elif status == "active":
                    self._labels[account] = f"signer of {code}"
                else:
                    self._labels[account] = f"signer of {code}, which is {status}"
        return self._labels[account]


def _code_text(word: bytes) -> str:
    try:
        return decode_code(word)
    except InvalidCode:
        return "0x" + word.hex()


def _address(text: Any, where: str) -> str:
    if not isinstance(text, str) or not is_address(text):
        raise UsageError(f"{where}: {text!r} is not an account address (0x and 40 hex digits)")
    return text.lower()


def _keep_entries(value: Any, where: str) -> list[str]:
    """Addresses from a `keep` list: strings, or objects with an `address` (and a note)."""
    if not isinstance(value, list):
        raise UsageError(f"{where}: `keep` must be a list of addresses")
    found = []
    for entry in value:
        address = entry.get("address") if isinstance(entry, dict) else entry
        found.append(_address(address, where))
    return found


def load_keep_file(path: Path) -> list[str]:
    """The `keep` list of a TOML file (`keep = ["0x…"]`) or a JSON file (`{"keep": [...]}` or a list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read keep file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    data: Any
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"keep file {path} is neither JSON nor TOML: {exc}") from None
    if isinstance(data, dict):
        if "keep" not in data:
            raise UsageError(f"keep file {path} has no `keep` list")
        data = data["keep"]
    return _keep_entries(data, f"keep file {path}")


def load_manifest(path: Path) -> Manifest:
    """The nodes, enode URLs and kept accounts of a network manifest (`sijill-network/1`).

    Every entry of `validators` with an `rpcUrl` is a node to bring in line, named by its
    `name`; every `enode` is one the nodes allow-lists should hold; the top-level `keep` list
    (`--allow-account` of `sijill network init`) is kept. The deployer is not in it: it has no
    power once the contracts exist, so the first sync after `sijill deploy` removes it unless
    it is kept explicitly.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read network manifest {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise UsageError(f"{path} is not a {MANIFEST_FORMAT} network manifest")
    entries = data.get("validators") or []
    if not isinstance(entries, list):
        raise UsageError(f"network manifest {path}: `validators` is not a list")
    targets: list[Target] = []
    enodes: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"network manifest {path}: validators[{i}] is not an object")
        name = str(entry.get("name") or f"validators[{i}]")
        if entry.get("rpcUrl"):
            targets.append(Target(_node_url(str(entry["rpcUrl"]), f"network manifest {path}"), name))
        if entry.get("enode"):
            enodes[str(entry["enode"])] = name
    keep = _keep_entries(data["keep"], f"network manifest {path}") if "keep" in data else []
    return Manifest(path, tuple(targets), enodes, tuple(keep))


def _node_url(url: str, where: str = "--node") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{where}: {url!r} is not a node's JSON-RPC URL (http://host:port)")
    return url


def _enode_key(enode: str) -> tuple[str, str]:
    """What makes two enode URLs the same node: the node id and host:port (not the query)."""
    parts = urlsplit(enode.strip())
    node_id = (parts.username or "").lower()
    return node_id, (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")


# ---------------------------------------------------------------------------- the sync


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
    allowed_keys = {_enode_key(e) for e in allowed}
    expected_keys = {_enode_key(e) for e in enodes}
    return NodesCheck(
        missing=sorted(e for e in enodes if _enode_key(e) not in allowed_keys),
        extra=sorted(e for e in allowed if _enode_key(e) not in expected_keys),
    )


# ---------------------------------------------------------------------------- the command

NodeUrls = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        help="JSON-RPC URL of a Besu node with the PERM API enabled; repeat for every validator "
        "(default: every node of --manifest).",
        show_default=False,
    ),
]
ManifestFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_NETWORK_MANIFEST",
        help="The network manifest (network.json of `sijill network init`): its nodes' RPC URLs, "
        "their enode URLs to check the nodes allow-lists against, and a `keep` list.",
    ),
]
Keep = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        help="An account every node keeps allowed whatever the registry says (the deployer, "
        "monitoring); repeatable. Prefer --keep-file for permanent ones.",
        show_default=False,
    ),
]
KeepFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_PERMISSIONS_KEEP_FILE",
        help='TOML (keep = ["0x…"]) or JSON ({"keep": [...]}) file of accounts always kept allowed.',
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SIJILL_BESU_TOKEN_FILE",
        help="File holding the JWT the nodes' JSON-RPC wants (--rpc-http-authentication-enabled).",
    ),
]


def sync_permissions_command(
    rpc: Rpc,
    deployment: Deployment,
    nodes: NodeUrls = None,
    manifest: ManifestFile = None,
    keep: Keep = None,
    keep_file: KeepFile = None,
    auth_token_file: TokenFile = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each node's answer.")] = 10.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Like --dry-run; exit 1 when some node is not in line (monitoring)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Bring every Besu node's account allow-list in line with the agency registry.

    Allowed: the current signers of active agencies, plus the accounts kept (--keep,
    --keep-file, the manifest's `keep`). Missing accounts are added first on every node, then
    unwanted ones (suspended agencies' and retired signers) removed, through Besu's
    perm_addAccountsToAllowlist and perm_removeAccountsFromAllowlist. A node already in line
    is only read. Run it after every council change, and from a timer (docs/besu-operations.md).
    Exit status: 0 in line, 1 some node could not be brought in line, 2 bad usage or the
    registry unreadable.

    Example: sijill network sync-permissions --rpc http://10.0.1.11:8545 --deployment
    /etc/sijill/deployment.json --manifest /etc/sijill/network.json --keep-file /etc/sijill/keep.toml
    """
    dry_run = dry_run or check
    try:
        loaded = load_manifest(manifest) if manifest is not None else None
        targets = _targets(nodes or [], loaded)
        kept = set(_keep_entries(list(keep or []), "--keep"))
        if keep_file is not None:
            kept |= set(load_keep_file(keep_file))
        if loaded is not None:
            kept |= set(loaded.keep)
        token = _token(auth_token_file)
        registry = Registry(rpc, deployment)
        wanted = Wanted(registry.current_signers(), frozenset(kept), registry.address, registry.block())
        clients = [(t, BesuPerm(t.url, timeout=timeout, token=token)) for t in targets]
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
    except (NodeError, LedgerError) as exc:
        _fail(str(exc))
    failed = [o for o in outcomes if o.error is not None]
    drifted = [o for o in outcomes if o.to_add or o.to_remove]
    if as_json:
        _print_json(wanted, outcomes, labels, dry_run)
    else:
        _print_text(wanted, outcomes, labels, dry_run)
    if failed or (check and drifted):
        raise typer.Exit(1)


def _targets(urls: Iterable[str], manifest: Manifest | None) -> list[Target]:
    """The nodes: --node URLs (named from the manifest when it lists them), else the manifest's."""
    named = {t.url.rstrip("/"): t.name for t in manifest.targets} if manifest else {}
    targets = [Target(_node_url(u), named.get(u.rstrip("/"), "")) for u in urls]
    if not targets and manifest is not None:
        targets = list(manifest.targets)
        if not targets:
            raise UsageError(f"network manifest {manifest.path} names no node with an RPC URL: give --node")
    if not targets:
        raise UsageError("no Besu node to bring in line: give --node URL (repeatable) or --manifest")
    seen: set[str] = set()
    unique = []
    for target in targets:
        if target.url.rstrip("/") not in seen:
            seen.add(target.url.rstrip("/"))
            unique.append(target)
    return unique


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token


def _label(account: str, wanted: Wanted, registry: Registry) -> str:
    """Who the account is, for the report; never fails (the changes are made by then)."""
    if account in wanted.kept and account not in wanted.signers:
        return "kept"
    try:
        return registry.describe(account)
    except Exception as exc:  # the chain went away after the sync: still report what was done
        return f"registry unreadable: {type(exc).__name__}"


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _print_text(wanted: Wanted, outcomes: list[NodeOutcome], labels: dict[str, str], dry_run: bool) -> None:
    kept_only = wanted.kept - wanted.signers
    out.print(
        f"Registry {wanted.registry} at block {wanted.block}: "
        f"{_count(len(wanted.signers), 'current signer')} of active agencies, "
        f"{_count(len(kept_only), 'account')} kept: {len(wanted.accounts)} to allow."
    )
    for o in outcomes:
        where = escape(str(o.target))
        if dry_run:
            changes = [("would add", a) for a in o.to_add] + [("would remove", a) for a in o.to_remove]
        else:
            changes = [("added", a) for a in o.added] + [("removed", a) for a in o.removed]
        if o.error is not None:
            out.print(f"{where}: [red]FAILED[/]: {escape(o.error)}; not in line")
        elif not o.to_add and not o.to_remove:
            out.print(f"{where}: in line ({_count(len(o.before), 'account')})")
        elif dry_run:
            out.print(f"{where}: out of line: {len(o.to_add)} to add, {len(o.to_remove)} to remove")
        else:
            out.print(f"{where}: brought in line: {len(o.added)} added, {len(o.removed)} removed")
        width = len("would remove" if dry_run else "removed")
        for verb, account in changes:
            who = labels.get(account, "")
            out.print(f"  {verb:<{width}} {to_checksum_address(account)} ({escape(who)})")
        check = o.nodes_check
        if check is not None:
            if check.error:
                out.print(f"  nodes allow-list not checked: {escape(check.error)}")
            for enode in check.missing:
                out.print(f"  nodes allow-list lacks {escape(enode)} (in the manifest)")
            for enode in check.extra:
                out.print(f"  nodes allow-list has {escape(enode)}, which the manifest does not name")
    failed = sum(o.error is not None for o in outcomes)
    if failed:
        err.print(
            f"[red]{failed} of {_count(len(outcomes), 'node')} could not be "
            + ("read" if dry_run else "brought in line")
            + "[/]"
            + ("" if failed == len(outcomes) else " (the others were)")
        )
    if dry_run:
        out.print("Dry run: nothing was changed.")


def _print_json(wanted: Wanted, outcomes: list[NodeOutcome], labels: dict[str, str], dry_run: bool) -> None:
    report = {
        "registry": wanted.registry,
        "block": wanted.block,
        "dryRun": dry_run,
        "allowed": [
            {"address": to_checksum_address(a), "why": "signer" if a in wanted.signers else "kept"}
            for a in sorted(wanted.accounts)
        ],
        "nodes": [
            {
                "url": o.target.url,
                "name": o.target.name or None,
                "status": o.status(dry_run),
                "before": sorted(to_checksum_address(a) for a in o.before),
                "toAdd": [{"address": to_checksum_address(a), "who": labels.get(a)} for a in o.to_add],
                "toRemove": [{"address": to_checksum_address(a), "who": labels.get(a)} for a in o.to_remove],
                "added": [to_checksum_address(a) for a in o.added],
                "removed": [to_checksum_address(a) for a in o.removed],
                "error": o.error,
                "nodesAllowlist": o.nodes_check.to_json() if o.nodes_check else None,
            }
            for o in outcomes
        ],
        "inLine": all(
            o.error is None and (not (o.to_add or o.to_remove) if dry_run else o.in_line) for o in outcomes
        ),
    }
    print(json.dumps(report, ensure_ascii=False))


__all__ = [
    "ADD_ACCOUNTS",
    "GET_ACCOUNTS",
    "GET_NODES",
    "REMOVE_ACCOUNTS",
    "BesuPerm",
    "NodeOutcome",
    "load_keep_file",
    "load_manifest",
    "register",
    "sync_nodes",
]
