"""Shares, certificates and the read-only chain endpoint, against real `sijill serve` processes on
a real anvil: what a citizen's QR code opens, what it never opens, and what guessing gets."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import api_helpers
import httpx
import pytest
from api_helpers import (
    Server,
    deploy_fresh,
    expect_problem,
    init_node,
    servers,
    start_server,
    stop_server,
    wait_anchored,
)
from web3 import Web3

from ledger.bundle import load_bundle
from ledger.records.examples import commercial_example, title_example
from node.chain.toolchain import CompiledContract
from node.shares import new_token

pytestmark = pytest.mark.chain

OUTPUT = Path(__file__).resolve().parents[2] / "build" / "test-output" / "citizen"


@pytest.fixture(scope="module")
def api(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    with servers(
        w3,
        compiled,
        tmp_path_factory.mktemp("citizen"),
        devchain.rpc_url,
        extra={
            # CSO: a tight allowance of unknown codes, for the guessing test alone.
            "CSO": ("--miss-limit", "5"),
            # CRA: records stay pending (batches wait an hour); 5 public requests a second.
            "CRA": ("--max-age", "3600", "--public-rate", "5"),
        },
    ) as started:
        yield started


def _anchored_title(repd: Server, record: dict[str, Any] | None = None) -> str:
    with repd.client("officer") as officer:
        created = officer.post(
            "/v1/records", json={"recordType": "title", "record": record or title_example()}
        )
        assert created.status_code == 201, created.text
        assert wait_anchored(officer, created.json()["links"]["bundle"]).status_code == 200
        return str(created.json()["recordId"])


def _share(server: Server, record_type: str, record_id: str, **body: Any) -> dict[str, Any]:
    with server.client("officer") as officer:
        made = officer.post(f"/v1/records/{record_type}/{record_id}/shares", json=body)
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    return answer


def _verdict_becomes(public: httpx.Client, bundle: bytes, verdict: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if public.post("/v1/verify", content=bundle).json()["verdict"] == verdict:
            return True
        time.sleep(0.3)
    return False


# ----------------------------------------------------------------------------- shares


def test_a_share_opens_the_disclosed_bundle_and_nothing_more(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    share = _share(repd, "title", record_id, fields=["/title_number", "/owners/0/name"])
    token = share["token"]
    assert re.fullmatch(r"[A-Z2-7]{32}", token)  # 160 bits of base32
    assert share["version"] == 1 and share["fields"] == ["/title_number", "/owners/0/name"]
    assert share["links"]["verify"] == f"{repd.url}/V/{token}".upper()

    with httpx.Client(base_url=repd.url) as public:
        got = public.get(f"/v1/shared/{token}")
        assert got.status_code == 200, got.text
        assert got.headers["cache-control"] == "no-store" and "link" not in got.headers
        bundle = load_bundle(got.content)
        assert [d.path for d in bundle.disclosed] == ["/owners/0/name", "/title_number"]
        assert "27503221204139" not in got.text  # the hidden national ID: only its salted hash
        assert "/owners/0/national_id" in {h.path for h in bundle.hidden}
        assert public.post("/v1/verify", content=got.content).json()["verdict"] == "authentic-current"
        # Typed by hand from paper in lower case, the code still works; so does the lower-case page.
        assert public.get(f"/v1/shared/{token.lower()}").content == got.content


def test_shares_are_listed_without_tokens_and_can_be_withdrawn(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    first = _share(repd, "title", record_id)
    second = _share(repd, "title", record_id, fields=["/title_number"])
    assert first["fields"] is None
    path = f"/v1/records/title/{record_id}/shares"
    with repd.client("officer") as officer, httpx.Client(base_url=repd.url) as public:
        listing = officer.get(path)
        assert listing.status_code == 200
        assert [s["shareId"] for s in listing.json()["shares"]] == [first["shareId"], second["shareId"]]
        assert first["token"] not in listing.text and second["token"] not in listing.text

        withdrawn = officer.delete(f"{path}/{first['shareId']}")
        assert withdrawn.status_code == 200 and withdrawn.json()["withdrawnAt"] is not None
        again = officer.delete(f"{path}/{first['shareId']}")
        assert again.json()["withdrawnAt"] == withdrawn.json()["withdrawnAt"]  # the first time stays
        expect_problem(public.get(f"/v1/shared/{first['token']}"), 410, "share-withdrawn")
        expect_problem(public.get(f"/c/{first['token']}.pdf"), 410, "share-withdrawn")
        assert public.get(f"/v1/shared/{second['token']}").status_code == 200  # the other one stands
        expect_problem(officer.delete(f"{path}/{'0' * 16}"), 404, "not-found")


def test_share_requests_are_checked(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    path = f"/v1/records/title/{record_id}/shares"
    with repd.client("officer") as officer, repd.client("auditor") as auditor:
        expect_problem(officer.post(path, json={"fields": ["/no_such_field"]}), 422, "request-invalid")
        expect_problem(officer.post(path, json={"fields": "all"}), 422, "request-invalid")
        expect_problem(officer.post(path, json={"version": 7}), 404, "not-found")
        expect_problem(officer.post("/v1/records/title/NO-SUCH-ID/shares", json={}), 404, "not-found")
        expect_problem(auditor.post(path, json={}), 403, "forbidden")  # auditors see no personal data
        wrong = expect_problem(officer.put(path, json={}), 405, "method-not-allowed")
        assert wrong  # the Allow header names both routes of the path, not only the first one
        assert officer.put(path, json={}).headers["allow"] == "GET, POST"
        expect_problem(httpx.post(repd.url + path, json={}), 401, "unauthenticated")


def test_an_older_share_points_to_the_current_version_only_when_asked(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    old = _share(repd, "title", record_id, fields=["/title_number"])
    older = _share(repd, "title", record_id, fields=["/title_number"])
    with repd.client("supervisor") as supervisor:
        changed = {**title_example(), "area_m2": "130"}
        amended = supervisor.post(
            f"/v1/records/title/{record_id}/versions", json={"amends": 1, "reason": 1, "record": changed}
        )
        assert amended.status_code == 201, amended.text
        assert wait_anchored(supervisor, amended.json()["links"]["bundle"]).status_code == 200
    # Withdrawn before the new version: it is not pointed anywhere.
    with repd.client("officer") as officer:
        assert officer.delete(f"/v1/records/title/{record_id}/shares/{older['shareId']}").status_code == 200
    unlinked = _share(repd, "title", record_id, fields=["/title_number"])
    with httpx.Client(base_url=repd.url) as public:
        assert "link" not in public.get(f"/v1/shared/{old['token']}").headers
        current = _share(repd, "title", record_id, fields=["/title_number"], forwardEarlier=True)
        assert current["version"] == 2 and unlinked["version"] == 2
        stale = public.get(f"/v1/shared/{old['token']}")
        assert stale.status_code == 200
        assert stale.headers["link"] == f'<{current["links"]["verify"]}>; rel="successor-version"'
        # The supersession goes on chain just after the new version's batch: wait for it.
        assert _verdict_becomes(public, stale.content, "superseded")
        # The same-version share made before is not "earlier" in the record's history.
        assert "link" not in public.get(f"/v1/shared/{unlinked['token']}").headers


def test_a_revoked_record_gets_no_new_certificate(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    share = _share(repd, "title", record_id)
    with repd.client("supervisor") as supervisor:
        revoked = supervisor.post(
            f"/v1/records/title/{record_id}/revocation", json={"version": 1, "reason": 2}
        )
        assert revoked.status_code == 200, revoked.text
        expect_problem(supervisor.post(f"/v1/records/title/{record_id}/shares", json={}), 409, "conflict")
    # The share made before still opens the bundle: the verify page then says "revoked".
    assert httpx.get(f"{repd.url}/v1/shared/{share['token']}").status_code == 200


def test_a_pending_record_answers_202_and_prints_no_certificate_yet(api: dict[str, Server]) -> None:
    cra = api["CRA"]
    with cra.client("officer") as officer:
        created = officer.post(
            "/v1/records", json={"recordType": "commercial", "record": commercial_example()}
        )
        assert created.status_code == 201, created.text
    share = _share(cra, "commercial", created.json()["recordId"], fields=["/trade_name_en"])
    with httpx.Client(base_url=cra.url) as public:
        pending = public.get(f"/v1/shared/{share['token']}")
        assert pending.status_code == 202 and pending.json()["status"] == "pending"
        assert 1 <= int(pending.headers["retry-after"]) <= 60
        assert "Nile Trading" not in pending.text
        problem = expect_problem(public.get(f"/c/{share['token']}"), 409, "not-anchored")
        assert "not anchored" in problem["detail"]


# ----------------------------------------------------------------------------- guessing


def test_guessing_codes_finds_nothing_and_is_cut_off(api: dict[str, Server]) -> None:
    cso = api["CSO"]  # --miss-limit 5: five unknown codes a minute per client address
    with cso.client("officer") as officer:
        created = officer.post("/v1/records", json={"recordType": "marriage", "record": _marriage()})
        assert created.status_code == 201, created.text
        assert wait_anchored(officer, created.json()["links"]["bundle"]).status_code == 200
    real = _share(cso, "marriage", created.json()["recordId"], fields=["/contract_number"])
    statuses: list[int] = []
    with httpx.Client(base_url=cso.url) as public:
        # The verify page itself never looks a code up: a real and a made-up code get the same page.
        assert public.get(f"/V/{real['token']}").content == public.get(f"/V/{new_token()}").content
        for n in range(60):
            guess = new_token() if n % 2 else secrets.token_urlsafe(24)  # well-formed or not
            answer = public.get(f"/v1/shared/{guess}" if n % 3 else f"/c/{guess}.pdf")
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
        assert 200 not in statuses
        assert statuses[:5] == [404] * 5 and set(statuses[5:]) == {429}
        # Once cut off, even a real code is refused from that address until the allowance refills.
        expect_problem(public.get(f"/v1/shared/{real['token']}"), 429, "rate-limited")


def _marriage() -> dict[str, Any]:
    from ledger.records.examples import marriage_example

    return marriage_example()


# ----------------------------------------------------------------------------- certificates


def test_the_certificate_page_and_pdf_show_the_disclosed_fields_only(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    record_id = _anchored_title(repd)
    share = _share(repd, "title", record_id, fields=["/title_number", "/owners/0/name", "/use"])
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=repd.url, timeout=60) as public:
        page = public.get(f"/c/{share['token']}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "2019/45873" in page.text and "محمد عبد الرحمن السيد" in page.text
        assert "27503221204139" not in page.text and "فاطمة أحمد حسن" not in page.text
        assert share["links"]["verify"] in page.text

        pdf = public.get(f"/c/{share['token']}.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
    target = OUTPUT / f"certificate-{record_id}.pdf"
    target.write_bytes(pdf.content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "100", "-singlefile", str(target), str(target.with_suffix(""))], check=True
    )
    text = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True, check=True).stdout
    assert "2019/45873" in text and "27503221204139" not in text
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", str(target.with_suffix(".png"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert decoded == share["links"]["verify"]


def test_a_node_without_zone_data_prints_no_certificate_in_utc(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    devchain: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A certificate shows Egypt's time (Africa/Cairo). A node whose system has no time zone data
    answers 503 with what is missing, in English and Arabic, rather than print UTC; the verify
    page, which uses the browser's zone data, still opens."""
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"])
    monkeypatch.setitem(api_helpers.ENV, "PYTHONTZPATH", str(tmp_path / "no-zone-data"))
    repd = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment)
    try:
        share = _share(repd, "title", _anchored_title(repd), fields=["/title_number"])
        with httpx.Client(base_url=repd.url, timeout=60) as public:
            for path in (f"/c/{share['token']}", f"/c/{share['token']}.pdf"):
                problem = expect_problem(public.get(path), 503, "not-ready")
                assert "no time zone data for Africa/Cairo" in problem["detail"], problem
                assert "توقيت القاهرة" in problem["detailAr"], problem
            assert public.get(f"/V/{share['token']}").status_code == 200
    finally:
        assert stop_server(repd) == 0, repd.log_tail()


# ----------------------------------------------------------------------------- /rpc


def _rpc(server: Server, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url + "/rpc", json=body, **kwargs)


def test_rpc_passes_reads_and_refuses_everything_else(api: dict[str, Server], w3: Web3) -> None:
    repd = api["REPD"]
    _anchored_title(repd)  # at least one BatchAnchored event for eth_getLogs to find
    deployment = json.loads(Path(repd.extra["deployment"]).read_text())["contracts"]
    ledger = deployment["RecordLedger"]["address"]
    registry = deployment["AgencyRegistry"]["address"]
    latest = w3.eth.block_number
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "eth_call",
            "params": [{"to": ledger, "data": "0x7b103999"}, "latest"],
        },
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBlockByNumber", "params": [hex(latest), False]},
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "eth_getLogs",
            "params": [{"address": ledger, "fromBlock": "0x0"}],
        },
        {"jsonrpc": "2.0", "id": 6, "method": "eth_sendRawTransaction", "params": ["0x00"]},
        {"jsonrpc": "2.0", "id": 7, "method": "anvil_setBalance", "params": [registry, "0x1"]},
        {"jsonrpc": "2.0", "id": 8, "method": "eth_call", "params": [{"to": "0x" + "11" * 20, "data": "0x"}]},
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "eth_call",
            "params": [{"to": ledger, "data": "0x", "gas": "0x1"}],
        },
        {"jsonrpc": "2.0", "id": 10, "method": "eth_getBlockByNumber", "params": ["latest", True]},
        {
            "jsonrpc": "2.0",
            "id": 11,
            "method": "eth_call",
            "params": [{"to": ledger, "data": "0x" + "00" * 9000}],
        },
        {
            "jsonrpc": "2.0",
            "id": 12,
            "method": "eth_getLogs",
            "params": [{"address": ledger, "fromBlock": "0x0", "toBlock": hex(6000)}],
        },
    ]
    answer = _rpc(repd, calls)
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers  # no Origin
    by_id = {a["id"]: a for a in answer.json()}
    assert int(by_id[1]["result"], 16) == w3.eth.chain_id
    assert int(by_id[2]["result"], 16) >= latest
    assert by_id[3]["result"][-40:] == registry[2:].lower()  # registry(): the ledger's registry address
    assert by_id[4]["result"]["number"] == hex(latest)
    assert by_id[5]["result"], "the ledger's events from block 0"
    assert all(e["address"].lower() == ledger.lower() for e in by_id[5]["result"])
    assert by_id[6]["error"]["code"] == -32601 and by_id[7]["error"]["code"] == -32601
    assert "only this deployment's contracts" in by_id[8]["error"]["message"]
    assert "gas" in by_id[9]["error"]["message"]
    assert "no full transactions" in by_id[10]["error"]["message"]
    assert by_id[11]["error"]["code"] == -32005 and by_id[12]["error"]["code"] == -32005
    assert w3.eth.get_balance(registry) == 0  # nothing reached the chain that could change it

    single = _rpc(repd, {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"})
    assert single.json() == {"jsonrpc": "2.0", "id": "a", "result": hex(w3.eth.chain_id)}


def test_rpc_refuses_malformed_and_oversized_requests(api: dict[str, Server]) -> None:
    repd = api["REPD"]
    url = repd.url + "/rpc"
    assert (
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    )
    assert httpx.post(url, json=[]).status_code == 400
    too_many = [{"jsonrpc": "2.0", "id": n, "method": "eth_chainId"} for n in range(51)]
    assert httpx.post(url, json=too_many).status_code == 400
    huge = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": [], "pad": "x" * 70_000}
    assert httpx.post(url, json=huge).status_code == 413
    for bad in ({"id": 1, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 1, "method": 5}, 7, "x"):
        assert httpx.post(url, json=bad).json()["error"]["code"] == -32600
    params = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": [1]})
    assert params.json()["error"]["code"] == -32602
    # QBFT has no safe or finalized block (Besu answers -39001): refused here, with the reason.
    final = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["finalized", False]}
    assert "latest, earliest" in httpx.post(url, json=final).json()["error"]["message"]
    # A page from an origin this node does not know may not read it (the allowed ones and the
    # headers they get: test_hardening.py).
    preflight = httpx.options(
        url, headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert httpx.get(url).status_code == 405


def test_rpc_is_rate_limited_per_client(api: dict[str, Server]) -> None:
    """Sent from 8 threads at once so the refill (5 a second) cannot keep up however slow the
    machine: of n calls over t seconds at most 15 + 5 t may pass, and the rest are refused."""
    cra = api["CRA"]  # --public-rate 5: bursts of 15
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
    time.sleep(3.0)  # whatever an earlier test took from the bucket is back
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _rpc(cra, call), range(60)))
    elapsed = time.monotonic() - started
    passed = sum(1 for r in answers if r.status_code == 200)
    limited = [r for r in answers if r.status_code == 429]
    assert passed + len(limited) == 60, {r.status_code for r in answers}
    assert 10 <= passed <= 15 + 5 * elapsed + 1, (passed, elapsed)
    assert limited, f"60 calls in {elapsed:.1f}s all passed"
    assert limited[0].json()["error"]["code"] == -32005 and int(limited[0].headers["retry-after"]) >= 1


def test_a_public_url_too_long_for_a_qr_code_is_refused_at_start(tmp_path: Path) -> None:
    import sys

    for url, needle in (
        ("ftp://registry", "not an http(s) base URL"),
        ("https://" + "r" * 300, "version 11"),
    ):
        result = subprocess.run(
            [
                *(sys.executable, "-m", "cli", "serve", "--data-dir", str(tmp_path), "--agency", "REPD"),
                *(
                    "--deployment",
                    str(tmp_path / "d.json"),
                    "--rpc",
                    "http://127.0.0.1:9",
                    "--public-url",
                    url,
                ),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and needle in " ".join(result.stderr.split()), result.stderr
