"""The soak's moving parts (scripts/soak.py): what officers were told (`Tally`), anvil that
is stopped and started (`Chain`), one agency's `sijill serve` kept running by a supervisor
(`NodeProcess`), and an officer or supervisor doing intake through the API (`Officer`)."""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from local_http import FaultyRpc

from cli.demo import DemoAgency, child_env, sijill_command
from ledger.records.examples import numbered_records
from node.chain.devchain import DevChain, DevChainConfig

BATCH_SIZE = 400
MAX_AGE = 1.0
START_TIMEOUT = 90.0
"""Seconds a node gets to answer /healthz after it is started (slow RPC included)."""
STOP_TIMEOUT = 30.0
CHAIN_GRACE = 20.0
"""A node that cannot reach the chain within this many seconds of the chain being away is
expected not to start: it needs the chain at start-up, and exits with status 2."""
REASONS = (1, 2, 3, 4, 5, 6)


def log(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- what officers were told


@dataclass(slots=True)
class Record:
    """One record as its officers know it: the leaf of each version the API accepted."""

    agency: str
    record_type: str
    record_id: str
    record: dict[str, Any]  # the latest version's fields (a supervisor amends from them)
    leaves: list[str] = field(default_factory=list)
    revoked: bool = False

    def expected(self, version: int) -> str:
        """The verdict `sijill verify` must give this version's bundle at the end."""
        if version < len(self.leaves):
            return "superseded"
        return "revoked" if self.revoked else "authentic-current"


class Tally:
    """Everything the officers' threads were answered, shared between them (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[tuple[str, str], Record] = {}  # (agency, record id)
        self.receipts: dict[str, dict[str, Any]] = {}  # leaf -> the answer's receipt and identity
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)
        log(f"  FAILURE: {message}")

    def accepted(self, agency: str, answer: dict[str, Any], record: dict[str, Any], how: str) -> None:
        """A create's (or bulk line's) answer, with its receipt."""
        with self._lock:
            key = (agency, answer["recordId"])
            if key in self.records or answer["leaf"] in self.receipts or answer["version"] != 1:
                self.failures.append(f"{agency}: {how} answered an id or leaf given before: {answer}")
                return
            self.records[key] = Record(
                agency, answer["recordType"], answer["recordId"], record, [answer["leaf"]]
            )
            self._receipt(agency, answer)
            self.counts[how] += 1

    def amended(self, target: Record, answer: dict[str, Any], record: dict[str, Any]) -> None:
        with self._lock:
            if answer["version"] != len(target.leaves) + 1 or answer["leaf"] in self.receipts:
                self.failures.append(f"{target.agency}: amend of {target.record_id} answered {answer}")
                return
            target.leaves.append(answer["leaf"])
            target.record = record
            self._receipt(target.agency, answer)
            self.counts["amends"] += 1

    def revoked(self, target: Record) -> None:
        with self._lock:
            target.revoked = True
            self.counts["revocations"] += 1

    def pick(self, agency: str, rng: random.Random) -> Record | None:
        """A record of `agency` that is not revoked, for its supervisor to change."""
        with self._lock:
            live = [r for (a, _), r in self.records.items() if a == agency and not r.revoked]
        return rng.choice(live) if live else None

    def _receipt(self, agency: str, answer: dict[str, Any]) -> None:
        self.receipts[answer["leaf"]] = {
            "agency": agency,
            "recordType": answer["recordType"],
            "recordId": answer["recordId"],
            "version": answer["version"],
            **answer["receipt"],
        }

    def accepted_count(self) -> int:
        with self._lock:
            return len(self.receipts)


# ----------------------------------------------------------------------------- the chain and the nodes


class Chain:
    """anvil with its state directory, stopped (state saved) and started on the same port."""

    def __init__(self, config: DevChainConfig) -> None:
        self.config = config
        self._chain = DevChain(config)
        self._lock = threading.Lock()
        self.up = False
        self.down_at = 0.0  # monotonic time of the last stop
        self.up_at = 0.0

    @property
    def rpc_url(self) -> str:
        return self.config.rpc_url

    def start(self) -> None:
        with self._lock:
            self._chain.start()
            self.up, self.up_at = True, time.monotonic()

    def stop(self) -> None:
        with self._lock:
            self._chain.stop()
            self.up, self.down_at = False, time.monotonic()

    def lately_down(self) -> bool:
        """Down now, or up again for less than CHAIN_GRACE seconds."""
        return not self.up or (self.down_at > 0 and time.monotonic() - self.up_at < CHAIN_GRACE)


@dataclass
class Shared:
    """What the run's threads share: the tally, the chain, the deployment, the stop signals."""

    tally: Tally
    chain: Chain
    deployment_file: Path
    stopping: threading.Event = field(default_factory=threading.Event)  # intake: finish and stop
    give_up: threading.Event = field(default_factory=threading.Event)  # stop retrying unanswered requests
    _numbers: dict[str, itertools.count[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_number(self, record_type: str) -> int:
        """A registry number not used before in this run, for a new record of the type."""
        with self._lock:
            return next(self._numbers.setdefault(record_type, itertools.count()))


class NodeProcess:
    """One agency's `sijill serve`, kept running by a supervisor thread, as systemd would."""

    def __init__(self, shared: Shared, agency: DemoAgency, node_dir: Path, proxy: FaultyRpc) -> None:
        self.shared = shared
        self.agency = agency
        self.node_dir = node_dir
        self.proxy = proxy
        self.log_path = node_dir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.kills_survived = 0  # kills after which the node answered again (one still starting, too)
        self.failed_starts = 0  # exits because the chain was away at start-up (expected)
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._held_until = 0.0
        self._ended = False  # the current process's end is accounted for (killed, or reported)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.agency.api_url

    def supervise(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"node-{self.agency.code}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._quit.is_set():
            with self._lock:
                process, ended = self.process, self._ended
            if process is None or process.poll() is not None:
                if process is not None and not ended:
                    self._exited(process)
                if time.monotonic() >= self._held_until:
                    self._start()
                    continue
            self._quit.wait(0.2)

    def _start(self) -> None:
        serve = [
            *sijill_command("serve"),
            *("--data-dir", str(self.node_dir), "--agency", self.agency.code, "--rpc", self.proxy.url),
            *("--deployment", str(self.shared.deployment_file), "--port", str(self.agency.port)),
            *("--batch-size", str(BATCH_SIZE), "--max-age", str(MAX_AGE)),
        ]
        with self.log_path.open("ab") as out:
            out.write(f"\n--- soak: starting at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            process = subprocess.Popen(
                serve, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=child_env()
            )
        with self._lock:
            self.process, self._ended = process, False
            self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None and not self._quit.is_set():
            if answers(self.url + "/healthz"):
                with self._lock:
                    self.kills_survived = self.kills  # every kill so far, the last one included
                return
            time.sleep(0.2)
        if process.poll() is None and not self._quit.is_set():
            self.shared.tally.fail(
                f"{self.agency.code}: the node did not answer /healthz {START_TIMEOUT:g}s after starting"
            )
            process.kill()
            process.wait()

    def _exited(self, process: subprocess.Popen[bytes]) -> None:
        """The process ended by itself: expected only when it could not reach the chain at start."""
        status, tail = process.returncode, tail_of(self.log_path)
        with self._lock:
            self._ended = True
        self._held_until = time.monotonic() + 1.0
        if status == 2 and "no JSON-RPC node answers" in tail and self.shared.chain.lately_down():
            self.failed_starts += 1
            return
        self.shared.tally.fail(
            f"{self.agency.code}: the node exited by itself with status {status}: {tail[-300:]}"
        )

    def kill(self, hold: float) -> bool:
        """SIGKILL the node (False if it was not running); started again after `hold` seconds."""
        with self._lock:
            process = self.process
            if process is None or process.poll() is not None:
                return False
            self._ended = True
            self._held_until = time.monotonic() + hold
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills += 1
        return True

    def up(self) -> bool:
        with self._lock:
            process = self.process
        return process is not None and process.poll() is None and answers(self.url + "/healthz")

    def stop(self) -> int | None:
        """Stop supervising and SIGTERM the node: its exit status (None if it had to be killed)."""
        self._quit.set()
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT + 5)
        with self._lock:
            process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def tail_of(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# ----------------------------------------------------------------------------- officers


class Officer(threading.Thread):
    """One token's holder taking records in through the API until `shared.stopping` is set.

    Officers create records and now and then upload a few in bulk; supervisors also amend and
    revoke their agency's records. Each request is sent until the node answers it (`_send`)."""

    def __init__(
        self, shared: Shared, node: NodeProcess, role: str, name: str, token: str, seed: int
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.shared = shared
        self.tally = shared.tally
        self.agency = node.agency
        self.role = role
        self.rng = random.Random(seed)
        self.client = httpx.Client(
            base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
        self._keys = itertools.count(1)

    def run(self) -> None:
        try:
            while not self.shared.stopping.is_set():
                roll = self.rng.random()
                if self.role == "supervisor" and roll < 0.3:
                    self.amend()
                elif self.role == "supervisor" and roll < 0.45:
                    self.revoke()
                elif self.role == "officer" and roll < 0.06:
                    self.bulk()
                else:
                    self.create()
                time.sleep(self.rng.uniform(0.02, 0.3))
        except Exception as exc:  # a bug of the soak itself: say so rather than hang the run
            self.tally.fail(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self.client.close()

    def _send(
        self, what: str, path: str, body: bytes, status: int, *, ndjson: bool = False
    ) -> httpx.Response | None:
        """POST until the node answers, with the same Idempotency-Key and the same bytes each
        time: the answer when it has `status`. None when it has another (a failure of the run,
        reported as `what`), or if told to give up first (a failure too)."""
        headers = {
            "Idempotency-Key": f"{self.name}-{next(self._keys)}",
            "Content-Type": "application/x-ndjson" if ndjson else "application/json",
        }
        while True:
            if self.shared.give_up.is_set():
                self.tally.fail(f"{self.name}: POST {path} ({headers['Idempotency-Key']}) never answered")
                return None
            try:
                answer = self.client.post(path, content=body, headers=headers)
            except httpx.TransportError:  # the node is down, or was killed while answering
                self.tally.count("retries")
                time.sleep(0.3)
                continue
            if answer.status_code in (429, 502, 503) or (
                answer.status_code == 409 and _problem_type(answer) == "idempotency-key-in-use"
            ):
                self.tally.count("retries")
                time.sleep(min(2.0, float(answer.headers.get("Retry-After") or 0.3)))
                continue
            if answer.headers.get("Idempotent-Replayed") == "true":
                self.tally.count("replayed")
            if answer.status_code != status:
                self.tally.fail(f"{self.name}: {what} answered {answer.status_code}: {answer.text[:300]}")
                return None
            return answer

    def _new_record(self) -> dict[str, Any]:
        kind = self.agency.record_type
        return dict(next(numbered_records(kind, 1, start=self.shared.next_number(kind))))

    def create(self) -> None:
        record = self._new_record()
        body = json.dumps({"recordType": self.agency.record_type, "record": record}, ensure_ascii=False)
        answer = self._send("create", "/v1/records", body.encode(), 201)
        if answer is not None:
            self.tally.accepted(self.agency.code, answer.json(), record, "creates")

    def bulk(self) -> None:
        """An NDJSON upload of 3-40 records, every other one with a line that must be refused."""
        kind = self.agency.record_type
        records = [self._new_record() for _ in range(self.rng.randint(3, 40))]
        lines = [json.dumps({"recordType": kind, "record": r}, ensure_ascii=False) for r in records]
        bad = self.rng.randrange(len(lines) + 1) if self.rng.random() < 0.5 else None
        if bad is not None:
            lines.insert(bad, json.dumps({"recordType": kind, "record": {}}))
        body = ("\n".join(lines) + "\n").encode()
        answer = self._send("bulk upload", "/v1/records/bulk", body, 200, ndjson=True)
        if answer is None:
            return
        *results, summary = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
        by_line = {r["line"]: r for r in results}
        good = iter(records)
        for number in range(1, len(lines) + 1):
            result = by_line.get(number)
            if number - 1 == bad:
                if result is None or result["status"] != "rejected":
                    self.tally.fail(
                        f"{self.name}: bulk line {number} (an empty record) was not refused: {result}"
                    )
                else:
                    self.tally.count("bulk-refused")
                continue
            record = next(good)
            if result is None or result["status"] != "accepted":
                self.tally.fail(f"{self.name}: bulk line {number} not accepted: {result}")
                continue
            self.tally.accepted(self.agency.code, result, record, "bulk-lines")
        self.tally.count("bulk-uploads")
        self.tally.count("replayed", summary["summary"]["replayed"])

    def amend(self) -> None:
        target = self.tally.pick(self.agency.code, self.rng)
        if target is None:
            self.create()
            return
        version = len(target.leaves)
        record = _amended(target.record_type, target.record, version)
        body = {"amends": version, "reason": self.rng.choice(REASONS), "record": record}
        path = f"/v1/records/{target.record_type}/{target.record_id}/versions"
        what = f"amend of {target.record_id} v{version}"
        answer = self._send(what, path, json.dumps(body, ensure_ascii=False).encode(), 201)
        if answer is not None:
            self.tally.amended(target, answer.json(), record)

    def revoke(self) -> None:
        target = self.tally.pick(self.agency.code, self.rng)
        if target is None:
            self.create()
            return
        version = len(target.leaves)
        body = json.dumps({"version": version, "reason": self.rng.choice(REASONS)}).encode()
        path = f"/v1/records/{target.record_type}/{target.record_id}/revocation"
        if self._send(f"revocation of {target.record_id} v{version}", path, body, 200) is not None:
            self.tally.revoked(target)


def _problem_type(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


def _amended(record_type: str, record: dict[str, Any], version: int) -> dict[str, Any]:
    """The next version of a record: one field changed, still valid."""
    changed: dict[str, Any] = json.loads(json.dumps(record))
    if record_type == "commercial":
        changed["capital"] = {"amount": str(250_000 + 1000 * version), "currency": "EGP"}
    else:
        changed["registry_office"] = f"{record['registry_office'].split(' (')[0]} (تصحيح {version})"
    return changed
