"""What the demo prints once it runs: chain, contracts, APIs and their stores, tokens, records,
certificates, in tables drawn whole (every URL, token and id can be copied)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from cli.demo import out
from cli.demo_scenario import bundle_path

if TYPE_CHECKING:
    from cli.demo_nodes import Demo


def print_summary(demo: Demo) -> None:
    """Where everything is: chain, contracts, APIs, tokens, records, a verify link."""
    out.print()
    out.rule("Sijill demo")
    out.print(f"Chain RPC: [bold]{demo.rpc_url}[/] (chain {demo.deployment['chainId']})")
    contracts = Table("contract", "address", title="Contracts", title_justify="left")
    for name, entry in demo.deployment["contracts"].items():
        contracts.add_row(name, entry["address"])
    _print_whole(contracts)
    apis = Table(
        "agency", "record type", "API", "OpenAPI", "store", title="Agency APIs", title_justify="left"
    )
    for agency in demo.agencies:  # the store's URI carries no password (the nodes get it apart)
        apis.add_row(
            agency.code,
            agency.record_type,
            agency.api_url,
            f"{agency.api_url}/openapi.json",
            demo.store(agency),
        )
    _print_whole(apis)
    tokens = Table(
        "agency", "role", "token (Authorization: Bearer …)", title="Demo tokens", title_justify="left"
    )
    for agency in demo.agencies:
        for role, entry in demo.officers[agency.code].items():
            tokens.add_row(agency.code, role, entry["token"])
    _print_whole(tokens)
    records = Table(
        "agency", "type", "record id", "version", "state", title="Demo records", title_justify="left"
    )
    for record in demo.records:
        state = demo.states.get(record["recordId"], "?")
        records.add_row(
            record["agency"], record["recordType"], record["recordId"], str(record["version"]), state
        )
    _print_whole(records)
    out.print("[bold]Certificates[/] (scan or open the verify page; the PDF carries its QR code):")
    for record in demo.records:
        if "certificate" in record:
            certificate = record["certificate"]
            out.print(f"  {record['agency']} {record['recordType']}/{record['recordId']}", soft_wrap=True)
            out.print(f"    verify: {certificate['verify']}", soft_wrap=True, markup=False)
            out.print(f"    PDF:    {certificate['pdf']}", soft_wrap=True, markup=False)
    first = next((r for r in demo.records if r["agency"] == demo.agencies[0].code), None)
    if first is not None:
        base = demo.agencies[0].api_url
        out.print(f"Verify:  {base}/verify (upload or paste a bundle)")
        out.print(f"Bundle:  {base}{bundle_path(first)} (with an officer token)")
    logs = f"{demo.data_dir}/<agency>/serve.log, {demo.chain_dir}/anvil.log"
    if demo.cluster is not None:
        logs += f", {demo.cluster.log}"
    out.print(f"Logs:    {logs}")
    out.print("Sijill demo running; press Ctrl-C to stop.")


def _print_whole(table: Table) -> None:
    """Print a table with no cell wrapped or cut to "marri…", however narrow the output.

    Rich fits a table to the console's width, which is 80 columns when the output is not a
    terminal (`make run | tee`, a log): it shortens cells to fit. The summary's cells are
    things to copy (URLs, tokens, ids, record types), so the table is drawn at its natural width
    instead and a narrow terminal wraps the lines, keeping every character."""
    for column in table.columns:
        column.no_wrap = True
    natural = out.measure(table, options=out.options.update_width(10_000)).maximum
    width = out.width
    out.width = max(width, natural)
    try:
        out.print(table)
    finally:
        out.width = width
