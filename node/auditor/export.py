"""Export of an agency's log for auditors: `sijill-export/1`, a directory of three files.

An auditor checks an agency without trusting its server: the export says what the agency
claims (its batches with every leaf, every receipt it signed) and `sijill audit` holds that
claim against the chain. The format (docs/audit.md):

- `manifest.json`: `{format, agency, chainId, ledger, registry, ledgerBlock, source,
  exportedAt, batches, receipts}`, written last, so a directory without it is an unfinished
  export;
- `batches.ndjson`: one batch a line in log order, `{seq, root, recordType, count, prev,
  leaves}` (the tree's leaf level, sorted as in the tree), plus `"pending": true` for a batch
  the node had built or sent but not yet seen anchored;
- `receipts.ndjson`: one receipt a line, `{leaf, recordType, recordId, version, intakeTime,
  anchorBy, signer, signature}`.

Hashes, addresses and signatures are `0x` + lower-case hex. Both files are written and read a
line at a time: memory holds one batch, whatever the size of the log. This module owns the
format's types and writes exports; `node.auditor.exportread` reads them back, strictly.

Two sources: a node's store (`export_from_store`, the node stopped) and an agency's API with an
auditor token (`export_from_api`). Both hold every receipt the node signed, also of leaves
still queued for a batch (`GET /v1/receipts`), in leaf order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from node.errors import NodeError

EXPORT_FORMAT = "sijill-export/1"
MANIFEST = "manifest.json"
BATCHES = "batches.ndjson"
RECEIPTS = "receipts.ndjson"

ZERO_ROOT = b"\0" * 32


class ExportError(NodeError):
    """An export that cannot be written or read (missing, wrong version, malformed line)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an export is of: one agency's log on one deployment."""

    agency: str
    chain_id: int
    ledger: str
    registry: str
    exported_at: int
    batches: int
    receipts: int
    ledger_block: int | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "agency": self.agency,
            "chainId": self.chain_id,
            "ledger": self.ledger,
            "registry": self.registry,
            "ledgerBlock": self.ledger_block,
            "source": self.source,
            "exportedAt": self.exported_at,
            "batches": self.batches,
            "receipts": self.receipts,
        }
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True, slots=True)
class ExportBatch:
    """One batch of the agency's log as the agency exported it."""

    seq: int
    root: bytes
    record_type: str
    count: int
    prev: bytes
    leaves: list[bytes]
    pending: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "root": _hex(self.root),
            "recordType": self.record_type,
            "count": self.count,
            "prev": _hex(self.prev),
            "leaves": [_hex(leaf) for leaf in self.leaves],
        }
        if self.pending:
            data["pending"] = True
        return data


@dataclass(frozen=True, slots=True)
class ExportReceipt:
    """A receipt the agency signed. `signature` stays text: a malformed one is an audit finding,
    not a broken export."""

    leaf: bytes
    record_type: str
    record_id: str
    version: int
    intake_time: int
    anchor_by: int
    signer: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf": _hex(self.leaf),
            "recordType": self.record_type,
            "recordId": self.record_id,
            "version": self.version,
            "intakeTime": self.intake_time,
            "anchorBy": self.anchor_by,
            "signer": self.signer,
            "signature": self.signature,
        }


# ----------------------------------------------------------------------------------- writing


class ExportWriter:
    """Writes an export a line at a time; `finish()` writes the manifest (last)."""

    def __init__(self, out: Path) -> None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ExportError(f"{out} exists and is not an empty directory: choose a new --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
            self._batches = (out / BATCHES).open("w", encoding="utf-8")
            self._receipts = (out / RECEIPTS).open("w", encoding="utf-8")
        except OSError as exc:
            raise ExportError(f"cannot write the export to {out}: {exc.strerror}") from None
        self.out = out
        self.batch_count = 0
        self.receipt_count = 0
        self.leaf_count = 0

    def batch(self, batch: ExportBatch) -> None:
        _write_line(self._batches, batch.to_json())
        self.batch_count += 1
        self.leaf_count += len(batch.leaves)

    def receipt(self, receipt: ExportReceipt) -> None:
        _write_line(self._receipts, receipt.to_json())
        self.receipt_count += 1

    def finish(self, manifest: Manifest) -> Manifest:
        """Close the data files and write the manifest with the counts written."""
        self.close()
        final = Manifest(
            manifest.agency,
            manifest.chain_id,
            manifest.ledger,
            manifest.registry,
            manifest.exported_at,
            self.batch_count,
            self.receipt_count,
            manifest.ledger_block,
            manifest.source,
        )
        partial = self.out / (MANIFEST + ".part")
        partial.write_text(json.dumps(final.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(self.out / MANIFEST)
        return final

    def close(self) -> None:
        for handle in (self._batches, self._receipts):
            if not handle.closed:
                handle.close()


def _write_line(handle: TextIO, data: dict[str, Any]) -> None:
    handle.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    handle.write("\n")


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """The deployment an export is of (from a `sijill-deployment/1` file)."""

    chain_id: int
    ledger: str
    registry: str
    ledger_block: int | None

    @classmethod
    def from_file(cls, path: Path) -> DeploymentInfo:
        from node.chain.deploy import load_deployment

        try:
            data = load_deployment(path)
            contracts = data["contracts"]
            return cls(
                int(data["chainId"]),
                str(contracts["RecordLedger"]["address"]).lower(),
                str(contracts["AgencyRegistry"]["address"]).lower(),
                int(contracts["RecordLedger"]["block"]),
            )
        except NodeError as exc:
            raise ExportError(str(exc)) from None
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"{path} lacks the chain id or the contracts' addresses") from None


Progress = Callable[[int], None]


def export_from_store(
    store: Any, agency: str, deployment: DeploymentInfo, out: Path, progress: Progress | None = None
) -> Manifest:
    """Export a stopped node's log from its store: every batch of the log (`log/`, `batch/`,
    `tree/`) and every receipt it signed (`leaf/`), also of leaves still queued."""
    from node.proofs import unpack_level

    writer = ExportWriter(out)
    try:
        for _, entry in store.iter_json(b"log/"):
            root = str(entry["root"])
            local = store.get_json(f"batch/{root}".encode())
            packed = store.get(f"tree/{root}".encode())
            if local is None or packed is None:
                raise ExportError(f"the store lacks the batch or tree of root 0x{root}: it is damaged")
            writer.batch(
                ExportBatch(
                    seq=int(local["seq"]),
                    root=bytes.fromhex(root),
                    record_type=str(local["type"]),
                    count=int(local["count"]),
                    prev=bytes.fromhex(local.get("prev") or "00" * 32),
                    leaves=unpack_level(packed, 0, int(local["count"])),
                    pending=local.get("status") != "anchored",
                )
            )
            if progress is not None:
                progress(1)
        for key, info in store.iter_json(b"leaf/"):
            if "signature" not in info:
                continue
            writer.receipt(_receipt_of(bytes.fromhex(key.decode()[len("leaf/") :]), info))
    except BaseException:
        writer.close()
        raise
    return writer.finish(_manifest(agency, deployment, "store"))


def export_from_api(
    client: Any, deployment: DeploymentInfo, out: Path, progress: Progress | None = None
) -> Manifest:
    """Export an agency's log through its API (`client`: an httpx client with an auditor's
    token): pages through `GET /v1/batches`, `GET /v1/batches/{root}` and `GET /v1/receipts`."""
    first = _get(client, "/v1/batches", {"after": 0, "limit": 1})
    agency = str(first["agency"])
    writer = ExportWriter(out)
    try:
        after: int | None = 0
        while after is not None:
            page = _get(client, "/v1/batches", {"after": after, "limit": 1000})
            for batch in page["batches"]:
                leaves: list[bytes] = []
                offset: int | None = 0
                while offset is not None:
                    part = _get(client, f"/v1/batches/{batch['root']}", {"offset": offset, "limit": 10_000})
                    leaves.extend(_unhex(leaf["leaf"]) for leaf in part["leaves"])
                    offset = part["next"]
                writer.batch(
                    ExportBatch(
                        seq=int(batch["seq"]),
                        root=_unhex(batch["root"]),
                        record_type=str(batch["recordType"]),
                        count=int(batch["count"]),
                        prev=_unhex(batch["prev"]) if batch.get("prev") else ZERO_ROOT,
                        leaves=leaves,
                        pending=batch.get("status") != "anchored",
                    )
                )
                if progress is not None:
                    progress(1)
            after = page["next"]
        cursor: str | None = ""
        while cursor is not None:
            params: dict[str, Any] = {"limit": 10_000, **({"after": cursor} if cursor else {})}
            receipts = _get(client, "/v1/receipts", params)
            for receipt in receipts["receipts"]:
                writer.receipt(_receipt_of(_unhex(receipt["leaf"]), _api_leaf(receipt)))
            cursor = receipts["next"]
    except BaseException:
        writer.close()
        raise
    return writer.finish(_manifest(agency, deployment, "api"))


def _manifest(agency: str, deployment: DeploymentInfo, source: str) -> Manifest:
    return Manifest(
        agency,
        deployment.chain_id,
        deployment.ledger,
        deployment.registry,
        int(time.time()),
        0,
        0,
        deployment.ledger_block,
        source,
    )


def _receipt_of(leaf: bytes, info: dict[str, Any]) -> ExportReceipt:
    """A receipt from the node's `leaf/<hex>` entry (or the API's leaf, mapped to it)."""
    return ExportReceipt(
        leaf=leaf,
        record_type=str(info["type"]),
        record_id=str(info["id"]),
        version=int(info["version"]),
        intake_time=int(info["intakeTime"]),
        anchor_by=int(info["anchorBy"]),
        signer=str(info["signer"]).lower(),
        signature="0x" + str(info["signature"]).removeprefix("0x"),
    )


def _api_leaf(leaf: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": leaf["recordType"],
        "id": leaf["recordId"],
        "version": leaf["version"],
        "intakeTime": leaf["intakeTime"],
        "anchorBy": leaf["anchorBy"],
        "signer": leaf["signer"],
        "signature": leaf["signature"],
    }


def _get(client: Any, path: str, params: dict[str, Any]) -> dict[str, Any]:
    import httpx

    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise ExportError(f"cannot reach the API at {client.base_url}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise ExportError(
            f"the API refused the token ({response.status_code}): "
            "an auditor's or a supervisor's token is needed"
        )
    if response.status_code != 200:
        raise ExportError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise ExportError(f"GET {path} did not answer JSON") from None
    return body


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))
