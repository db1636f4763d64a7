"""The demo's scenario: two records per agency created through its API, waited for until
anchored, and a certificate (a share) of each, all saved in DATA_DIR/demo-records.json so that a
re-run repeats none of it and prints the same QR codes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import requests
from rich.markup import escape

from cli.demo import (
    DEMO_DISCLOSED,
    READY_TIMEOUT,
    RECORDS_FORMAT,
    DemoAgency,
    demo_records,
    out,
    read_json,
    write_private,
)
from node.errors import NodeError

if TYPE_CHECKING:
    from cli.demo_nodes import Demo


def create_records(demo: Demo) -> None:
    """The demo records, through the API; saved after each one so a crash repeats none
    (the Idempotency-Key covers a crash between the answer and the save)."""
    saved = read_json(demo.records_file)
    ledger_address = demo.deployment["contracts"]["RecordLedger"]["address"]
    if saved and saved.get("format") == RECORDS_FORMAT:
        demo.records = list(saved["records"])
        if saved.get("complete"):
            out.print(f"Records: reusing {len(demo.records)} demo records ({demo.records_file})")
            return
    created = 0
    for agency in demo.agencies:
        mine = [r for r in demo.records if r["agency"] == agency.code]
        for index, record in enumerate(demo_records(agency.record_type)):
            if index < len(mine):
                continue
            try:
                answer = _request(
                    demo,
                    agency,
                    "post",
                    "/v1/records",
                    json={"recordType": agency.record_type, "record": record},
                    headers={"Idempotency-Key": f"sijill-demo-{agency.code}-{index}"},
                )
            except requests.RequestException as exc:
                raise NodeError(f"the {agency.code} API did not answer: {type(exc).__name__}") from None
            if answer.status_code != 201:
                raise NodeError(
                    f"the {agency.code} API refused demo record {index + 1}: "
                    f"{answer.status_code} {_problem(answer)}"
                )
            body = answer.json()
            demo.records.append(
                {
                    "agency": agency.code,
                    "recordType": body["recordType"],
                    "recordId": body["recordId"],
                    "version": body["version"],
                    "leaf": body["leaf"],
                }
            )
            created += 1
            _save_records(demo, ledger_address, complete=False)
    _save_records(demo, ledger_address, complete=True)
    plural = "" if created == 1 else "s"
    out.print(f"Records: created {created} demo record{plural} through the APIs ({demo.records_file})")


def _save_records(demo: Demo, ledger_address: str, *, complete: bool) -> None:
    doc = {"format": RECORDS_FORMAT, "recordLedger": ledger_address, "complete": complete}
    write_private(demo.records_file, {**doc, "records": demo.records})


def wait_anchored(demo: Demo) -> None:
    """Wait until every demo record's bundle is served (it is once the record is anchored)."""
    demo.states = {r["recordId"]: "pending" for r in demo.records}
    pending = list(demo.records)
    deadline = time.monotonic() + READY_TIMEOUT
    while pending and time.monotonic() < deadline:
        for record in list(pending):
            agency = _agency(demo, record["agency"])
            try:
                answer = _request(demo, agency, "get", bundle_path(record))
            except requests.RequestException:
                continue
            if answer.status_code == 200:
                demo.states[record["recordId"]] = "anchored"
                pending.remove(record)
            elif answer.status_code not in (202, 429):
                demo.states[record["recordId"]] = f"bundle: {answer.status_code}"
                out.print(
                    f"[yellow]warning:[/] the bundle of {record['recordType']}/{record['recordId']} "
                    f"answers {answer.status_code} {escape(_problem(answer))}"
                )
                pending.remove(record)
        if pending:
            time.sleep(0.5)
    if pending:
        names = ", ".join(f"{r['recordType']}/{r['recordId']}" for r in pending)
        out.print(f"[yellow]warning:[/] not anchored after {READY_TIMEOUT:g}s: {names} (see /healthz)")


def make_certificates(demo: Demo) -> None:
    """One certificate (share) per anchored demo record, disclosing what a clerk would be shown;
    made once and kept with the records, so a re-run prints the same QR codes."""
    ledger_address = demo.deployment["contracts"]["RecordLedger"]["address"]
    made = 0
    for record in demo.records:
        if "certificate" in record or demo.states.get(record["recordId"]) != "anchored":
            continue
        agency = _agency(demo, record["agency"])
        path = f"/v1/records/{record['recordType']}/{record['recordId']}/shares"
        try:
            answer = _request(
                demo, agency, "post", path, json={"fields": DEMO_DISCLOSED[record["recordType"]]}
            )
        except requests.RequestException as exc:
            raise NodeError(f"the {agency.code} API did not answer: {type(exc).__name__}") from None
        if answer.status_code != 201:
            raise NodeError(f"the {agency.code} API refused a demo certificate: {_problem(answer)}")
        body = answer.json()
        record["certificate"] = {"token": body["token"], **body["links"]}
        _save_records(demo, ledger_address, complete=True)
        made += 1
    if made:
        out.print(f"Certificates: made {made} (a share of each record, with a QR code)")


def _request(demo: Demo, agency: DemoAgency, method: str, path: str, **kwargs: Any) -> requests.Response:
    token = demo.officers[agency.code]["officer"]["token"]
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, agency.api_url + path, headers=headers, timeout=10, **kwargs)


def _agency(demo: Demo, code: str) -> DemoAgency:
    return next(a for a in demo.agencies if a.code == code)


def bundle_path(record: dict[str, Any]) -> str:
    """The API path of a demo record's bundle (served with an officer token once anchored)."""
    return f"/v1/records/{record['recordType']}/{record['recordId']}/bundle"


def _problem(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return str(body.get("detail") or body.get("title") or body) if isinstance(body, dict) else str(body)
