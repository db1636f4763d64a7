"""Gas used by the ledger's state-changing calls, measured on a real anvil dev chain.

Usage: .venv/bin/python scripts/gas_report.py [--batch-sizes 1,100,1000] [--json]

Starts its own anvil (configured like Besu), deploys the demo network, then anchors batches,
revokes and supersedes 100 leaves, and prints gas per call and per record beside the naive
baseline of one transaction per record (about 45,000 gas each). `--json` prints the same
measurements, with each call's transaction and receipt sizes, as JSON (read by scripts/capacity.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import rlp  # type: ignore[import-untyped]
from hexbytes import HexBytes
from rich.console import Console
from rich.table import Table

from ledger.codes import agency_code, record_type
from ledger.merkle import build_tree
from node.chain.client import RevertDecoder, connect
from node.chain.deploy import bound_contracts, demo_network, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import compile_contracts
from node.chain.txmanager import TxManager

NAIVE_GAS_PER_RECORD = 45_000


def measure(sizes: list[int]) -> dict[str, Any]:
    """Deploy, anchor a batch of each size, revoke and supersede 100 leaves on a fresh anvil.

    Per call: gas used, the signed transaction's bytes, and what its receipt adds to the chain
    (logs: topics and data bytes; the receipt's consensus RLP encoding, bytes)."""
    compiled = compile_contracts()
    decoder = RevertDecoder({n: c.abi for n, c in compiled.items()})
    accounts = dev_accounts(4)
    with DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain:
        w3 = connect(chain.rpc_url)
        with tempfile.TemporaryDirectory() as tmp:
            spec = demo_network([a.address for a in accounts[1:]])
            result = deploy_network(w3, accounts[0], spec, Path(tmp) / "deployment.json", compiled=compiled)
        deploy = {name: entry["gasUsed"] for name, entry in result.deployment["contracts"].items()}
        ledger = bound_contracts(w3, result.deployment, compiled)["RecordLedger"]
        sender = TxManager(w3, accounts[1], decoder)

        def run(call: Any, leaves: int) -> dict[str, Any]:
            pending = sender.send_call(call)
            return _sizes(pending.raw, sender.wait(pending), leaves)

        title, repd = record_type("title"), agency_code("REPD")
        prev, seq, last_leaves = b"\0" * 32, 0, []
        anchors = []
        for size in sizes:
            last_leaves = [os.urandom(32) for _ in range(size)]
            root = build_tree(last_leaves).root
            anchors.append(
                {**run(ledger.functions.anchor(title, root, size, seq + 1, prev), size), "first": seq == 0}
            )
            prev, seq = root, seq + 1
        revoke = run(ledger.functions.revoke(last_leaves[:100], 1), 100)
        successors = [os.urandom(32) for _ in range(100)]
        supersede = run(ledger.functions.supersede(last_leaves[100:200], successors, 2), 100)
        assert ledger.functions.head(repd).call()[1] == seq
        block_gas_limit = w3.eth.get_block("latest")["gasLimit"]
    return {
        "chain": {"client": "anvil", "hardfork": "shanghai", "blockGasLimit": block_gas_limit},
        "naiveGasPerRecord": NAIVE_GAS_PER_RECORD,
        "deploy": deploy,
        "anchor": anchors,
        "revoke": revoke,
        "supersede": supersede,
    }


def _sizes(raw: bytes, receipt: Any, leaves: int) -> dict[str, Any]:
    """Gas and bytes of one mined call (its receipt encoded as if alone in its block)."""
    logs = [
        [bytes(HexBytes(log["address"])), [bytes(t) for t in log["topics"]], bytes(log["data"])]
        for log in receipt["logs"]
    ]
    encoded = rlp.encode([b"\x01", receipt["gasUsed"], bytes(receipt["logsBloom"]), logs])
    return {
        "leaves": leaves,
        "gas": receipt["gasUsed"],
        "txBytes": len(raw),
        "logs": len(logs),
        "logTopics": sum(len(log[1]) for log in logs),
        "logDataBytes": sum(len(log[2]) for log in logs),
        "receiptBytes": len(encoded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", default="1,100,1000,10000")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args()
    measured = measure([int(s) for s in args.batch_sizes.split(",")])
    if args.json:
        print(json.dumps(measured, indent=2))
        return
    table = Table("call", "gas", "gas per record", "vs one tx per record (45,000 gas)")
    for name, gas in measured["deploy"].items():
        table.add_row(f"deploy {name}", f"{gas:,}", "", "")
    for entry in measured["anchor"]:
        size, gas = entry["leaves"], entry["gas"]
        label = "anchor (first of the agency)" if entry["first"] else "anchor"
        table.add_row(
            f"{label}, {size:,} leaves",
            f"{gas:,}",
            f"{gas / size:,.1f}",
            f"{NAIVE_GAS_PER_RECORD * size / gas:,.1f} times less gas",
        )
    for name in ("revoke", "supersede"):
        gas = measured[name]["gas"]
        table.add_row(f"{name}, 100 leaves", f"{gas:,}", f"{gas / 100:,.0f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
