"""Benchmarks of the ledger core on one core: sealing, Merkle trees, verification.

Usage: .venv/bin/python scripts/bench_ledger.py [--records 20000] [--tree 1000000] [--bundles 5000]
       .venv/bin/python scripts/bench_ledger.py --against main [--rounds 7]

Pins itself to one CPU. Prints, beside the targets of the ledger issue:
- records hashed into leaves per second (validated example records of the three types, fresh
  salts from the OS, every field hashed, digest and leaf);
- a Merkle tree over 1,000,000 leaves plus every leaf's proof, in seconds;
- bundles verified per second against an in-memory chain (`MemoryChain`): from JSON text, from
  parsed bundles, and the share of the one ECDSA recovery per receipt.
Schema validation (pydantic) is measured too, since intake does it before sealing. Prints a final
JSON line with every figure (scripts/bench_all.py reads it).

`--against REF` measures instead this tree's ledger core beside the one of a git commit, in one
process and one run (this machine is shared: absolute rates swing with its load, the ratio
between two runs taken together holds). `ledger/` of REF is copied to a temporary package; the
two are run in turn, `--rounds` times, and the best round of each is kept, as CPU time per
operation (`time.process_time`): sealing records (the figure above), signing and recovering
receipts, the canonical text check a verifier makes of every disclosed value, and whole bundles
verified from JSON text (each version with its own `ledger.verify` and `ledger.bundle`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from ledger_helpers import ANCHORED_AT, CHAIN_ID, LEDGER, NOW, REGISTRY, SIGNER, anchored_bundles, new_chain
from rich.console import Console
from rich.table import Table

from ledger.bundle import disclose, dump_bundle, load_bundle
from ledger.fields import RecordKey, flatten, seal_record
from ledger.hashing import KECCAK_BACKEND
from ledger.merkle import build_tree
from ledger.receipts import recover_receipt_signer
from ledger.records import validate_record
from ledger.records.examples import TODAY, commercial_example, marriage_example, title_example
from ledger.verify import Verdict, verify


def rate(count: int, work: Callable[[], Any]) -> tuple[float, float]:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return count / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--tree", type=int, default=1_000_000)
    parser.add_argument("--bundles", type=int, default=5_000)
    parser.add_argument("--against", metavar="REF", help="compare with ledger/ at this git commit")
    parser.add_argument("--rounds", type=int, default=7, help="with --against: rounds of each")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.against:
        compare(args.against, args.rounds, min(args.records, 6_000))
        return

    table = Table("measure", "result", "target", title=f"ledger core, one core, keccak: {KECCAK_BACKEND}")
    figures: dict[str, Any] = {"bench": "ledger", "records": args.records, "tree": args.tree}
    figures["bundles"] = args.bundles
    raw = [("title", title_example()), ("marriage", marriage_example()), ("commercial", commercial_example())]
    n = args.records
    batch = raw * max(1, n // 30)
    per_second, _ = rate(
        len(batch), lambda: [validate_record(kind, data, today=TODAY) for kind, data in batch]
    )
    table.add_row("records validated (pydantic schemas)", f"{per_second:,.0f} /s", "")
    figures["validatedPerSecond"] = round(per_second)
    records = [validate_record(kind, data, today=TODAY) for kind, data in raw]
    fields = sum(len(flatten(r)) for r in records) / len(records)
    keys = [RecordKey("REPD", "title", f"R{i}", 1) for i in range(n)]
    per_second, _ = rate(n, lambda: [seal_record(keys[i], records[i % 3]) for i in range(n)])
    table.add_row(
        f"records hashed into leaves ({fields:.0f} fields each)", f"{per_second:,.0f} /s", "≥ 50,000 /s"
    )
    figures["sealedPerSecond"], figures["fieldsPerRecord"] = round(per_second), round(fields)

    leaves = [os.urandom(32) for _ in range(args.tree)]
    start = time.perf_counter()
    tree = build_tree(leaves)
    built = time.perf_counter() - start
    proofs = tree.all_proofs()
    total = time.perf_counter() - start
    assert len(proofs) == args.tree
    table.add_row(f"Merkle tree of {args.tree:,} leaves", f"{built:.2f} s", "")
    table.add_row(f"  … plus all {args.tree:,} proofs", f"{total:.2f} s", "≤ 10 s")
    figures["treeSeconds"], figures["treeAndProofsSeconds"] = round(built, 3), round(total, 3)
    del leaves, tree, proofs

    chain = new_chain()
    bundles = anchored_bundles(chain, [records[0]] * args.bundles)
    texts = [dump_bundle(disclose(b, ["/title_number", "/owners/0/name"])) for b in bundles]
    parsed = [load_bundle(t) for t in texts]
    assert verify(texts[0], chain, now=NOW).verdict == Verdict.AUTHENTIC
    per_second, _ = rate(len(texts), lambda: [verify(t, chain, now=NOW) for t in texts])
    table.add_row("bundles verified, from JSON text", f"{per_second:,.0f} /s", "≥ 20,000 /s")
    figures["verifiedFromTextPerSecond"] = round(per_second)
    per_second, _ = rate(len(parsed), lambda: [verify(b, chain, now=NOW) for b in parsed])
    table.add_row("bundles verified, already parsed", f"{per_second:,.0f} /s", "")
    figures["verifiedParsedPerSecond"] = round(per_second)
    per_second, _ = rate(len(texts), lambda: [load_bundle(t) for t in texts])
    table.add_row("  of which: parsing alone", f"{per_second:,.0f} /s", "")
    figures["parsedPerSecond"] = round(per_second)
    per_second, _ = rate(
        len(parsed),
        lambda: [recover_receipt_signer(b.receipt_message(), b.domain, b.receipt.signature) for b in parsed],
    )
    table.add_row("  of which: receipt signature recovery alone", f"{per_second:,.0f} /s", "")
    figures["recoveredPerSecond"] = round(per_second)
    Console().print(table)
    print(json.dumps(figures))


def baseline_ledger(ref: str, into: Path) -> Any:
    """`ledger/` as of git commit `ref`, importable as the package `baseline_ledger`."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "ledger"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    package = into / "baseline_ledger"
    (into / "ledger").rename(package)
    for module in package.rglob("*.py"):
        text = module.read_text()
        module.write_text(re.sub(r"\b(from|import) ledger\b", r"\1 baseline_ledger", text))
    sys.path.insert(0, str(into))
    return importlib.import_module("baseline_ledger")


def compare(ref: str, rounds: int, n: int) -> None:
    """This tree's ledger core beside REF's, alternating, best round of each (µs CPU per op)."""
    with tempfile.TemporaryDirectory() as tmp:
        baseline_ledger(ref, Path(tmp))
        cores = {name: importlib.import_module(f"{name}.fields") for name in ("baseline_ledger", "ledger")}
        receipts = {name: importlib.import_module(f"{name}.receipts") for name in cores}
        canonical = {name: importlib.import_module(f"{name}.canonical") for name in cores}
        verifiers = {name: importlib.import_module(f"{name}.verify") for name in cores}
        chainviews = {name: importlib.import_module(f"{name}.chainview") for name in cores}
    raw = [("title", title_example()), ("marriage", marriage_example()), ("commercial", commercial_example())]
    records = [validate_record(kind, data, today=TODAY) for kind, data in raw]
    key, texts = os.urandom(32), [v for r in records for v in flatten(r).values() if isinstance(v, str)]
    # The same bundle texts for both (the format is the same); each verifies against a chain
    # made of its own package's types.
    bundles = anchored_bundles(new_chain(), [records[0]] * (n // 4))
    texts_of_bundles = [dump_bundle(disclose(b, ["/title_number", "/owners/0/name"])) for b in bundles]
    root = bundles[0].anchor.root if bundles[0].anchor else b""
    work: dict[str, dict[str, Callable[[], Any]]] = {}
    for name in cores:
        fields, rc = cores[name], receipts[name]
        keys = [fields.RecordKey("REPD", "title", f"R{i}", 1) for i in range(n)]
        signer, domain = rc.ReceiptSigner(key), rc.ReceiptDomain(31337, "0x" + "ab" * 20)
        receipt_list = [rc.Receipt("REPD", "title", f"R{i}", 1, os.urandom(32), 1, 2) for i in range(n // 4)]
        signatures = [signer.sign(r, domain) for r in receipt_list]
        check = canonical[name].is_canonical_text
        cv = chainviews[name]
        chain = cv.MemoryChain(
            CHAIN_ID,
            LEDGER,
            REGISTRY,
            agencies={"REPD": cv.AgencyStatus.ACTIVE},
            signers={SIGNER: ("REPD", 1, 2**64 - 1)},
            block=100,
        )
        chain.batches[("REPD", root)] = cv.BatchInfo("title", 1, 51, ANCHORED_AT, len(bundles))
        verify_one = verifiers[name].verify
        assert verify_one(texts_of_bundles[0], chain, now=NOW).verdict.name == "AUTHENTIC"
        work[name] = {
            "records hashed into leaves": lambda f=fields, k=keys: [
                f.seal_record(k[i], records[i % 3]) for i in range(n)
            ],
            "receipts signed": lambda s=signer, d=domain, rs=receipt_list: [s.sign(r, d) for r in rs],
            "receipt signers recovered": lambda m=rc, d=domain, rs=receipt_list, sg=signatures: [
                m.recover_receipt_signer(r, d, g) for r, g in zip(rs, sg, strict=True)
            ],
            "disclosed texts checked canonical": lambda c=check: [c(t) for t in texts * 40],
            "bundles verified from JSON text": lambda v=verify_one, c=chain: [
                v(t, c, now=NOW) for t in texts_of_bundles
            ],
        }
    counts = {
        "records hashed into leaves": n,
        "receipts signed": n // 4,
        "receipt signers recovered": n // 4,
        "disclosed texts checked canonical": len(texts) * 40,
        "bundles verified from JSON text": len(texts_of_bundles),
    }
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for measure, count in counts.items():
            for name in cores:
                start = time.process_time()
                work[name][measure]()
                spent = (time.process_time() - start) / count * 1e6
                best[name, measure] = min(best.get((name, measure), spent), spent)
    table = Table("measure", f"{ref} µs", "this tree µs", f"{ref} /s", "this tree /s", "speed-up")
    figures: dict[str, Any] = {"bench": "ledger-ab", "against": ref, "rounds": rounds, "records": n}
    for measure in counts:
        old, new = best["baseline_ledger", measure], best["ledger", measure]
        table.add_row(
            measure, f"{old:.2f}", f"{new:.2f}", f"{1e6 / old:,.0f}", f"{1e6 / new:,.0f}", f"{old / new:.2f}×"
        )
        figures[measure] = {"baselineMicroseconds": round(old, 3), "microseconds": round(new, 3)}
    table.title = f"ledger core, one core, CPU time per operation, best of {rounds} alternating rounds"
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
