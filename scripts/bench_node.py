"""Benchmark of the agency node on a real anvil (1 s blocks): bulk intake, end-to-end anchoring,
latency at a light load, peak memory, and the naive one-transaction-per-record design.

Usage: .venv/bin/python scripts/bench_node.py [--records 1000000] [--naive 2000] [--batch-size 20000]
       [--intake-workers 1]

Starts its own anvil and deployment in a temporary directory; prints a table beside the node
issue's targets and a final JSON line with every figure (scripts/bench_all.py reads it). Peak
RSS is this process's (intake, batcher and indexer all run in it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from rich.console import Console
from rich.table import Table

from ledger.codes import record_type
from ledger.fields import RecordKey, seal_record
from ledger.records.examples import numbered_records
from node.batcher import BatcherSettings
from node.chain.client import RevertDecoder, connect
from node.chain.deploy import demo_network, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import compile_contracts
from node.chain.txmanager import TxManager, TxSettings
from node.keys import create_keystore
from node.service import AgencyNode, NodeSettings
from node.store import Store


def start_bench_node(
    root: Path, rpc_url: str, accounts: list[Any], compiled: Any, batch_size: int, intake_workers: int = 0
) -> AgencyNode:
    """Deploy the demo network on the chain at `rpc_url` and start REPD's node in `root/repd`
    (fresh keystore and KEK, batches of `batch_size`, closed after 1 s): the node every node
    benchmark measures (also scripts/bench_backup.py)."""
    spec = demo_network([a.address for a in accounts[1:]])
    deploy_network(connect(rpc_url), accounts[0], spec, root / "deployment.json", compiled=compiled)
    os.environ["SIJILL_SIGNER_PASSPHRASE"] = passphrase = secrets.token_urlsafe(16)
    os.environ["SIJILL_KEK"] = kek = secrets.token_hex(32)
    data_dir = root / "repd"
    data_dir.mkdir()
    create_keystore(data_dir / "signer.json", passphrase, bytes(accounts[1].key), kdf_iterations=2**10)
    Store(data_dir / "store", bytes.fromhex(kek), create=True).close()
    settings = NodeSettings(
        data_dir=data_dir,
        deployment=root / "deployment.json",
        rpc_url=rpc_url,
        agency="REPD",
        keystore=data_dir / "signer.json",
        batcher=BatcherSettings(batch_size=batch_size, max_age=1.0),
        intake_workers=intake_workers,
    )
    return AgencyNode(settings, create=False).start()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument(
        "--intake-workers", type=int, default=0, help="processes preparing bulk intake's records (0: none)"
    )
    args = parser.parse_args()
    table = Table("measure", "result", "target", title="agency node on anvil (1 s blocks), 2 cores")
    figures: dict[str, Any] = {"bench": "node", "records": args.records, "batchSize": args.batch_size}
    figures["intakeWorkers"] = args.intake_workers
    compiled = compile_contracts()
    accounts = dev_accounts(4)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
    ):
        root = Path(tmp)
        w3 = connect(chain.rpc_url)
        node = start_bench_node(root, chain.rpc_url, accounts, compiled, args.batch_size, args.intake_workers)

        # Light steady load first: one record every 100 ms, intake -> proof stored.
        latencies = []
        for record in numbered_records("title", 30, start=9_000_000):
            accepted = node.intake.submit("title", record, actor="bench", request_id="latency")
            start = time.perf_counter()
            while node.store.get(b"proof/" + accepted.leaf.hex().encode()) is None:
                time.sleep(0.02)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        table.add_row(
            "intake -> anchored latency, light load (median / max)",
            f"{latencies[len(latencies) // 2]:.2f} s / {latencies[-1]:.2f} s",
            "",
        )
        figures["latencyMedianSeconds"] = round(latencies[len(latencies) // 2], 3)
        figures["latencyMaxSeconds"] = round(latencies[-1], 3)

        # Bulk: intake durable, then anchored with proofs stored.
        start = time.perf_counter()
        count = 0
        for _result in node.intake.submit_many(
            (("title", r) for r in numbered_records("title", args.records)),
            actor="bench",
            request_id="bulk",
            chunk=2000,
        ):
            count += 1
        intake_seconds = time.perf_counter() - start
        node.batcher.stop()
        threading.Event().wait(0.5)
        node.batcher.drain(timeout=3600)
        total_seconds = time.perf_counter() - start
        assert count == args.records
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        table.add_row(
            f"bulk intake, durable ({args.records:,} records)", f"{count / intake_seconds:,.0f} records/s", ""
        )
        table.add_row(
            "end to end, anchored with proofs stored",
            f"{count / total_seconds:,.0f} records/s",
            "≥ 10,000 records/s",
        )
        table.add_row(f"{args.records:,} records to anchored", f"{total_seconds:,.1f} s", "≤ 120 s for 1M")
        table.add_row("peak RSS of the node process", f"{rss:,.0f} MB", "≤ 400 MB")
        figures["intakePerSecond"] = round(count / intake_seconds)
        figures["endToEndPerSecond"] = round(count / total_seconds)
        figures["endToEndSeconds"] = round(total_seconds, 2)
        figures["peakRssMb"] = round(rss)
        node.stop()

        # Naive design: one anchor transaction per record (signed locally, pipelined).
        decoder = RevertDecoder({n: c.abi for n, c in compiled.items()})
        ledger = w3.eth.contract(address=node.ledger.address, abi=compiled["RecordLedger"].abi)
        tx = TxManager(w3, accounts[2], decoder, TxSettings(max_in_flight=64))
        records = list(numbered_records("marriage", args.naive))
        head_root, head_seq = ledger.functions.head(b"CSO".ljust(32, b"\0")).call()
        start = time.perf_counter()
        pending = []
        for i, record in enumerate(records):
            leaf = seal_record(RecordKey("CSO", "marriage", f"N{i}", 1), record).leaf
            call = ledger.functions.anchor(record_type("marriage"), leaf, 1, head_seq + 1, head_root)
            pending.append(tx.send_call(call, label="naive", gas=250_000))
            head_root, head_seq = leaf, head_seq + 1
        for item in pending:
            tx.wait(item)
        naive = len(records) / (time.perf_counter() - start)
        table.add_row(f"naive: one transaction per record ({len(records):,})", f"{naive:,.0f} records/s", "")
        table.add_row("node vs naive", f"{(count / total_seconds) / naive:,.0f} ×", "≥ 300 ×")
        figures["naive"], figures["naivePerSecond"] = len(records), round(naive, 1)
        figures["nodeVsNaive"] = round((count / total_seconds) / naive, 1)
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
