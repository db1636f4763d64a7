"""Capacity on paper: how many records a network of N agencies can anchor, and what it stores.

Usage: .venv/bin/python scripts/capacity.py [--gas-json FILE] [--gas-limit G] [--block-time T]
                                            [--agencies 3,10,30] [--intake-rate R] [--naive-rate N]

The gas and byte figures are measured: read from `scripts/gas_report.py --json` output (--gas-json
FILE), or, without it, measured now by gas_report's own `measure()` on a fresh anvil (about 10 s).
The batcher's figures (batch size, batch age, anchors in flight, the anchor's gas limit, leaves per
revoke/supersede call) are the node's defaults, imported from node/batcher/log.py, node/chain/limits.py
and node/chain/txmanager.py.
The block gas limit and block period default to the genesis `sijill network init` writes
(node/network/options.py NetworkOptions); --gas-limit and --block-time try others. The intake rate
of one agency node and the naive design's rate are measured by scripts/bench_node.py; pass what
it prints. docs/capacity.md explains every formula.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node.batcher import BatcherSettings
from node.chain.limits import ANCHOR_GAS, MAX_LEAVES_PER_CALL
from node.chain.txmanager import TxSettings
from node.network.options import TX_POOL_MAX_FUTURE_BY_SENDER, NetworkOptions

SECONDS_PER_YEAR = 365 * 24 * 3600
SLOT_BYTES = 64  # a storage slot's key and value, 32 bytes each, before the state trie's own overhead
#: Besu QBFT, 4 validators, Caliper "open" test of a simple contract, one Caliper on one node
#: (the Besu wiki's "QBFT Performance" page); the block period of that test is not given there.
BESU_PUBLISHED_TPS = 750
#: TxManager's estimate headroom for calls without a fixed gas limit (revoke, supersede).
ESTIMATE_FACTOR, ESTIMATE_EXTRA = 1.2, 10_000
#: measured by scripts/bench_node.py on this 2-core machine (see docs/capacity.md).
DEFAULT_INTAKE_RATE = 1_500
DEFAULT_NAIVE_RATE = 46


def load_gas(path: Path | None) -> dict[str, Any]:
    if path is not None:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    from gas_report import measure

    return measure([1, 100, 1000, 10000])


def figures(gas: dict[str, Any], gas_limit: int, block_time: float) -> dict[str, float]:
    """The inputs of every formula, by the names docs/capacity.md uses."""
    batcher, tx = BatcherSettings(), TxSettings()
    later = [a for a in gas["anchor"] if not a["first"]]
    return {
        "G": gas_limit,
        "T": block_time,
        "g_a": max(a["gas"] for a in later),
        "g_a1": next(a["gas"] for a in gas["anchor"] if a["first"]),
        "L_a": ANCHOR_GAS,
        "g_r": gas["revoke"]["gas"] / gas["revoke"]["leaves"],
        "g_s": gas["supersede"]["gas"] / gas["supersede"]["leaves"],
        "g_n": gas["naiveGasPerRecord"],
        "B": batcher.batch_size,
        "A": batcher.max_age,
        "F": min(batcher.max_in_flight, tx.max_in_flight),
        "M": MAX_LEAVES_PER_CALL,
        "tx_a": max(a["txBytes"] for a in later),
        "rc_a": max(a["receiptBytes"] for a in later),
        "tx_r": gas["revoke"]["txBytes"] / gas["revoke"]["leaves"],
        "rc_r": gas["revoke"]["receiptBytes"] / gas["revoke"]["leaves"],
        "tx_s": gas["supersede"]["txBytes"] / gas["supersede"]["leaves"],
        "rc_s": gas["supersede"]["receiptBytes"] / gas["supersede"]["leaves"],
    }


def capacity(f: dict[str, float], agencies: int, intake: float, naive_rate: float) -> dict[str, float]:
    """One row of the capacity table (formulas (1) to (7) of docs/capacity.md)."""
    by_gas = (f["G"] - f["L_a"]) // f["g_a"] + 1  # (1) Besu packs a tx only if its gas limit fits
    by_nodes = agencies * f["F"]  # (2) each agency has at most F anchors in flight
    anchors = min(by_gas, by_nodes)
    chain = anchors * f["B"] / f["T"]  # (3) full batches
    nodes = agencies * intake  # (4) the agencies' own intake
    rate = min(chain, nodes)  # (5)
    # (6) block gas used at that rate: a batch closes when full or A seconds old, whichever first
    gas_share = agencies * max(1 / f["A"], rate / agencies / f["B"]) * f["T"] * f["g_a"] / f["G"]
    naive = min(agencies * naive_rate, f["G"] // f["g_n"] / f["T"], BESU_PUBLISHED_TPS)  # (7)
    return {
        "by_gas": by_gas,
        "by_nodes": by_nodes,
        "chain": chain,
        "nodes": nodes,
        "rate": rate,
        "year": rate * SECONDS_PER_YEAR,
        "gas_share": gas_share,
        "naive": naive,
        "naive_year": naive * SECONDS_PER_YEAR,
    }


def largest_call(f: dict[str, float], per_leaf: float) -> int:
    """Most leaves a revoke/supersede call can carry and still fit a block, with TxManager's headroom:
    gas limit = 1.2 x estimate + 10,000 <= G, estimate ~ per_leaf x leaves (per_leaf includes the
    call's fixed cost spread over the 100 measured leaves, so this errs low by a few leaves)."""
    return int((f["G"] - ESTIMATE_EXTRA) / ESTIMATE_FACTOR // per_leaf)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gas-json", type=Path, help="output of scripts/gas_report.py --json (else measure)")
    genesis = NetworkOptions()  # what `sijill network init` writes by default
    parser.add_argument("--gas-limit", type=int, default=genesis.gas_limit, help="block gas limit")
    parser.add_argument("--block-time", type=float, default=genesis.block_period, help="block period, s")
    parser.add_argument("--agencies", default="3,10,30")
    parser.add_argument("--intake-rate", type=float, default=DEFAULT_INTAKE_RATE, help="records/s per node")
    parser.add_argument("--naive-rate", type=float, default=DEFAULT_NAIVE_RATE, help="naive records/s")
    parser.add_argument("--json", action="store_true", help="print the figures and rows as JSON")
    args = parser.parse_args()
    gas = load_gas(args.gas_json)
    f = figures(gas, args.gas_limit, args.block_time)
    rows = {int(n): capacity(f, int(n), args.intake_rate, args.naive_rate) for n in args.agencies.split(",")}
    limits = {"revoke": largest_call(f, f["g_r"]), "supersede": largest_call(f, f["g_s"])}
    if args.json:
        print(json.dumps({"figures": f, "rows": rows, "largestCall": limits}, indent=2))
        return

    console = Console(width=150)
    inputs = Table("figure", "value", "from", title="Inputs")
    for line in (
        ("G  block gas limit", f"{f['G']:,.0f}", "`sijill network init` default (--gas-limit)"),
        ("T  block period", f"{f['T']:g} s", "`sijill network init` default (--block-time)"),
        ("g_a  anchor gas (later batch)", f"{f['g_a']:,.0f}", "gas_report.py"),
        ("g_a1  anchor gas (agency's first)", f"{f['g_a1']:,.0f}", "gas_report.py"),
        ("L_a  anchor gas limit", f"{f['L_a']:,.0f}", "node/chain/limits.py ANCHOR_GAS"),
        ("g_r  revoke gas per leaf (100)", f"{f['g_r']:,.0f}", "gas_report.py"),
        ("g_s  supersede gas per leaf (100)", f"{f['g_s']:,.0f}", "gas_report.py"),
        ("g_n  naive gas per record", f"{f['g_n']:,.0f}", "gas_report.py (baseline)"),
        ("B  batch size", f"{f['B']:,.0f}", "node/batcher/log.py BatcherSettings.batch_size"),
        ("A  batch max age", f"{f['A']:g} s", "node/batcher/log.py BatcherSettings.max_age"),
        ("F  anchors in flight per agency", f"{f['F']:.0f}", "Batcher/TxSettings.max_in_flight"),
        ("M  leaves per revoke/supersede call", f"{f['M']:,.0f}", "node/chain/limits.py MAX_LEAVES_PER_CALL"),
        ("R  intake per agency node", f"{args.intake_rate:,.0f} records/s", "bench_node.py, --intake-rate"),
        ("naive rate per sender", f"{args.naive_rate:,.0f} records/s", "bench_node.py, --naive-rate"),
        ("Besu QBFT published", f"{BESU_PUBLISHED_TPS} tx/s", "Besu wiki, QBFT Performance"),
        ("pool: future nonces per sender", f"{TX_POOL_MAX_FUTURE_BY_SENDER:,}", "node/network/options.py"),
    ):
        inputs.add_row(*line)
    console.print(inputs)

    table = Table(
        "N",
        "(1) anchors/\nblock, gas",
        "(2) anchors/\nblock, nodes",
        "(3) chain\nrecords/s",
        "(4) intake\nrecords/s",
        "(5) network\nrecords/s",
        "records\na year",
        "(6) block\ngas used",
        "(7) naive\nrecords/s",
        "naive\na year",
        "(5) / (7)",
        title=f"Capacity: {f['G'] / 1e6:g}M gas blocks every {f['T']:g} s, batches of {f['B']:,.0f}",
    )
    for n, row in rows.items():
        table.add_row(
            str(n),
            f"{row['by_gas']:,.0f}",
            f"{row['by_nodes']:,.0f}",
            f"{row['chain']:,.0f}",
            f"{row['nodes']:,.0f}",
            f"{row['rate']:,.0f}",
            f"{row['year'] / 1e9:,.1f} bn",
            f"{row['gas_share']:.2%}",
            f"{row['naive']:,.0f}",
            f"{row['naive_year'] / 1e9:,.1f} bn",
            f"{row['rate'] / row['naive']:,.0f} x",
        )
    console.print(table)

    growth = Table(
        "per million records",
        "transactions",
        "new storage slots",
        "slot bytes (64 each)",
        "transaction bytes",
        "receipt bytes",
        title="Chain growth",
    )
    for fill in (f["B"], 1_000, 100):
        batches = 1e6 / fill
        growth.add_row(
            f"anchored, batches of {fill:,.0f}",
            f"{batches:,.0f}",
            f"{2 * batches:,.0f}",
            f"{2 * batches * SLOT_BYTES / 1e6:,.2f} MB",
            f"{batches * f['tx_a'] / 1e6:,.2f} MB",
            f"{batches * f['rc_a'] / 1e6:,.2f} MB",
        )
    for name, slots, tx_key, rc_key in (("revoked", 1, "tx_r", "rc_r"), ("superseded", 2, "tx_s", "rc_s")):
        per_call = min(f["M"], limits["revoke" if name == "revoked" else "supersede"])
        growth.add_row(
            f"{name} (calls of {per_call:,.0f})",
            f"{1e6 / per_call:,.0f}",
            f"{slots * 1e6:,.0f}",
            f"{slots * 1e6 * SLOT_BYTES / 1e6:,.0f} MB",
            f"{f[tx_key]:,.0f} MB",
            f"{f[rc_key]:,.0f} MB",
        )
    console.print(growth)

    cadence = Table(
        "N",
        "anchors a year",
        "new storage slots",
        "slot bytes",
        "transaction bytes",
        "receipt bytes",
        title=f"Chain growth a year from the batch cadence: records never stop for {f['A']:g} s, "
        f"under {f['B'] / f['A']:,.0f} records/s per agency, one record type each (8)",
    )
    for n in rows:
        anchors = n * SECONDS_PER_YEAR / f["A"]
        cadence.add_row(
            str(n),
            f"{anchors / 1e6:,.1f} M",
            f"{2 * anchors / 1e6:,.1f} M",
            f"{2 * anchors * SLOT_BYTES / 1e9:,.1f} GB",
            f"{anchors * f['tx_a'] / 1e9:,.1f} GB",
            f"{anchors * f['rc_a'] / 1e9:,.1f} GB",
        )
    console.print(cadence)

    calls = Table(
        "call",
        "gas per leaf",
        "largest call in one block",
        "node sends up to",
        "per second by gas",
        title="Revoke and supersede calls (9)",
    )
    for name, per_leaf in (("revoke", f["g_r"]), ("supersede", f["g_s"])):
        largest = limits[name]
        calls.add_row(
            name,
            f"{per_leaf:,.0f}",
            f"{largest:,} leaves",
            f"{f['M']:,.0f} leaves" + ("" if largest >= f["M"] else "  (does not fit)"),
            f"{f['G'] // per_leaf / f['T']:,.0f} leaves/s",
        )
    console.print(calls)


if __name__ == "__main__":
    main()
