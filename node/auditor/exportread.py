"""Reading a `sijill-export/1` directory (`node.auditor.export` has the format), strictly.

The manifest is read whole (`read_manifest`); `batches.ndjson` and `receipts.ndjson` a line at a
time (`read_batches`, `read_receipts`), so memory holds one batch whatever the size of the log.
An unknown format version, a missing or mistyped field, an unknown field or a line that is not
one JSON object is an `ExportError` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node.auditor.export import (
    BATCHES,
    EXPORT_FORMAT,
    MANIFEST,
    RECEIPTS,
    ExportBatch,
    ExportError,
    ExportReceipt,
    Manifest,
)

MAX_LINE = 1 << 30
"""Longest line read (a batch of 10 million leaves is about 670 MB)."""


def read_manifest(directory: Path) -> Manifest:
    """The export's manifest, checked: format version, types of every field."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ExportError(f"there is no export directory {directory}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{directory} has no {MANIFEST}: not an export, or an unfinished one") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path} is not a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path} is not a {EXPORT_FORMAT} export (format is {data.get('format')!r})")
    fields = _Fields(data, str(path))
    manifest = Manifest(
        agency=fields.text("agency"),
        chain_id=fields.integer("chainId"),
        ledger=fields.address("ledger"),
        registry=fields.address("registry"),
        exported_at=fields.integer("exportedAt"),
        batches=fields.integer("batches"),
        receipts=fields.integer("receipts"),
        ledger_block=fields.integer("ledgerBlock") if "ledgerBlock" in data else None,
        source=fields.text("source") if "source" in data else None,
    )
    fields.no_others({"format"})
    return manifest


def read_batches(directory: Path) -> Iterator[ExportBatch]:
    """The exported batches, in file order, one at a time."""
    for where, data in _lines(directory / BATCHES):
        fields = _Fields(data, where)
        leaves = data.get("leaves")
        if not isinstance(leaves, list):
            raise ExportError(f"{where}: leaves must be a list of 0x-hex 32-byte hashes")
        batch = ExportBatch(
            seq=fields.integer("seq"),
            root=fields.hash32("root"),
            record_type=fields.text("recordType"),
            count=fields.integer("count"),
            prev=fields.hash32("prev"),
            leaves=[_hash32(leaf, f"{where}: leaf {i}") for i, leaf in enumerate(leaves)],
            pending=fields.flag("pending"),
        )
        fields.no_others({"leaves"})
        yield batch


def read_receipts(directory: Path) -> Iterator[ExportReceipt]:
    """The exported receipts, in file order, one at a time."""
    for where, data in _lines(directory / RECEIPTS):
        fields = _Fields(data, where)
        receipt = ExportReceipt(
            leaf=fields.hash32("leaf"),
            record_type=fields.text("recordType"),
            record_id=fields.text("recordId"),
            version=fields.integer("version"),
            intake_time=fields.integer("intakeTime"),
            anchor_by=fields.integer("anchorBy"),
            signer=fields.address("signer"),
            signature=fields.text("signature"),
        )
        fields.no_others(set())
        yield receipt


def _lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        number = 0
        try:
            for number, line in enumerate(iter(lambda: handle.readline(MAX_LINE), ""), 1):
                where = f"{path.name} line {number}"
                if not line.endswith("\n"):
                    if len(line) >= MAX_LINE:
                        raise ExportError(f"{where} is longer than {MAX_LINE} bytes")
                    if not line.strip():
                        continue
                try:
                    data = json.loads(line)
                except ValueError as exc:
                    raise ExportError(f"{where} is not JSON: {exc}") from None
                if not isinstance(data, dict):
                    raise ExportError(f"{where} is not a JSON object")
                yield where, data
        except UnicodeDecodeError:
            raise ExportError(f"{path.name} line {number + 1} is not UTF-8") from None


class _Fields:
    """Typed access to one JSON object of the export, naming where a field is wrong."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def _get(self, name: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            raise ExportError(f"{self.where}: {name} is missing")
        return self.data[name]

    def integer(self, name: str) -> int:
        value = self._get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
            raise ExportError(f"{self.where}: {name} must be an integer from 0 to 2^64-1")
        return value

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise ExportError(f"{self.where}: {name} must be a string")
        return value

    def flag(self, name: str) -> bool:
        if name not in self.data:
            return False
        value = self._get(name)
        if not isinstance(value, bool):
            raise ExportError(f"{self.where}: {name} must be true or false")
        return value

    def hash32(self, name: str) -> bytes:
        return _hash32(self._get(name), f"{self.where}: {name}")

    def address(self, name: str) -> str:
        value = self._get(name)
        if _from_hex(value, 20) is None:
            raise ExportError(f"{self.where}: {name} must be an address, 0x + 40 hex digits")
        return str(value).lower()

    def no_others(self, also: set[str]) -> None:
        unknown = set(self.data) - self.seen - also
        if unknown:
            raise ExportError(f"{self.where}: unknown field {sorted(unknown)[0]!r}")


def _hash32(value: Any, where: str) -> bytes:
    raw = _from_hex(value, 32)
    if raw is None:
        raise ExportError(f"{where} must be 0x + 64 hex digits")
    return raw


def _from_hex(value: Any, size: int) -> bytes | None:
    """`size` bytes from 0x-prefixed hex, or None (fromhex skips spaces: the length catches them)."""
    if not isinstance(value, str) or len(value) != 2 + 2 * size or not value.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return raw if len(raw) == size else None
