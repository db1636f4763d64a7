"""Benchmark of the HTTP API (`sijill serve`) on a real anvil (1 s blocks): single-record create
latency under an open-loop load, bulk NDJSON throughput, verification throughput, and /healthz
as the ceiling of the HTTP stack itself on this machine.

Usage: .venv/bin/python scripts/bench_api.py [--seconds 10] [--rates 200,500] [--bulk-records 50000]
       .venv/bin/python scripts/bench_api.py --quick      # 3 s per phase, 10,000 bulk records
       [--driver raw|httpx] [--connections 64] [--concurrency 32] [--serve-log PATH]
       [--store leveldb|postgresql]

Starts its own anvil, a fresh deployment and one `sijill serve` for REPD (no per-token or public
rate limit: every load comes from one address; batches close after 1 s) in a temporary
directory. Every load comes from a separate process (asyncio on uvloop over keep-alive HTTP/1.1
connections; a lean hand-written client by default, `--driver httpx` for httpx.AsyncClient,
which costs milliseconds of CPU a request and so becomes the limit on a small machine):

- create: `POST /v1/records` at a fixed arrival rate (open loop). Each request is sent at its
  planned time whatever became of the earlier ones, and its latency counts from that planned
  time, so queueing (on the server, in the connection pool, or a late client) is never hidden.
  `send lag` is how late the client itself got a request out: large values mean the load
  process, not the server, was the limit.
- bulk: one `POST /v1/records/bulk` streaming an NDJSON file; records/s = lines / time from the
  first byte sent to the last answer byte (intake durable, receipts signed; not yet anchored).
- verify and /healthz: closed loop, `--concurrency` requests in flight, as fast as they come back.

After a warm-up (`--warmup` s, not counted) each phase is measured for `--seconds`. CPU figures
are percent of one core over the measured window: server (the `sijill serve` process, which is
bound to about one core by the GIL), load (the load process) and others (anvil and whatever else
runs on the machine: a large figure means the figures are low because the machine was shared).
Prints a table beside the API issue's targets and a final JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import resource
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

import httpx

from ledger.records.examples import numbered_records

# ----------------------------------------------------------------------------- load process


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of latencies in seconds, as milliseconds (nearest rank)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000, 2)

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": round(ordered[-1] * 1000, 2)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RawPool:
    """A lean HTTP/1.1 client: `size` keep-alive connections over asyncio streams, each request
    taking a free one (waiting for it counts in its latency). Some 20 µs of CPU a request where
    httpx's AsyncClient spent 2-6 ms on the 2-vCPU machine it was written on, so the load process
    does not take the server's CPU. Reads Content-Length and chunked answers; reopens closed connections."""

    def __init__(self, url: str, size: int, headers: dict[str, str]) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.extra = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{self.host}:{self.port}", **headers}.items()
        )
        self.size = size
        self.idle: asyncio.Queue[list[Any]] = asyncio.Queue()

    async def __aenter__(self) -> RawPool:
        for _ in range(self.size):
            self.idle.put_nowait([None, None])
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            if writer is not None:
                writer.close()

    async def request(self, method: str, path: str, body: bytes | None) -> int | str:
        conn = await self.idle.get()
        try:
            if conn[1] is None:
                conn[0], conn[1] = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
            writer.write(f"{method} {path} HTTP/1.1\r\n{self.extra}{length}\r\n".encode() + (body or b""))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            fields = head.lower()
            if b"transfer-encoding: chunked" in fields:
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            else:
                at = fields.find(b"content-length:")
                if at >= 0:
                    await reader.readexactly(int(fields[at + 15 : fields.index(b"\r\n", at)]))
            if b"connection: close" in fields:
                writer.close()
                conn[:] = [None, None]
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if conn[1] is not None:
                conn[1].close()
            conn[:] = [None, None]
            return type(exc).__name__
        finally:
            self.idle.put_nowait(conn)


class HttpxPool:
    """The same interface over httpx.AsyncClient (`--driver httpx`), for a cross-check."""

    def __init__(self, url: str, size: int, headers: dict[str, str]) -> None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60.0)

    async def __aenter__(self) -> HttpxPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, body: bytes | None) -> int | str:
        try:
            return (await self.client.request(method, path, content=body)).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__


def _pool(driver: str, url: str, size: int, headers: dict[str, str]) -> RawPool | HttpxPool:
    return (RawPool if driver == "raw" else HttpxPool)(url, size, headers)


async def _open_loop(
    driver: str,
    url: str,
    token: str,
    rate: float,
    warmup: float,
    seconds: float,
    connections: int,
    start_number: int,
) -> dict[str, Any]:
    """POST /v1/records at `rate` a second; latency from each request's planned send time."""
    warm = round(warmup * rate)
    total = warm + round(seconds * rate)
    bodies = [
        json.dumps({"recordType": "title", "record": record}, ensure_ascii=False).encode()
        for record in numbered_records("title", total, start=start_number)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    results: list[tuple[int | str, float, float, float] | None] = [None] * total
    async with _pool(driver, url, connections, headers) as pool:

        async def one(i: int, planned: float) -> None:
            sent = time.monotonic()
            status = await pool.request("POST", "/v1/records", bodies[i])
            done = time.monotonic()
            results[i] = (status, done - planned, sent - planned, done)

        tasks = []
        begin = time.monotonic() + 0.05
        cpu_at_measure = 0.0
        for i in range(total):
            planned = begin + i / rate
            if i == warm:
                cpu_at_measure = _cpu()
            delay = planned - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, planned)))
        await asyncio.wait(tasks, timeout=120)
        cpu_used = _cpu() - cpu_at_measure
    window_start = begin + warm / rate
    measured = [r for r in results[warm:] if r is not None]
    unanswered = total - warm - len(measured)
    window_end = max(r[3] for r in measured) if measured else window_start + seconds
    ok = [r for r in measured if r[0] == 201]
    errors = Counter(str(r[0]) for r in measured if r[0] != 201)
    if unanswered:
        errors["no answer in 120 s"] = unanswered
    return {
        "target_rate": rate,
        "requests": total - warm,
        "ok": len(ok),
        "achieved_rate": round(len(ok) / (window_end - window_start), 1),
        "latency_ms": _percentiles([r[1] for r in measured]),
        "send_lag_ms": _percentiles([r[2] for r in measured]),
        "errors": dict(errors),
        "load_cpu_pct": round(100 * cpu_used / (window_end - window_start), 1),
        "window": (window_start, window_end),
    }


async def _closed_loop(
    driver: str,
    url: str,
    method: str,
    path: str,
    body: bytes | None,
    expect: int,
    concurrency: int,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """`concurrency` workers, each sending the next request as soon as its last one answered."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    last_done = 0.0
    async with _pool(driver, url, concurrency, headers) as pool:
        measure_from = time.monotonic() + warmup
        end = measure_from + seconds
        cpu: dict[str, float] = {}

        async def snapshot() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
            cpu["from"] = _cpu()

        async def worker() -> None:
            nonlocal last_done
            while (started := time.monotonic()) < end:
                status = await pool.request(method, path, body)
                done = time.monotonic()
                if started >= measure_from:
                    last_done = max(last_done, done)
                    if status == expect:
                        latencies.append(done - started)
                    else:
                        errors[str(status)] += 1

        await asyncio.wait(
            [asyncio.create_task(c) for c in (snapshot(), *(worker() for _ in range(concurrency)))],
            timeout=warmup + seconds + 120,
        )
        cpu_used = _cpu() - cpu["from"]
    window = last_done - measure_from if last_done else seconds
    return {
        "concurrency": concurrency,
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "rps": round(len(latencies) / window, 1),
        "latency_ms": _percentiles(latencies),
        "errors": dict(errors),
        "load_cpu_pct": round(100 * cpu_used / window, 1),
        "window": (measure_from, measure_from + window),
    }


def _bulk(url: str, token: str, path: str, lines: int) -> dict[str, Any]:
    """One streamed NDJSON upload of `path`; time from the first byte sent to the last answer byte."""

    def blocks() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 16):
                yield block

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    with httpx.Client(base_url=url, headers=headers, timeout=600.0) as client:
        client.get("/healthz")  # the connection is open before the clock starts
        cpu_start = _cpu()
        start = time.monotonic()
        with client.stream("POST", "/v1/records/bulk", content=blocks()) as response:
            first_answer = time.monotonic()
            raw = b"".join(response.iter_bytes())
        end = time.monotonic()
        cpu_used = _cpu() - cpu_start
    answers = [json.loads(line) for line in raw.splitlines() if line.strip()]
    summary = next((a["summary"] for a in answers if "summary" in a), None)
    statuses = Counter(a.get("status") for a in answers if "summary" not in a)
    return {
        "status": response.status_code,
        "lines": lines,
        "bytes": os.path.getsize(path),
        "seconds": round(end - start, 3),
        "records_per_s": round(lines / (end - start), 1),
        "first_answer_s": round(first_answer - start, 3),
        "summary": summary,
        "answers": dict(statuses),
        "all_accepted": bool(summary and summary["accepted"] == lines and summary["rejected"] == 0),
        "load_cpu_pct": round(100 * cpu_used / (end - start), 1),
        "window": (start, end),
    }


def _run_async(coroutine: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


PHASES: dict[str, Callable[..., Any]] = {
    "open": lambda **kw: _run_async(_open_loop(**kw)),
    "closed": lambda **kw: _run_async(_closed_loop(**kw)),
    "bulk": _bulk,
}


def _load_process(conn: Any, phase: str, kwargs: dict[str, Any]) -> None:
    try:
        conn.send(("ok", PHASES[phase](**kwargs)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_load(phase: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """Run one load phase in a fresh process of its own; its figures."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_load_process, args=(child, phase, kwargs), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"load phase {phase} did not finish in {timeout:.0f} s")
        outcome, value = parent.recv()
        if outcome != "ok":
            raise RuntimeError(f"load phase {phase} failed:\n{value}")
        result: dict[str, Any] = value
        return result
    finally:
        parent.close()
        process.join(5)
        if process.is_alive():
            process.terminate()
            process.join()


# ----------------------------------------------------------------------------- CPU sampling


class CpuSampler(threading.Thread):
    """Samples the server process's CPU time and the machine's busy time every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.samples: list[tuple[float, float, float, float]] = []
        self.stopped = threading.Event()

    def _read(self) -> tuple[float, float, float, float] | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            with open("/proc/stat") as handle:
                cpu = [int(x) for x in handle.readline().split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        process = (int(fields[11]) + int(fields[12])) / self.tick
        idle = cpu[3] + cpu[4]
        return time.monotonic(), process, (sum(cpu) - idle) / self.tick, sum(cpu) / self.tick

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            sample = self._read()
            if sample is not None:
                self.samples.append(sample)

    def usage(self, start: float, end: float) -> dict[str, float | None]:
        """Server CPU (% of one core) and machine busy (% of all cores) between two instants."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {"server_cpu_pct": None, "machine_busy_pct": None}
        first, last = inside[0], inside[-1]
        wall = last[0] - first[0]
        return {
            "server_cpu_pct": round(100 * (last[1] - first[1]) / wall, 1),
            "machine_busy_pct": round(100 * (last[2] - first[2]) / (last[3] - first[3]), 1),
        }


# ----------------------------------------------------------------------------- main


def closed_phase(
    console: Any,
    sampler: CpuSampler,
    url: str,
    name: str,
    method: str,
    path: str,
    body: bytes | None,
    *,
    driver: str,
    concurrency: int,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """One closed-loop phase (`--concurrency` workers, each sending its next request as soon as
    its last one is answered) in a load process of its own; its figures with the server's CPU."""
    console.log(f"{name}: closed loop, {concurrency} in flight, {warmup:g}+{seconds:g} s")
    result = run_load(
        "closed",
        warmup + seconds + 120,
        driver=driver,
        url=url,
        method=method,
        path=path,
        body=body,
        expect=200,
        concurrency=concurrency,
        warmup=warmup,
        seconds=seconds,
    )
    _add_cpu(result, sampler)
    return result


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _ms(figures: dict[str, Any]) -> str:
    lat = figures["latency_ms"]
    keys = [k for k in ("p50", "p90", "p99", "max") if k in lat]
    return " / ".join("–" if lat[k] is None else f"{lat[k]:,.1f}" for k in keys) + " ms"


def _errors(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(figures["errors"].items())) or "none"


def _add_cpu(result: dict[str, Any], sampler: CpuSampler) -> None:
    """CPU over the phase's measured window; `others` is what the rest of the machine (anvil, and
    whatever else runs there) took, in % of one core: a large figure means a contended machine."""
    result.update(sampler.usage(*result.pop("window")))
    if result["machine_busy_pct"] is not None and result["server_cpu_pct"] is not None:
        busy = result["machine_busy_pct"] * (os.cpu_count() or 1)
        result["others_cpu_pct"] = round(
            max(0.0, busy - result["server_cpu_pct"] - result["load_cpu_pct"]), 1
        )


def _cpu_text(figures: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} %"

    return (
        f"server {pct(figures.get('server_cpu_pct'))} · load {pct(figures.get('load_cpu_pct'))}"
        f" · others {pct(figures.get('others_cpu_pct'))}"
    )


@contextmanager
def repd_server(
    console: Any, *serve_args: str, store: str = "leveldb"
) -> Iterator[tuple[Any, Path, Path, dict[str, Any]]]:
    """A fresh anvil (1 s blocks), a fresh deployment and one `sijill serve` for REPD started
    with `serve_args`, in a temporary directory: (server, that directory, the deployment file,
    after). Once the server has stopped, `after` holds its exit status and its log. `store`
    "postgresql": the node's store in a throwaway PostgreSQL 15 cluster (fsync and
    synchronous_commit on) on the same machine."""
    from contextlib import ExitStack

    from api_helpers import deploy_fresh, init_node, start_server, stop_server
    from pg_cluster import PgCluster

    from node.chain.client import connect
    from node.chain.devchain import DevChain, DevChainConfig, free_port
    from node.chain.toolchain import compile_contracts

    compiled = compile_contracts()
    after: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        DevChain(DevChainConfig(port=free_port(), block_time=1.0)) as chain,
        ExitStack() as stack,
    ):
        root = Path(tmp)
        location = stack.enter_context(PgCluster()).create_database("repd") if store == "postgresql" else None
        console.log(f"deploying a fresh network and starting sijill serve for REPD on {store}")
        keys, deployment = deploy_fresh(connect(chain.rpc_url), compiled, root / "deployment.json")
        data_dir, tokens = init_node(root, "REPD", keys["REPD"], store=location)
        server = start_server(
            data_dir, "REPD", keys["REPD"], tokens, chain.rpc_url, deployment, *serve_args, store=location
        )
        try:
            yield server, root, deployment, after
        finally:
            after["exit"] = stop_server(server)
            after["log"] = server.log.read_text(errors="replace")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per phase (10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per phase (2)")
    parser.add_argument("--rates", default="200,500", help="create arrival rates, requests/s")
    parser.add_argument("--bulk-records", type=int, default=None, help="lines of the bulk upload (50,000)")
    parser.add_argument("--connections", type=int, default=64, help="connection pool of the create load")
    parser.add_argument("--concurrency", type=int, default=32, help="in-flight requests of verify/healthz")
    parser.add_argument(
        "--driver", choices=("raw", "httpx"), default="raw", help="HTTP client of the load process"
    )
    parser.add_argument("--quick", action="store_true", help="3 s per phase, 1 s warm-up, 10,000 bulk")
    parser.add_argument("--serve-log", type=Path, help="copy the server's log here at the end")
    parser.add_argument(
        "--store",
        choices=("leveldb", "postgresql"),
        default="leveldb",
        help="the node's store: LevelDB in its directory, or a throwaway PostgreSQL 15 cluster",
    )
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    bulk_records = args.bulk_records if args.bulk_records is not None else (10_000 if args.quick else 50_000)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    signal.signal(signal.SIGTERM, _interrupt)

    from api_helpers import wait_anchored
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    machine = _machine()
    figures: dict[str, Any] = {
        "bench": "api",
        "machine": machine,
        "settings": {
            "seconds": seconds,
            "warmup": warmup,
            "connections": args.connections,
            "concurrency": args.concurrency,
            "driver": args.driver,
            "serve": {"rate_limit": 0, "public_rate": 0, "max_age": 1.0, "batch_size": 20000},
        },
    }
    phase_timeout = warmup + seconds + 120
    figures["settings"]["store"] = args.store
    with repd_server(
        console, "--rate-limit", "0", "--public-rate", "0", "--max-age", "1.0", store=args.store
    ) as (
        server,
        root,
        _,
        after,
    ):
        sampler = CpuSampler(server.process.pid)
        sampler.start()
        token = server.tokens["officer"]

        # One anchored bundle for the verify phase.
        with server.client("officer") as officer:
            created = officer.post(
                "/v1/records",
                json={"recordType": "title", "record": next(numbered_records("title", 1, start=900_000))},
            )
            created.raise_for_status()
            bundle_response = wait_anchored(officer, created.json()["links"]["bundle"])
            if bundle_response.status_code != 200:
                raise RuntimeError(
                    f"no anchored bundle: {bundle_response.status_code} {bundle_response.text}"
                )
            bundle = bundle_response.content
            # The proof is stored before the indexer has seen the anchoring event: wait for it.
            deadline = time.monotonic() + 60
            while True:
                check = officer.post(
                    "/v1/verify", content=bundle, headers={"Content-Type": "application/json"}
                )
                verdict = check.json().get("verdict") if check.status_code == 200 else None
                if verdict == "authentic-current":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the bundle does not verify: {check.status_code} {check.text}")
                time.sleep(0.3)

        def closed(name: str, method: str, path: str, body: bytes | None) -> dict[str, Any]:
            return closed_phase(
                console,
                sampler,
                server.url,
                name,
                method,
                path,
                body,
                driver=args.driver,
                concurrency=args.concurrency,
                warmup=warmup,
                seconds=seconds,
            )

        figures["healthz"] = closed("GET /healthz", "GET", "/healthz", None)
        figures["verify"] = closed("POST /v1/verify", "POST", "/v1/verify", bundle)
        figures["verify"]["verdict"] = verdict

        figures["create"] = {}
        for index, rate in enumerate(rates):
            time.sleep(1.5)  # the batcher anchors what the last phase left
            console.log(f"create: open loop at {rate:g}/s, {warmup:g}+{seconds:g} s")
            result = run_load(
                "open",
                phase_timeout,
                driver=args.driver,
                url=server.url,
                token=token,
                rate=rate,
                warmup=warmup,
                seconds=seconds,
                connections=args.connections,
                start_number=index * 100_000,
            )
            _add_cpu(result, sampler)
            figures["create"][f"{rate:g}"] = result

        time.sleep(1.5)
        console.log(f"bulk: writing {bulk_records:,} NDJSON lines")
        ndjson = root / "bulk.ndjson"
        with ndjson.open("w", encoding="utf-8") as handle:
            for record in numbered_records("title", bulk_records, start=1_000_000):
                line = json.dumps({"recordType": "title", "record": record}, ensure_ascii=False)
                handle.write(line + "\n")
        console.log("bulk: one streamed POST /v1/records/bulk")
        result = run_load("bulk", 3600, url=server.url, token=token, path=str(ndjson), lines=bulk_records)
        _add_cpu(result, sampler)
        figures["bulk"] = result
        sampler.stopped.set()
    figures["serve_exit"] = after["exit"]
    if args.serve_log is not None:
        args.serve_log.write_text(after["log"])

    table = Table(
        "measure",
        "figure",
        "target",
        title=(
            f"Sijill HTTP API, one `sijill serve` on anvil (1 s blocks); {machine['nproc']} CPUs, "
            f"Python {machine['python']}; {warmup:g} s warm-up + {seconds:g} s per phase; "
            f"{args.driver} client"
        ),
    )
    for rate_key, create in figures["create"].items():
        target = "p99 ≤ 25 ms" if float(rate_key) == 500 else ""
        table.add_row(
            f"create at {rate_key}/s open loop: p50 / p90 / p99 / max",
            _ms(create),
            target,
        )
        table.add_row(
            "  achieved rate · errors · send lag p99",
            f"{create['achieved_rate']:,.1f}/s of {create['requests']:,} · {_errors(create)}"
            f" · {create['send_lag_ms']['p99']:,.1f} ms",
            "",
        )
        table.add_row("  CPU", _cpu_text(create), "")
    bulk = figures["bulk"]
    table.add_row(
        f"bulk NDJSON, {bulk['lines']:,} lines ({bulk['bytes'] / 1e6:,.1f} MB) in one request",
        f"{bulk['records_per_s']:,.0f} records/s ({bulk['seconds']:,.2f} s)",
        "≥ 10,000 records/s",
    )
    summary = bulk["summary"] or {}
    table.add_row(
        "  summary · CPU",
        f"{'all accepted' if bulk['all_accepted'] else 'NOT ALL ACCEPTED'} "
        f"({summary.get('accepted', 0):,} / {summary.get('rejected', 0):,} rejected) · {_cpu_text(bulk)}",
        "",
    )
    for name, key, target in (
        ("verify (POST /v1/verify)", "verify", "≥ 2,000 req/s"),
        ("GET /healthz (HTTP stack ceiling)", "healthz", ""),
    ):
        item = figures[key]
        table.add_row(f"{name}, {item['concurrency']} in flight", f"{item['rps']:,.0f} req/s", target)
        table.add_row("  p50 / p90 / p99 / max · errors", f"{_ms(item)} · {_errors(item)}", "")
        table.add_row("  CPU", _cpu_text(item), "")
    Console().print(table)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: everything is already stopped
        sys.exit(130)
