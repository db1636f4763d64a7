"""What each other agency may see of this agency's records (`PeerPolicy`), loaded from a
JSON file: which record types, and which fields of them, by JSON Pointer prefixes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ledger.codes import AGENCY_CODE_PATTERN, RECORD_TYPE_PATTERN
from ledger.fields import MAX_PATH_BYTES
from node.errors import NodeError


class PeerPolicy:
    """What each other agency may see of this agency's records: {peer agency: {record type:
    [JSON Pointer prefixes]}}. Loaded from a JSON file; an agency or type not listed sees nothing (403).

    A prefix allows the field it names and everything under it, by whole segments: "/owners"
    allows "/owners" and "/owners/0/name", not "/ownership"; "" allows every field. A segment
    "*" stands for any one segment, such as every item of a list: "/owners/*/name" allows each
    owner's name and not their national IDs.
    """

    def __init__(self, rules: Mapping[str, Mapping[str, Iterable[str]]] | None = None) -> None:
        """A policy from already-parsed rules; checked as `from_json` checks them."""
        self._rules: dict[str, dict[str, tuple[str, ...]]] = _check_rules(rules if rules is not None else {})

    @classmethod
    def load(cls, path: Path | None) -> PeerPolicy:
        """The policy in the JSON file at `path`; an empty one (nothing shared) when `path` is
        None or there is no such file. `NodeError` naming the file and the problem otherwise."""
        if path is None or not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NodeError(f"cannot read the peer policy {path}: {exc}") from None
        try:
            document = json.loads(text, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise NodeError(f"the peer policy {path} is not valid JSON: {exc}") from None
        try:
            return cls.from_json(document)
        except NodeError as exc:
            raise NodeError(f"the peer policy {path}: {exc}") from None

    @classmethod
    def from_json(cls, obj: Any) -> PeerPolicy:
        """A policy from its JSON document; `NodeError` naming the first thing wrong."""
        return cls(obj)

    def may_see(self, peer: str, record_type: str) -> bool:
        """Whether `peer` may see any record of `record_type` (asked before the store is)."""
        return record_type in self._rules.get(peer, {})

    def visible_paths(self, peer: str, record_type: str, paths: Iterable[str]) -> list[str] | None:
        """None if `peer` may not see records of `record_type` at all; else those of `paths` that
        are equal to or under one of its allowed prefixes, in the order given."""
        prefixes = self._rules.get(peer, {}).get(record_type)
        if prefixes is None:
            return None
        if "" in prefixes:
            return list(paths)
        return [p for p in paths if any(_under(p, pre) for pre in prefixes)]

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """The JSON document of the policy."""
        return {
            peer: {kind: list(prefixes) for kind, prefixes in types.items()}
            for peer, types in self._rules.items()
        }


def _check_rules(rules: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(rules, Mapping):
        raise NodeError("a peer policy is an object: {agency code: {record type: [field pointers]}}")
    checked: dict[str, dict[str, tuple[str, ...]]] = {}
    for peer, types in rules.items():
        if not isinstance(peer, str) or not AGENCY_CODE_PATTERN.fullmatch(peer):
            raise NodeError(f"{peer!r} is not an agency code (an upper-case letter, then A-Z, 0-9, _ or -)")
        if not isinstance(types, Mapping):
            raise NodeError(f"{peer}: expected an object {{record type: [field pointers]}}")
        checked[peer] = {}
        for kind, prefixes in types.items():
            if not isinstance(kind, str) or not RECORD_TYPE_PATTERN.fullmatch(kind):
                raise NodeError(
                    f"{peer}: {kind!r} is not a record type (a lower-case letter, then a-z, 0-9, _ or -)"
                )
            if isinstance(prefixes, str | bytes) or not isinstance(prefixes, Iterable):
                raise NodeError(f"{peer}.{kind}: expected a list of field pointers")
            checked[peer][kind] = tuple(_check_pointer(p, f"{peer}.{kind}") for p in prefixes)
    return checked


def _under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or under it, by whole segments, "*" matching any one segment."""
    if "*" not in prefix:
        return path == prefix or path.startswith(prefix + "/")
    wanted = prefix[1:].split("/")
    segments = path[1:].split("/")
    return len(segments) >= len(wanted) and all(w in ("*", s) for w, s in zip(wanted, segments, strict=False))


def _check_pointer(pointer: Any, where: str) -> str:
    if not isinstance(pointer, str):
        raise NodeError(f"{where}: {pointer!r} is not a field pointer (text)")
    if pointer == "":
        return pointer
    problem = None
    if not pointer.startswith("/"):
        problem = "must start with '/' (or be \"\" for every field)"
    elif len(pointer.encode()) > MAX_PATH_BYTES:
        problem = f"is longer than {MAX_PATH_BYTES} bytes"
    elif "" in pointer[1:].split("/"):
        problem = "has an empty segment (no '//' and no trailing '/')"
    elif re.search(r"~(?![01])", pointer):
        problem = "has a '~' that is not ~0 or ~1"
    if problem is not None:
        raise NodeError(f"{where}: field pointer {pointer!r} {problem}")
    return pointer


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [k for k, _ in pairs]
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice in one object")
    return result
