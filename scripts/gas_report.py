"""Gas used by the ledger's state-changing calls, measured on a real anvil dev chain.

Usage: .venv/bin/python scripts/gas_report.py [--batch-sizes 1,100,1000]

Starts its own anvil (configured like Besu), deploys the demo network, then anchors batches,
revokes and supersedes 100 leaves, and prints gas per call and per record beside the naive
baseline of one transaction per record (about 45,000 gas each).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ledger.codes import agency_code, record_type
from ledger.merkle import build_tree
from node.chain import RevertDecoder, connect
from node.deploy import bound_contracts, demo_network, deploy_network, dev_accounts
from node.devchain import DevChain, DevChainConfig, free_port
from node.toolchain import compile_contracts
from node.txmanager import TxManager

NAIVE_GAS_PER_RECORD = 45_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", default="1,100,1000,10000")
    sizes = [int(s) for s in parser.parse_args().batch_sizes.split(",")]

    compiled = compile_contracts()
    decoder = RevertDecoder({n: c.abi for n, c in compiled.items()})
    accounts = dev_accounts(4)
    table = Table("call", "gas", "gas per record", "vs one tx per record (45,000 gas)")
    with DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain:
        w3 = connect(chain.rpc_url)
        with tempfile.TemporaryDirectory() as tmp:
            spec = demo_network([a.address for a in accounts[1:]])
            result = deploy_network(w3, accounts[0], spec, Path(tmp) / "deployment.json", compiled=compiled)
        for name, entry in result.deployment["contracts"].items():
            table.add_row(f"deploy {name}", f"{entry['gasUsed']:,}", "", "")
        ledger = bound_contracts(w3, result.deployment, compiled)["RecordLedger"]
        sender = TxManager(w3, accounts[1], decoder)
        title, repd = record_type("title"), agency_code("REPD")
        prev, seq, last_leaves = b"\0" * 32, 0, []
        for size in sizes:
            last_leaves = [os.urandom(32) for _ in range(size)]
            root = build_tree(last_leaves).root
            receipt = sender.transact(ledger.functions.anchor(title, root, size, seq + 1, prev))
            prev, seq = root, seq + 1
            gas = receipt["gasUsed"]
            label = "anchor (first of the agency)" if seq == 1 else "anchor"
            table.add_row(
                f"{label}, {size:,} leaves",
                f"{gas:,}",
                f"{gas / size:,.1f}",
                f"{NAIVE_GAS_PER_RECORD * size / gas:,.1f} times less gas",
            )
        hundred = last_leaves[:100]
        receipt = sender.transact(ledger.functions.revoke(hundred, 1))
        table.add_row("revoke, 100 leaves", f"{receipt['gasUsed']:,}", f"{receipt['gasUsed'] / 100:,.0f}", "")
        successors = [os.urandom(32) for _ in range(100)]
        receipt = sender.transact(ledger.functions.supersede(last_leaves[100:200], successors, 2))
        table.add_row(
            "supersede, 100 leaves", f"{receipt['gasUsed']:,}", f"{receipt['gasUsed'] / 100:,.0f}", ""
        )
        assert ledger.functions.head(repd).call()[1] == seq
    Console().print(table)


if __name__ == "__main__":
    main()
