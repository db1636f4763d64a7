"""The HTTP API against real `sijill serve` processes on a real anvil: every route, every role
rule, idempotency, the bulk path, node-to-node requests, and problem details for bad input; each
test twice, the nodes' stores on LevelDB, then on PostgreSQL (the `backend` fixture)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Backend, Server, expect_problem, servers, wait_anchored
from eth_account import Account
from web3 import Web3

from ledger.bundle import load_bundle
from ledger.receipts import recover_receipt_signer
from ledger.records.examples import commercial_example, marriage_example, title_example
from node.chain.toolchain import CompiledContract
from node.peer.client import PeerClient
from node.peer.signing import sign_request
from node.store import verify_audit_chain

pytestmark = pytest.mark.chain

POLICY = {"CSO": {"title": ["/owners", "/title_number"]}}


@pytest.fixture(scope="module")
def api(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    devchain: Any,
    backend: Backend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp(f"api-{backend.name}")
    with servers(
        w3,
        compiled,
        root,
        devchain.rpc_url,
        policies={"REPD": POLICY},
        # CRA's node: 5 requests a second per token, and batches that wait an hour, so that its
        # records stay pending (nothing in these tests needs a CRA record anchored).
        extra={"CRA": ("--rate-limit", "5", "--max-age", "3600")},
        backend=backend,
    ) as started:
        yield started


def _create(client: httpx.Client, record_type: str, record: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post("/v1/records", json={"recordType": record_type, "record": record}, headers=headers)


# ----------------------------------------------------------------------------- officers


def test_create_read_anchor_and_verify_a_record(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("officer") as officer, httpx.Client(base_url=repd.url) as public:
        created = _create(officer, "title", title_example())
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["version"] == 1 and body["recordType"] == "title"
        assert created.headers["location"] == f"/v1/records/title/{body['recordId']}"
        signer = Account.from_key(repd.key).address.lower()
        assert body["receipt"]["signer"] == signer
        assert body["receipt"]["anchorBy"] > body["receipt"]["intakeTime"]

        record = officer.get(body["links"]["self"])
        assert record.status_code == 200
        assert record.json()["record"]["owners"][0]["name"] == "محمد عبد الرحمن السيد"
        assert record.headers["etag"] == '"1"'
        assert officer.get(body["links"]["self"] + "/receipt").json() == body["receipt"]

        bundle_response = wait_anchored(officer, body["links"]["bundle"])
        assert bundle_response.status_code == 200, bundle_response.text
        bundle = load_bundle(bundle_response.content)
        assert (
            recover_receipt_signer(bundle.receipt_message(), bundle.domain, bundle.receipt.signature)
            == signer
        )

        report = public.post("/v1/verify", content=bundle_response.content)
        assert report.status_code == 200, report.text
        assert report.json()["verdict"] == "authentic-current"
        assert {c["name"] for c in report.json()["checks"]} >= {
            "integrity",
            "inclusion",
            "anchored",
            "status",
        }

        disclosed = officer.get(body["links"]["bundle"], params={"field": ["/title_number"]})
        assert disclosed.status_code == 200
        shown = load_bundle(disclosed.content)
        assert [d.path for d in shown.disclosed] == ["/title_number"]
        assert public.post("/v1/verify", content=disclosed.content).json()["verdict"] == "authentic-current"

        tampered = json.loads(bundle_response.content)
        tampered["disclosed"][0]["value"] = "forged"
        forged = public.post("/v1/verify", json=tampered).json()
        assert forged["verdict"] == "not-authentic"

        # The node checks against its own deployment (docs/api.md), so a bundle naming a ledger
        # with no contract is not this node's ledger's: not authentic here, both addresses named.
        elsewhere = {**json.loads(bundle_response.content), "ledger": "0x" + "11" * 20}
        other = public.post("/v1/verify", json=elsewhere).json()
        assert other["verdict"] == "not-authentic"
        anchored = next(c for c in other["checks"] if c["name"] == "anchored")
        assert anchored["outcome"] == "fail"
        assert "0x" + "11" * 20 in anchored["reason"]["en"] and bundle.ledger in anchored["reason"]["en"]


def test_a_pending_bundle_answers_202_with_its_promise(api: dict[str, Server]) -> None:
    with api["CRA"].client("officer") as officer:
        body = _create(officer, "commercial", commercial_example()).json()
        pending = officer.get(body["links"]["bundle"])
        assert pending.status_code == 202, pending.text
        assert pending.json()["status"] == "pending"
        assert pending.json()["anchorBy"] == body["receipt"]["anchorBy"]
        assert 1 <= int(pending.headers["retry-after"]) <= 60
        assert officer.get(body["links"]["self"]).json()["state"] == "pending"


def test_receipts_of_leaves_not_yet_batched_are_listed_for_auditors(api: dict[str, Server]) -> None:
    cra = api["CRA"]  # its batches wait an hour: the new record stays queued
    with cra.client("officer") as officer:
        created = _create(officer, "commercial", commercial_example()).json()
        expect_problem(officer.get("/v1/receipts"), 403, "forbidden")
    with cra.client("auditor") as auditor:
        listed, after = [], None
        while True:  # one receipt a page, to walk the cursor
            page = auditor.get(
                "/v1/receipts", params={"limit": 1, **({"after": after} if after else {})}
            ).json()
            listed += page["receipts"]
            after = page["next"]
            if after is None:
                break
    leaves = [r["leaf"] for r in listed]
    assert leaves == sorted(leaves) and len(set(leaves)) == len(leaves)
    mine = next(r for r in listed if r["leaf"] == created["leaf"])
    assert mine["recordId"] == created["recordId"]
    assert {k: mine[k] for k in created["receipt"]} == created["receipt"]


def test_amend_and_revoke_need_a_supervisor_and_the_current_version(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("officer") as officer, repd.client("supervisor") as supervisor:
        body = _create(officer, "title", title_example()).json()
        path = body["links"]["self"]
        amended = title_example()
        amended["area_m2"] = "130"
        change = {"amends": 1, "reason": 1, "record": amended}
        expect_problem(officer.post(path + "/versions", json=change), 403, "forbidden")

        second = supervisor.post(path + "/versions", json=change)
        assert second.status_code == 201, second.text
        assert second.json()["version"] == 2 and second.json()["recordId"] == body["recordId"]
        stale = expect_problem(supervisor.post(path + "/versions", json=change), 409, "conflict")
        assert "version 2" in stale["detail"]

        history = officer.get(path + "/history").json()
        assert [v["version"] for v in history["versions"]] == [1, 2]
        assert history["current"] == 2
        first = officer.get(path, params={"version": 1}).json()
        assert first["supersededBy"] == 2 and first["record"]["area_m2"] == "125.5"

        expect_problem(officer.post(path + "/revocation", json={"version": 2, "reason": 3}), 403, "forbidden")
        expect_problem(
            supervisor.post(path + "/revocation", json={"version": 1, "reason": 3}), 409, "conflict"
        )
        revoked = supervisor.post(path + "/revocation", json={"version": 2, "reason": 3})
        assert revoked.status_code == 200 and revoked.json()["status"] == "revocation-queued"
        expect_problem(
            supervisor.post(path + "/revocation", json={"version": 2, "reason": 3}), 409, "conflict"
        )
        assert officer.get(path).json()["revoked"] is True

        bundle = wait_anchored(officer, path + "/bundle")
        deadline = time.monotonic() + 60
        verdict = None
        while time.monotonic() < deadline:
            verdict = officer.post("/v1/verify", content=bundle.content).json()["verdict"]
            if verdict == "revoked":
                break
            time.sleep(0.5)
        assert verdict == "revoked"


def test_role_and_agency_rules(api: dict[str, Server]) -> None:
    repd, cso = api["REPD"], api["CSO"]
    with repd.client("officer") as officer:
        record_path = _create(officer, "title", title_example()).json()["links"]["self"]
    with repd.client("auditor") as auditor:
        expect_problem(_create(auditor, "title", title_example()), 403, "forbidden")
        expect_problem(auditor.get(record_path), 403, "forbidden")  # auditors never see personal data
        assert auditor.get("/v1/batches").status_code == 200
    with repd.client(None) as anonymous:
        missing = expect_problem(anonymous.get(record_path), 401, "unauthenticated")
        assert "Bearer" in missing["detail"]
        assert anonymous.get(record_path).headers["www-authenticate"].startswith("Bearer")
    # An officer of another agency: its token is unknown here, and says no more than a bad one.
    with httpx.Client(
        base_url=repd.url, headers={"Authorization": f"Bearer {cso.tokens['officer']}"}
    ) as other:
        foreign = expect_problem(other.get(record_path), 401, "unauthenticated")
        expect_problem(_create(other, "title", title_example()), 401, "unauthenticated")
    with httpx.Client(base_url=repd.url, headers={"Authorization": "Bearer " + "x" * 43}) as made_up:
        assert expect_problem(made_up.get(record_path), 401, "unauthenticated")["detail"] == foreign["detail"]
    with repd.client("officer") as officer:
        wrong_type = expect_problem(_create(officer, "marriage", marriage_example()), 403, "forbidden")
        assert "marriage" in wrong_type["detail"]
        expect_problem(officer.get("/v1/records/marriage/01ABCDEFGHJKMNPQRSTVWXYZ00"), 404, "not-found")


def test_no_token_and_a_bad_token_get_one_and_the_same_401(api: dict[str, Server]) -> None:
    """None, another scheme, an empty one, unknown, expired, revoked: the answers differ only in
    their request id, so a caller cannot tell a wrong token from none (docs/api.md)."""
    repd = api["REPD"]
    headers = {
        "none": {},
        "basic": {"Authorization": "Basic " + "eA==" * 8},
        "scheme alone": {"Authorization": "Bearer"},
        "unknown": {"Authorization": "Bearer " + "y" * 43},
        "too long": {"Authorization": "Bearer " + "z" * 600},
        "expired": {"Authorization": f"Bearer {repd.tokens['expired']}"},
        "revoked": {"Authorization": f"Bearer {repd.tokens['revoked']}"},
    }
    shapes = {}
    with httpx.Client(base_url=repd.url) as client:
        for name, header in headers.items():
            answer = client.get("/v1/batches", headers=header)
            body = expect_problem(answer, 401, "unauthenticated")
            assert body["instance"].startswith("/v1/batches#")
            del body["instance"]
            shapes[name] = (answer.headers["www-authenticate"], json.dumps(body, sort_keys=True))
    assert len(set(shapes.values())) == 1, shapes  # nothing tells which tokens exist, or whether one was sent
    challenge, body = shapes["none"]
    assert challenge == 'Bearer realm="sijill"' and "Authorization: Bearer" in json.loads(body)["detail"]


# ----------------------------------------------------------------------------- idempotency


def test_idempotency_key_returns_the_first_answer(api: dict[str, Server]) -> None:
    with api["REPD"].client("officer") as officer:
        key = secrets.token_hex(8)
        first = _create(officer, "title", title_example(), **{"Idempotency-Key": key})
        again = _create(officer, "title", title_example(), **{"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        changed = title_example()
        changed["unit_number"] = "13"
        expect_problem(
            _create(officer, "title", changed, **{"Idempotency-Key": key}), 422, "idempotency-key-reused"
        )
        bad_key = _create(officer, "title", title_example(), **{"Idempotency-Key": "bad key"})
        assert (
            expect_problem(bad_key, 422, "request-invalid")["errors"][0]["pointer"]
            == "/header/Idempotency-Key"
        )
        other = _create(officer, "title", title_example(), **{"Idempotency-Key": secrets.token_hex(8)})
        assert other.json()["recordId"] != first.json()["recordId"]

    with api["REPD"].client("supervisor") as supervisor:
        path = first.json()["links"]["self"]
        change = {"amends": 1, "reason": 2, "record": title_example()}
        key = secrets.token_hex(8)
        amended = supervisor.post(path + "/versions", json=change, headers={"Idempotency-Key": key})
        replay = supervisor.post(path + "/versions", json=change, headers={"Idempotency-Key": key})
        assert amended.status_code == replay.status_code == 201
        assert replay.json()["version"] == 2
        assert supervisor.get(path + "/history").json()["current"] == 2


# ----------------------------------------------------------------------------- bulk


def _bulk_lines(count: int, bad_every: int) -> tuple[bytes, set[int]]:
    lines, bad = [], set()
    template = title_example()
    for number in range(1, count + 1):
        if number % bad_every == 0:
            bad.add(number)
            kind = (number // bad_every) % 4
            if kind == 0:
                lines.append("{not json")
            elif kind == 1:
                broken = dict(template, owners=[])
                lines.append(json.dumps({"recordType": "title", "record": broken}, ensure_ascii=False))
            elif kind == 2:
                lines.append(json.dumps({"recordType": "marriage", "record": marriage_example()}))
            else:
                lines.append(json.dumps({"record": template}))
        else:
            record = dict(template, title_number=f"2024/{number}")
            lines.append(json.dumps({"recordType": "title", "record": record}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode(), bad


def test_bulk_50000_lines_with_bad_ones(api: dict[str, Server]) -> None:
    body, bad = _bulk_lines(50_000, bad_every=997)
    with api["REPD"].client("officer") as officer:
        response = officer.post(
            "/v1/records/bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        assert response.status_code == 200, response.text[:2000]
        answers = [json.loads(line) for line in response.text.splitlines()]
        summary = answers.pop()["summary"]
        assert summary == {
            "lines": 50_000,
            "accepted": 50_000 - len(bad),
            "rejected": len(bad),
            "blank": 0,
            "replayed": 0,
        }
        assert [a["line"] for a in answers] == list(range(1, 50_001))
        assert {a["line"] for a in answers if a["status"] == "rejected"} == bad
        rejected = {a["line"]: a["errors"] for a in answers if a["status"] == "rejected"}
        assert {errors[0]["rule"] for errors in rejected.values()} >= {"json", "record-type", "line-shape"}
        invalid_owners = rejected[997 * 5]  # kind 1: a record with no owners
        assert invalid_owners[0]["pointer"].startswith("/record/owners") and invalid_owners[0]["detailAr"]
        for answer in answers[::5000]:
            if answer["status"] == "accepted":
                got = officer.get(f"/v1/records/title/{answer['recordId']}").json()
                assert got["record"]["title_number"] == f"2024/{answer['line']}"


def test_bulk_retry_with_the_same_key_replays_and_creates_nothing(api: dict[str, Server]) -> None:
    body, bad = _bulk_lines(2_500, bad_every=100)
    headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": secrets.token_hex(8)}
    with api["REPD"].client("officer") as officer:
        first = officer.post("/v1/records/bulk", content=body, headers=headers).text.splitlines()
        again = officer.post("/v1/records/bulk", content=body, headers=headers).text.splitlines()
        assert again[:-1] == first[:-1]
        assert json.loads(again[-1])["summary"]["replayed"] == 2_500 - len(bad)
        different = body.replace(b"2024/5", b"2024/X", 1)
        stopped = officer.post("/v1/records/bulk", content=different, headers=headers).text.splitlines()
        assert json.loads(stopped[0])["errors"][0]["rule"] == "idempotency-key-reused"


def test_bulk_refuses_the_wrong_media_type_and_answers_long_lines(api: dict[str, Server]) -> None:
    with api["REPD"].client("officer") as officer:
        expect_problem(officer.post("/v1/records/bulk", json=[]), 415, "unsupported-media-type")
        long_line = json.dumps({"recordType": "title", "record": {"x": "y" * 70_000}})
        good = json.dumps({"recordType": "title", "record": title_example()}, ensure_ascii=False)
        deep = "[" * 3000 + "]" * 3000
        body = f"{long_line}\n{good}\n\n{deep}\n".encode()
        response = officer.post(
            "/v1/records/bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        answers = [json.loads(line) for line in response.text.splitlines()]
        assert answers[0]["errors"][0]["rule"] == "line-too-long"
        assert answers[1]["status"] == "accepted" and answers[1]["line"] == 2
        assert answers[2] == {"line": 3, "status": "blank"}  # one answer a line, blank ones too
        assert answers[3]["line"] == 4 and answers[3]["errors"][0]["rule"] == "json-depth"
        assert answers[-1]["summary"] == {"lines": 4, "accepted": 1, "rejected": 2, "blank": 1, "replayed": 0}


def test_bulk_answers_every_line_blank_ones_included_also_when_replayed(api: dict[str, Server]) -> None:
    """A client pairs the n-th answer with the n-th line: blank lines (white space only, CRLF
    endings) are answered `blank`; the final newline starts no line; a replay is the same."""
    good = json.dumps({"recordType": "title", "record": title_example()}, ensure_ascii=False)
    body = f"\n{good}\r\n \t\r\n\n{good}\n\n".encode()
    headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": secrets.token_hex(8)}
    with api["REPD"].client("officer") as officer:
        first = officer.post("/v1/records/bulk", content=body, headers=headers)
        again = officer.post("/v1/records/bulk", content=body, headers=headers)
    answers = [json.loads(line) for line in first.text.splitlines()]
    summary = answers.pop()["summary"]
    assert [(a["line"], a["status"]) for a in answers] == [
        (1, "blank"),
        (2, "accepted"),
        (3, "blank"),
        (4, "blank"),
        (5, "accepted"),
        (6, "blank"),
    ]
    assert summary == {"lines": 6, "accepted": 2, "rejected": 0, "blank": 4, "replayed": 0}
    replayed = [json.loads(line) for line in again.text.splitlines()]
    assert replayed[:-1] == answers
    assert replayed[-1]["summary"] == {**summary, "replayed": 2}


# ----------------------------------------------------------------------------- node to node


def test_node_to_node_is_authenticated_by_the_registry(api: dict[str, Server]) -> None:
    repd, cso, cra = api["REPD"], api["CSO"], api["CRA"]
    with repd.client("officer") as officer:
        body = _create(officer, "title", title_example()).json()
        assert wait_anchored(officer, body["links"]["bundle"]).status_code == 200
    record = f"/v1/peer/records/title/{body['recordId']}"

    with PeerClient(repd.url, agency="CSO", audience="REPD", account_key=cso.key) as client:
        bundle = client.fetch_bundle("title", body["recordId"])
        shown = {d.path for d in bundle.disclosed}
        assert shown and all(p == "/title_number" or p.startswith("/owners/") for p in shown)
        assert {h.path for h in bundle.hidden} >= {"/area_m2", "/district"}
        fields = client.get(record).json()["fields"]
        assert fields["/owners/0/name"] == "محمد عبد الرحمن السيد" and "/area_m2" not in fields
        with httpx.Client(base_url=repd.url) as public:
            from ledger.bundle import dump_bundle

            assert (
                public.post("/v1/verify", content=dump_bundle(bundle)).json()["verdict"]
                == "authentic-current"
            )

    # CRA's signer is genuine but REPD's policy gives CRA nothing.
    with PeerClient(repd.url, agency="CRA", audience="REPD", account_key=cra.key) as client:
        expect_problem(client.get(record), 403, "forbidden")

    with httpx.Client(base_url=repd.url) as raw:
        # A key the registry does not know, claiming to be CSO.
        forged = sign_request(
            secrets.token_bytes(32), method="GET", path=record, audience="REPD", agency="CSO"
        )
        expect_problem(raw.get(record, headers=forged), 401, "peer-not-a-signer")
        # A genuine CSO request replayed.
        headers = sign_request(cso.key, method="GET", path=record, audience="REPD", agency="CSO")
        assert raw.get(record, headers=headers).status_code == 200
        expect_problem(raw.get(record, headers=headers), 401, "peer-replay")
        # A genuine signature over another path.
        other = sign_request(cso.key, method="GET", path=record + "/bundle", audience="REPD", agency="CSO")
        expect_problem(raw.get(record, headers=other), 401, "peer-signature-invalid")
        # No headers at all.
        expect_problem(raw.get(record), 401, "peer-headers-missing")
        # A CSO key claiming to be CRA.
        claimed = sign_request(cso.key, method="GET", path=record, audience="REPD", agency="CRA")
        expect_problem(raw.get(record, headers=claimed), 403, "peer-agency-mismatch")


# ----------------------------------------------------------------------------- bad input


def test_bad_input_gets_problem_details_never_a_500(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("officer") as officer:
        invalid = title_example()
        invalid["owners"][0]["national_id"] = "123"
        del invalid["governorate"]
        problem = expect_problem(_create(officer, "title", invalid), 422, "record-invalid")
        pointers = {e["pointer"] for e in problem["errors"]}
        assert "/record/owners/0/national_id" in pointers and "/record/governorate" in pointers
        assert all(e["detailAr"] and e["rule"] for e in problem["errors"])

        expect_problem(
            officer.post("/v1/records", content=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "invalid-json",
        )
        deep = b'{"recordType": "title", "record": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        expect_problem(
            officer.post("/v1/records", content=deep, headers={"Content-Type": "application/json"}),
            400,
            "invalid-json",
        )
        shape = expect_problem(officer.post("/v1/records", json={"recordType": 5}), 422, "request-invalid")
        assert {e["pointer"] for e in shape["errors"]} >= {"/recordType", "/record"}
        huge = b'{"recordType": "title", "record": {"x": "' + b"a" * (2 << 20) + b'"}}'
        expect_problem(
            officer.post("/v1/records", content=huge, headers={"Content-Type": "application/json"}),
            413,
            "too-large",
        )
        expect_problem(officer.get("/v1/records/title/bad%20id"), 422, "request-invalid")
        expect_problem(officer.get("/v1/nothing-here"), 404, "not-found")
        expect_problem(officer.delete("/v1/records"), 405, "method-not-allowed")
        expect_problem(
            officer.post("/v1/verify", content=b'{"format": "sijill-bundle/9"}'), 422, "bundle-invalid"
        )
        revoke = officer.post("/v1/records/title/01ABC/revocation", json={"version": 0, "reason": 70000})
        expect_problem(revoke, 403, "forbidden")  # the role is checked before the body


def _only_problem(errors: list[dict[str, Any]], pointer: str, label: str, name: str) -> None:
    """`errors` is one `characters` problem at `pointer`, naming the code point in both languages."""
    assert [(e["pointer"], e["rule"]) for e in errors] == [(pointer, "characters")], errors
    assert f"{label} {name}" in errors[0]["detail"] and f"المحرف {label}" in errors[0]["detailAr"], errors


def test_refused_characters_get_the_same_422_on_every_intake_path(api: dict[str, Server]) -> None:
    """Issue 15: a direction override (or an isolate, or an invisible character) in any field is
    refused by create, bulk and amend alike, naming the field and the code point; nothing is
    stored."""
    repd = api["REPD"]
    with repd.client("officer") as officer, repd.client("supervisor") as supervisor:
        spoofed = title_example()
        spoofed["owners"][0]["name"] = "محمد\u202eعبد الله"
        problem = expect_problem(_create(officer, "title", spoofed), 422, "record-invalid")
        _only_problem(problem["errors"], "/record/owners/0/name", "U+202E", "RIGHT-TO-LEFT OVERRIDE")
        assert "U+202E" in problem["detail"]
        # The same as JSON text with the character itself (UTF-8) rather than an escape.
        raw = json.dumps({"recordType": "title", "record": spoofed}, ensure_ascii=False).encode()
        again = officer.post("/v1/records", content=raw, headers={"Content-Type": "application/json"})
        _only_problem(
            expect_problem(again, 422, "record-invalid")["errors"],
            "/record/owners/0/name",
            "U+202E",
            "RIGHT-TO-LEFT OVERRIDE",
        )

        lines = [
            {"recordType": "title", "record": title_example()},
            {"recordType": "title", "record": dict(title_example(), title_number="2024/\u2067781\u2069")},
            {"recordType": "title", "record": dict(title_example(), district="حي\u00adشرق")},
        ]
        body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        answers = [
            json.loads(line)
            for line in officer.post(
                "/v1/records/bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
            ).text.splitlines()
        ]
        assert [a.get("status") for a in answers[:3]] == ["accepted", "rejected", "rejected"]
        _only_problem(answers[1]["errors"], "/record/title_number", "U+2067", "RIGHT-TO-LEFT ISOLATE")
        _only_problem(answers[2]["errors"], "/record/district", "U+00AD", "SOFT HYPHEN")

        path = f"/v1/records/title/{answers[0]['recordId']}"
        amended = dict(title_example(), area_m2="12\u202d5")
        change = {"amends": 1, "reason": 1, "record": amended}
        refused = expect_problem(supervisor.post(path + "/versions", json=change), 422, "record-invalid")
        _only_problem(refused["errors"], "/record/area_m2", "U+202D", "LEFT-TO-RIGHT OVERRIDE")
        assert [v["version"] for v in officer.get(path + "/history").json()["versions"]] == [1]


def test_rate_limit_answers_429_with_retry_after(api: dict[str, Server]) -> None:
    with api["CRA"].client("auditor") as auditor:  # CRA's node allows 5 requests a second
        statuses = [auditor.get("/v1/batches") for _ in range(30)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert int(limited[0].headers["retry-after"]) >= 1
        expect_problem(limited[0], 429, "rate-limited")
    time.sleep(2.5)
    with api["CRA"].client("officer") as officer:
        assert _create(officer, "commercial", commercial_example()).status_code == 201


# ----------------------------------------------------------------------------- auditors, operations


def test_auditor_can_recompute_every_batch(api: dict[str, Server]) -> None:
    from ledger.merkle import build_tree
    from ledger.receipts import Receipt, ReceiptDomain

    cso = api["CSO"]
    with cso.client("officer") as officer:
        created = _create(officer, "marriage", marriage_example()).json()
        assert wait_anchored(officer, created["links"]["bundle"]).status_code == 200
    deployment = json.loads(Path(cso.extra["deployment"]).read_text())
    domain = ReceiptDomain(deployment["chainId"], deployment["contracts"]["RecordLedger"]["address"])
    with cso.client("auditor") as auditor:
        deadline = time.monotonic() + 30
        while True:  # what the chain recorded appears once the indexer has read the block
            batches = auditor.get("/v1/batches").json()
            if all(b["signer"] for b in batches["batches"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert batches["agency"] == "CSO" and batches["batches"]
        for batch in batches["batches"]:
            detail = auditor.get(f"/v1/batches/{batch['root']}").json()
            leaves = [bytes.fromhex(leaf["leaf"][2:]) for leaf in detail["leaves"]]
            assert "0x" + build_tree(leaves).root.hex() == batch["root"]
            assert batch["status"] == "anchored" and batch["block"] and batch["signer"]
            for leaf in detail["leaves"]:
                receipt = Receipt(
                    "CSO",
                    leaf["recordType"],
                    leaf["recordId"],
                    leaf["version"],
                    bytes.fromhex(leaf["leaf"][2:]),
                    leaf["intakeTime"],
                    leaf["anchorBy"],
                )
                signature = bytes.fromhex(leaf["signature"][2:])
                assert recover_receipt_signer(receipt, domain, signature) == leaf["signer"]
        expect_problem(auditor.get("/v1/batches/0x" + "00" * 32), 404, "not-found")
        trail = auditor.get("/v1/audit", params={"limit": 10_000}).json()
        actions = {e["action"] for e in trail["entries"]}
        assert {"record.create", "record.read", "auth.refused"} <= actions or {"record.create"} <= actions
        assert verify_audit_chain(trail["entries"]) == len(trail["entries"])
    with cso.client("officer") as officer:
        expect_problem(officer.get("/v1/audit"), 403, "forbidden")


def test_health_readiness_and_metrics(api: dict[str, Server]) -> None:
    with api["REPD"].client("officer") as officer:  # one record of its own: run alone, it counts too
        assert _create(officer, "title", title_example()).status_code == 201
    with httpx.Client(base_url=api["REPD"].url) as public:
        assert public.get("/healthz").json() == {"status": "ok", "agency": "REPD"}
        ready = public.get("/readyz")
        assert ready.status_code == 200 and ready.json()["chain"] is True
        assert ready.json()["indexerLag"] is not None
        text = public.get("/metrics").text
        assert "# TYPE sijill_http_requests_total counter" in text
        assert 'sijill_records_total{path="single",outcome="accepted"}' in text
        assert "sijill_batches_anchored_total" in text and "sijill_backlog_leaves" in text
        for name in ("unanchored_leaves", "anchor_by_slack_seconds", "anchoring_stalled_seconds"):
            assert f"# TYPE sijill_{name} " in text
        waiting = {"unanchored", "anchorBySlack", "oldestUnanchoredAge", "anchoringStalledFor"}
        assert waiting <= set(ready.json())
        assert public.get("/openapi.json").json()["info"]["title"].endswith("REPD")
        assert public.get("/healthz").headers["x-request-id"]


def test_every_call_is_audited(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    with repd.client("officer") as officer:
        record = _create(officer, "title", title_example()).json()
        officer.get(record["links"]["self"])
    with repd.client(None) as anonymous:
        anonymous.get(record["links"]["self"])
    subject = f"title/{record['recordId']}"
    with repd.client("auditor") as auditor:

        def mine_now() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
            entries = auditor.get("/v1/audit", params={"limit": 10_000}).json()["entries"]
            own = [
                (e["action"], e["actor"])
                for e in entries
                if e["subject"] in (subject, record["links"]["self"])
            ]
            return entries, own

        # Reads and refusals are committed in groups (every 50 ms): wait for both to be there.
        deadline = time.monotonic() + 30
        entries, mine = mine_now()
        while not {"record.read", "auth.refused"} <= {action for action, _ in mine}:
            assert time.monotonic() < deadline, mine
            time.sleep(0.05)
            entries, mine = mine_now()
        assert ("record.create", mine[0][1]) in mine
        assert any(action == "record.read" for action, _ in mine)
        assert any(action == "auth.refused" and actor == "anonymous" for action, actor in mine)
        text = json.dumps(entries, ensure_ascii=False)
        assert "محمد عبد الرحمن السيد" not in text and "27503221204139" not in text


def test_the_store_holds_no_personal_data_in_the_clear(api: dict[str, Server], backend: Backend) -> None:
    """What the node keeps on disk while it runs (LevelDB's tables and log; or a pg_dump of its
    database, where bytea is hex, and the PostgreSQL cluster's files) holds no field value of a
    record it took in, in UTF-8 or as hex."""
    repd = api["REPD"]
    with repd.client("officer") as officer:
        created = _create(officer, "title", title_example())
        assert created.status_code == 201, created.text
    raw = backend.raw_bytes(repd)
    key = f"record/title/{created.json()['recordId']}/".encode()
    assert key in raw or key.hex().encode() in raw, "the bytes read are the store's"
    assert (repd.data_dir / "store").exists() == (backend.name == "leveldb"), "on its backend only"
    for value in ("محمد عبد الرحمن السيد".encode(), b"27503221204139"):
        assert value not in raw and value.hex().encode() not in raw


# ----------------------------------------------------------------------------- fuzzing


def test_schemathesis_finds_no_server_error_and_no_schema_violation(api: dict[str, Server]) -> None:
    """A fuzz run of the OpenAPI schema (every schemathesis check but the two that cannot apply,
    see tests/python/schemathesis.toml) against the running node, as a supervisor."""
    here = Path(__file__).parent
    seed = os.environ.get("SIJILL_FUZZ_SEED", "20261128")
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(here / "schemathesis.toml"),
            "--no-color",
            "run",
            api["REPD"].url + "/openapi.json",
            "--header",
            f"Authorization: Bearer {api['REPD'].tokens['supervisor']}",
            "--max-examples",
            "40",
            "--workers",
            "1",  # CPython 3.11 ast.parse is not thread-safe (gh-106905): hypothesis calls it
            "--seed",
            seed,
        ],
        cwd=here,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(here)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    assert selected is not None and selected[1] == selected[2], run.stdout[-3000:]  # every operation
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts is not None and int(counts[1]) == int(counts[2]) > 500, run.stdout[-3000:]
