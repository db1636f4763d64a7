"""Benchmarks of the ledger core on one core: sealing, Merkle trees, verification.

Usage: .venv/bin/python scripts/bench_ledger.py [--records 20000] [--tree 1000000] [--bundles 5000]

Pins itself to one CPU. Prints, beside the targets of the ledger issue:
- records hashed into leaves per second (validated example records of the three types, fresh
  salts from the OS, every field hashed, digest and leaf);
- a Merkle tree over 1,000,000 leaves plus every leaf's proof, in seconds;
- bundles verified per second against an in-memory chain (`MemoryChain`): from JSON text, from
  parsed bundles, and the share of the one ECDSA recovery per receipt.
Schema validation (pydantic) is measured too, since intake does it before sealing. Prints a final
JSON line with every figure (scripts/bench_all.py reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from ledger_helpers import NOW, anchored_bundles, new_chain
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
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

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


if __name__ == "__main__":
    main()
