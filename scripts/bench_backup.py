"""Benchmark of the online backup: how long `sijill node backup` takes on a store of N records,
and how much the node's intake slows while it runs; restore and its digest check too.

Usage: .venv/bin/python scripts/bench_backup.py [--records 200000] [--batch-size 20000]

Starts its own anvil and deployment in a temporary directory and one agency node in this
process (intake, batcher, indexer and the admin socket, as `sijill serve` runs them). It loads
N records (anchored), measures intake alone for a few seconds, then asks the node for a backup
over its admin socket while intake goes on, and prints a table with the extrapolation to
1,000,000 records (backup time grows with the store's size: it reads every key once), and a final
JSON line with every figure (scripts/bench_all.py reads it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from itertools import count
from pathlib import Path

from bench_node import start_bench_node
from rich.console import Console
from rich.table import Table

from ledger.records.examples import numbered_records
from node.admin import admin_socket_path, call_admin
from node.backup import check_backup, read_manifest, restore_backup
from node.chain.deploy import dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import compile_contracts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()
    table = Table("measure", "result", title=f"online backup, {args.records:,} records, 2 cores")
    compiled = compile_contracts()
    accounts = dev_accounts(4)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
    ):
        root = Path(tmp)
        node = start_bench_node(root, chain.rpc_url, accounts, compiled, args.batch_size)
        data_dir = root / "repd"
        numbers = count(0)

        def intake(
            seconds: float | None = None, until: threading.Event | None = None, limit: int = 0
        ) -> float:
            """Records a second taken in chunks of 1,000 for `seconds`, until `until`, or `limit`."""
            start, taken = time.perf_counter(), 0
            while True:
                first = next(numbers) * 1000
                batch = (("title", r) for r in numbered_records("title", 1000, start=first))
                taken += sum(
                    1 for _ in node.intake.submit_many(batch, actor="bench", request_id="b", chunk=1000)
                )
                elapsed = time.perf_counter() - start
                if (
                    (seconds and elapsed >= seconds)
                    or (until and until.is_set())
                    or (limit and taken >= limit)
                ):
                    return taken / elapsed

        fill = intake(limit=args.records)
        node.batcher.drain(timeout=3600)
        table.add_row("load, durable intake", f"{fill:,.0f} records/s")
        baseline = intake(seconds=args.baseline_seconds)
        table.add_row("intake alone", f"{baseline:,.0f} records/s")
        figures: dict[str, float] = {"loadPerSecond": round(fill), "intakeAlonePerSecond": round(baseline)}

        out = root / "repd.sjb"
        done = threading.Event()
        result: dict[str, float] = {}

        def backup() -> None:
            start = time.perf_counter()
            call_admin(admin_socket_path(data_dir), {"action": "node.backup", "out": str(out)})
            result["seconds"] = time.perf_counter() - start
            done.set()

        thread = threading.Thread(target=backup)
        thread.start()
        during = intake(until=done)
        thread.join()
        node.stop()
        size = out.stat().st_size

        records = read_manifest(out).counts["records"]
        table.add_row(f"backup while intake runs ({records:,} records)", f"{result['seconds']:,.1f} s")
        table.add_row("backup file", f"{size / 1e6:,.0f} MB ({size / records:,.0f} bytes a record)")
        table.add_row(
            "intake during the backup", f"{during:,.0f} records/s ({during / baseline:.0%} of alone)"
        )
        start = time.perf_counter()
        check_backup(out)
        table.add_row("digest check of the file", f"{time.perf_counter() - start:,.1f} s")
        start = time.perf_counter()
        restore_backup(out, root / "restored")
        restored = time.perf_counter() - start
        table.add_row("restore (check and write)", f"{restored:,.1f} s")
        figures.update(
            records=records,
            backupSeconds=round(result["seconds"], 2),
            fileBytes=size,
            intakeDuringPerSecond=round(during),
            restoreSeconds=round(restored, 2),
        )
        per_million = 1_000_000 / records
        table.add_row(
            "extrapolated to 1,000,000 records",
            f"backup {result['seconds'] * per_million:,.0f} s, restore {restored * per_million:,.0f} s, "
            f"file {size * per_million / 1e9:,.1f} GB",
        )
    Console().print(table)
    print(json.dumps({"bench": "backup", **figures}))


if __name__ == "__main__":
    sys.exit(main())
