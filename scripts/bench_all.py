"""Every benchmark of issue 18 in one run, beside the goals of its table: `make bench`.

Usage: .venv/bin/python scripts/bench_all.py [--quick] [--only ledger,node,...] [--out PATH]

Runs each benchmark script below (scripts/bench_*.py) as a subprocess of its own, one after the
other, at a size that keeps the whole run under about 10 minutes on a 2-core machine
(`--quick`, or BENCH_QUICK=1 under make: about a minute each, to check that they run; their
figures are noisier and some are not comparable with the full run). Each script's output goes
to build/bench/<name>.log; its last stdout line is the JSON of its figures. Writes
build/bench/results.json: one entry per measure with its figure, unit, the goal of issue 18's
table (if it has one), the command that gave it, the commit, the date and the load average when
that script started, since the machine is shared and a figure means little without it. Prints
one Markdown table of measure, figure and goal, as docs/performance.md keeps them. Exits 1 if a
benchmark failed: its measures are kept, without a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1500  # seconds a script may run before it is stopped (the full api run takes ~3 min)


@dataclass(frozen=True)
class Bench:
    """One benchmark script and the arguments of a full and of a quick run."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = (
    Bench("ledger", "bench_ledger.py", (), ("--records", "5000", "--tree", "100000", "--bundles", "1000")),
    Bench(
        "node",
        "bench_node.py",
        ("--records", "100000", "--naive", "1000"),
        ("--records", "10000", "--naive", "200"),
    ),
    Bench(
        "api",
        "bench_api.py",
        ("--seconds", "10", "--rates", "200,500", "--bulk-records", "50000"),
        ("--quick", "--rates", "200,500", "--bulk-records", "5000"),
    ),
    Bench("verify", "bench_verify.py", ("--count", "10000"), ("--count", "2000")),
    Bench(
        "processes",
        "bench_processes.py",
        ("--records", "50000", "--workers", "1"),
        ("--records", "5000", "--workers", "1"),
    ),
    Bench(
        "backup",
        "bench_backup.py",
        ("--records", "100000", "--baseline-seconds", "5"),
        ("--records", "5000", "--baseline-seconds", "2"),
    ),
)

Figures = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Measure:
    """One row of the table: where its figure comes from and, if issue 18 sets one, its goal.
    `name` may name fields of its benchmark's figures (`{records:,}`)."""

    benches: tuple[str, ...]
    name: str
    unit: str
    figure: Callable[[Figures], float]
    goal: float | None = None
    better: str = "higher"  # or "lower"
    goal_text: str = ""  # how the table says the goal, when not `≥ goal unit`


def _run(figures: Figures, bench: str, name: str) -> dict[str, Any]:
    """The run called `name` of bench_processes' figures."""
    return next(r for r in figures[bench]["runs"] if r["run"] == name)


MEASURES = (
    Measure(
        ("ledger",),
        "records hashed into leaves (ledger core, one core)",
        "records/s",
        lambda f: f["ledger"]["sealedPerSecond"],
        30_000,
    ),
    Measure(
        ("ledger",),
        "records validated (schemas, one core)",
        "records/s",
        lambda f: f["ledger"]["validatedPerSecond"],
        30_000,
    ),
    Measure(
        ("ledger",),
        "bundles verified from JSON text (ledger core, one core)",
        "bundles/s",
        lambda f: f["ledger"]["verifiedFromTextPerSecond"],
    ),
    Measure(
        ("ledger",),
        "Merkle tree of {tree:,} leaves with every proof",
        "s",
        lambda f: f["ledger"]["treeAndProofsSeconds"],
        better="lower",
    ),
    Measure(
        ("node",),
        "node bulk intake, end to end to anchored ({records:,} records, one process, LevelDB)",
        "records/s",
        lambda f: f["node"]["endToEndPerSecond"],
        5_000,
    ),
    Measure(
        ("node",), "  of which durable intake alone", "records/s", lambda f: f["node"]["intakePerSecond"]
    ),
    Measure(
        ("node",),
        "naive: one transaction per record ({naive:,} records)",
        "records/s",
        lambda f: f["node"]["naivePerSecond"],
    ),
    Measure(("node",), "node vs naive (one process, LevelDB)", "×", lambda f: f["node"]["nodeVsNaive"]),
    Measure(
        ("node",),
        "1,000,000 records to anchored (extrapolated from {records:,})",
        "s",
        lambda f: 1_000_000 / f["node"]["endToEndPerSecond"],
        200,
        "lower",
    ),
    Measure(
        ("node",), "peak RSS of the node process", "MB", lambda f: f["node"]["peakRssMb"], better="lower"
    ),
    Measure(
        ("processes",),
        "sijill node ingest to anchored, one process, LevelDB ({records:,} records)",
        "records/s",
        lambda f: _run(f, "processes", "1 process, LevelDB")["recordsPerSecond"],
    ),
    Measure(
        ("processes",),
        "sijill node ingest --workers 1 to anchored, LevelDB (one intake worker)",
        "records/s",
        lambda f: _run(f, "processes", "1 process + 1 intake worker, LevelDB")["recordsPerSecond"],
    ),
    Measure(
        ("processes",),
        "sijill node ingest to anchored, one process, PostgreSQL",
        "records/s",
        lambda f: _run(f, "processes", "1 process, PostgreSQL")["recordsPerSecond"],
    ),
    Measure(
        ("processes",),
        "sijill node ingest to anchored, two processes, one PostgreSQL",
        "records/s",
        lambda f: _run(f, "processes", "2 processes, one PostgreSQL")["recordsPerSecond"],
        8_000,
    ),
    Measure(
        ("processes", "node"),
        "two processes on PostgreSQL vs naive (two scripts' runs)",
        "×",
        lambda f: (
            _run(f, "processes", "2 processes, one PostgreSQL")["recordsPerSecond"]
            / f["node"]["naivePerSecond"]
        ),
        130,
    ),
    Measure(
        ("api",),
        "API create at 500/s offered: achieved",
        "requests/s",
        lambda f: f["api"]["create"]["500"]["achieved_rate"],
        # Answers over the time from the first planned send to the last answer: an open loop
        # that keeps up reaches a little under the offered rate, never quite all of it.
        495,
        goal_text="500 requests/s sustained (≥ 495)",
    ),
    Measure(
        ("api",),
        "API create at 500/s offered: p99",
        "ms",
        lambda f: f["api"]["create"]["500"]["latency_ms"]["p99"],
        25,
        "lower",
    ),
    Measure(
        ("api",),
        "API create at 200/s offered: p99",
        "ms",
        lambda f: f["api"]["create"]["200"]["latency_ms"]["p99"],
        better="lower",
    ),
    Measure(
        ("api",),
        "API bulk NDJSON, one request",
        "records/s",
        lambda f: f["api"]["bulk"]["records_per_s"],
        5_000,
    ),
    Measure(
        ("api",), "POST /v1/verify, 32 in flight", "requests/s", lambda f: f["api"]["verify"]["rps"], 2_000
    ),
    Measure(
        ("api",),
        "GET /healthz, 32 in flight (HTTP stack ceiling)",
        "requests/s",
        lambda f: f["api"]["healthz"]["rps"],
    ),
    Measure(
        ("verify",),
        "sijill verify, whole process ({count:,} bundles)",
        "bundles/s",
        lambda f: f["verify"]["subprocess"]["bundlesPerSecond"],
        5_000,
    ),
    Measure(
        ("verify",),
        "  the same in-process",
        "bundles/s",
        lambda f: f["verify"]["inProcess"]["bundlesPerSecond"],
    ),
    Measure(
        ("verify",),
        "  ledger.verify alone, one core, chain answers in memory",
        "bundles/s",
        lambda f: f["verify"]["ledgerVerifyPerCore"],
    ),
    Measure(
        ("backup",),
        "online backup of {records:,} records",
        "s",
        lambda f: f["backup"]["backupSeconds"],
        better="lower",
    ),
    Measure(
        ("backup",),
        "intake during the backup, share of intake alone",
        "%",
        lambda f: 100 * f["backup"]["intakeDuringPerSecond"] / f["backup"]["intakeAlonePerSecond"],
    ),
)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def shown(path: str) -> str:
    """A path as a reader at the project root types it."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def run_bench(bench: Bench, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Run one script; its command, start date, load average, seconds, exit status and figures."""
    command = [sys.executable, str(ROOT / "scripts" / bench.script), *(bench.quick if quick else bench.full)]
    text = shlex.join([shown(c) for c in command])
    load = round(os.getloadavg()[0], 2)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{bench.name}: {text}  (load {load})", file=sys.stderr, flush=True)
    log = out_dir / f"{bench.name}.log"
    started = time.monotonic()
    # A session of its own: on a time-out the whole group goes (anvil, sijill serve, load processes).
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=handle, text=True, start_new_session=True
        )
        try:
            stdout, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                stdout, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, _ = process.communicate()
        handle.write(stdout)
    seconds = time.monotonic() - started
    figures = None
    lines = stdout.strip().splitlines()
    if process.returncode == 0 and lines:
        with contextlib.suppress(json.JSONDecodeError):
            figures = json.loads(lines[-1])
    status = "done" if figures is not None else f"FAILED (exit {process.returncode}, see {shown(str(log))})"
    print(f"  {status} in {seconds:,.0f} s", file=sys.stderr, flush=True)
    return {
        "command": text,
        "date": date,
        "loadAverage": load,
        "seconds": round(seconds, 1),
        "exit": process.returncode,
        "figures": figures,
    }


def goal_text(measure: Measure) -> str:
    if measure.goal is None or measure.goal_text:
        return measure.goal_text
    return f"{'≥' if measure.better == 'higher' else '≤'} {measure.goal:,g} {measure.unit}"


def entries(runs: dict[str, dict[str, Any]], commit: str) -> list[dict[str, Any]]:
    """One entry per measure whose benchmarks ran (a figure of None: one of them failed)."""
    figures = {name: run["figures"] for name, run in runs.items() if run["figures"] is not None}
    out = []
    for measure in MEASURES:
        if not all(b in runs for b in measure.benches):
            continue
        own = figures.get(measure.benches[0], {})
        try:
            name = measure.name.format(**own)
        except (KeyError, ValueError):
            name = measure.name
        try:
            figure: float | None = round(float(measure.figure(figures)), 2)
        except (KeyError, TypeError, StopIteration, ZeroDivisionError):
            figure = None
        met = None
        if figure is not None and measure.goal is not None:
            met = figure >= measure.goal if measure.better == "higher" else figure <= measure.goal
        first = runs[measure.benches[0]]
        out.append(
            {
                "name": name.strip(),
                "figure": figure,
                "unit": measure.unit,
                "goal": goal_text(measure) or None,
                "goalMet": met,
                "command": " ; ".join(runs[b]["command"] for b in measure.benches),
                "commit": commit,
                "date": first["date"],
                "loadAverage": first["loadAverage"],
                "indent": len(measure.name) - len(measure.name.lstrip()),
            }
        )
    return out


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    """The table docs/performance.md keeps: measure, figure, goal (✓ met, ✗ missed)."""
    lines = [header, "", "| measure | figure | goal |", "| --- | --- | --- |"]
    for row in rows:
        mark = {True: " ✓", False: " ✗", None: ""}[row["goalMet"]]
        name = "↳ " + row["name"] if row["indent"] else row["name"]
        lines.append(f"| {name} | {number(row['figure'], row['unit'])} | {row['goal'] or ''}{mark} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about a minute a script, to check they run")
    names = ",".join(b.name for b in BENCHES)
    parser.add_argument("--only", default="", help=f"comma-separated benchmarks among {names}")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "results.json")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    unknown = only - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"no benchmark called {', '.join(sorted(unknown))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    load = round(os.getloadavg()[0], 2)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    runs = {b.name: run_bench(b, args.quick, args.out.parent) for b in BENCHES if not only or b.name in only}
    rows = entries(runs, commit)
    results = {
        "date": date,
        "commit": commit,
        "uncommittedChanges": dirty,
        "loadAverage": load,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "measures": [{k: v for k, v in row.items() if k != "indent"} for row in rows],
        "runs": runs,
    }
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    kind = "quick run (BENCH_QUICK=1)" if args.quick else "full run"
    header = (
        f"`make bench`, {kind}: {date}, commit {commit}{' (with uncommitted changes)' if dirty else ''}, "
        f"{os.cpu_count()} CPUs, load average {load} at start"
    )
    print(markdown(rows, header))
    print(f"\n{shown(str(args.out))}", file=sys.stderr)
    return 0 if all(run["figures"] is not None for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
