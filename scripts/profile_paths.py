"""Flame graphs of the paths issue 18 makes faster, taken with py-spy on real processes as their
benchmarks run them, and the top costs in each (docs/performance.md).

Usage: .venv/bin/python scripts/profile_paths.py [--paths ingest,serve,verify] [--out docs/performance]
           [--records 20000] [--bundles 5000] [--create-rate 500] [--seconds 10] [--rate 200]
       .venv/bin/python scripts/profile_paths.py --summary docs/performance/after/*.svg

Each path gets a fresh anvil (1 s blocks) and deployment of its own:
- ingest: `sijill node ingest` of --records titles on LevelDB with bench_processes' options,
  started by py-spy (`py-spy record -- python -m cli.main node ingest ...`);
- serve: one `sijill serve` for REPD as bench_api starts it, py-spy attached to it (`--pid
  --nonblocking`) first while bench_api's load process sends creates at --create-rate a second
  for --seconds (serve-create.svg; serve-create-gil.svg with `--gil`: only the thread holding
  the GIL), then while it uploads --records NDJSON lines in one bulk request (serve-bulk.svg);
- verify: `sijill verify DIR --json` over --bundles bundles made as bench_verify makes them,
  its worker processes included (`--subprocesses`).
Writes OUT/<name>.svg (`--format flamegraph --nolineno`: one frame per function) and prints, for
each graph, the project's functions by share of samples (inclusive) and where the samples were
spent (their own time, by package or project module). py-spy leaves out threads it finds idle
(sleeping, waiting on a socket) but counts a thread blocked in a lock's acquire as running, so a
share is of the samples of busy or lock-waiting threads, not of wall time.
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "python"))

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
PROJECT = ("ledger", "node", "api", "cli")


def py_spy(out: Path, rate: int, *target: str) -> list[str]:
    """A `py-spy record` command writing the flame graph `out` of `target` (`--pid N` or `-- cmd`)."""
    return [
        PY_SPY,
        "record",
        "--format",
        "flamegraph",
        "--nolineno",
        "--rate",
        str(rate),
        "-o",
        str(out),
        *target,
    ]


@contextmanager
def attached(pid: int, rate: int, *outs: tuple[Path, tuple[str, ...]]) -> Any:
    """One py-spy per (graph, options) attached to process `pid` for the duration of the block;
    each writes its graph when it gets SIGINT (as on Ctrl-C)."""
    # --nonblocking: pausing every thread of `sijill serve` (its thread pool has dozens) at each
    # sample took the create rate from ~375/s to ~80/s; unpaused stacks are rarely torn. It also
    # lets two recorders read the same process at once.
    recorders = [
        subprocess.Popen(
            py_spy(out, rate, "--nonblocking", *options, "--pid", str(pid)), stdout=subprocess.DEVNULL
        )
        for out, options in outs
    ]
    time.sleep(1.0)  # attached before the load starts
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            if recorder.wait(60) != 0:
                raise SystemExit(f"py-spy --pid {pid} exited {recorder.returncode}")


def profile_ingest(out: Path, args: argparse.Namespace) -> None:
    from bench_processes import init_node

    from ledger.records.examples import ndjson_lines
    from node.chain.client import connect
    from node.chain.deploy import demo_network, deploy_network, dev_accounts
    from node.chain.devchain import DevChain, DevChainConfig, free_port
    from node.chain.toolchain import compile_contracts

    accounts = dev_accounts(4)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
    ):
        root = Path(tmp)
        spec = demo_network([a.address for a in accounts[1:]])
        deploy_network(
            connect(chain.rpc_url), accounts[0], spec, root / "deployment.json", compiled=compile_contracts()
        )
        env = {
            **os.environ,
            "SIJILL_SIGNER_PASSPHRASE": secrets.token_urlsafe(16),
            "SIJILL_KEK": secrets.token_hex(32),
        }
        (key_file := root / "repd.key").write_text(bytes(accounts[1].key).hex())
        data_dir = init_node(root, "leveldb", key_file, env, None)
        records = root / "titles.ndjson"
        with records.open("w") as handle:
            handle.writelines(ndjson_lines(args.records))
        command = [
            sys.executable,
            "-m",
            "cli.main",
            "node",
            "ingest",
            str(records),
            "--data-dir",
            str(data_dir),
        ]
        command += ["--rpc", chain.rpc_url, "--deployment", str(root / "deployment.json"), "--agency", "REPD"]
        command += ["--batch-size", "20000", "--max-age", "1", "--chunk", "2000"]
        started = time.perf_counter()
        subprocess.run(py_spy(out, args.rate, "--", *command), env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"  ingest of {args.records:,} records: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def profile_serve(out: Path, args: argparse.Namespace) -> None:
    import json

    from bench_api import repd_server, run_load
    from rich.console import Console

    from ledger.records.examples import numbered_records

    console = Console(stderr=True)
    with repd_server(console, "--rate-limit", "0", "--public-rate", "0", "--max-age", "1.0") as (
        server,
        root,
        *_,
    ):
        token = server.tokens["officer"]
        # py-spy counts a thread blocked in a lock's acquire as running: the second graph keeps
        # only the samples of the thread holding the GIL, what a one-process server spends its core on.
        with attached(
            server.process.pid,
            args.rate,
            (out / "serve-create.svg", ()),
            (out / "serve-create-gil.svg", ("--gil",)),
        ):
            result = run_load(
                "open", args.seconds + 130, driver="raw", url=server.url, token=token, rate=args.create_rate,
                warmup=1.0, seconds=args.seconds, connections=64, start_number=0,
            )  # fmt: skip
        p99 = result["latency_ms"]["p99"]
        console.log(f"create at {args.create_rate}/s: {result['achieved_rate']}/s, p99 {p99} ms")
        time.sleep(1.5)  # the batcher anchors what the create load left
        ndjson = root / "bulk.ndjson"
        with ndjson.open("w", encoding="utf-8") as handle:
            for record in numbered_records("title", args.records, start=1_000_000):
                handle.write(json.dumps({"recordType": "title", "record": record}, ensure_ascii=False) + "\n")
        with attached(server.process.pid, args.rate, (out / "serve-bulk.svg", ())):
            result = run_load("bulk", 3600, url=server.url, token=token, path=str(ndjson), lines=args.records)
        console.log(f"bulk of {args.records:,} lines: {result['records_per_s']:,}/s")


def profile_verify(out: Path, args: argparse.Namespace) -> None:
    from bench_verify import make_bundles, verify_command

    from node.chain.devchain import DevChain, DevChainConfig, free_port

    with (
        tempfile.TemporaryDirectory(prefix="profile-verify-") as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
    ):
        directory = make_bundles(chain.rpc_url, Path(tmp), args.bundles, 5000)
        command = verify_command(directory, chain.rpc_url)
        started = time.perf_counter()
        subprocess.run(
            py_spy(out, args.rate, "--subprocesses", "--", *command), check=True, stdout=subprocess.DEVNULL
        )
        print(f"  verify of {args.bundles:,} bundles: {time.perf_counter() - started:.1f} s", file=sys.stderr)


# ----------------------------------------------------------------------------- reading a graph


@dataclass
class Frame:
    """One box of the flame graph: a function in one call path, and its samples."""

    function: str
    file: str
    x: int
    samples: int
    children: list[Frame] = field(default_factory=list)

    @property
    def own(self) -> int:
        return self.samples - sum(c.samples for c in self.children)


BOX = re.compile(r'<title>([^<]*)</title><rect x="[^"]*" y="(\d+)"[^>]*fg:x="(\d+)" fg:w="(\d+)"')
TITLE = re.compile(r"^(.*?)(?: \((.*)\))? \([\d,]+ samples?, [\d.]+%\)$")


def read_graph(svg: Path) -> Frame:
    """The tree of frames of a py-spy (inferno) flame graph: each box's depth is its y, its
    samples fg:w from fg:x on; a box's children are the boxes one row further within its span."""
    rows: dict[int, list[Frame]] = {}
    for title, y, x, w in BOX.findall(svg.read_text()):
        match = TITLE.match(html.unescape(title))
        name, file = (match[1], match[2] or "") if match else (title, "")
        rows.setdefault(int(y), []).append(Frame(name, file, int(x), int(w)))
    depths = sorted(rows)
    (root,) = rows[depths[0]]
    for upper, lower in itertools.pairwise(depths):
        parents = sorted(rows[upper], key=lambda f: f.x)
        at = 0
        for child in sorted(rows[lower], key=lambda f: f.x):
            while at + 1 < len(parents) and parents[at].x + parents[at].samples <= child.x:
                at += 1
            parents[at].children.append(child)
    return root


def area(file: str) -> str:
    """Where a frame's code lives: a project module, an installed package, or a one-file module
    (the standard library's, mostly). py-spy names files from the sys.path entry they were found in."""
    if not file:
        return "(native or unknown)"
    top = file.split("/", 1)[0]
    if top in PROJECT:
        return file
    if "/" in file and not file.startswith(("<", "/")):
        return f"{top} (package)"
    return file.rsplit("/", 1)[-1].removesuffix(".py")


def summarise(svg: Path, top: int = 20) -> str:
    """Markdown: the project's functions by inclusive share, and own time by area."""
    root = read_graph(svg)
    inclusive: Counter[tuple[str, str]] = Counter()
    own: Counter[str] = Counter()

    def walk(frame: Frame, path: frozenset[tuple[str, str]]) -> None:
        key = (frame.function, area(frame.file))
        if key not in path:  # a recursive function counts once per stack
            inclusive[key] += frame.samples
        own[area(frame.file)] += frame.own
        for child in frame.children:
            walk(child, path | {key})

    for child in root.children:
        walk(child, frozenset())
    total = root.samples
    lines = [f"### {svg.name}: {total:,} samples", "", "| project function (inclusive) | module | share |"]
    lines.append("| --- | --- | --- |")
    project = [(k, n) for k, n in inclusive.most_common() if k[1].split("/", 1)[0] in PROJECT]
    lines += [f"| `{f}` | {m} | {100 * n / total:.1f} % |" for (f, m), n in project[:top]]
    lines += ["", "| area (own time) | share |", "| --- | --- |"]
    lines += [f"| {a} | {100 * n / total:.1f} % |" for a, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paths", default="ingest,serve,verify")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance")
    parser.add_argument("--records", type=int, default=20_000, help="ingested, and uploaded in bulk")
    parser.add_argument("--bundles", type=int, default=5_000, help="verified by sijill verify")
    parser.add_argument("--create-rate", type=float, default=500, help="creates a second offered to serve")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of create load")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples a second")
    parser.add_argument("--summary", nargs="*", type=Path, help="only summarise these flame graphs")
    args = parser.parse_args()
    if args.summary is not None:
        print("\n".join(summarise(svg) for svg in args.summary))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.paths.split(","):
        print(f"{name} (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        if name == "ingest":
            profile_ingest(out := args.out / "ingest-leveldb.svg", args)
            written.append(out)
        elif name == "serve":
            profile_serve(args.out, args)
            written += [args.out / f"serve-{n}.svg" for n in ("create", "create-gil", "bulk")]
        elif name == "verify":
            profile_verify(out := args.out / "verify.svg", args)
            written.append(out)
        else:
            parser.error(f"no path called {name!r}: ingest, serve or verify")
    print("\n".join(summarise(svg) for svg in written))


if __name__ == "__main__":
    main()
