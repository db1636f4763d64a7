"""Benchmark of what a certificate's QR code sets off, on a real anvil (1 s blocks) and one real
`sijill serve` for REPD: the shared bundle the verify page fetches, the `/rpc` calls it makes,
the certificate page and PDF, and the whole browser verification (the page's JavaScript, run
in Node over the node's `/rpc`, as many times as `--verifications`).

Usage: .venv/bin/python scripts/bench_citizen.py [--seconds 10] [--concurrency 32] [--pdfs 20]
       [--verifications 200] [--quick]

The public rate limits are off (`--public-rate 0`) so that the figures are the node's, not the
limits'. HTTP load comes from a separate process (scripts/bench_api.py's closed loop: each of
`--concurrency` workers sends its next request when its last one is answered). PDFs and pages
are asked for one at a time (a node renders PDFs one at a time). Prints a table and a final
JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "python"), str(ROOT / "scripts")]

import httpx  # noqa: E402
from bench_api import CpuSampler, _cpu_text, _machine, _ms, closed_phase, repd_server  # noqa: E402

from ledger.records.examples import title_example  # noqa: E402


def _timed(client: httpx.Client, path: str, count: int) -> dict[str, Any]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
    return {
        "count": count,
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "first_ms": round(times[0] * 1000, 1),
        "bytes": len(answer.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per HTTP phase (10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per HTTP phase (2)")
    parser.add_argument("--concurrency", type=int, default=32, help="in-flight requests of the HTTP phases")
    parser.add_argument("--pdfs", type=int, default=None, help="certificate PDFs rendered one by one (20)")
    parser.add_argument("--verifications", type=int, default=None, help="browser verifications in Node (200)")
    parser.add_argument("--quick", action="store_true", help="3 s phases, 5 PDFs, 50 verifications")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    pdfs = args.pdfs if args.pdfs is not None else (5 if args.quick else 20)
    verifications = args.verifications if args.verifications is not None else (50 if args.quick else 200)

    from api_helpers import wait_anchored
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    machine = _machine()
    figures: dict[str, Any] = {"bench": "citizen", "machine": machine}
    with repd_server(console, "--rate-limit", "0", "--public-rate", "0", "--max-age", "1.0") as (
        server,
        root,
        deployment,
        after,
    ):
        sampler = CpuSampler(server.process.pid)
        sampler.start()
        ledger = json.loads(deployment.read_text())["contracts"]["RecordLedger"]["address"]
        with server.client("officer") as officer:
            created = officer.post("/v1/records", json={"recordType": "title", "record": title_example()})
            created.raise_for_status()
            wait_anchored(officer, created.json()["links"]["bundle"]).raise_for_status()
            share = officer.post(
                f"/v1/records/title/{created.json()['recordId']}/shares",
                json={"fields": ["/title_number", "/owners/0/name", "/owners/0/share", "/use"]},
            )
            share.raise_for_status()
        token = share.json()["token"]
        bundle_file = root / "shared.json"
        with httpx.Client(base_url=server.url, timeout=60) as public:
            deadline = time.monotonic() + 60
            while (
                public.post("/v1/verify", content=public.get(f"/v1/shared/{token}").content).json()["verdict"]
                != "authentic-current"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the shared bundle does not verify")
                time.sleep(0.3)
            bundle_file.write_bytes(public.get(f"/v1/shared/{token}").content)

            def closed(name: str, method: str, path: str, body: bytes | None) -> dict[str, Any]:
                return closed_phase(
                    console,
                    sampler,
                    server.url,
                    name,
                    method,
                    path,
                    body,
                    driver="raw",
                    concurrency=args.concurrency,
                    warmup=warmup,
                    seconds=seconds,
                )

            figures["shared"] = closed("GET /v1/shared/{token}", "GET", f"/v1/shared/{token}", None)
            leaf_status = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"to": ledger, "data": "0xd27c9c92" + "00" * 64}, "latest"],
            }
            figures["rpc"] = closed("POST /rpc (eth_call)", "POST", "/rpc", json.dumps(leaf_status).encode())
            figures["page"] = closed("GET /V/{token}", "GET", f"/V/{token}", None)

            console.log(f"certificates: {pdfs} PDFs and {pdfs} pages, one at a time")
            figures["certificate_pdf"] = _timed(public, f"/c/{token}.pdf", pdfs)
            figures["certificate_html"] = _timed(public, f"/c/{token}", pdfs)

        console.log(f"browser verification: {verifications} in Node over the node's /rpc")
        started = time.perf_counter()
        done = subprocess.run(
            [
                "node",
                str(ROOT / "tests" / "js" / "verify_cli.mjs"),
                f"{server.url}/rpc",
                ledger,
                str(int(time.time())),
                *([str(bundle_file)] * verifications),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = time.perf_counter() - started
        verdicts = {json.loads(line)["verdict"] for line in done.stdout.splitlines()}
        figures["browser_verify"] = {
            "count": verifications,
            "seconds": round(elapsed, 2),
            "ms_each": round(elapsed / verifications * 1000, 1),
            "verdicts": sorted(verdicts),
        }
        sampler.stopped.set()
    figures["serve_exit"] = after["exit"]

    table = Table(
        "measure",
        "figure",
        title=f"Sijill certificates and verify page; {machine['nproc']} CPUs, one `sijill serve` on anvil",
    )
    for key, name in (
        ("shared", "GET /v1/shared/{token}"),
        ("rpc", "POST /rpc, one eth_call"),
        ("page", "GET /V/{token}"),
    ):
        result = figures[key]
        table.add_row(f"{name}: requests/s", f"{result['rps']:,.0f} ({_cpu_text(result)})")
        table.add_row("  latency p50 / p90 / p99 / max", _ms(result))
    for key, name in (("certificate_pdf", "certificate PDF"), ("certificate_html", "certificate page")):
        result = figures[key]
        table.add_row(
            f"{name}: p50 / max (first)",
            f"{result['p50_ms']:,.0f} / {result['max_ms']:,.0f} ms ({result['first_ms']:,.0f} ms), "
            f"{result['bytes']:,} bytes",
        )
    browser = figures["browser_verify"]
    table.add_row(
        "verification as the page does it (JS, /rpc): each",
        f"{browser['ms_each']:,.1f} ms over {browser['count']} ({', '.join(browser['verdicts'])})",
    )
    console.print(table)
    print(json.dumps({k: v for k, v in figures.items()}, default=str))


if __name__ == "__main__":
    main()
