"""The soak's proofs (scripts/soak.py), held against the chain itself once everything settled.

1. Each agency's log on the chain (`BatchAnchored` events and `head`) runs seq 1..head without a
   gap, each batch linking to the previous root, no root twice; and it is exactly the batches
   the node reports (`sijill export --api`: seq, root, record type, count), none pending.
2. Each exported batch's leaves rebuild its on-chain root; every leaf an officer was given a
   receipt for is in exactly one of them; no leaf is in two; none is there that no officer was
   answered; the node's receipts are exactly the officers' (the same signature for each leaf).
3. Every accepted version's bundle, fetched from its node, verifies with `sijill verify` against
   the chain as the run left it: the latest version current (revoked if it was revoked), every
   earlier one superseded, each the bundle of the very leaf the officer was given.
4. `sijill audit` of each agency's export finds nothing.

Each failed proof is one line naming the agency, the batch, the record or the leaf.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from soak_actors import Record, Tally, log

from cli.demo import DemoAgency, child_env, sijill_command
from ledger.codes import agency_code, decode_code
from ledger.merkle import build_tree
from node.auditor.export import ZERO_ROOT, ExportBatch
from node.auditor.exportread import read_batches, read_receipts


@dataclass(frozen=True, slots=True)
class ChainBatch:
    seq: int
    root: str
    prev: str
    count: int
    record_type: str


@dataclass
class Proofs:
    """What the proofs are held against: the chain (not a node's proxy) and its RecordLedger,
    the deployment, the agencies' APIs and tokens, and what the officers were told."""

    work: Path
    rpc_url: str
    ledger: Any
    deployment: dict[str, Any]
    deployment_file: Path
    agencies: tuple[DemoAgency, ...]
    tokens: dict[str, dict[str, str]]
    tally: Tally

    def run(self, stamp: Callable[[], str]) -> tuple[list[str], Counter[str]]:
        """Every proof; (failures, figures). Audits run while the bundles are checked; `stamp`
        begins each progress line."""
        failures: list[str] = []
        figures: Counter[str] = Counter()
        exports = self.exports(failures)
        log(f"{stamp()}   exported {', '.join(sorted(exports))}")
        with concurrent.futures.ThreadPoolExecutor(len(exports) or 1) as pool:
            audits = pool.map(self.audit, sorted(exports.items()))
            for code, export in sorted(exports.items()):
                failures += self.log_against_export(code, export, figures)
            log(f"{stamp()}   chain logs checked against the exports")
            failures += self.bundles(figures)
            log(f"{stamp()}   bundles verified")
            failures += [f for f in audits if f is not None]
        log(f"{stamp()}   audits done")
        return failures, figures

    # -- 1 and 2 ------------------------------------------------------------------------------------

    def exports(self, failures: list[str]) -> dict[str, Path]:
        """`sijill export --api` of each agency with its auditor's token, side by side."""

        def export(agency: DemoAgency) -> str | None:
            out = self.work / "exports" / agency.code.lower()
            command = [
                *sijill_command("export"),
                *("--api", agency.api_url, "--deployment", str(self.deployment_file), "--out", str(out)),
            ]
            env = {**child_env(), "SIJILL_API_TOKEN": self.tokens[agency.code]["auditor"]}
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                return (
                    f"{agency.code}: sijill export failed ({done.returncode}): {done.stderr.strip()[-300:]}"
                )
            return None

        with concurrent.futures.ThreadPoolExecutor(len(self.agencies)) as pool:
            outcomes = list(pool.map(export, self.agencies))
        failures += [f for f in outcomes if f is not None]
        return {
            a.code: self.work / "exports" / a.code.lower()
            for a, outcome in zip(self.agencies, outcomes, strict=True)
            if outcome is None
        }

    def chain_log(self, code: str) -> tuple[dict[int, ChainBatch], list[str]]:
        """The agency's batches as the chain has them, by seq, and what is wrong with the log."""
        word = agency_code(code)
        logs = self.ledger.events.BatchAnchored.get_logs(
            argument_filters={"agency": word}, from_block=self.deployment["block"], to_block="latest"
        )
        problems: list[str] = []
        batches: dict[int, ChainBatch] = {}
        for entry in logs:
            args = entry["args"]
            seq = int(args["seq"])
            if seq in batches:
                problems.append(f"{code}: seq {seq} anchored twice on the chain")
            batches[seq] = ChainBatch(
                seq,
                bytes(args["root"]).hex(),
                bytes(args["prevRoot"]).hex(),
                int(args["count"]),
                decode_code(args["recordType"]),
            )
        head_root, head_seq = self.ledger.functions.head(word).call()
        if sorted(batches) != list(range(1, head_seq + 1)):
            problems.append(
                f"{code}: the chain's log is not seq 1..{head_seq} without a gap: {sorted(batches)[:20]}"
            )
        for seq, batch in batches.items():
            if batch.prev != (batches[seq - 1].root if seq - 1 in batches else ZERO_ROOT.hex()):
                problems.append(f"{code}: on the chain, batch {seq} does not link to batch {seq - 1}")
        if head_seq and (head_seq not in batches or batches[head_seq].root != bytes(head_root).hex()):
            problems.append(f"{code}: head(agency) is not the last batch anchored")
        if len({b.root for b in batches.values()}) != len(batches):
            problems.append(f"{code}: a root anchored twice on the chain")
        return batches, problems

    def log_against_export(self, code: str, export: Path, figures: Counter[str]) -> list[str]:
        """Proofs 1 and 2 for one agency."""
        on_chain, failures = self.chain_log(code)
        exported = {b.seq: b for b in read_batches(export)}
        if set(exported) != set(on_chain):
            failures.append(
                f"{code}: the node reports batches {sorted(set(exported) - set(on_chain))[:10]} the chain "
                f"lacks, and lacks {sorted(set(on_chain) - set(exported))[:10]} the chain has"
            )
        placed: dict[str, int] = {}  # leaf -> the seq of its batch
        for seq, batch in sorted(exported.items()):
            if seq in on_chain:
                failures += self._batch(code, batch, on_chain[seq], placed)
        mine = {leaf for leaf, r in self.tally.receipts.items() if r["agency"] == code}
        lost = sorted(mine - set(placed))
        if lost:
            failures.append(f"{code}: {len(lost)} accepted leaves are in no anchored batch, e.g. {lost[:3]}")
        receipts = {"0x" + r.leaf.hex(): r for r in read_receipts(export)}
        for leaf in sorted(mine):
            told, kept = self.tally.receipts[leaf], receipts.get(leaf)
            if kept is None:
                failures.append(f"{code}: the node exported no receipt for accepted leaf {leaf}")
            elif (kept.signature.lower(), kept.record_id, kept.version) != (
                told["signature"].lower(),
                told["recordId"],
                told["version"],
            ):
                failures.append(
                    f"{code}: the exported receipt of {leaf} is not the one the officer was given"
                )
        extra = sorted(set(receipts) - mine)
        if extra:
            failures.append(f"{code}: {len(extra)} receipts no officer was answered with, e.g. {extra[:3]}")
        figures["anchored"] += len(mine & set(placed))
        figures["batches"] += len(on_chain)
        return failures

    def _batch(self, code: str, batch: ExportBatch, chained: ChainBatch, placed: dict[str, int]) -> list[str]:
        seq = batch.seq
        failures = [f"{code}: batch {seq} still pending at the end"] if batch.pending else []
        if (batch.root.hex(), batch.count, batch.record_type) != (
            chained.root,
            chained.count,
            chained.record_type,
        ):
            failures.append(f"{code}: batch {seq} differs between the node and the chain")
        if len(batch.leaves) != chained.count or build_tree(list(batch.leaves)).root.hex() != chained.root:
            return [*failures, f"{code}: batch {seq}'s leaves do not rebuild its on-chain root"]
        for leaf in ("0x" + leaf.hex() for leaf in batch.leaves):
            if leaf in placed:
                failures.append(f"{code}: leaf {leaf} is in batches {placed[leaf]} and {seq}")
            placed[leaf] = seq
            told = self.tally.receipts.get(leaf)
            if told is None:
                failures.append(f"{code}: leaf {leaf} of batch {seq} was never answered to an officer")
            elif told["recordType"] != batch.record_type:
                failures.append(
                    f"{code}: leaf {leaf}, a {told['recordType']}, in a {batch.record_type} batch"
                )
        return failures

    # -- 3 ----------------------------------------------------------------------------------------

    def bundles(self, figures: Counter[str]) -> list[str]:
        """Every accepted version's bundle from its node, verified by `sijill verify`."""
        out = self.work / "bundles"
        wanted: dict[Path, tuple[Record, int]] = {
            out / record.agency / f"{record.record_id}-v{version}.json": (record, version)
            for record in self.tally.records.values()
            for version in range(1, len(record.leaves) + 1)
        }
        with concurrent.futures.ThreadPoolExecutor(len(self.agencies)) as pool:
            failures = [
                f for found in pool.map(lambda a: self._fetch(a, wanted), self.agencies) for f in found
            ]
        if failures:
            return failures
        command = [
            *sijill_command("verify"),
            *(str(out), "--rpc", self.rpc_url, "--deployment", str(self.deployment_file), "--json"),
        ]
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=1800)
        if done.returncode not in (0, 1):  # 1: not all authentic-current, as some must not be
            return [f"sijill verify failed ({done.returncode}): {done.stderr.strip()[-300:]}"]
        reports = {Path(r["source"]): r for r in map(json.loads, done.stdout.splitlines())}
        for path, (record, version) in wanted.items():
            report, want = reports.get(path), record.expected(version)
            where = f"{record.agency}: {record.record_id} v{version}"
            if report is None:
                failures.append(f"{where}: sijill verify said nothing of {path}")
                continue
            figures[f"verdict-{report['verdict']}"] += 1
            integrity: dict[str, Any] = next((c for c in report["checks"] if c["name"] == "integrity"), {})
            if report["verdict"] != want:
                failing = "; ".join(
                    f"{c['name']}: {c['reason']['en']}" for c in report["checks"] if c["outcome"] != "pass"
                )
                failures.append(f"{where} verifies {report['verdict']}, not {want} ({failing[:200]})")
            elif integrity.get("details", {}).get("leaf") != record.leaves[version - 1]:
                failures.append(f"{where}: the bundle is not of the leaf the officer was given")
        figures["bundles"] = len(wanted)
        return failures

    def _fetch(self, agency: DemoAgency, wanted: dict[Path, tuple[Record, int]]) -> list[str]:
        """One agency's bundles, over one keep-alive connection, into `wanted`'s paths."""
        problems = []
        headers = {"Authorization": f"Bearer {self.tokens[agency.code]['officer-1']}"}
        with httpx.Client(base_url=agency.api_url, headers=headers, timeout=60) as client:
            for path, (record, version) in wanted.items():
                if record.agency != agency.code:
                    continue
                url = f"/v1/records/{record.record_type}/{record.record_id}/bundle"
                while (answer := client.get(url, params={"version": version})).status_code == 429:
                    time.sleep(0.2)
                if answer.status_code != 200:
                    problems.append(
                        f"{agency.code}: the bundle of {record.record_id} v{version} got {answer.status_code}"
                    )
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(answer.content)
        return problems

    # -- 4 ----------------------------------------------------------------------------------------

    def audit(self, item: tuple[str, Path]) -> str | None:
        """`sijill audit` of one agency's export: None when it finds nothing."""
        code, export = item
        command = [
            *sijill_command("audit"),
            *("--agency", code, "--rpc", self.rpc_url, "--export", str(export)),
            *("--deployment", str(self.deployment_file), "--json"),
        ]
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=1800)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            return f"{code}: sijill audit failed ({done.returncode}): {done.stderr.strip()[-300:]}"
        if done.returncode == 0 and report["verdict"] == "clean":
            return None
        found = report.get("findings", [])
        listed = "; ".join(f"{f['id']}: {f['message']}" for f in found[:5])
        return f"{code}: sijill audit has {len(found)} findings: {listed}"
