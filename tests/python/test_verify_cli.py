"""`sijill verify` on a real anvil: bundles anchored by REPD, verified through typer's runner and
as real processes (`python -m cli verify`), one, many, from stdin and from a URL; bad input
and an unusable chain each give one line and the documented exit status. Also `node.chain.rpcbatch`
against the chain: batched answers equal web3's, and one failed call spoils only itself."""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from chain_bundles import anchor_leaves, bundle_record, signed_bundle, tampered
from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from ledger.bundle import dump_bundle, with_anchor
from ledger.chainview import ChainUnavailable
from ledger.codes import agency_code, record_type
from ledger.fields import RecordKey, seal_record
from ledger.receipts import ReceiptDomain
from ledger.verify import verify
from node.chain.deploy import demo_network, deploy_network
from node.chain.devchain import free_port
from node.chain.rpcbatch import (
    AGENCY_INFO,
    BATCH,
    LEAF_STATUS,
    REGISTRY,
    SIGNER_VALID_AT,
    CallFailed,
    MissingDeployment,
    RpcBatch,
    ViewFunction,
    ask_chain,
    eth_calls,
    find_deployment,
)
from node.chain.toolchain import PROJECT_ROOT, CompiledContract
from node.chain.txmanager import TxManager
from node.chain.views import Web3ChainView

pytestmark = pytest.mark.chain

REVOKED = 7  # index of the bundle whose leaf REPD revokes
NO_CODE = "0x" + "11" * 20  # an address with no contract on the dev chain


@pytest.fixture(scope="module")
def made(
    w3: Web3,
    contracts: dict[str, Any],
    senders: dict[str, TxManager],
    accounts: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Eight anchored REPD bundles (the last revoked), a pending one, and files of each kind."""
    root = tmp_path_factory.mktemp("verify-cli")
    ledger = contracts["RecordLedger"]
    registry = contracts["AgencyRegistry"].address.lower()
    domain = ReceiptDomain(w3.eth.chain_id, ledger.address.lower())
    now = int(time.time())
    sealed = [seal_record(RecordKey("REPD", "title", f"CLI{i}", 1), bundle_record(i)) for i in range(9)]
    signed = [signed_bundle(s, domain, accounts[1].key, accounts[1].address, now, registry) for s in sealed]
    tree = anchor_leaves(senders["REPD"], ledger, [s.leaf for s in sealed[:8]])
    bundles = [with_anchor(b, tree.root, tree.proof(b.leaf)) for b in signed[:8]]
    senders["REPD"].transact(ledger.functions.revoke([bundles[REVOKED].leaf], 2))

    good = root / "good"
    (good / "nested").mkdir(parents=True)
    for i, b in enumerate(bundles[:4]):
        (good / ("nested" if i == 3 else ".") / f"b{i}.json").write_bytes(dump_bundle(b))
    (good / "notes.txt").write_text("not a bundle, not *.json: skipped")
    files = {
        "one": root / "one.json",
        "tampered": root / "tampered.json",
        "revoked": root / "revoked.json",
        "pending": root / "pending.json",
        "not-json": root / "not-json.json",
        "format-2": root / "format-2.json",
        "no-code": root / "no-code.json",
    }
    files["one"].write_bytes(dump_bundle(bundles[0]))
    files["tampered"].write_bytes(dump_bundle(tampered(bundles[5])))
    files["revoked"].write_bytes(dump_bundle(bundles[REVOKED]))
    files["pending"].write_bytes(dump_bundle(signed[8]))
    files["not-json"].write_text("this is not JSON\n")
    document = json.loads(dump_bundle(bundles[1]))
    files["format-2"].write_text(json.dumps({**document, "format": "sijill-bundle/2"}))

    def pointing_at(ledger_address: str, i: int, *, anchored: bool = True) -> bytes:
        """Bundle i as REPD's, its receipt and `ledger` naming another address (signed for it)."""
        elsewhere = ReceiptDomain(domain.chain_id, ledger_address.lower())
        b = signed_bundle(sealed[i], elsewhere, accounts[1].key, accounts[1].address, now, registry)
        return dump_bundle(with_anchor(b, tree.root, tree.proof(sealed[i].leaf)) if anchored else b)

    # No RecordLedger where the bundle points: no code, an account, a contract of another kind.
    files["no-code"].write_bytes(pointing_at(NO_CODE, 6))
    files["no-code-pending"] = root / "no-code-pending.json"
    files["no-code-pending"].write_bytes(pointing_at(NO_CODE, 8, anchored=False))
    files["account"] = root / "account.json"
    files["account"].write_bytes(pointing_at(accounts[7].address, 6))
    files["not-a-ledger"] = root / "not-a-ledger.json"
    files["not-a-ledger"].write_bytes(pointing_at(registry, 6))
    return {"bundles": bundles, "pending": signed[8], "good": good, "files": files, "root": root}


@pytest.fixture(scope="module")
def deployment_file(deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pinned") / "deployment.json"
    path.write_text(json.dumps(deployment))
    return path


@pytest.fixture(scope="module")
def other_deployment(
    w3: Web3,
    accounts: list[LocalAccount],
    compiled: dict[str, CompiledContract],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A second, valid deployment on the same chain: other contracts."""
    out = tmp_path_factory.mktemp("other") / "deployment.json"
    spec = demo_network([a.address for a in accounts[1:4]])
    deploy_network(w3, accounts[0], spec, out, compiled=compiled, force=True)
    return out


def cli(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, ["verify", *args], input=stdin)


def sijill(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "verify", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=240,
        check=False,
    )


def one_error_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)


# ------------------------------------------------------------------------------------ one bundle


def test_one_valid_bundle_prints_the_checks(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["files"]["one"]), "--rpc", devchain.rpc_url)
    assert result.exit_code == 0, result.output
    for name in ("integrity", "inclusion", "anchored", "authority", "status", "receipt"):
        assert name in result.stdout
    assert "Verdict: authentic-current" in result.stdout
    assert "agency REPD, type title, id CLI0, version 1" in result.stdout
    assert "Current: neither superseded nor revoked" in result.stdout
    assert result.stderr == ""


def test_one_valid_bundle_in_arabic(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["files"]["one"]), "--rpc", devchain.rpc_url, "--lang", "ar")
    assert result.exit_code == 0, result.output
    assert "الفحص" in result.stdout and "السبب" in result.stdout  # headings
    assert "ساري: لم يُعدَّل ولم يُلغَ" in result.stdout  # the status check's Arabic reason
    assert "أصلي وساري (authentic-current)" in result.stdout
    assert "Current: neither superseded nor revoked" not in result.stdout


def test_a_tampered_bundle_fails_integrity(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["files"]["tampered"]), "--rpc", devchain.rpc_url, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "not-authentic"
    integrity = next(c for c in report["checks"] if c["name"] == "integrity")
    assert integrity["outcome"] == "fail" and "something was changed" in integrity["reason"]["en"]


def test_a_revoked_leaf(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["files"]["revoked"]), "--rpc", devchain.rpc_url)
    assert result.exit_code == 1, result.output
    assert "Verdict: revoked" in result.stdout and "court order" in result.stdout


def test_a_pending_bundle(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["files"]["pending"]), "--rpc", devchain.rpc_url, "--json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["verdict"] == "pending"


# ------------------------------------------------------------------------------- many bundles


def test_a_directory_of_bundles(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["good"]), "--rpc", devchain.rpc_url)
    assert result.exit_code == 0, result.output
    assert "4 bundles verified" in result.stdout
    assert "authentic-current" in result.stdout and "Not authentic-current" not in result.stdout


def test_many_with_findings_name_the_first_failing_check(devchain: Any, made: dict[str, Any]) -> None:
    files = made["files"]
    sources = [str(made["good"]), str(files["tampered"]), str(files["revoked"]), str(files["not-json"])]
    result = cli(*sources, "--rpc", devchain.rpc_url)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "7 bundles verified" in result.stdout
    tampered = next(line for line in lines if "tampered.json" in line)
    assert "not-authentic" in tampered and "integrity:" in tampered
    revoked = next(line for line in lines if "revoked.json" in line)
    assert "revoked" in revoked and "status: Revoked" in revoked
    unreadable = next(line for line in lines if "not-json.json" in line)
    assert "unreadable" in unreadable and "not a JSON document" in unreadable
    assert not any("b0.json" in line for line in lines)


def test_json_gives_one_report_per_bundle(devchain: Any, made: dict[str, Any]) -> None:
    result = cli(str(made["good"]), str(made["files"]["revoked"]), "--rpc", devchain.rpc_url, "--json")
    assert result.exit_code == 1, result.output
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["source"]).name for r in reports] == [
        "b0.json",
        "b1.json",
        "b2.json",
        "b3.json",
        "revoked.json",
    ]
    assert [r["verdict"] for r in reports] == ["authentic-current"] * 4 + ["revoked"]
    first = reports[0]
    assert set(first) == {"source", "verdict", "checks", "record"}
    assert first["record"] == {"agency": "REPD", "recordType": "title", "recordId": "CLI0", "version": 1}
    assert [c["name"] for c in first["checks"]] == [
        "integrity",
        "inclusion",
        "anchored",
        "authority",
        "status",
        "receipt",
    ]
    assert result.stderr == ""


def test_stdin_ndjson_and_one_document(devchain: Any, made: dict[str, Any]) -> None:
    texts = [dump_bundle(b).decode() for b in made["bundles"][:3]]
    result = cli("-", "--rpc", devchain.rpc_url, "--json", stdin="\n".join(texts) + "\n\n")
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in reports] == ["-:1", "-:2", "-:3"]
    assert {r["verdict"] for r in reports} == {"authentic-current"}
    # One bundle over several lines (pretty-printed) is one document.
    pretty = json.dumps(json.loads(texts[0]), indent=2, ensure_ascii=False)
    result = cli("-", "--rpc", devchain.rpc_url, stdin=pretty)
    assert result.exit_code == 0, result.output
    assert "Verdict: authentic-current" in result.stdout


class _BundleServer(http.server.BaseHTTPRequestHandler):
    bundle: ClassVar[bytes] = b""
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        if self.path == "/v1/records/title/CLI0/bundle":
            status, body = 200, self.bundle
        else:
            status, body = 404, json.dumps({"title": "Not Found", "detail": "no such record"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bundle_server(made: dict[str, Any]) -> Iterator[str]:
    _BundleServer.bundle = dump_bundle(made["bundles"][0])
    _BundleServer.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BundleServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_bundle_from_a_url(devchain: Any, bundle_server: str) -> None:
    url = f"{bundle_server}/v1/records/title/CLI0/bundle"
    result = cli(url, "--rpc", devchain.rpc_url, "--header", "Authorization: Bearer t0ken")
    assert result.exit_code == 0, result.output
    assert "Verdict: authentic-current" in result.stdout and url in result.stdout
    assert _BundleServer.seen == ["Bearer t0ken"]
    missing = f"{bundle_server}/v1/records/title/NOPE/bundle"
    result = cli(missing, "--rpc", devchain.rpc_url)
    assert result.exit_code == 1, result.output
    one_error_line(result.stderr, missing, "HTTP 404", "no such record")


# ----------------------------------------------------------------------------- --deployment


def test_deployment_pins_the_contracts(
    devchain: Any, made: dict[str, Any], deployment_file: Path, other_deployment: Path
) -> None:
    one = str(made["files"]["one"])
    assert cli(one, "--rpc", devchain.rpc_url, "--deployment", str(deployment_file)).exit_code == 0
    result = cli(one, "--rpc", devchain.rpc_url, "--deployment", str(other_deployment), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "not-authentic"
    anchored = next(c for c in report["checks"] if c["name"] == "anchored")
    pinned = json.loads(other_deployment.read_text())["contracts"]["RecordLedger"]["address"].lower()
    assert anchored["outcome"] == "fail" and pinned in anchored["reason"]["en"]


def test_a_deployment_file_for_another_chain_is_a_usage_error(
    devchain: Any, made: dict[str, Any], deployment_file: Path, tmp_path: Path
) -> None:
    data = json.loads(deployment_file.read_text())
    wrong = tmp_path / "wrong-chain.json"
    wrong.write_text(json.dumps({**data, "chainId": 1}))
    result = cli(str(made["files"]["one"]), "--rpc", devchain.rpc_url, "--deployment", str(wrong))
    assert result.exit_code == 2
    one_error_line(result.stderr, "chain 1", "chain 31337")


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "status", "needles"),
    [
        ("not-json", 1, ("not-json.json", "not a JSON document")),
        ("format-2", 1, ("format-2.json", "'sijill-bundle/2' is not a known bundle format")),
        ("missing", 1, ("missing.json", "no such file")),
        ("no-code", 2, ("no contract at ledger " + NO_CODE, "chain 31337")),
    ],
)
def test_bad_input_gives_one_line_and_the_status(
    devchain: Any, made: dict[str, Any], name: str, status: int, needles: tuple[str, ...]
) -> None:
    path = made["files"].get(name, made["root"] / "missing.json")
    result = cli(str(path), "--rpc", devchain.rpc_url)
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    one_error_line(result.stderr, *needles)


def test_a_refused_rpc_url(made: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli(str(made["files"]["one"]), "--rpc", url)
    assert result.exit_code == 2
    one_error_line(result.stderr, url, "connection refused")


def test_one_unreadable_file_among_many_does_not_stop_the_run(devchain: Any, made: dict[str, Any]) -> None:
    missing = str(made["root"] / "missing.json")
    result = cli(str(made["good"]), missing, "--rpc", devchain.rpc_url, "--json")
    assert result.exit_code == 1
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["verdict"] for r in reports] == ["authentic-current"] * 4 + ["unreadable"]
    assert reports[-1]["error"] == "no such file"
    one_error_line(result.stderr, missing, "no such file")


# -------------------------------------------------------------------------- real processes


def test_as_a_process_one_bundle_and_arabic(devchain: Any, made: dict[str, Any]) -> None:
    result = sijill(str(made["files"]["one"]), "--rpc", devchain.rpc_url)
    assert result.returncode == 0, result.stderr
    assert "Verdict: authentic-current" in result.stdout and "integrity" in result.stdout
    result = sijill(str(made["files"]["revoked"]), "--rpc", devchain.rpc_url, "--lang", "ar")
    assert result.returncode == 1, result.stderr
    assert "مُلغى (revoked)" in result.stdout and "بحكم قضائي" in result.stdout


def test_as_a_process_many_json_stdin_and_the_environment(devchain: Any, made: dict[str, Any]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "verify", str(made["good"]), "-", "--json"],
        input=dump_bundle(made["bundles"][REVOKED]).decode(),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**_environ(), "SIJILL_RPC_URL": devchain.rpc_url},
        timeout=240,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["verdict"] for r in reports] == ["authentic-current"] * 4 + ["revoked"]
    assert reports[-1]["source"] == "-" and result.stderr == ""


def test_as_a_process_bad_input(devchain: Any, made: dict[str, Any]) -> None:
    files = made["files"]
    cases = [
        ((str(files["not-json"]), "--rpc", devchain.rpc_url), 1, "not a JSON document"),
        ((str(files["format-2"]), "--rpc", devchain.rpc_url), 1, "not a known bundle format"),
        ((str(made["root"] / "missing.json"), "--rpc", devchain.rpc_url), 1, "no such file"),
        ((str(files["one"]), "--rpc", f"http://127.0.0.1:{free_port()}"), 2, "connection refused"),
        ((str(files["no-code"]), "--rpc", devchain.rpc_url), 2, "no contract at ledger"),
    ]
    for args, status, needle in cases:
        result = sijill(*args)
        assert result.returncode == status, (args, result.stderr)
        one_error_line(result.stderr, needle)
    result = sijill(str(files["one"]), "--rpc", devchain.rpc_url, "--lang", "fr")
    assert result.returncode == 2 and "Traceback" not in result.stderr


NO_LEDGER = "so whether this record was anchored cannot be checked"


def _no_ledger_reason(kind: str, ledger: str) -> dict[str, str]:
    """The reason docs/verify.md gives the chain's checks of a bundle naming no RecordLedger."""
    if kind == "contract":
        return {
            "en": f"The contract at {ledger} (chain ID 31337) is not a RecordLedger, {NO_LEDGER}",
            "ar": f"العقد على العنوان {ledger} ليس دفتر القيود المشترك (RecordLedger)، "
            "فلا يمكن التحقق من تثبيت هذا القيد",
        }
    return {
        "en": f"There is no contract at ledger {ledger} (chain ID 31337), {NO_LEDGER}",
        "ar": f"لا يوجد عقد على العنوان {ledger}، فلا يمكن التحقق من تثبيت هذا القيد",
    }


@pytest.mark.parametrize(
    ("name", "kind", "stderr"),
    [
        ("no-code", "empty", "no contract at ledger"),
        ("no-code-pending", "empty", "no contract at ledger"),
        ("account", "empty", "no contract at ledger"),
        ("not-a-ledger", "contract", "is not a RecordLedger (registry(): "),
    ],
)
def test_as_a_process_a_ledger_that_is_not_one_is_unknown(
    devchain: Any, made: dict[str, Any], name: str, kind: str, stderr: str
) -> None:
    """A bundle naming an empty address, an account or a contract that is not a RecordLedger:
    the chain has nothing to say about it, so its verdict is unknown (never not-authentic: nothing
    was found false) and the chain's checks say why in a sentence; the run's status is 2."""
    path = made["files"][name]
    ledger = json.loads(path.read_text())["ledger"]
    result = sijill(str(path), "--rpc", devchain.rpc_url, "--json")
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, stderr, ledger, "chain 31337")
    report = json.loads(result.stdout)
    assert report["verdict"] == "unknown"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["integrity"]["outcome"] == "pass"
    assert checks["inclusion"]["outcome"] == ("unknown" if name == "no-code-pending" else "pass")
    for check in ("anchored", "authority", "status"):
        assert checks[check]["outcome"] == "unknown", check
        assert checks[check]["reason"] == _no_ledger_reason(kind, ledger), check
    assert checks["receipt"]["outcome"] == "unknown"


def test_as_a_process_many_bundles_some_naming_no_ledger(devchain: Any, made: dict[str, Any]) -> None:
    """Among good bundles: each missing ledger is named once on stderr, its bundles are listed as
    unknown with the reason, the good ones stay authentic, and the status is 2."""
    files = made["files"]
    result = sijill(
        str(made["good"]),
        str(files["no-code"]),
        str(files["no-code-pending"]),
        str(files["not-a-ledger"]),
        "--rpc",
        devchain.rpc_url,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors), result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert "7 bundles verified" in result.stdout
    for name, ledger, kind in [
        ("no-code.json", NO_CODE, "empty"),
        ("not-a-ledger.json", json.loads(files["not-a-ledger"].read_text())["ledger"], "contract"),
    ]:
        (line,) = [line for line in lines if name in line]
        assert "unknown" in line and "anchored:" in line, line
        assert _no_ledger_reason(kind, ledger)["en"] in line, line
    # Not anchored yet: its first unknown check is inclusion (docs/verify.md), still unknown.
    (line,) = [line for line in lines if "no-code-pending.json" in line]
    assert "unknown" in line and "inclusion:" in line, line
    assert "not-authentic" not in result.stdout


def test_as_a_process_thousands_of_bundles_through_the_pool(
    w3: Web3,
    devchain: Any,
    contracts: dict[str, Any],
    senders: dict[str, TxManager],
    accounts: list[LocalAccount],
    made: dict[str, Any],
    tmp_path: Path,
) -> None:
    """More than POOL_ABOVE bundles: verified by worker processes, reported in input order."""
    ledger = contracts["RecordLedger"]
    domain = ReceiptDomain(w3.eth.chain_id, ledger.address.lower())
    registry = contracts["AgencyRegistry"].address.lower()
    now = int(time.time())
    sealed = [
        seal_record(RecordKey("REPD", "title", f"POOL{i:05d}", 1), bundle_record(i)) for i in range(2300)
    ]
    tree = anchor_leaves(senders["REPD"], ledger, [s.leaf for s in sealed])
    for s in sealed:
        bundle = signed_bundle(s, domain, accounts[1].key, accounts[1].address, now, registry)
        (tmp_path / f"{s.key.record_id}.json").write_bytes(
            dump_bundle(with_anchor(bundle, tree.root, tree.proof(s.leaf)))
        )
    (tmp_path / "POOL01000.json").write_bytes(made["files"]["revoked"].read_bytes())
    (tmp_path / "POOL02000.json").write_text("{}")
    result = sijill(str(tmp_path), "--rpc", devchain.rpc_url, "--json", "--workers", "2")
    assert result.returncode == 1, result.stderr[-2000:]
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["source"]).name for r in reports] == sorted(p.name for p in tmp_path.iterdir())
    verdicts = {Path(r["source"]).stem: r["verdict"] for r in reports}
    assert verdicts.pop("POOL01000") == "revoked" and verdicts.pop("POOL02000") == "unreadable"
    assert set(verdicts.values()) == {"authentic-current"}
    one_error_line(result.stderr, "POOL02000.json", "missing 'agency'")


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SIJILL_RPC_URL"}


# ------------------------------------------------------------------------------- rpcbatch


def test_batched_calls_decode_like_web3(
    devchain: Any, contracts: dict[str, Any], made: dict[str, Any], accounts: list[LocalAccount]
) -> None:
    ledger, registry = contracts["RecordLedger"], contracts["AgencyRegistry"]
    bundle, revoked = made["bundles"][0], made["bundles"][REVOKED]
    repd = agency_code("REPD")
    signer = accounts[1].address
    calls = [
        (ledger.address, REGISTRY, ()),
        (ledger.address, BATCH, (repd, bundle.anchor.root)),
        (ledger.address, LEAF_STATUS, (repd, bundle.leaf)),
        (ledger.address, LEAF_STATUS, (repd, revoked.leaf)),
        (registry.address, AGENCY_INFO, (repd,)),
        (registry.address, SIGNER_VALID_AT, (repd, bytes.fromhex(signer[2:]), 10**6)),
    ]
    client = RpcBatch(devchain.rpc_url)
    answers = eth_calls(client, calls)
    assert client.requests == 1 and client.calls == len(calls)
    expected = [
        ledger.functions.registry().call(),
        ledger.functions.batch(repd, bundle.anchor.root).call(),
        ledger.functions.leafStatus(repd, bundle.leaf).call(),
        ledger.functions.leafStatus(repd, revoked.leaf).call(),
        registry.functions.agencyInfo(repd).call(),
        registry.functions.isSignerValidAt(repd, signer, 10**6).call(),
    ]
    assert answers[0][0] == expected[0].lower()
    for answer, web3_answer in zip(answers[1:], expected[1:], strict=True):
        assert answer[0] == (tuple(web3_answer) if isinstance(web3_answer, list | tuple) else web3_answer)


def test_one_failing_call_spoils_only_itself(devchain: Any, contracts: dict[str, Any]) -> None:
    ledger = contracts["RecordLedger"].address
    nonsense = ViewFunction("noSuchFunction(uint256)", ("uint256",))
    client = RpcBatch(devchain.rpc_url, max_calls=2)
    answers = eth_calls(client, [(ledger, REGISTRY, ()), (ledger, nonsense, (1,)), (ledger, REGISTRY, ())])
    assert client.requests == 2  # three calls, two to a request
    assert isinstance(answers[1], CallFailed) and "noSuchFunction at " + ledger in str(answers[1])
    assert answers[0] == answers[2] and not isinstance(answers[0], CallFailed)
    raw = client.batch([("eth_blockNumber", []), ("eth_noSuchMethod", []), ("eth_chainId", [])])
    assert isinstance(raw[1], CallFailed) and int(raw[0], 16) > 0 and int(raw[2], 16) == 31337
    with pytest.raises(ChainUnavailable, match="connection refused"):
        RpcBatch(f"http://127.0.0.1:{free_port()}").batch([("eth_chainId", [])])


class _AtBlock:
    """A chain view that answers `latest_block` with a fixed block, everything else as `view`."""

    def __init__(self, view: Any, block: int) -> None:
        self._view, self._block = view, block

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def latest_block(self) -> int:
        return self._block


def test_prefetched_answers_verify_like_the_web3_view(
    w3: Web3,
    devchain: Any,
    deployment: dict[str, Any],
    compiled: dict[str, CompiledContract],
    made: dict[str, Any],
    accounts: list[LocalAccount],
) -> None:
    """`ask_chain` asks exactly what `ledger.verify` needs: every kind of bundle gets the same
    report as from `Web3ChainView`, which asks the chain call by call."""
    good, revoked, pending = made["bundles"][0], made["bundles"][REVOKED], made["pending"]
    other_registry = replace(good, registry="0x" + "22" * 20)
    wrong_type = replace(good, record_type="marriage")
    forged_signer = replace(good, receipt=replace(good.receipt, signer=accounts[7].address.lower()))
    other_agency = replace(good, agency="CSO")
    bundles = [
        good,
        revoked,
        pending,
        other_registry,
        wrong_type,
        forged_signer,
        other_agency,
        tampered(good),
    ]
    client = RpcBatch(devchain.rpc_url)
    found = find_deployment(client, w3.eth.chain_id, good.ledger)
    assert not isinstance(found, str)
    views = ask_chain(client, bundles, [found] * len(bundles))
    web3_view = Web3ChainView(w3, deployment, compiled)
    now = int(time.time())
    for bundle, view in zip(bundles, views, strict=True):
        # Both at the block the batch was asked at: a new block in between changes no answer
        # but the "latest block" a pending bundle's report names.
        pinned = _AtBlock(web3_view, view.latest_block())
        assert verify(bundle, view, now=now).to_json() == verify(bundle, pinned, now=now).to_json()
    missing = find_deployment(client, w3.eth.chain_id, NO_CODE)
    assert missing == MissingDeployment(
        31337, NO_CODE, False, f"no contract at ledger {NO_CODE} on chain 31337 ({devchain.rpc_url})"
    )


# ---------------------------------------------------------------------- usage, failing nodes


def test_usage_errors(devchain: Any, made: dict[str, Any], tmp_path: Path) -> None:
    one = str(made["files"]["one"])
    result = cli(str(tmp_path), "--rpc", devchain.rpc_url)  # an empty directory
    assert result.exit_code == 2
    one_error_line(result.stderr, "no bundles to verify in " + str(tmp_path))
    result = cli(one, "--rpc", devchain.rpc_url, "--header", "no colon here")
    assert result.exit_code == 2
    one_error_line(result.stderr, "expected 'Name: value'")
    result = cli(one, "--rpc", devchain.rpc_url, "--deployment", str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    one_error_line(result.stderr, "cannot read deployment file")
    result = CliRunner().invoke(app, ["verify", one], env={"SIJILL_RPC_URL": ""})
    assert result.exit_code == 2 and "--rpc" in result.output


class _FakeNode(http.server.BaseHTTPRequestHandler):
    """A JSON-RPC node that knows the chain id; for everything else it answers `mode`: a 503,
    or call by call (every leaf current, but an error object for `failing_leaf`'s status)."""

    mode: ClassVar[str] = "503"
    registry: ClassVar[str] = ""
    anchored_at: ClassVar[int] = 0
    failing_leaf: ClassVar[bytes] = b""

    def do_POST(self) -> None:
        calls = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if all(c["method"] == "eth_chainId" for c in calls):
            self._send(200, [{"jsonrpc": "2.0", "id": c["id"], "result": "0x7a69"} for c in calls])
        elif self.mode == "503":
            self._send(503, {"error": "down for maintenance"})
        else:
            self._send(200, [{"jsonrpc": "2.0", "id": c["id"], **self._answer(c)} for c in calls])

    def _answer(self, call: dict[str, Any]) -> dict[str, Any]:
        if call["method"] == "eth_blockNumber":
            return {"result": "0x20"}
        if call["method"] == "eth_getCode":
            return {"result": "0x6080"}
        data = bytes.fromhex(call["params"][0]["data"][2:])
        words: dict[bytes, tuple[list[str], list[Any]]] = {
            REGISTRY.selector: (["address"], [self.registry]),
            BATCH.selector: (
                ["(bytes32,uint64,uint64,uint64,uint32)"],
                [(record_type("title"), 1, 5, self.anchored_at, 8)],
            ),
            AGENCY_INFO.selector: (["(string,uint8,bool,uint64)"], [("REPD", 1, True, 1)]),
            SIGNER_VALID_AT.selector: (["bool"], [True]),
        }
        if data[:4] == LEAF_STATUS.selector and data[36:68] != self.failing_leaf:
            return {"result": "0x" + bytes(128).hex()}
        if data[:4] not in words:
            return {"error": {"code": 3, "message": "execution reverted"}}
        return {"result": "0x" + encode(*words[data[:4]]).hex()}

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_node(made: dict[str, Any]) -> Iterator[str]:
    _FakeNode.registry = made["bundles"][0].registry
    _FakeNode.anchored_at = made["bundles"][0].receipt.intake_time
    _FakeNode.failing_leaf = made["bundles"][0].leaf
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_node_that_stops_answering(made: dict[str, Any], fake_node: str) -> None:
    _FakeNode.mode = "503"
    result = cli(str(made["good"]), "--rpc", fake_node, "--json")
    assert result.exit_code == 2
    one_error_line(result.stderr, "the chain stopped answering", "HTTP 503")


def test_an_error_object_for_one_call_makes_only_its_bundles_unknown(
    made: dict[str, Any], fake_node: str
) -> None:
    _FakeNode.mode = "per-call"
    # b0 and b1 are in one batch, so their other questions are shared; only b0's leaf fails.
    result = cli(str(made["good"] / "b0.json"), str(made["good"] / "b1.json"), "--rpc", fake_node, "--json")
    assert result.exit_code == 1, result.output
    b0, b1 = (json.loads(line) for line in result.stdout.splitlines())
    assert b0["verdict"] == "unknown"
    status = next(c for c in b0["checks"] if c["name"] == "status")
    assert status["outcome"] == "unknown" and "leafStatus at " in status["reason"]["en"]
    assert "execution reverted" in status["reason"]["en"]
    assert b1["verdict"] == "authentic-current", b1


def test_the_progress_bar_goes_to_a_terminal_stderr_only(devchain: Any, made: dict[str, Any]) -> None:
    from rich.console import Console

    from cli.verify import Options, run

    terminal, out = io.StringIO(), io.StringIO()
    summary = run(
        Options([str(made["good"])], devchain.rpc_url, as_json=True),
        err=Console(file=terminal, force_terminal=True, width=100),
        out=out,
    )
    assert summary.status == 0 and summary.bundles == 4 and summary.requests >= 3
    assert [json.loads(line)["verdict"] for line in out.getvalue().splitlines()] == ["authentic-current"] * 4
    assert "4/4" in terminal.getvalue()  # the bar, drawn on the terminal
