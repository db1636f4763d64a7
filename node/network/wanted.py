"""What the allow-lists must hold, and which nodes to bring in line (`sijill network sync-permissions`).

The accounts come from the AgencyRegistry (`Registry`: the current signers of active agencies,
and who any account is, for the report) and from the operator (`--keep`, a keep file, the
network manifest's `keep` list); the nodes from `--node` URLs or the manifest's validators
(`load_manifest`, `targets`), whose enode URLs the nodes allow-lists are checked against.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_utils.address import is_address, to_checksum_address

from ledger.codes import decode_code
from ledger.errors import InvalidCode
from node.chain.client import call_view
from node.chain.registry import STATUSES, Council
from node.errors import NodeError

MANIFEST_FORMAT = "sijill-network/1"  # network.json of `sijill network init` (node/network/generate.py)
_OPEN = 2**64 - 1  # Signer.validTo while the signer is current


class UsageError(NodeError):
    """Bad usage or an unreadable file (exit status 2)."""


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
                status = STATUSES[self._view("agencyInfo", agency_word)[1]]
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


def keep_entries(value: Any, where: str) -> list[str]:
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
    return keep_entries(data, f"keep file {path}")


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
    keep = keep_entries(data["keep"], f"network manifest {path}") if "keep" in data else []
    return Manifest(path, tuple(targets), enodes, tuple(keep))


def _node_url(url: str, where: str = "--node") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{where}: {url!r} is not a node's JSON-RPC URL (http://host:port)")
    return url


def enode_key(enode: str) -> tuple[str, str]:
    """What makes two enode URLs the same node: the node id and host:port (not the query)."""
    parts = urlsplit(enode.strip())
    node_id = (parts.username or "").lower()
    return node_id, (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")


def targets(urls: Iterable[str], manifest: Manifest | None) -> list[Target]:
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


def read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token
