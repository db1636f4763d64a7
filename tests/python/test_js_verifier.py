"""The browser verifier (api/web/sijill-verify.js) against a real chain: bundles anchored, superseded,
revoked, pending, tampered and partly disclosed on anvil, verified by `tests/js/verify_cli.mjs`
through its own JSON-RPC client (`RpcChain`), and each report, reasons in both languages and
details included, equal to Python's `ledger.verify` through `node.chain.views.Web3ChainView` at the
same moment: the same `now`, and no block mined between the two (interval mining is paused)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chain_bundles import anchor_leaves, bundle_record, signed_bundle, tampered
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.bundle import disclose, dump_bundle, with_anchor
from ledger.fields import RecordKey, seal_record
from ledger.receipts import ReceiptDomain
from ledger.verify import verify
from node.chain.devchain import DevChain
from node.chain.toolchain import PROJECT_ROOT, CompiledContract
from node.chain.txmanager import TxManager
from node.chain.views import Web3ChainView

pytestmark = pytest.mark.chain

NODE = shutil.which("node")
CLI = PROJECT_ROOT / "tests" / "js" / "verify_cli.mjs"
SUPERSEDED, REVOKED, OUTSIDER = 1, 3, 5  # indexes into the first batch


@pytest.fixture(scope="module")
def bundle_files(
    w3: Web3,
    contracts: dict[str, Any],
    senders: dict[str, TxManager],
    accounts: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """One file per kind of bundle, named by what it is; written as `sijill export` writes them."""
    root = tmp_path_factory.mktemp("js-verifier")
    ledger = contracts["RecordLedger"]
    registry = contracts["AgencyRegistry"].address.lower()
    domain = ReceiptDomain(w3.eth.chain_id, ledger.address.lower())
    now = int(time.time())
    signer = (accounts[1].key, accounts[1].address)
    sealed = [seal_record(RecordKey("REPD", "title", f"JS{i}", 1), bundle_record(i)) for i in range(7)]
    signed = [signed_bundle(s, domain, *signer, now, registry) for s in sealed]
    # A receipt signed by an account that is no signer of REPD, for a leaf REPD did anchor.
    signed[OUTSIDER] = signed_bundle(
        sealed[OUTSIDER], domain, accounts[7].key, accounts[7].address, now, registry
    )
    tree = anchor_leaves(senders["REPD"], ledger, [s.leaf for s in sealed[:6]])
    bundles = [with_anchor(b, tree.root, tree.proof(b.leaf)) for b in signed[:6]]
    # Version 2 of JS1 in a batch of its own, then version 1 superseded by it; JS3 revoked (fraud).
    v2 = seal_record(RecordKey("REPD", "title", f"JS{SUPERSEDED}", 2), bundle_record(100))
    tree2 = anchor_leaves(senders["REPD"], ledger, [v2.leaf])
    newer = with_anchor(signed_bundle(v2, domain, *signer, now, registry), tree2.root, tree2.proof(v2.leaf))
    senders["REPD"].transact(ledger.functions.supersede([bundles[SUPERSEDED].leaf], [v2.leaf], 1))
    senders["REPD"].transact(ledger.functions.revoke([bundles[REVOKED].leaf], 3))

    current = bundles[0]
    kinds: dict[str, bytes] = {
        "current": dump_bundle(current),
        "disclosed-subset": dump_bundle(disclose(current, ["/title_number", "/owners/0/name"])),
        "superseded": dump_bundle(bundles[SUPERSEDED]),
        "newer-version": dump_bundle(newer),
        "revoked": dump_bundle(bundles[REVOKED]),
        "pending": dump_bundle(signed[6]),
        "tampered": dump_bundle(tampered(bundles[2])),
        "outside-signer": dump_bundle(bundles[OUTSIDER]),
        "forged-signer-field": dump_bundle(
            replace(current, receipt=replace(current.receipt, signer=accounts[7].address.lower()))
        ),
        "other-registry": dump_bundle(replace(current, registry="0x" + "22" * 20)),
        "other-agency": dump_bundle(replace(current, agency="CSO")),
        "other-chain": dump_bundle(replace(current, chain_id=1)),
        "wrong-proof": dump_bundle(with_anchor(current, tree.root, tree.proof(bundles[4].leaf))),
        "pretty-printed": json.dumps(json.loads(dump_bundle(current)), indent=2, ensure_ascii=False).encode(),
        "not-json": b"this is not JSON\n",
        "format-2": json.dumps({**json.loads(dump_bundle(current)), "format": "sijill-bundle/2"}).encode(),
        "float": dump_bundle(current).replace(b'"value":"140"', b'"value":140.0', 1),
    }
    # No RecordLedger where the bundle points: an address with no code, an account, another contract.
    for name, address in [
        ("ledger-no-code", "0x" + "11" * 20),
        ("ledger-an-account", accounts[7].address),
        ("ledger-the-registry", registry),
    ]:
        elsewhere = ReceiptDomain(domain.chain_id, address.lower())
        b = signed_bundle(sealed[0], elsewhere, *signer, now, registry)
        kinds[name] = dump_bundle(with_anchor(b, tree.root, tree.proof(b.leaf)))
    kinds["ledger-no-code-pending"] = dump_bundle(
        signed_bundle(sealed[6], ReceiptDomain(domain.chain_id, "0x" + "11" * 20), *signer, now, registry)
    )
    files = {}
    for name, data in kinds.items():
        files[name] = root / f"{name}.json"
        files[name].write_bytes(data)
    return files


NO_LEDGER = ("ledger-no-code", "ledger-an-account", "ledger-the-registry", "ledger-no-code-pending")


@contextmanager
def no_new_blocks(w3: Web3, devchain: DevChain) -> Iterator[int]:
    """Pause anvil's interval mining (the latest block is part of a pending bundle's report)."""
    w3.provider.make_request("evm_setIntervalMining", [0])
    try:
        yield w3.eth.block_number
    finally:
        seconds = max(1, round(devchain.config.block_time))
        w3.provider.make_request("evm_setIntervalMining", [seconds])


def js_reports(rpc_url: str, ledger: str, now: int, files: list[Path]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(NODE), str(CLI), rpc_url, ledger, str(now), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("later", [0, 3600], ids=["now", "an-hour-later"])
def test_js_reports_equal_python_reports(
    w3: Web3,
    devchain: DevChain,
    deployment: dict[str, Any],
    compiled: dict[str, CompiledContract],
    bundle_files: dict[str, Path],
    later: int,
) -> None:
    """Every kind of bundle, verified by both implementations against the same chain state; an
    hour later the pending bundle is past its promised anchoring time (its receipt check fails)."""
    view = Web3ChainView(w3, deployment, compiled)
    now = int(time.time()) + later
    files = [path for name, path in bundle_files.items() if name not in NO_LEDGER]
    with no_new_blocks(w3, devchain) as block:
        mine = js_reports(devchain.rpc_url, view.ledger, now, files)
        python = [verify(path.read_bytes(), view, now=now).to_json() for path in files]
        assert w3.eth.block_number == block
    assert len(mine) == len(files)
    for path, js, py in zip(files, mine, python, strict=True):
        assert js == py, path.stem

    verdicts = {path.stem: report["verdict"] for path, report in zip(files, mine, strict=True)}
    assert verdicts == {
        "current": "authentic-current",
        "disclosed-subset": "authentic-current",
        "superseded": "superseded",
        "newer-version": "authentic-current",
        "revoked": "revoked",
        "pending": "pending",
        "tampered": "not-authentic",
        "outside-signer": "not-authentic",
        "forged-signer-field": "not-authentic",
        "other-registry": "not-authentic",
        "other-agency": "not-authentic",
        "other-chain": "not-authentic",
        "wrong-proof": "not-authentic",
        "pretty-printed": "authentic-current",
        "not-json": "not-authentic",
        "format-2": "not-authentic",
        "float": "not-authentic",
    }
    by_name = {path.stem: report for path, report in zip(files, mine, strict=True)}
    receipt = next(c for c in by_name["pending"]["checks"] if c["name"] == "receipt")
    assert receipt["outcome"] == ("unknown" if later == 0 else "fail")
    status = next(c for c in by_name["revoked"]["checks"] if c["name"] == "status")
    assert status["reason"] == {"en": status["reason"]["en"], "ar": "مُلغى: تزوير أو غش"}
    assert "fraud" in status["reason"]["en"]
    unreadable = by_name["float"]["checks"][0]["reason"]["en"]
    assert unreadable.endswith("not a JSON document: floating-point number 140.0 is not allowed in a bundle")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_js_against_a_closed_port_reports_unknown(
    bundle_files: dict[str, Path], deployment: dict[str, Any]
) -> None:
    """No chain to ask: the chain's checks are unknown, never passed, and the verdict is unknown."""
    ledger = deployment["contracts"]["RecordLedger"]["address"].lower()
    (report,) = js_reports("http://127.0.0.1:9", ledger, int(time.time()), [bundle_files["current"]])
    assert report["verdict"] == "unknown"
    outcomes = {c["name"]: c["outcome"] for c in report["checks"]}
    assert outcomes["integrity"] == outcomes["inclusion"] == "pass"
    assert outcomes["anchored"] == outcomes["authority"] == outcomes["status"] == "unknown"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_js_reports_equal_sijill_verify_where_there_is_no_ledger(
    w3: Web3, devchain: DevChain, bundle_files: dict[str, Path]
) -> None:
    """Bundles naming an address with no code, an account, and a contract that is not a
    RecordLedger (the AgencyRegistry), each checked against the ledger it names, as `sijill
    verify` does without --deployment: both verifiers report unknown, the chain's checks with the
    same sentence (docs/verify.md), never not-authentic."""
    files = [bundle_files[name] for name in NO_LEDGER]
    with no_new_blocks(w3, devchain):
        command = ["verify", *map(str, files), "--rpc", devchain.rpc_url, "--json"]
        python = subprocess.run(
            [sys.executable, "-m", "cli", *command],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=240,
            check=False,
        )
        now = int(time.time())
        mine = [
            js_reports(devchain.rpc_url, json.loads(path.read_text())["ledger"], now, [path])[0]
            for path in files
        ]
    assert python.returncode == 2, python.stderr  # no deployment where a bundle points
    reports = [json.loads(line) for line in python.stdout.splitlines()]
    assert len(reports) == len(files)
    for path, js, py in zip(files, mine, reports, strict=True):
        assert js == {"verdict": py["verdict"], "checks": py["checks"]}, path.stem
        assert js["verdict"] == "unknown", path.stem
        anchored = next(c for c in js["checks"] if c["name"] == "anchored")
        kind = "is not a RecordLedger" if path.stem == "ledger-the-registry" else "There is no contract at"
        assert anchored["outcome"] == "unknown" and kind in anchored["reason"]["en"], path.stem
