"""Benchmark of `sijill verify` against a real anvil: bundles per second, requests, CPU.

Usage: .venv/bin/python scripts/bench_verify.py [--count 20000] [--batch 5000] [--workers N]
                                               [--disclose /title_number,/owners/0/name]
                                               [--baseline ../main --rounds 3]

Starts its own anvil (configured like Besu), deploys the contracts with the demo agencies,
seals `--count` validated title records, signs their receipts as REPD (dev account 1), anchors
them in batches of `--batch` leaves, and writes one full bundle file per record to a temporary
directory (`--disclose`: bundles showing only those fields, the rest hidden as hashes, as a
citizen shares them). Then it times, over that directory:
- `sijill verify DIR --rpc URL --json > /dev/null` as a subprocess (wall time including the
  interpreter's start-up and imports), with the CPU time of it and its workers, and anvil's;
- the same run in-process (`cli.verify.run`), with the JSON-RPC HTTP requests and calls;
- `ledger.verify` alone on one core, with the chain's answers already in memory: the ceiling
  the command's verification step can reach per core on this machine.
`--baseline TREE` (another checkout with its own .venv, e.g. the previous commit's): the
subprocess run is repeated `--rounds` times, alternating this tree's command and TREE's over
the same bundles and chain, and the best wall time and CPU of each are reported beside each
other (figures["ab"]), which a shared, noisy machine leaves comparable.
Prints a table beside the target (5,000 bundles/s) and a final JSON line with every figure.
Wall-clock rates depend on what else the machine runs (the load average is printed beside
them); CPU time per bundle hardly does, and CPUs / (CPU per bundle, anvil's included) is the
rate the command would reach with the machine to itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from rich.console import Console
from rich.table import Table

from cli.verify import Lang, Options, run
from ledger.bundle import SignedReceipt, disclose, dump_bundle, load_bundle, make_bundle, with_anchor
from ledger.codes import agency_code, record_type
from ledger.fields import RecordKey, seal_record
from ledger.merkle import build_tree
from ledger.receipts import Receipt, ReceiptDomain, ReceiptSigner
from ledger.records import validate_record
from ledger.records.examples import TODAY, title_example
from ledger.verify import Verdict, verify
from node.chain.client import RevertDecoder, connect
from node.chain.deploy import bound_contracts, demo_network, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.rpcbatch import RpcBatch, ask_chain, find_deployment
from node.chain.toolchain import compile_contracts
from node.chain.txmanager import TxManager

TARGET = 5000  # bundles per second, against anvil


def verify_command(directory: Path, rpc_url: str) -> list[str]:
    """`sijill verify DIR --rpc URL --json` as a user runs it: a new Python process."""
    return [sys.executable, "-m", "cli.main", "verify", str(directory), "--rpc", rpc_url, "--json"]


def make_bundles(rpc: str, work: Path, count: int, batch: int, shown: list[str] | None = None) -> Path:
    """Deploy, anchor `count` title records in batches of `batch`, write their bundles (showing
    only the `shown` fields if given); the directory."""
    w3 = connect(rpc)
    compiled = compile_contracts()
    deployer, repd, *others = dev_accounts(4)
    spec = demo_network([repd.address, *(a.address for a in others)])
    deployment = deploy_network(w3, deployer, spec, work / "deployment.json", compiled=compiled).deployment
    ledger = bound_contracts(w3, deployment, compiled)["RecordLedger"]
    registry = deployment["contracts"]["AgencyRegistry"]["address"].lower()
    sender = TxManager(w3, repd, RevertDecoder({n: c.abi for n, c in compiled.items()}))
    domain = ReceiptDomain(w3.eth.chain_id, ledger.address)
    signer = ReceiptSigner(bytes(repd.key))
    base = dict(validate_record("title", title_example(), today=TODAY))
    out = work / "bundles"
    out.mkdir()
    now = int(time.time())
    for start in range(0, count, batch):
        sealed = []
        for i in range(start, min(count, start + batch)):
            record = {**base, "title_number": f"{i + 100000:07d}"}
            sealed.append(seal_record(RecordKey("REPD", "title", f"B{i:07d}", 1), record))
        tree = build_tree([s.leaf for s in sealed])
        prev, seq = ledger.functions.head(agency_code("REPD")).call()
        sender.transact(ledger.functions.anchor(record_type("title"), tree.root, len(sealed), seq + 1, prev))
        for s in sealed:
            message = Receipt("REPD", "title", s.key.record_id, 1, s.leaf, now, now + 3600)
            receipt = SignedReceipt(now, now + 3600, repd.address.lower(), signer.sign(message, domain))
            bundle = make_bundle(
                s, chain_id=domain.chain_id, ledger=ledger.address, registry=registry, receipt=receipt
            )
            anchored = with_anchor(bundle, tree.root, tree.proof(s.leaf))
            if shown:
                anchored = disclose(anchored, shown)
            (out / f"{s.key.record_id}.json").write_bytes(dump_bundle(anchored))
        print(f"  anchored and written {min(count, start + batch):,} / {count:,}", file=sys.stderr)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000, help="bundles to make and verify")
    parser.add_argument("--batch", type=int, default=5_000, help="leaves per anchored batch")
    parser.add_argument("--workers", type=int, default=None, help="sijill verify --workers")
    parser.add_argument(
        "--disclose", default="", help="comma-separated fields the bundles show (default: all)"
    )
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each with --baseline")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
    ):
        work = Path(tmp)
        anvil_pid = chain._process.pid if chain._process else 0  # a benchmark may peek
        started = time.perf_counter()
        shown = [f for f in args.disclose.split(",") if f]
        directory = make_bundles(chain.rpc_url, work, args.count, args.batch, shown)
        print(f"  made {args.count:,} bundles in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        figures: dict[str, Any] = {
            "count": args.count,
            "batch": args.batch,
            "disclosed": shown or "all",
            "cpus": len(os.sched_getaffinity(0)),
        }

        # 1. The command as a user runs it: a new process, start-up included.
        command = verify_command(directory, chain.rpc_url)
        if args.workers:
            command += ["--workers", str(args.workers)]
        anvil_before, children_before = cpu_seconds(anvil_pid), children_cpu()
        started = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            status = subprocess.run(command, stdout=devnull, check=False).returncode
        wall = time.perf_counter() - started
        figures["subprocess"] = rates(
            args.count,
            wall,
            children_cpu() - children_before,
            cpu_seconds(anvil_pid) - anvil_before,
            exit=status,
        )

        if args.baseline:
            figures["ab"] = compare(command, args.baseline.resolve(), args.rounds, args.count, anvil_pid)

        # 2. The same in-process: the verify function alone, with its request counts.
        options = Options([str(directory)], chain.rpc_url, lang=Lang.EN, as_json=True, workers=args.workers)
        anvil_before, children_before, own_before = cpu_seconds(anvil_pid), children_cpu(), own_cpu()
        started = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            summary = run(options, out=devnull)
        wall = time.perf_counter() - started
        figures["inProcess"] = rates(
            args.count,
            wall,
            own_cpu() - own_before + children_cpu() - children_before,
            cpu_seconds(anvil_pid) - anvil_before,
            exit=summary.status,
            httpRequests=summary.requests,
            rpcCalls=summary.calls,
            verdicts=dict(summary.verdicts),
        )

        # 3. ledger.verify alone on one core, its chain answers already in memory.
        texts = [p.read_bytes() for p in sorted(directory.iterdir())[:2000]]
        bundles = [load_bundle(t) for t in texts]
        client = RpcBatch(chain.rpc_url)
        found = find_deployment(client, figures_chain_id(client), bundles[0].ledger)
        views = ask_chain(client, bundles, [found] * len(bundles))
        now = int(time.time())
        started = time.perf_counter()
        verdicts = [verify(t, v, now=now).verdict for t, v in zip(texts, views, strict=True)]
        per_core = len(texts) / (time.perf_counter() - started)
        assert set(verdicts) == {Verdict.AUTHENTIC}, set(verdicts)
        figures["ledgerVerifyPerCore"] = round(per_core)

    table = Table("measure", "result", "target", title=f"sijill verify, {args.count:,} bundles against anvil")
    for name, f in (
        ("sijill verify DIR --json (subprocess)", figures["subprocess"]),
        ("in-process run()", figures["inProcess"]),
    ):
        table.add_row(name, f"{f['bundlesPerSecond']:,} /s", f"≥ {TARGET:,} /s")
        table.add_row(
            "  wall time, exit status, load average",
            f"{f['seconds']:.2f} s, exit {f['exit']}, load {f['loadAverage']:.1f}",
            "exit 0",
        )
        table.add_row(
            "  CPU: sijill (+ workers) / anvil", f"{f['cpuSeconds']:.1f} s / {f['anvilCpuSeconds']:.1f} s", ""
        )
        table.add_row(
            f"  CPU per bundle → rate with {figures['cpus']} idle CPUs",
            f"{f['cpuMsPerBundle']:.2f} ms → {f['idleMachineRate']:,} /s",
            f"≥ {TARGET:,} /s",
        )
    inproc = figures["inProcess"]
    table.add_row(
        "  JSON-RPC HTTP requests / calls", f"{inproc['httpRequests']:,} / {inproc['rpcCalls']:,}", ""
    )
    table.add_row(
        "ledger.verify alone, one core, answers in memory", f"{figures['ledgerVerifyPerCore']:,} /s", ""
    )
    for name in ("this", "baseline"):
        if name in figures.get("ab", {}):
            f = figures["ab"][name]
            table.add_row(
                f"A/B best of {figures['ab']['rounds']}: {name}",
                f"{f['bundlesPerSecond']:,} /s, {f['cpuMsPerBundle']:.3f} ms CPU per bundle",
                f"≥ {TARGET:,} /s",
            )
    Console(stderr=True).print(table)
    print(json.dumps(figures))


def rates(count: int, wall: float, cpu: float, anvil_cpu: float, **extra: Any) -> dict[str, Any]:
    """A run's figures: its rate, CPU (the command's and anvil's), and the rate it would reach
    with every CPU to itself (CPU per bundle does not depend on what else the machine runs)."""
    cpu_per_bundle = (cpu + anvil_cpu) / count
    return {
        "seconds": round(wall, 3),
        "bundlesPerSecond": round(count / wall),
        "loadAverage": round(os.getloadavg()[0], 2),
        "cpuSeconds": round(cpu, 2),
        "anvilCpuSeconds": round(anvil_cpu, 2),
        "cpuMsPerBundle": round(1000 * cpu_per_bundle, 3),
        "idleMachineRate": round(len(os.sched_getaffinity(0)) / cpu_per_bundle),
        **extra,
    }


def compare(command: list[str], baseline: Path, rounds: int, count: int, anvil_pid: int) -> dict[str, Any]:
    """The subprocess run in this tree and in `baseline`, alternating: best of `rounds` each."""
    trees = {"this": (Path(__file__).resolve().parents[1], sys.executable)}
    trees["baseline"] = (baseline, str(baseline / ".venv" / "bin" / "python"))
    best: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for name, (tree, python) in trees.items():
            before, anvil_before = children_cpu(), cpu_seconds(anvil_pid)
            started = time.perf_counter()
            with open(os.devnull, "w") as devnull:
                run = subprocess.run([python, *command[1:]], cwd=tree, stdout=devnull, check=False)
            run_figures = rates(
                count,
                time.perf_counter() - started,
                children_cpu() - before,
                cpu_seconds(anvil_pid) - anvil_before,
                exit=run.returncode,
            )
            print(f"  {name} ({tree}): {run_figures}", file=sys.stderr)
            kept = best.setdefault(name, run_figures)
            kept["bundlesPerSecond"] = max(kept["bundlesPerSecond"], run_figures["bundlesPerSecond"])
            kept["cpuMsPerBundle"] = min(kept["cpuMsPerBundle"], run_figures["cpuMsPerBundle"])
    return {**best, "baselineTree": str(baseline), "rounds": rounds}


def figures_chain_id(client: RpcBatch) -> int:
    return int(client.call("eth_chainId", []), 16)


if __name__ == "__main__":
    main()
