"""The soak: the whole system under faults for a bounded time, then proof, against the chain,
that nothing an officer was told was accepted got lost or anchored twice.

Usage: .venv/bin/python scripts/soak.py [--seconds 300] [--seed N] [--officers 2]
       [--kills N] [--slow-periods N] [--no-anvil-restart] [--settle-timeout 300] [--keep]
       make soak [SOAK_SECONDS=300] [SOAK_SEED=N]

What runs (in a fresh directory, on free ports): anvil with a state directory
(`node.chain.devchain.DevChain`, 1 s blocks, configured like Besu), the three demo agencies deployed
(`node.chain.deploy.demo_network`), one `sijill serve` per agency (set up with `sijill node init
--dev-account`; batches of at most 400 leaves, closed after 1 s), each talking to the chain
through its own local proxy (`local_http.FaultyRpc`) that can be slowed down. Per agency,
`--officers` officers and a supervisor, each a thread with a token of its own, take records
in through the HTTP API without pause: officers create records one at a time and now and then
upload a few in NDJSON (every other upload with one invalid line, which must be refused); the
supervisor also creates, and amends and revokes its agency's records (scripts/soak_actors.py).

Every POST carries an Idempotency-Key. A request the node does not answer (it is down or was
killed while answering; 409 while the first attempt still runs; 429; 5xx) is sent again with
the same key and the same bytes, as an officer's client would, until it is answered: so every
request ends with the node's answer, and a record counts as accepted exactly when that answer
carries its receipt. Any other answer (a refusal of a valid record, a conflict) is a failure.

Faults, on a schedule drawn from the seed (printed first, so a failing run can be repeated; the
schedule repeats, the interleaving of the threads does not): SIGKILL of a node (started again
0.5-3 s later by the script's supervisor, as systemd would, and again if it cannot start while
the chain is away), one anvil restart (stopped with its state saved, started again on the same
port 2-5 s later; its transaction pool is lost), and slow-RPC periods (every chain call of one
or more nodes delayed 0.5-2 s, for 5-20 s).

Then intake stops (each thread finishes its request), every fault is healed, and the script
waits (`--settle-timeout`, failing loudly with what is still pending) until every node has
anchored its backlog and every amendment and revocation is on the chain, and proves what
scripts/soak_proofs.py says: the chain's log, the nodes' exports, every bundle through
`sijill verify`, and `sijill audit` of each agency.

The last lines are the counts: accepted, anchored, kills survived, node restarts, anvil
restarts, slow-RPC periods, seed and duration. Exit status 0 when every proof holds, 1 when one
fails (each named above the counts), 2 on bad usage. The run's directory (chain, nodes with
their serve.log, exports, bundles) is deleted after a clean run and kept otherwise (`--keep`:
always). docs/soak.md says how to read the output.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "python"), str(ROOT / "scripts")]

import httpx  # noqa: E402
from local_http import FaultyRpc  # noqa: E402
from soak_actors import (  # noqa: E402
    START_TIMEOUT,
    Chain,
    NodeProcess,
    Officer,
    Shared,
    Tally,
    log,
)
from soak_proofs import Proofs  # noqa: E402

from cli.demo import DemoAgency, child_env, demo_agencies, sijill_command  # noqa: E402
from cli.officer import issue_token, open_node_store  # noqa: E402
from ledger.codes import agency_code  # noqa: E402
from node.chain.client import connect  # noqa: E402
from node.chain.deploy import bound_contracts, demo_network, deploy_network, dev_accounts  # noqa: E402
from node.chain.devchain import DevChainConfig, free_port  # noqa: E402
from node.chain.toolchain import CompiledContract, compile_contracts  # noqa: E402


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: `at` seconds into intake, for `length` seconds."""

    at: float
    kind: str  # "kill", "anvil-restart" or "slow"
    length: float
    agencies: tuple[str, ...] = ()
    delay: float = 0.0  # seconds added to each chain call, for "slow"

    def describe(self) -> str:
        if self.kind == "kill":
            return f"SIGKILL {self.agencies[0]}, started again after {self.length:.1f}s"
        if self.kind == "slow":
            return (
                f"slow RPC for {', '.join(self.agencies)}: +{self.delay:.2f}s a call for {self.length:.1f}s"
            )
        return f"anvil restart, down {self.length:.1f}s"


def plan_faults(
    seed: int, seconds: float, codes: tuple[str, ...], *, kills: int, slow: int, anvil_restart: bool
) -> list[Fault]:
    """The faults of a run, from its seed alone; each starts between 10 % and 80 % of the run."""
    rng = random.Random(seed)
    early, late = 0.1 * seconds, 0.8 * seconds
    faults = [
        Fault(rng.uniform(early, late), "kill", rng.uniform(0.5, 3.0), (rng.choice(codes),))
        for _ in range(kills)
    ]
    for _ in range(slow):
        length = rng.uniform(min(5.0, 0.15 * seconds), min(20.0, 0.3 * seconds))
        hit = tuple(sorted(rng.sample(codes, rng.randint(1, len(codes)))))
        faults.append(Fault(rng.uniform(early, late), "slow", length, hit, round(rng.uniform(0.5, 2.0), 2)))
    if anvil_restart:
        faults.append(
            Fault(rng.uniform(0.3 * seconds, 0.6 * seconds), "anvil-restart", rng.uniform(2.0, 5.0))
        )
    return sorted(faults, key=lambda f: f.at)


class Soak:
    """One run: `set_up`, `run` (intake under faults), `settle`, `prove`, `tear_down`."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.began = time.monotonic()
        self.intake_began = self.began
        self.agencies = tuple(replace(a, port=free_port()) for a in demo_agencies(0))
        chain = Chain(DevChainConfig(port=free_port(), block_time=1.0, data_dir=work / "chain"))
        self.shared = Shared(Tally(), chain, work / "chain" / "deployment.json")
        self.chain, self.tally = chain, self.shared.tally
        self.compiled: dict[str, CompiledContract] = {}
        self.deployment: dict[str, Any] = {}
        self.nodes: dict[str, NodeProcess] = {}
        self.proxies: dict[str, FaultyRpc] = {}
        self.officers: list[Officer] = []
        self.tokens: dict[str, dict[str, str]] = {}
        self.faults = plan_faults(
            args.seed,
            args.seconds,
            tuple(a.code for a in self.agencies),
            kills=args.kills if args.kills is not None else max(1, round(args.seconds / 40)),
            slow=args.slow_periods if args.slow_periods is not None else max(1, round(args.seconds / 80)),
            anvil_restart=not args.no_anvil_restart,
        )
        self.done: Counter[str] = Counter()  # faults carried out
        self.slowed: dict[str, list[float]] = {a.code: [] for a in self.agencies}  # delays in force

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.began:6.1f}s]"

    # -- set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        """Chain, deployment, one node per agency with its tokens and proxy, all answering."""
        self.chain.start()
        deployer, *signers = dev_accounts(4)
        spec = demo_network([s.address for s in signers])
        self.compiled = compile_contracts()
        self.deployment = deploy_network(
            connect(self.chain.rpc_url), deployer, spec, self.shared.deployment_file, compiled=self.compiled
        ).deployment
        log(
            f"{self.stamp()} anvil at {self.chain.rpc_url}, "
            f"contracts deployed in block {self.deployment['block']}"
        )
        inits = {
            a.code: subprocess.Popen(
                [
                    *sijill_command("node", "init"),
                    *("--data-dir", str(self.work / a.code.lower()), "--agency", a.code),
                    *("--dev-account", str(a.dev_account)),
                ],
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for a in self.agencies
        }
        for code, init in inits.items():
            output = init.communicate(timeout=120)[0].decode(errors="replace")
            if init.returncode != 0:
                raise SoakError(f"`sijill node init` for {code} failed: {output.strip()[-300:]}")
        for agency in self.agencies:
            self.tokens[agency.code] = self._issue_tokens(agency)
            self.proxies[agency.code] = FaultyRpc(self.chain.rpc_url)
            node = NodeProcess(
                self.shared, agency, self.work / agency.code.lower(), self.proxies[agency.code]
            )
            self.nodes[agency.code] = node
            node.supervise()
        deadline = time.monotonic() + START_TIMEOUT
        while not all(n.up() for n in self.nodes.values()):
            if time.monotonic() > deadline:
                down = ", ".join(c for c, n in self.nodes.items() if not n.up())
                raise SoakError(f"{down} did not start: see {self.work}/<agency>/serve.log")
            time.sleep(0.3)
        log(f"{self.stamp()} nodes up: " + ", ".join(f"{a.code} {a.api_url}" for a in self.agencies))

    def _issue_tokens(self, agency: DemoAgency) -> dict[str, str]:
        """Real tokens in the node's store before it starts, as `sijill officer add` issues them."""
        names = [f"officer-{i + 1}" for i in range(self.args.officers)] + ["supervisor", "auditor"]
        tokens = {}
        node_dir = self.work / agency.code.lower()
        # Its own dev KEK, named: a SIJILL_KEK in the caller's environment is not this node's.
        with open_node_store(node_dir, node_dir / "dev-kek") as store:
            for name in names:
                issued = issue_token(
                    store,
                    agency=agency.code,
                    role=name.split("-")[0],
                    name=f"soak {name}",
                    expires_at=None,
                    now=int(time.time()),
                )
                tokens[name] = issued.token
        return tokens

    # -- intake under faults --------------------------------------------------------------------

    def run(self) -> None:
        """Intake for `--seconds`, the faults carried out on schedule; then intake is told to stop."""
        for number, agency in enumerate(self.agencies):
            for index, (name, token) in enumerate(self.tokens[agency.code].items()):
                if name != "auditor":
                    seed = self.args.seed * 1000 + number * 100 + index
                    node = self.nodes[agency.code]
                    officer = Officer(
                        self.shared, node, name.split("-")[0], f"{agency.code}-{name}", token, seed
                    )
                    self.officers.append(officer)
        self.intake_began = time.monotonic()
        for officer in self.officers:
            officer.start()
        log(
            f"{self.stamp()} intake started: {len(self.officers)} officers and supervisors, "
            f"{self.args.seconds:g}s"
        )
        actions: list[tuple[float, int, Callable[[], None]]] = []
        for i, fault in enumerate(self.faults):
            actions.append((fault.at, i, functools.partial(self._begin, fault)))
            if fault.kind != "kill":  # a killed node is started again by its supervisor
                actions.append((fault.at + fault.length, i, functools.partial(self._end, fault)))
        actions.sort(key=lambda a: (a[0], a[1]))
        progress = 30.0
        while (now := time.monotonic() - self.intake_began) < self.args.seconds:
            if actions and actions[0][0] <= now:
                actions.pop(0)[2]()
            elif now >= progress:
                log(f"{self.stamp()} accepted so far: {self.tally.accepted_count()}")
                progress += 30.0
            else:
                time.sleep(0.05)
        self.shared.stopping.set()
        log(f"{self.stamp()} intake stopping: each thread finishes its request")

    def _begin(self, fault: Fault) -> None:
        log(
            f"{self.stamp()} fault {time.monotonic() - self.intake_began:.1f}s into intake: "
            f"{fault.describe()}"
        )
        if fault.kind == "kill":
            if self.nodes[fault.agencies[0]].kill(fault.length):
                self.done["kills"] += 1
            else:
                log(f"{self.stamp()}   {fault.agencies[0]} was not running: not killed")
        elif fault.kind == "slow":
            for code in fault.agencies:
                self.slowed[code].append(fault.delay)
                self._apply_delay(code)
            self.done["slow"] += 1
        else:
            self.chain.stop()
            self.done["anvil-restarts"] += 1

    def _end(self, fault: Fault) -> None:
        if fault.kind == "slow":
            for code in fault.agencies:
                self.slowed[code].remove(fault.delay)
                self._apply_delay(code)
            log(f"{self.stamp()} slow-RPC period over for {', '.join(fault.agencies)}")
        else:
            self._start_chain_again()

    def _apply_delay(self, code: str) -> None:
        """The node's chain calls wait the longest delay in force (periods may overlap)."""
        self.proxies[code].slow = max(self.slowed[code], default=0.0)

    def _start_chain_again(self) -> None:
        if not self.chain.up:
            self.chain.start()
            log(f"{self.stamp()} anvil started again on {self.chain.rpc_url}")

    # -- heal and settle ------------------------------------------------------------------------

    def settle(self) -> list[str]:
        """Heal every fault, let the officers finish, and wait until everything is anchored.
        What is still unsettled after `--settle-timeout` (nothing when settled)."""
        for code, slowed in self.slowed.items():
            slowed.clear()
            self._apply_delay(code)
        self._start_chain_again()
        deadline = time.monotonic() + self.args.settle_timeout
        for officer in self.officers:
            officer.join(max(0.0, deadline - time.monotonic()))
        if any(o.is_alive() for o in self.officers):
            self.shared.give_up.set()
            for officer in self.officers:
                officer.join(30)
        log(f"{self.stamp()} intake stopped, {self.tally.accepted_count()} accepted; waiting for the anchors")
        ledger = self.ledger()
        changed: set[str] = set()  # leaves seen superseded or revoked on the chain
        while True:
            problems = [p for node in self.nodes.values() for p in self._unsettled(node)]
            problems += self._changes_not_on_chain(ledger, changed)
            if not problems:
                log(f"{self.stamp()} settled: every backlog anchored, every change on the chain")
                return []
            if time.monotonic() > deadline:
                return problems
            time.sleep(1.0)

    def _unsettled(self, node: NodeProcess) -> list[str]:
        """What the node still has to anchor: leaves queued, batches not anchored."""
        code = node.agency.code
        try:
            with httpx.Client(base_url=node.url, timeout=10) as client:
                ready = client.get("/readyz").json()
                batches: list[dict[str, Any]] = []
                after: int | None = 0
                while after is not None:
                    page = client.get(
                        "/v1/batches",
                        params={"after": after, "limit": 1000},
                        headers={"Authorization": f"Bearer {self.tokens[code]['auditor']}"},
                    ).json()
                    batches, after = batches + page["batches"], page["next"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return [f"{code}: the node does not answer ({type(exc).__name__})"]
        problems = [f"{code}: {ready['backlog']} leaves not yet in a batch"] if ready.get("backlog") else []
        return problems + [
            f"{code}: batch {b['seq']} {b['status']}" for b in batches if b["status"] != "anchored"
        ]

    def _changes_not_on_chain(self, ledger: Any, changed: set[str]) -> list[str]:
        missing = []
        for record in self.tally.records.values():
            for version, leaf in enumerate(record.leaves, 1):
                want = record.expected(version)
                if want == "authentic-current" or leaf in changed:
                    continue
                state = ledger.functions.leafStatus(
                    agency_code(record.agency), bytes.fromhex(leaf[2:])
                ).call()[0]
                if state == (1 if want == "superseded" else 2):
                    changed.add(leaf)
                else:
                    missing.append(
                        f"{record.agency}: {record.record_id} v{version} not yet {want} on the chain"
                    )
        return missing

    def ledger(self) -> Any:
        """The RecordLedger on the chain itself, not through a node's proxy."""
        return bound_contracts(connect(self.chain.rpc_url), self.deployment, self.compiled)["RecordLedger"]

    # -- proofs and the end ---------------------------------------------------------------------

    def prove(self) -> tuple[list[str], Counter[str]]:
        proofs = Proofs(
            self.work,
            self.chain.rpc_url,  # the chain itself, not a node's proxy
            self.ledger(),
            self.deployment,
            self.shared.deployment_file,
            self.agencies,
            self.tokens,
            self.tally,
        )
        return proofs.run(self.stamp)

    def tear_down(self) -> list[str]:
        """Stop the nodes (each must exit 0 on SIGTERM), the proxies and the chain."""
        failures = []
        for code, node in self.nodes.items():
            status = node.stop()
            if status != 0:
                failures.append(f"{code}: the node did not stop cleanly on SIGTERM (status {status})")
        for proxy in self.proxies.values():
            proxy.close()
        self.chain.stop()
        return failures

    def summary(self, failures: list[str], figures: Counter[str]) -> list[str]:
        """The last lines: the verdict, then the counts."""
        counts, nodes = self.tally.counts, self.nodes.values()
        accepted = self.tally.accepted_count()
        verdict = (
            f"soak: FAILED, {len(failures)} proofs failed" if failures else "soak: passed, every proof holds"
        )
        return [
            verdict,
            f"accepted: {accepted} (creates {counts['creates']}, bulk lines {counts['bulk-lines']} in "
            f"{counts['bulk-uploads']} uploads, amends {counts['amends']}; "
            f"revocations {counts['revocations']}; "
            f"invalid bulk lines refused {counts['bulk-refused']}; retries {counts['retries']}, "
            f"replayed {counts['replayed']})",
            f"anchored: {figures['anchored']} of {accepted} exactly once, in {figures['batches']} batches; "
            f"bundles verified {figures['bundles']} (current {figures['verdict-authentic-current']}, "
            f"superseded {figures['verdict-superseded']}, revoked {figures['verdict-revoked']})",
            f"kills survived: {sum(n.kills_survived for n in nodes)} of {sum(n.kills for n in nodes)}",
            f"node restarts: {sum(max(0, n.starts - 1) for n in nodes)} "
            f"({sum(n.failed_starts for n in nodes)} of them exited: chain away at start-up)",
            f"anvil restarts: {self.done['anvil-restarts']}",
            f"slow-RPC periods: {self.done['slow']}",
            f"seed: {self.args.seed}  duration: {self.args.seconds:g}s of intake, "
            f"{time.monotonic() - self.began:.0f}s in all",
        ]


class SoakError(Exception):
    """The soak could not be set up (not a finding about the system)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=300.0, help="how long intake runs under faults (300)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the faults and officers (default: random)"
    )
    parser.add_argument(
        "--officers", type=int, default=2, help="officers per agency, besides its supervisor (2)"
    )
    parser.add_argument("--kills", type=int, default=None, help="node SIGKILLs (default: one per 40 s)")
    parser.add_argument(
        "--slow-periods", type=int, default=None, help="slow-RPC periods (default: one per 80 s)"
    )
    parser.add_argument("--no-anvil-restart", action="store_true", help="leave out the anvil restart")
    parser.add_argument(
        "--settle-timeout", type=float, default=300.0, help="seconds to wait for the anchors (300)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="the run's directory (default: a temporary one)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's directory even when every proof holds"
    )
    args = parser.parse_args(argv)
    if args.seconds < 10 or args.officers < 1 or args.settle_timeout <= 0:
        parser.error("--seconds must be at least 10, --officers at least 1, --settle-timeout positive")
    if (args.kills is not None and args.kills < 0) or (
        args.slow_periods is not None and args.slow_periods < 0
    ):
        parser.error("--kills and --slow-periods cannot be negative")
    if args.work_dir is not None and args.work_dir.exists() and any(args.work_dir.iterdir()):
        parser.error(f"--work-dir {args.work_dir} is not empty")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sijill-soak-"))
    work.mkdir(parents=True, exist_ok=True)

    soak = Soak(args, work)
    log(f"soak: seed {args.seed} (repeat with --seed {args.seed}), {args.seconds:g}s of intake, in {work}")
    for fault in soak.faults:
        log(f"  planned {fault.at:6.1f}s into intake: {fault.describe()}")
    failures: list[str] = []
    figures: Counter[str] = Counter()
    try:
        soak.set_up()
        soak.run()
        unsettled = soak.settle()
        if unsettled:
            more = f" (and {len(unsettled) - 10} more)" if len(unsettled) > 10 else ""
            failures.append(f"not settled after {args.settle_timeout:g}s: {'; '.join(unsettled[:10])}{more}")
        else:
            log(f"{soak.stamp()} proving: chain logs, exports, bundles, audits")
            failures, figures = soak.prove()
    except SoakError as exc:
        failures.append(f"set-up: {exc}")
    except KeyboardInterrupt:
        failures.append("interrupted")
    finally:
        soak.shared.stopping.set()
        soak.shared.give_up.set()
        failures = soak.tally.failures + failures + soak.tear_down()
    log("")
    for failure in failures:
        log(f"FAILED: {failure}")
    if failures or args.keep:
        log(f"the run's files are in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    for line in soak.summary(failures, figures):
        log(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
