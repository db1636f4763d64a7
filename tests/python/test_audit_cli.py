"""`sijill export` and `sijill audit` on a real agency history: a `sijill serve` node on the
session anvil creates, anchors, amends and revokes records; its log is exported through the API
(auditor token) and offline from its store; the clean exports audit with no findings, and each
tampered copy is caught by its own named finding. Plus the audit logic alone over a fake chain
(the violations the contracts themselves prevent), and refusals: exit 2, one line, no traceback."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from api_helpers import KEK, deploy_fresh, init_node, start_server, stop_server, wait_anchored
from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from ledger.codes import agency_code
from ledger.merkle import build_tree
from ledger.receipts import Receipt, ReceiptDomain, address_of, sign_receipt
from ledger.records.examples import title_example
from node.auditor.audit import audit_export
from node.auditor.export import ExportBatch, ExportReceipt, ExportWriter, Manifest
from node.auditor.exportread import read_manifest
from node.auditor.report import ChainBatch, ChainLog, SignerInfo
from node.auditor.rpcchain import EVENTS, VIEWS
from node.chain.client import RevertDecoder
from node.chain.deploy import bound_contracts
from node.chain.toolchain import CompiledContract
from node.chain.txmanager import TxManager

pytestmark = pytest.mark.chain

SIJILL = str(Path(sys.executable).with_name("sijill"))
runner = CliRunner()


@dataclass
class History:
    root: Path
    rpc: str
    deployment: Path
    keys: dict[str, bytes]
    api_export: Path
    store_export: Path
    cso_export: Path
    w3: Web3
    compiled: dict[str, CompiledContract]


def _sijill(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    return subprocess.run(
        [SIJILL, *args],
        env={**env, "SIJILL_KEK": KEK},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"SIJILL_KEK": KEK})


def _leaf_state(ledger: Any, agency: str, leaf: str) -> int:
    return int(ledger.functions.leafStatus(agency_code(agency), bytes.fromhex(leaf[2:])).call()[0])


@pytest.fixture(scope="module")
def history(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path_factory: pytest.TempPathFactory
) -> History:
    """REPD's node makes a history (three batches, an amendment, a revocation) and is exported
    both ways; CSO's node, which anchored nothing, is exported offline."""
    root = tmp_path_factory.mktemp("audit")
    keys, deployment = deploy_fresh(w3, compiled, root / "deployment.json")
    ledger = bound_contracts(w3, json.loads(deployment.read_text()), compiled)["RecordLedger"]
    data_dir, tokens = init_node(root, "REPD", keys["REPD"])
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment)
    try:
        with server.client("officer") as officer, server.client("supervisor") as supervisor:
            created = []
            for round_size in (2, 3):
                made = [
                    officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
                    for _ in range(round_size)
                ]
                assert all(r.status_code == 201 for r in made), [r.text for r in made]
                for response in made:
                    assert wait_anchored(officer, response.json()["links"]["bundle"]).status_code == 200
                created += [r.json() for r in made]
            amended, revoked = created[0], created[1]
            change = {"amends": 1, "reason": 1, "record": title_example()}
            second = supervisor.post(amended["links"]["self"] + "/versions", json=change)
            assert second.status_code == 201, second.text
            done = supervisor.post(revoked["links"]["self"] + "/revocation", json={"version": 1, "reason": 3})
            assert done.status_code == 200, done.text
            assert wait_anchored(officer, amended["links"]["bundle"]).status_code == 200
            deadline = time.monotonic() + 60
            while (
                _leaf_state(ledger, "REPD", amended["leaf"]) != 1
                or _leaf_state(ledger, "REPD", revoked["leaf"]) != 2
            ):
                assert time.monotonic() < deadline, "the supersession and revocation never reached the chain"
                time.sleep(0.3)
        # The real command, as a process: the API export with an auditor's token.
        api_export = root / "api-export"
        done = _sijill(
            "export",
            "--api",
            server.url,
            "--token",
            tokens["auditor"],
            "--deployment",
            str(deployment),
            "--out",
            str(api_export),
        )
        assert done.returncode == 0, done.stderr
    finally:
        assert stop_server(server) == 0
    store_export = root / "store-export"
    done = _cli(
        "export",
        "--data-dir",
        str(data_dir),
        "--agency",
        "REPD",
        "--deployment",
        str(deployment),
        "--out",
        str(store_export),
    )
    assert done.exit_code == 0, done.output
    cso_dir, _ = init_node(root, "CSO", keys["CSO"])
    cso_export = root / "cso-export"
    done = _cli(
        "export",
        "--data-dir",
        str(cso_dir),
        "--agency",
        "CSO",
        "--deployment",
        str(deployment),
        "--out",
        str(cso_export),
    )
    assert done.exit_code == 0, done.output
    return History(
        root, devchain.rpc_url, deployment, keys, api_export, store_export, cso_export, w3, compiled
    )


def _audit(history: History, export: Path, *extra: str, agency: str = "REPD") -> tuple[int, dict[str, Any]]:
    done = _cli(
        "audit",
        "--agency",
        agency,
        "--rpc",
        history.rpc,
        "--export",
        str(export),
        "--deployment",
        str(history.deployment),
        "--json",
        *extra,
    )
    assert done.exit_code in (0, 1), (done.exit_code, done.output)
    report: dict[str, Any] = json.loads(done.stdout)
    return done.exit_code, report


def _ids(report: dict[str, Any]) -> set[str]:
    return {f["id"] for f in report["findings"]}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _tampered(history: History, name: str, change: Callable[[Path], None]) -> Path:
    copy = history.root / f"tampered-{name}"
    shutil.copytree(history.api_export, copy)
    change(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["batches"] = len(_lines(copy / "batches.ndjson"))
    manifest["receipts"] = len(_lines(copy / "receipts.ndjson"))
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _domain(history: History) -> ReceiptDomain:
    deployment = json.loads(history.deployment.read_text())
    return ReceiptDomain(deployment["chainId"], deployment["contracts"]["RecordLedger"]["address"])


def _signed(history: History, line: dict[str, Any], key: bytes, **changes: Any) -> dict[str, Any]:
    """A receipt line with `changes`, signed anew with `key` (and naming its address)."""
    line = {**line, **changes}
    receipt = Receipt(
        "REPD",
        line["recordType"],
        line["recordId"],
        line["version"],
        bytes.fromhex(line["leaf"][2:]),
        line["intakeTime"],
        line["anchorBy"],
    )
    line["signature"] = "0x" + sign_receipt(receipt, _domain(history), key).hex()
    line["signer"] = address_of(key)
    return line


# --------------------------------------------------------------------------- clean exports


def test_both_exports_hold_the_whole_history(history: History) -> None:
    for export in (history.api_export, history.store_export):
        manifest = read_manifest(export)
        assert manifest.agency == "REPD" and manifest.batches >= 3 and manifest.receipts == 6
        batches = _lines(export / "batches.ndjson")
        assert [b["seq"] for b in batches] == list(range(1, len(batches) + 1))
        assert batches[0]["prev"] == "0x" + "00" * 32
        for before, batch in pairwise(batches):
            assert batch["prev"] == before["root"]
        for batch in batches:
            leaves = [bytes.fromhex(leaf[2:]) for leaf in batch["leaves"]]
            assert "0x" + build_tree(leaves).root.hex() == batch["root"] and batch["count"] == len(leaves)
            assert batch["leaves"] == sorted(batch["leaves"]) and "pending" not in batch
    assert _lines(history.api_export / "batches.ndjson") == _lines(history.store_export / "batches.ndjson")
    by_leaf = {r["leaf"]: r for r in _lines(history.store_export / "receipts.ndjson")}
    assert {r["leaf"]: r for r in _lines(history.api_export / "receipts.ndjson")} == by_leaf


def test_clean_exports_audit_with_no_findings(history: History) -> None:
    for export in (history.api_export, history.store_export):
        code, report = _audit(history, export)
        assert code == 0 and report["verdict"] == "clean" and report["findings"] == [], report["findings"]
        summary = report["summary"]
        assert summary["chainBatches"] == summary["exportedBatches"] == report["head"]["seq"] >= 3
        assert summary["receipts"] == summary["receiptsAnchored"] == 6
        assert summary["revocations"] == 1 and summary["supersessions"] == 1
        checks = {c["id"]: c for c in report["checks"]}
        assert all(c["failed"] == 0 for c in checks.values())
        assert checks["receipt-signature-invalid"]["checked"] == 6
        assert checks["signer-not-valid"]["checked"] == summary["chainBatches"]
        assert checks["revocation-unknown-leaf"]["checked"] == 1
        assert all(b["state"] == "anchored" and b["signer"] for b in report["batches"])


def test_audit_as_a_process_writes_text_and_a_self_contained_html_report(history: History) -> None:
    html = history.root / "clean.html"
    done = _sijill(
        "audit",
        "--agency",
        "REPD",
        "--rpc",
        history.rpc,
        "--export",
        str(history.store_export),
        "--html",
        str(html),
    )
    assert done.returncode == 0, done.stderr
    assert "No findings" in done.stdout and "receipt-late" in done.stdout  # the checks table
    page = html.read_text()
    assert "<svg" in page and 'dir="rtl"' in page and "No findings" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


# -------------------------------------------------------------------------- tampered copies


def test_a_dropped_leaf_is_a_root_mismatch(history: History) -> None:
    def drop(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        batch = next(b for b in batches if b["count"] >= 2)
        batch["leaves"].pop()
        batch["count"] -= 1
        _write_lines(copy / "batches.ndjson", batches)

    code, report = _audit(history, _tampered(history, "dropped-leaf", drop))
    assert code == 1 and {"root-mismatch", "count-mismatch"} <= _ids(report)


def test_a_changed_leaf_is_a_root_mismatch(history: History) -> None:
    def change(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        batches[1]["leaves"][0] = "0x" + secrets.token_hex(32)
        _write_lines(copy / "batches.ndjson", batches)

    code, report = _audit(history, _tampered(history, "changed-leaf", change))
    assert code == 1 and "root-mismatch" in _ids(report)
    assert "receipt-missing" in _ids(report)  # the made-up leaf has no receipt


def test_a_reordered_log_is_out_of_order(history: History) -> None:
    def swap(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        batches[0], batches[1] = batches[1], batches[0]
        _write_lines(copy / "batches.ndjson", batches)

    code, report = _audit(history, _tampered(history, "reordered", swap))
    assert code == 1 and _ids(report) == {"batch-out-of-order"}


def test_a_dropped_batch_is_missing(history: History) -> None:
    def drop(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        del batches[1]
        _write_lines(copy / "batches.ndjson", batches)

    code, report = _audit(history, _tampered(history, "dropped-batch", drop))
    assert code == 1 and "batch-missing" in _ids(report)
    missing = [b for b in report["batches"] if b["state"] == "missing"]
    assert len(missing) == 1 and missing[0]["seq"] == 2 and missing[0]["findings"] == ["batch-missing"]


def test_a_batch_the_chain_never_saw_is_not_on_chain(history: History) -> None:
    def invent(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        leaves = sorted("0x" + secrets.token_hex(32) for _ in range(3))
        tree = build_tree([bytes.fromhex(leaf[2:]) for leaf in leaves])
        batches.append(
            {
                "seq": batches[-1]["seq"] + 1,
                "root": "0x" + tree.root.hex(),
                "recordType": "title",
                "count": 3,
                "prev": batches[-1]["root"],
                "leaves": leaves,
            }
        )
        _write_lines(copy / "batches.ndjson", batches)

    code, report = _audit(history, _tampered(history, "invented-batch", invent))
    assert code == 1 and "batch-not-on-chain" in _ids(report)


def test_a_forged_signature_is_invalid(history: History) -> None:
    def forge(copy: Path) -> None:
        receipts = _lines(copy / "receipts.ndjson")
        signature = bytearray.fromhex(receipts[0]["signature"][2:])
        signature[10] ^= 0x01
        receipts[0]["signature"] = "0x" + signature.hex()
        _write_lines(copy / "receipts.ndjson", receipts)

    code, report = _audit(history, _tampered(history, "forged-byte", forge))
    assert code == 1 and _ids(report) == {"receipt-signature-invalid"}


def test_a_receipt_signed_by_another_key_is_not_the_agencys(history: History) -> None:
    def resign(copy: Path) -> None:
        receipts = _lines(copy / "receipts.ndjson")
        receipts[2] = _signed(history, receipts[2], secrets.token_bytes(32))
        receipts[3] = _signed(history, receipts[3], history.keys["CSO"])  # another agency's signer
        _write_lines(copy / "receipts.ndjson", receipts)

    code, report = _audit(history, _tampered(history, "other-key", resign))
    assert code == 1 and _ids(report) == {"receipt-signer-not-agency"}
    assert len(report["findings"]) == 2 and "a signer of CSO" in report["findings"][1]["message"]


def test_a_receipt_whose_deadline_passed_before_anchoring_is_late(history: History) -> None:
    times = {b["root"]: b["timestamp"] for b in _audit(history, history.api_export)[1]["batches"]}
    batch = _lines(history.api_export / "batches.ndjson")[0]

    def move(copy: Path) -> None:
        receipts = _lines(copy / "receipts.ndjson")
        index = next(i for i, r in enumerate(receipts) if r["leaf"] in batch["leaves"])
        deadline = min(receipts[index]["intakeTime"], times[batch["root"]] - 1)
        receipts[index] = _signed(
            history, receipts[index], history.keys["REPD"], intakeTime=deadline, anchorBy=deadline
        )
        _write_lines(copy / "receipts.ndjson", receipts)

    code, report = _audit(history, _tampered(history, "late", move))
    assert code == 1 and _ids(report) == {"receipt-late"}
    (finding,) = report["findings"]
    assert finding["blockTime"] > finding["anchorBy"] and finding["seq"] == 1 and finding["block"]


def test_a_receipt_never_anchored_after_its_deadline(history: History) -> None:
    deployment = json.loads(history.deployment.read_text())
    registered = history.w3.eth.get_block(deployment["contracts"]["AgencyRegistry"]["block"])["timestamp"]

    def promise(copy: Path) -> None:
        receipts = _lines(copy / "receipts.ndjson")
        receipts.append(
            _signed(
                history,
                receipts[0],
                history.keys["REPD"],
                leaf="0x" + secrets.token_hex(32),
                recordId="01NEVERANCHORED",
                intakeTime=registered + 1,
                anchorBy=registered + 1,
            )
        )
        _write_lines(copy / "receipts.ndjson", receipts)

    code, report = _audit(history, _tampered(history, "unanchored", promise))
    assert code == 1 and _ids(report) == {"receipt-not-anchored"}


def test_manifest_counts_that_disagree_with_the_files(history: History) -> None:
    copy = history.root / "short-manifest"
    shutil.copytree(history.api_export, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["receipts"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code, report = _audit(history, copy)
    assert code == 1 and _ids(report) == {"export-count-mismatch"}


def test_revocations_and_supersessions_of_leaves_never_anchored(history: History) -> None:
    """An agency can mark leaves it never anchored (the contract cannot know): the audit can."""
    decoder = RevertDecoder({name: c.abi for name, c in history.compiled.items()})
    ledger = bound_contracts(history.w3, json.loads(history.deployment.read_text()), history.compiled)[
        "RecordLedger"
    ]
    cso = TxManager(history.w3, Account.from_key(history.keys["CSO"]), decoder)
    phantom, old, new = (secrets.token_bytes(32) for _ in range(3))
    cso.transact(ledger.functions.revoke([phantom], 3))
    cso.transact(ledger.functions.supersede([old], [new], 1))
    code, report = _audit(history, history.cso_export, agency="CSO")
    assert code == 1
    assert _ids(report) == {
        "revocation-unknown-leaf",
        "supersession-unknown-leaf",
        "supersession-unknown-successor",
    }
    revoked = next(f for f in report["findings"] if f["id"] == "revocation-unknown-leaf")
    assert revoked["leaf"] == "0x" + phantom.hex() and revoked["reason"] == 3


def test_html_report_lists_the_findings(history: History) -> None:
    def drop(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        del batches[-1]
        _write_lines(copy / "batches.ndjson", batches)

    html = history.root / "findings.html"
    copy = _tampered(history, "html", drop)
    done = _cli("audit", "--agency", "REPD", "--rpc", history.rpc, "--export", str(copy), "--html", str(html))
    assert done.exit_code == 1, done.output
    assert "batch-missing" in done.stdout and "findings." in done.stdout
    page = html.read_text()
    assert "<svg" in page and "batch-missing" in page and "is on-chain but not in the export" in page
    assert 'dir="rtl"' in page and "مخالفة" in page and "<script" not in page


def test_markup_in_an_export_is_quoted_not_run_in_the_html_report(history: History) -> None:
    """A hostile export may put markup where the report quotes it (a batch's record type): the
    finding shows it as text, and the page carries no element or handler of it."""
    markup = '<img src=x onerror="alert(1)">'

    def retype(copy: Path) -> None:
        batches = _lines(copy / "batches.ndjson")
        batches[-1]["recordType"] = markup
        _write_lines(copy / "batches.ndjson", batches)

    html = history.root / "hostile.html"
    copy = _tampered(history, "hostile", retype)
    done = _cli("audit", "--agency", "REPD", "--rpc", history.rpc, "--export", str(copy), "--html", str(html))
    assert done.exit_code == 1, done.output
    page = html.read_text()
    assert "record-type-mismatch" in page and "&lt;img src=x onerror=" in page
    assert "<img" not in page and 'onerror="' not in page


# --------------------------------------------------------------------------------- refusals


def _refused(done: Any, message: str) -> None:
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_unusable_exports_and_chains_are_refused(history: History, tmp_path: Path) -> None:
    def audit(export: Path, agency: str = "REPD", rpc: str | None = None) -> Any:
        return _cli("audit", "--agency", agency, "--rpc", rpc or history.rpc, "--export", str(export))

    _refused(audit(tmp_path / "nowhere"), "there is no export directory")
    (tmp_path / "empty").mkdir()
    _refused(audit(tmp_path / "empty"), "has no manifest.json")
    wrong = tmp_path / "wrong-version"
    shutil.copytree(history.api_export, wrong)
    manifest = json.loads((wrong / "manifest.json").read_text())
    (wrong / "manifest.json").write_text(json.dumps({**manifest, "format": "sijill-export/2"}))
    _refused(audit(wrong), "is not a sijill-export/1 export")
    (wrong / "manifest.json").write_text("{not json")
    _refused(audit(wrong), "cannot read")
    _refused(audit(history.api_export, agency="CSO"), "is REPD's log, not CSO's")
    garbled = tmp_path / "garbled"
    shutil.copytree(history.api_export, garbled)
    with (garbled / "batches.ndjson").open("a") as lines:
        lines.write('{"seq": 99, "root": "0x12"}\n')
    _refused(audit(garbled), "batches.ndjson line")
    _refused(
        audit(history.api_export, rpc="http://127.0.0.1:1"), "no JSON-RPC node answers at http://127.0.0.1:1"
    )
    done = _cli("export", "--out", str(tmp_path / "x"), "--deployment", str(history.deployment))
    _refused(done, "give either --api (with --token) or --data-dir")
    done = _cli(
        "export",
        "--api",
        "http://127.0.0.1:1",
        "--token",
        "t" * 40,
        "--deployment",
        str(history.deployment),
        "--out",
        str(tmp_path / "y"),
    )
    _refused(done, "cannot reach the API")
    _refused(
        _cli(
            "export",
            "--data-dir",
            str(history.root / "repd"),
            "--agency",
            "REPD",
            "--deployment",
            str(history.deployment),
            "--out",
            str(history.api_export),
        ),
        "is not an empty directory",
    )


def test_a_refused_rpc_as_a_process(history: History) -> None:
    done = _sijill(
        "audit", "--agency", "REPD", "--rpc", "http://127.0.0.1:1", "--export", str(history.api_export)
    )
    assert done.returncode == 2 and "no JSON-RPC node answers" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# ------------------------------------------------------------ the logic over a fake chain


def test_the_audited_events_and_views_are_the_contracts(compiled: dict[str, CompiledContract]) -> None:
    def signatures(contract: str, kind: str) -> set[str]:
        return {
            f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
            for item in compiled[contract].abi
            if item["type"] == kind
        }

    events = signatures("RecordLedger", "event") | signatures("AgencyRegistry", "event")
    assert set(EVENTS.values()) <= events
    functions = signatures("RecordLedger", "function") | signatures("AgencyRegistry", "function")
    assert set(VIEWS) <= functions


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + param["type"][5:]
    return str(param["type"])


class FakeChain:
    """`ChainAnswers` from dictionaries."""

    def __init__(self, log: ChainLog, signer: str) -> None:
        self.log = log
        self.valid: dict[tuple[str, int], bool] = {}
        self.allowed: dict[str, bool] = {"title": True}
        self.infos = {signer: SignerInfo(agency_code("REPD"), 1, 2**64 - 1)}
        self.hidden: dict[bytes, ChainBatch] = {}

    def signers_valid_at(self, questions: Any) -> dict[tuple[str, int], bool]:
        return {q: self.valid.get(q, True) for q in questions}

    def signer_infos(self, accounts: Any) -> dict[str, SignerInfo]:
        return {a: self.infos.get(a, SignerInfo(b"\0" * 32, 0, 0)) for a in accounts}

    def record_types_allowed(self, types: Any) -> dict[str, bool]:
        return {t: self.allowed.get(t, False) for t in types}

    def block_times(self, blocks: Any) -> dict[int, int]:
        return {b: 1_000 + b for b in blocks}

    def batches(self, roots: Any) -> dict[bytes, ChainBatch | None]:
        return {r: self.hidden.get(r) for r in roots}


@dataclass
class Fixture:
    directory: Path
    manifest: Manifest
    log: ChainLog
    chain: FakeChain


def _fake_history(tmp_path: Path, batches: int = 3, *, pending: int = 0) -> Fixture:
    """An export of `batches` anchored batches (and `pending` ones) with receipts, and the chain
    that agrees with it."""
    key = secrets.token_bytes(32)
    signer = address_of(key)
    manifest = Manifest("REPD", 31337, "0x" + "ab" * 20, "0x" + "cd" * 20, 2_000, 0, 0, 1, "test")
    domain = ReceiptDomain(manifest.chain_id, manifest.ledger)
    log = ChainLog("REPD", 1, 100, 3_000, batches, b"")
    writer = ExportWriter(tmp_path / "export")
    prev = b"\0" * 32
    for seq in range(1, batches + pending + 1):
        leaves = sorted(secrets.token_bytes(32) for _ in range(3))
        root = build_tree(leaves).root
        writer.batch(ExportBatch(seq, root, "title", 3, prev, leaves, pending=seq > batches))
        if seq <= batches:
            log.batches[root] = ChainBatch(root, seq, "title", 3, prev, signer, 10 * seq, 0, 1_000 + 10 * seq)
            log.head_root = root
        for n, leaf in enumerate(leaves):
            receipt = Receipt("REPD", "title", f"R{seq}X{n}", 1, leaf, 1_005, 4_000)
            signature = sign_receipt(receipt, domain, key)
            writer.receipt(
                ExportReceipt(leaf, "title", f"R{seq}X{n}", 1, 1_005, 4_000, signer, "0x" + signature.hex())
            )
        prev = root
    manifest = writer.finish(manifest)
    return Fixture(tmp_path / "export", manifest, log, FakeChain(log, signer))


def _run(fixture: Fixture) -> set[str]:
    report = audit_export(fixture.directory, fixture.manifest, fixture.log, fixture.chain)
    json.dumps(report.to_json())  # the report is JSON
    return {f.check for f in report.findings}


def test_fake_history_is_clean_and_pending_batches_are_no_finding(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path, pending=1)
    report = audit_export(fixture.directory, fixture.manifest, fixture.log, fixture.chain)
    assert report.findings == []
    assert report.stats["pendingBatches"] == 1 and report.stats["receiptsNotYetDue"] == 3


def test_a_gap_in_the_chains_own_sequence(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    second = next(b for b in fixture.log.batches.values() if b.seq == 2)
    del fixture.log.batches[second.root]
    fixture.chain.hidden[second.root] = ChainBatch(second.root, 2, "title", 3, None, None, 20, -1, 1_020)
    assert _run(fixture) == {"sequence-gap"}  # exported batch 2 is found through batch() itself


def test_an_anchor_by_a_signer_not_valid_then(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    third = next(b for b in fixture.log.batches.values() if b.seq == 3)
    assert third.signer is not None
    fixture.chain.valid[(third.signer, third.block)] = False
    assert _run(fixture) == {"signer-not-valid"}


def test_a_record_type_not_allowed_when_anchored(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    fixture.chain.allowed["title"] = False
    assert _run(fixture) == {"record-type-not-allowed"}
    # Disallowed only after batch 2: batches 1 and 2 were anchored while it was allowed.
    fixture.log.type_events["title"] = [(25, 0, False)]
    report = audit_export(fixture.directory, fixture.manifest, fixture.log, fixture.chain)
    assert [(f.check, f.details["seq"]) for f in report.findings] == [("record-type-not-allowed", 3)]


def test_a_broken_link_on_chain_and_a_leaf_in_two_batches(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    third = next(b for b in fixture.log.batches.values() if b.seq == 3)
    third.prev = b"\x01" * 32
    assert _run(fixture) == {"prev-mismatch"}

    doubled = _fake_history(tmp_path / "doubled")
    lines = _lines(doubled.directory / "batches.ndjson")
    lines[2]["leaves"][0] = lines[0]["leaves"][0]
    lines[2]["leaves"].sort()
    _write_lines(doubled.directory / "batches.ndjson", lines)
    assert "leaf-claimed-twice" in _run(doubled)


def test_receipt_signers_outside_their_validity_range(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    (signer,) = fixture.chain.infos
    fixture.chain.infos[signer] = SignerInfo(agency_code("REPD"), 1, 5)  # removed in block 5 (time 1005)
    assert _run(fixture) == set()  # intake at 1005: still valid, the range is inclusive
    fixture.chain.infos[signer] = SignerInfo(agency_code("REPD"), 1, 4)
    report = audit_export(fixture.directory, fixture.manifest, fixture.log, fixture.chain)
    assert {f.check for f in report.findings} == {"receipt-signer-not-agency"} and len(report.findings) == 9
    assert "validity had ended" in report.findings[0].message
    fixture.chain.infos[signer] = SignerInfo(agency_code("REPD"), 6, 2**64 - 1)
    report = audit_export(fixture.directory, fixture.manifest, fixture.log, fixture.chain)
    assert "validity began later" in report.findings[0].message and len(report.findings) == 9


def test_a_duplicated_batch_line_and_a_batch_of_another_type(tmp_path: Path) -> None:
    fixture = _fake_history(tmp_path)
    lines = _lines(fixture.directory / "batches.ndjson")
    _write_lines(fixture.directory / "batches.ndjson", [*lines, lines[1]])
    assert _run(fixture) == {"batch-duplicate", "export-count-mismatch"}
    _write_lines(fixture.directory / "batches.ndjson", lines)
    next(iter(fixture.log.batches.values())).record_type = "marriage"
    fixture.chain.allowed["marriage"] = True
    assert _run(fixture) == {"record-type-mismatch"}
