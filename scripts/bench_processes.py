"""Benchmark of bulk intake by one node process on LevelDB against node processes sharing one
PostgreSQL store (issue 17), in the same run, on a real anvil (1 s blocks) and a real
PostgreSQL 15 cluster (fsync on, synchronous_commit on).

Usage: .venv/bin/python scripts/bench_processes.py [--records 50000] [--batch-size 20000] [--workers 1]

Each run loads `--records` titles with `sijill node ingest` (whole processes, as an operator
runs them) and ends when every record is anchored with its proof stored (ingest returns only
then). The two-process run splits the file in two and starts two ingests at once, each with its
own data directory, on one database; the holder of the batcher lease anchors for both. Prints a
table beside the issue's goal (two processes on PostgreSQL ≥ 1.6× one on LevelDB), with the CPU
each run took per record: the node processes' (start-up included) and the PostgreSQL server's,
and a final JSON line with every figure (scripts/bench_all.py reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from pg_cluster import PgCluster
from rich.console import Console
from rich.table import Table

from ledger.records.examples import ndjson_lines
from node.chain.client import connect
from node.chain.deploy import demo_network, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import compile_contracts

SIJILL = [sys.executable, "-m", "cli.main"]


def init_node(root: Path, name: str, key_file: Path, env: dict[str, str], store: str | None) -> Path:
    data_dir = root / name
    args = [*SIJILL, "node", "init", "--data-dir", str(data_dir), "--agency", "REPD"]
    args += ["--private-key-file", str(key_file), *(["--store", store] if store else [])]
    subprocess.run(args, env=env, check=True, capture_output=True)
    return data_dir


def server_cpu(cluster: PgCluster) -> float:
    """CPU seconds the cluster's server has used so far: its postmaster, the backends it reaped
    and those still running."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
        elif ppid == postmaster:
            total += sum(int(f) for f in fields[11:13]) / tick
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ingest(
    files: list[Path], data_dirs: list[Path], root: Path, rpc: str, env: dict[str, str], batch_size: int,
    store: str | None, workers: int = 0,
) -> float:  # fmt: skip
    """Seconds from starting one `sijill node ingest` per file (at once) until all returned."""
    common = ["--rpc", rpc, "--deployment", str(root / "deployment.json"), "--agency", "REPD"]
    common += ["--batch-size", str(batch_size), "--max-age", "1", "--chunk", "2000"]
    common += ["--store", store] if store else []
    common += ["--workers", str(workers)] if workers else []
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [*SIJILL, "node", "ingest", str(file), "--data-dir", str(data_dir), *common],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for file, data_dir in zip(files, data_dirs, strict=True)
    ]
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"sijill node ingest exited {process.returncode}")
        assert json.loads(out.strip().splitlines()[-1])["rejected"] == 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, default=0, help="also run LevelDB with `ingest --workers N` (0: not)"
    )
    args = parser.parse_args()
    n = args.records
    table = Table(
        "run", "seconds", "records/s", "vs LevelDB", "CPU a record: nodes / PostgreSQL", "goal",
        title=f"bulk intake to anchored, {n:,} titles",
    )  # fmt: skip
    compiled = compile_contracts()
    accounts = dev_accounts(4)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
        PgCluster() as cluster,
    ):
        root = Path(tmp)
        spec = demo_network([a.address for a in accounts[1:]])
        deploy_network(connect(chain.rpc_url), accounts[0], spec, root / "deployment.json", compiled=compiled)
        env = {
            **os.environ,
            "SIJILL_SIGNER_PASSPHRASE": secrets.token_urlsafe(16),
            "SIJILL_KEK": secrets.token_hex(32),
        }
        (key_file := root / "repd.key").write_text(bytes(accounts[1].key).hex())
        files = {}
        for name, start, count in (
            ("all", 0, n),
            ("first", 10**6, n // 2),
            ("second", 2 * 10**6, n - n // 2),
        ):
            files[name] = root / f"{name}.ndjson"
            with files[name].open("w") as out:
                out.writelines(ndjson_lines(count, start=start))
        # In turn on one chain: each fresh store lines up at the agency's head the last run left.
        runs: list[tuple[str, float, float, float]] = []

        def run(name: str, inputs: list[Path], dirs: list[Path], store: str | None, workers: int = 0) -> None:
            nodes, server = children_cpu(), server_cpu(cluster)
            seconds = ingest(inputs, dirs, root, chain.rpc_url, env, args.batch_size, store, workers)
            runs.append((name, seconds, children_cpu() - nodes, server_cpu(cluster) - server))

        run("1 process, LevelDB", [files["all"]], [init_node(root, "leveldb", key_file, env, None)], None)
        if args.workers:
            workers = f"{args.workers} intake worker{'s' if args.workers > 1 else ''}"
            name, where = f"1 process + {workers}, LevelDB", "leveldb-workers"
            run(name, [files["all"]], [init_node(root, where, key_file, env, None)], None, args.workers)
        one = cluster.create_database("one")
        run("1 process, PostgreSQL", [files["all"]], [init_node(root, "pg-one", key_file, env, one)], one)
        two = cluster.create_database("two")
        first = init_node(root, "pg-a", key_file, env, two)
        second = root / "pg-b"
        second.mkdir()
        shutil.copy(first / "signer.json", second / "signer.json")
        run("2 processes, one PostgreSQL", [files["first"], files["second"]], [first, second], two)
        base = n / runs[0][1]
        rows = [
            {
                "run": name,
                "seconds": round(seconds, 2),
                "recordsPerSecond": round(n / seconds),
                "vsLevelDB": round(n / seconds / base, 2),
                "nodeCpuUsPerRecord": round(nodes / n * 1e6),
                "serverCpuUsPerRecord": round(server / n * 1e6),
            }
            for name, seconds, nodes, server in runs
        ]
        for name, seconds, nodes, server in runs:
            goal = "≥ 1.6×" if name.startswith("2") else ""
            per = f"{nodes / n * 1e6:,.0f} / {server / n * 1e6:,.0f} µs"
            table.add_row(
                name, f"{seconds:.1f}", f"{n / seconds:,.0f}", f"{n / seconds / base:.2f}×", per, goal
            )
    Console().print(table)
    print(json.dumps({"bench": "processes", "records": n, "runs": rows}))


if __name__ == "__main__":
    main()
