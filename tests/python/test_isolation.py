"""Agency isolation (issue 9): one agency's officer, token, signer or node can neither read nor
write another agency's records, nor anchor a record type its agency is not allowed; at the API,
node and contract levels, on one anvil, with real `sijill serve` processes of REPD (title), CSO
(marriage) and CRA (commercial), the council at 1 of 3 so that each change is one transaction.
A, B and C below stand for any three of them. Every test runs twice: the nodes' stores on
LevelDB, then each in a database of its own on PostgreSQL (the `backend` fixture).

The property, cell by cell, and the test that shows each ("→" names an existing test that
already covers part of a cell, which this file does not repeat):

Officer tokens (each node keeps its own tokens, hashed, in its own store)
  1. A's token of any role, on every bearer route of B's node (enumerated from B's OpenAPI),
     is 401 `unauthenticated`; a token B's store holds for an officer of A is 403 `forbidden`
     naming the agency; nothing at B is created, changed or read (B's records, shares, receipts
     and audit trail after), while the same requests with B's own token succeed:
     test_a_foreign_token_is_refused_on_every_officer_route
     → test_api.py::test_role_and_agency_rules (one read and one create, CSO's officer at REPD)
  2. A's token at A's node reaches none of B's records, batches or shares by id (404, or 403
     for the role): test_ids_of_another_agency_reach_nothing_at_ones_own_node
  3. B's share tokens open B's records at B's node only: test_share_tokens_open_only_their_agencys_records
  4. every route is a bearer route, a node-to-node route, a share route or a listed public one,
     so a new route cannot escape cells 1 to 3: test_every_route_is_classified
Node to node (requests signed with the caller's signer key, checked against the registry)
  5. A gets exactly the fields B's policy grants A, from the record and the bundle routes; C,
     granted nothing, gets 403 on both and learns nothing, not even whether an id exists:
     test_a_peer_sees_exactly_what_the_policy_grants
     → test_api.py::test_node_to_node_is_authenticated_by_the_registry (CSO sees a subset)
  6. no write route of B takes a signed request: test_no_write_route_takes_a_signed_request
  7. A cannot pass as B (the node it calls) or as C, a request to C does not pass at B, B cannot
     call itself, and an unregistered key, a retired signer and a suspended agency's signer are
     refused, on the real registry: test_a_peer_cannot_pass_as_another
     → test_peer.py (each check of the authenticator alone, refusals with a stand-in
       registry; replay, skew, altered requests); test_api.py (unregistered key, CSO as CRA)
Node
  8. intake refuses a type its agency may not anchor (single, bulk, amend), naming the type and
     the agency, and stores nothing: test_intake_refuses_a_type_the_agency_may_not_anchor
  9. a type disallowed while the node runs: records accepted are kept (a batch built just
     before is dissolved, not sent to be refused, so other types anchor on), new ones are
     refused, the node says why leaves wait, and they anchor once the type is allowed again:
     test_a_type_disallowed_while_the_node_runs (in-process node, batcher stepped by hand)
 10. the agency suspended while the node runs: new records refused, a revocation accepted waits,
     /readyz and /metrics say why, all resumes on reinstatement:
     test_a_suspended_agencys_node_holds_and_resumes (real process)
 11. a node started with a key the registry gives another agency refuses to start:
     test_a_node_will_not_start_with_another_agencys_key
     → test_node.py::test_a_node_refuses_a_key_the_registry_does_not_know (a key of no agency)
Contract (web3 on anvil; the Hardhat suite has each revert with its arguments:
tests/contracts/RecordLedger.test.js "permissions", "revoke", "supersede", "cross-agency isolation")
 12. anchor and revoke refused by name: RecordTypeNotAllowed(A, type), NotASigner, SignerRetired,
     AgencyNotActive: test_the_ledger_refuses_by_name
     → test_contracts_on_chain.py (the first two, for anchor)
 13. A's signer revoking or superseding B's leaf writes into A's namespace only; B's leaf stays
     current under B and B's bundle still verifies:
     test_a_leaf_change_by_another_agency_stays_in_its_own_namespace
     → test_contracts_on_chain.py::test_no_agency_can_touch_another_agencys_records (revoke)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    ENV,
    KEK,
    KINDS,
    PASSPHRASE,
    ROLES,
    Backend,
    Server,
    deploy_fresh,
    expect_problem,
    init_node,
    start_server,
    stop_server,
    wait_anchored,
)
from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from web3 import Web3

from ledger.codes import agency_code, record_type
from ledger.merkle import build_tree
from ledger.records import RecordInvalid
from ledger.records.examples import EXAMPLES, commercial_example, marriage_example
from ledger.verify import Verdict, verify
from node.batcher import BatcherSettings
from node.chain.client import RevertDecoder
from node.chain.deploy import (
    AgencySpec,
    NetworkSpec,
    bound_contracts,
    deploy_network,
    dev_accounts,
    load_deployment,
)
from node.chain.devchain import free_port
from node.chain.toolchain import CompiledContract
from node.chain.txmanager import TxManager
from node.chain.views import Web3ChainView
from node.errors import ContractRevert
from node.intake import IntakeError
from node.peer.signing import sign_request
from node.service import AgencyNode, NodeSettings
from node.store import Store, hash_token

pytestmark = pytest.mark.chain

# REPD shows CSO the title number and each owner's name (not their national IDs); CRA nothing.
POLICY = {"CSO": {"title": ["/title_number", "/owners/*/name"]}}
GRANTED = {"/title_number", "/owners/0/name", "/owners/1/name", "/owners/2/name"}
# AgencyRegistry.ActionKind
SUSPEND, REINSTATE, ALLOW, DISALLOW, REMOVE_SIGNER = 1, 2, 3, 4, 6
ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20
# Routes anyone may call: they read nothing of an agency's records, or only what a bundle the
# caller brings holds (verify), or the chain (the read-only /rpc).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/verify"),
    ("POST", "/v1/verify"),
    ("POST", "/rpc"),
}


def address(key: bytes) -> ChecksumAddress:
    return to_checksum_address(Account.from_key(key).address)


@dataclass
class Target:
    """One record of an agency, with its share and batch: what a request names by id."""

    record_type: str
    record_id: str
    version: int
    root: str
    share_id: str
    share_token: str


@dataclass
class Net:
    servers: dict[str, Server]
    keys: dict[str, bytes]  # each node's signer key
    spare: dict[str, bytes]  # REPD's second signer (the council votes with it), CSO's retired one, MOJ's
    misissued: str  # a supervisor token in REPD's store that names CSO
    council: TxManager
    registry: Any
    ledger: Any
    decoder: RevertDecoder
    w3: Web3
    deployment: Path
    targets: dict[str, Target] = field(default_factory=dict)  # by agency
    spares: dict[str, Target] = field(default_factory=dict)  # records the control requests may change

    def govern(self, kind: int, agency: str) -> None:
        """One council decision on an agency (REPD proposes; at 1 of 3 that executes it)."""
        action = (kind, agency_code(agency), ZERO_ADDRESS, ZERO32, 0, "")
        self.council.transact(self.registry.functions.propose(action))


def _make_target(server: Server) -> Target:
    kind = KINDS[server.agency]
    with server.client("officer") as officer:
        created = officer.post("/v1/records", json={"recordType": kind, "record": EXAMPLES[kind]()})
        assert created.status_code == 201, created.text
        body = created.json()
        share = officer.post(body["links"]["self"] + "/shares", json={})
        assert share.status_code == 201, share.text
        return Target(kind, body["recordId"], 1, "", share.json()["shareId"], share.json()["token"])


def _anchored(server: Server, target: Target) -> None:
    with server.client("officer") as officer:
        path = f"/v1/records/{target.record_type}/{target.record_id}/bundle"
        bundle = wait_anchored(officer, path)
        assert bundle.status_code == 200, bundle.text
        target.root = json.loads(bundle.content)["anchor"]["root"]


@pytest.fixture(scope="module")
def net(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    devchain: Any,
    decoder: RevertDecoder,
    backend: Backend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Net]:
    root = tmp_path_factory.mktemp(f"isolation-{backend.name}")
    spare = {code: secrets.token_bytes(32) for code in ("REPD", "CSO", "MOJ")}
    keys, deployment = deploy_fresh(
        w3,
        compiled,
        root / "deployment.json",
        more_signers={"REPD": (address(spare["REPD"]),), "CSO": (address(spare["CSO"]),)},
        more_agencies=(
            AgencySpec("MOJ", "Ministry of Justice", (address(spare["MOJ"]),), ("court-order",), False),
        ),
        threshold=1,
    )
    stores = {code: backend.new_store() for code in keys}
    nodes = {
        code: init_node(root, code, key, POLICY if code == "REPD" else None, store=stores[code])
        for code, key in keys.items()
    }
    misissued = secrets.token_urlsafe(32)
    with Store(stores["REPD"] or nodes["REPD"][0] / "store", bytes.fromhex(KEK)) as store:
        store.add_token(misissued, {"name": "issued to CSO", "role": "supervisor", "agency": "CSO"}, None)

    started: dict[str, Server] = {}
    with ThreadPoolExecutor(len(keys)) as pool:
        futures = {
            code: pool.submit(
                start_server,
                data_dir,
                code,
                keys[code],
                tokens,
                devchain.rpc_url,
                deployment,
                store=stores[code],
            )
            for code, (data_dir, tokens) in nodes.items()
        }
        failures = []
        for code, future in futures.items():
            try:
                started[code] = future.result()
            except Exception as exc:  # stop the others before reporting
                failures.append(exc)
    try:
        if failures:
            raise failures[0]
        contracts = bound_contracts(w3, load_deployment(deployment), compiled)
        result = Net(
            started,
            keys,
            spare,
            misissued,
            TxManager(w3, Account.from_key(spare["REPD"]), decoder),
            contracts["AgencyRegistry"],
            contracts["RecordLedger"],
            decoder,
            w3,
            deployment,
        )
        # The standing the contract and peer cells need: CSO's second key retired, MOJ suspended.
        retire = result.council.send_call(
            result.registry.functions.propose(
                (REMOVE_SIGNER, agency_code("CSO"), address(spare["CSO"]), ZERO32, 0, "")
            )
        )
        suspend = result.council.send_call(
            result.registry.functions.propose((SUSPEND, agency_code("MOJ"), ZERO_ADDRESS, ZERO32, 0, ""))
        )
        for code, server in started.items():
            result.targets[code] = _make_target(server)
            result.spares[code] = _make_target(server)
        result.council.wait(retire)
        result.council.wait(suspend)
        for code, server in started.items():
            _anchored(server, result.targets[code])
            _anchored(server, result.spares[code])
        yield result
    finally:
        for server in started.values():
            stop_server(server)


# ----------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in OpenAPI, with {parameters}
    bearer: bool


def _routes(server: Server) -> list[Route]:
    spec = httpx.get(server.url + "/openapi.json").json()
    return [
        Route(method.upper(), path, any("HTTPBearer" in s for s in op.get("security", [])))
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def _fill(path: str, target: Target, record_type_: str | None = None) -> str:
    return (
        path.replace("{record_type}", record_type_ or target.record_type)
        .replace("{record_id}", target.record_id)
        .replace("{share_id}", target.share_id)
        .replace("{root}", target.root)
        .replace("{token}", target.share_token)
    )


def _request(route: Route, target: Target, token: str | None = None) -> dict[str, Any]:
    """The request (httpx arguments) that succeeds on `route` with a token of the right role of
    `target`'s agency: a bearer route added to the API needs its body here, or this file fails."""
    kind = target.record_type
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/records"): {"json": {"recordType": kind, "record": EXAMPLES[kind]()}},
        ("POST", "/v1/records/bulk"): {
            "content": json.dumps({"recordType": kind, "record": EXAMPLES[kind]()}).encode() + b"\n",
            "headers": {"Content-Type": "application/x-ndjson"},
        },
        ("POST", "/v1/records/{record_type}/{record_id}/versions"): {
            "json": {"amends": target.version, "reason": 1, "record": EXAMPLES[kind]()}
        },
        ("POST", "/v1/records/{record_type}/{record_id}/revocation"): {
            "json": {"version": target.version, "reason": 1}
        },
        ("POST", "/v1/records/{record_type}/{record_id}/shares"): {"json": {}},
    }
    request: dict[str, Any] = {"method": route.method, "url": _fill(route.path, target)}
    if route.method not in ("GET", "DELETE"):
        request.update(bodies[(route.method, route.path)])
    if token is not None:
        request["headers"] = {**request.get("headers", {}), "Authorization": f"Bearer {token}"}
    return request


# Changes last, in an order in which each is valid on the record before it: a share is withdrawn
# while the record is current, the amendment makes version 2, the revocation revokes it.
CHANGES_LAST = (
    ("POST", "/v1/records"),
    ("POST", "/v1/records/bulk"),
    ("POST", "/v1/records/{record_type}/{record_id}/shares"),
    ("DELETE", "/v1/records/{record_type}/{record_id}/shares/{share_id}"),
    ("POST", "/v1/records/{record_type}/{record_id}/versions"),
    ("POST", "/v1/records/{record_type}/{record_id}/revocation"),
)


def _in_change_order(routes: list[Route]) -> list[Route]:
    def rank(route: Route) -> int:
        key = (route.method, route.path)
        return CHANGES_LAST.index(key) + 1 if key in CHANGES_LAST else 0

    return sorted(routes, key=rank)


def _own_actors(server: Server) -> set[str]:
    return {f"officer:{hash_token(server.tokens[role])[:16]}" for role in ROLES}


def _state(server: Server, target: Target) -> dict[str, Any]:
    """What an outsider's request could have changed at `server`: the target's history and
    shares, every receipt the node signed, and its batches."""
    with server.client("officer") as officer, server.client("auditor") as auditor:
        record = f"/v1/records/{target.record_type}/{target.record_id}"
        return {
            "history": officer.get(record + "/history").json(),
            "shares": officer.get(record + "/shares").json(),
            "receipts": auditor.get("/v1/receipts", params={"limit": 10_000}).json()["receipts"],
            # Which batches, not how far their anchoring got: that moves on by itself.
            "batches": [
                (b["seq"], b["root"], b["recordType"], b["count"])
                for b in auditor.get("/v1/batches", params={"limit": 1000}).json()["batches"]
            ],
        }


def _settled(server: Server, timeout: float = 60.0) -> None:
    """Wait until every leaf the node took in is anchored."""
    deadline = time.monotonic() + timeout
    with server.client("auditor") as auditor:
        while True:
            batches = auditor.get("/v1/batches", params={"limit": 1000}).json()["batches"]
            backlog = httpx.get(server.url + "/readyz").json()["backlog"]
            if backlog == 0 and all(b["status"] == "anchored" for b in batches):
                return
            assert time.monotonic() < deadline, (backlog, batches[-3:])
            time.sleep(0.3)


def _outsiders_since(
    server: Server, after: int, expected: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The audit entries after `after` whose actors are not the server's own agency's, once
    `expected` of them are there (reads and refusals are committed in groups every 50 ms), read
    once more after that, so that any beyond them shows too."""
    deadline = time.monotonic() + timeout
    seen_enough = False
    with server.client("auditor") as auditor:
        while True:
            entries: list[dict[str, Any]] = auditor.get(
                "/v1/audit", params={"after": after, "limit": 10_000}
            ).json()["entries"]
            outsiders = [e for e in entries if e["actor"] not in _own_actors(server)]
            if seen_enough or time.monotonic() > deadline:
                return outsiders
            seen_enough = len(outsiders) >= expected
            time.sleep(0.1)


def _audit_head(server: Server) -> int:
    time.sleep(0.3)
    with server.client("auditor") as auditor:
        return int(auditor.get("/v1/audit", params={"limit": 1}).json()["head"]["seq"])


def test_every_route_is_classified(net: Net) -> None:
    """Each operation is a bearer route (cells 1, 2), a node-to-node route (5-7), a share route
    (3) or one of the public routes listed here; a new unauthenticated route fails this test."""
    for server in net.servers.values():
        routes = _routes(server)
        public = {(r.method, r.path) for r in routes if not r.bearer and "{token}" not in r.path}
        public -= {(r.method, r.path) for r in routes if r.path.startswith("/v1/peer/")}
        assert public == PUBLIC, "classify the new route in test_isolation.py"
        assert not any(r.bearer for r in routes if r.path.startswith("/v1/peer/"))
        assert len([r for r in routes if r.bearer]) >= 15, "the officer routes are in the schema"


def test_a_foreign_token_is_refused_on_every_officer_route(net: Net) -> None:
    for code_b, b in net.servers.items():
        target = net.targets[code_b]
        routes = [r for r in _routes(b) if r.bearer]
        foreign = [a.tokens[role] for code_a, a in net.servers.items() if code_a != code_b for role in ROLES]
        before = _state(b, target)
        mark = _audit_head(b)
        with httpx.Client(base_url=b.url, timeout=30) as client:
            for route in routes:
                for token in foreign:
                    expect_problem(client.request(**_request(route, target, token)), 401, "unauthenticated")
                if code_b == "REPD":  # a token REPD's store holds, issued for an officer of CSO
                    misissued = client.request(**_request(route, target, net.misissued))
                    assert (
                        "belongs to agency CSO, not REPD"
                        in expect_problem(misissued, 403, "forbidden")["detail"]
                    )
        assert _state(b, target) == before, f"something at {code_b} changed"
        expected = len(routes) * (len(foreign) + (code_b == "REPD"))
        outsiders = _outsiders_since(b, mark, expected)
        assert {e["action"] for e in outsiders} <= {"auth.refused", "auth.forbidden"}, outsiders[:5]
        assert len(outsiders) == expected, "each refusal audited"


def test_ids_of_another_agency_reach_nothing_at_ones_own_node(net: Net) -> None:
    """Record ids, batch roots and share ids are an agency's own: named at another agency's node,
    by that agency's own tokens, they find nothing (404), or the role is refused first (403)."""
    for code_a, a in net.servers.items():
        routes = [r for r in _routes(a) if r.bearer and "{" in r.path]
        before = _state(a, net.targets[code_a])
        with httpx.Client(base_url=a.url, timeout=30) as client:
            for code_b, target in net.targets.items():
                if code_b == code_a:
                    continue
                for route in routes:
                    for kind in {target.record_type, KINDS[code_a]}:  # B's type, and A's own
                        request = _request(route, target, a.tokens["supervisor"])
                        request["url"] = _fill(route.path, target, kind)
                        for role in ROLES:
                            request["headers"]["Authorization"] = f"Bearer {a.tokens[role]}"
                            response = client.request(**request)
                            if response.status_code == 403:
                                assert (
                                    "needs the role" in expect_problem(response, 403, "forbidden")["detail"]
                                )
                            else:
                                expect_problem(response, 404, "not-found")
        assert _state(a, net.targets[code_a]) == before


def test_share_tokens_open_only_their_agencys_records(net: Net) -> None:
    share_routes = [r for r in _routes(net.servers["REPD"]) if "{token}" in r.path]
    assert {r.path for r in share_routes} >= {
        "/v1/shared/{token}",
        "/c/{token}",
        "/c/{token}.pdf",
        "/V/{token}",
    }
    for code_b, target in net.targets.items():
        b = net.servers[code_b]
        with httpx.Client(base_url=b.url) as home:
            shared = home.get(f"/v1/shared/{target.share_token}")
            assert shared.status_code == 200 and json.loads(shared.content)["recordId"] == target.record_id
        for code_a, a in net.servers.items():
            if code_a == code_b:
                continue
            with httpx.Client(base_url=a.url, timeout=30) as elsewhere:
                generic = elsewhere.get("/verify").content
                for route in share_routes:
                    path = _fill(route.path, target)
                    response = elsewhere.get(path)
                    if route.path == "/V/{token}":  # the verify page, the same for every code
                        assert response.status_code == 200 and response.content == generic
                        assert elsewhere.get(path.replace("/V/", "/v/")).content == generic
                    else:
                        expect_problem(response, 404, "not-found")


# ----------------------------------------------------------------------------- node to node


def _signed(
    key: bytes, method: str, path: str, *, agency: str, audience: str = "REPD", body: bytes = b""
) -> dict[str, str]:
    return sign_request(key, method=method, path=path, audience=audience, agency=agency, body=body)


def test_a_peer_sees_exactly_what_the_policy_grants(net: Net) -> None:
    repd, title = net.servers["REPD"], net.targets["REPD"]
    record = f"/v1/peer/records/title/{title.record_id}"
    with httpx.Client(base_url=repd.url) as client:
        answer = client.get(record, headers=_signed(net.keys["CSO"], "GET", record, agency="CSO"))
        assert answer.status_code == 200, answer.text
        assert set(answer.json()["fields"]) == GRANTED
        with repd.client("officer") as officer:
            full = json.loads(officer.get(f"/v1/records/title/{title.record_id}/bundle").content)
        assert answer.json()["hidden"] == len(full["disclosed"]) - len(GRANTED)

        bundle = client.get(
            record + "/bundle", headers=_signed(net.keys["CSO"], "GET", record + "/bundle", agency="CSO")
        )
        assert bundle.status_code == 200, bundle.text
        shown = json.loads(bundle.content)
        assert {d["path"] for d in shown["disclosed"]} == GRANTED
        assert len(shown["hidden"]) == len(full["disclosed"]) - len(GRANTED)
        assert client.post("/v1/verify", content=bundle.content).json()["verdict"] == "authentic-current"

        # CRA is granted nothing: refused alike for a record that exists and for one that does not.
        for path in (record, record + "/bundle", "/v1/peer/records/title/01ABCDEFGHJKMNPQRSTVWXYZ00"):
            refused = expect_problem(
                client.get(path, headers=_signed(net.keys["CRA"], "GET", path, agency="CRA")),
                403,
                "forbidden",
            )
            assert "CRA may not see title records of REPD" in refused["detail"]
        # CSO is granted titles only: REPD's other types are as closed to it.
        path = f"/v1/peer/records/marriage/{title.record_id}"
        expect_problem(
            client.get(path, headers=_signed(net.keys["CSO"], "GET", path, agency="CSO")), 403, "forbidden"
        )


def test_no_write_route_takes_a_signed_request(net: Net) -> None:
    """A signed node-to-node request is no officer token: every route that changes something
    refuses it, and nothing changes."""
    repd, target = net.servers["REPD"], net.targets["REPD"]
    writes = [
        r for r in _routes(repd) if r.method not in ("GET", "HEAD") and (r.method, r.path) not in PUBLIC
    ]
    assert len(writes) >= 6
    before = _state(repd, target)
    with httpx.Client(base_url=repd.url) as client:
        for route in writes:
            request = _request(route, target)
            body = request.get("content") or (
                json.dumps(request["json"]).encode() if "json" in request else b""
            )
            headers = {
                **request.get("headers", {}),
                "Content-Type": request.get("headers", {}).get("Content-Type", "application/json"),
                **_signed(net.keys["CSO"], route.method, request["url"], agency="CSO", body=body),
            }
            response = client.request(route.method, request["url"], content=body, headers=headers)
            expect_problem(response, 401, "unauthenticated")
        # The peer paths themselves take no other method than GET.
        path = f"/v1/peer/records/title/{target.record_id}"
        for method in ("POST", "PUT", "DELETE"):
            response = client.request(
                method, path, headers=_signed(net.keys["CSO"], method, path, agency="CSO")
            )
            expect_problem(response, 405, "method-not-allowed")
    assert _state(repd, target) == before


# (signing key, agency claimed, agency addressed) -> (status, problem type); REPD's node is called.
IMPOSTORS = [
    (("CSO", "REPD", "REPD"), (403, "peer-agency-mismatch")),  # A as B, the node it calls
    (("CSO", "CRA", "REPD"), (403, "peer-agency-mismatch")),  # A as C
    (("CSO", "CSO", "CRA"), (401, "peer-signature-invalid")),  # A's request to C, sent to B
    (("REPD", "REPD", "REPD"), (403, "peer-same-agency")),  # B calling itself
    (("unregistered", "CSO", "REPD"), (401, "peer-not-a-signer")),
    (("retired", "CSO", "REPD"), (401, "peer-signer-retired")),  # CSO's second key, removed
    (("suspended", "MOJ", "REPD"), (403, "peer-agency-not-active")),  # MOJ's signer
]


def test_a_peer_cannot_pass_as_another(net: Net) -> None:
    keys = {
        **net.keys,
        "unregistered": secrets.token_bytes(32),
        "retired": net.spare["CSO"],
        "suspended": net.spare["MOJ"],
    }
    repd = net.servers["REPD"]
    path = f"/v1/peer/records/title/{net.targets['REPD'].record_id}/bundle"
    mark = _audit_head(repd)
    with httpx.Client(base_url=repd.url) as client:
        for (signer, claims, audience), (status, kind) in IMPOSTORS:
            headers = _signed(keys[signer], "GET", path, agency=claims, audience=audience)
            assert expect_problem(client.get(path, headers=headers), status, kind), (signer, claims, audience)
    refusals = _outsiders_since(repd, mark, len(IMPOSTORS))
    assert [e["action"] for e in refusals] == ["peer.refused"] * len(IMPOSTORS), "none came to the record"


def test_the_same_requests_succeed_with_the_agencys_own_tokens(net: Net) -> None:
    """The control of the test above: what refused those requests was the token, nothing else
    (sent on spare records, which they may change)."""
    for b in net.servers.values():
        target = net.spares[b.agency]
        for route in _in_change_order([r for r in _routes(b) if r.bearer]):
            statuses = []
            for role in ROLES:  # the first role the route admits
                with httpx.Client(base_url=b.url, timeout=60) as client:
                    statuses.append(client.request(**_request(route, target, b.tokens[role])).status_code)
                if statuses[-1] < 300:
                    break
            assert statuses[-1] < 300, (b.agency, route, statuses)
            if route.path.endswith("/versions"):
                target.version += 1
    for b in net.servers.values():
        _settled(b)


# ----------------------------------------------------------------------------- node


def _eventually(ask: Callable[[], Any], good: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        answer = ask()
        if good(answer):
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def test_intake_refuses_a_type_the_agency_may_not_anchor(net: Net) -> None:
    repd = net.servers["REPD"]
    before = _state(repd, net.targets["REPD"])
    with repd.client("officer") as officer, repd.client("supervisor") as supervisor:
        for kind, record in (("marriage", marriage_example()), ("court-order", {})):  # CSO's, MOJ's
            created = officer.post("/v1/records", json={"recordType": kind, "record": record})
            refused = expect_problem(created, 403, "forbidden")
            assert f"agency REPD may not anchor {kind!r} records" in refused["detail"]
        lines = [("marriage", marriage_example()), ("commercial", commercial_example())]
        bulk = officer.post(
            "/v1/records/bulk",
            content=b"".join(json.dumps({"recordType": k, "record": r}).encode() + b"\n" for k, r in lines),
            headers={"Content-Type": "application/x-ndjson"},
        )
        answers = [json.loads(line) for line in bulk.text.splitlines()]
        for answer, (kind, _) in zip(answers, lines, strict=False):
            (error,) = answer["errors"]
            assert answer["status"] == "rejected" and error["rule"] == "record-type"
            assert f"agency REPD may not anchor {kind!r} records" in error["detail"] and error["detailAr"]
        assert answers[-1]["summary"]["accepted"] == 0
        # An amendment naming another agency's record and type finds no record here.
        amend = {"amends": 1, "reason": 1, "record": marriage_example()}
        path = f"/v1/records/marriage/{net.targets['CSO'].record_id}/versions"
        expect_problem(supervisor.post(path, json=amend), 404, "not-found")
    assert _state(repd, net.targets["REPD"]) == before, "nothing stored"


def test_a_type_disallowed_while_the_node_runs(
    w3: Web3,
    compiled: dict[str, CompiledContract],
    devchain: Any,
    decoder: RevertDecoder,
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An agency of two types, FAM (marriages and companies), in a node run in-process so that
    the test decides when the batcher steps: a batch of marriages is built, then the council
    disallows marriages before it is sent."""
    node_key, council_key = secrets.token_bytes(32), secrets.token_bytes(32)
    spec = NetworkSpec(
        (
            AgencySpec(
                "FAM", "Family court", (address(node_key), address(council_key)), ("marriage", "commercial")
            ),
        ),
        threshold=1,
    )
    path = tmp_path / "deployment.json"
    deployment = deploy_network(w3, dev_accounts(1)[0], spec, path, compiled=compiled).deployment
    contracts = bound_contracts(w3, deployment, compiled)
    council = TxManager(w3, Account.from_key(council_key), decoder)

    def govern(kind: int, of_type: str) -> None:
        action = (kind, agency_code("FAM"), ZERO_ADDRESS, record_type(of_type), 0, "")
        council.transact(contracts["AgencyRegistry"].functions.propose(action))

    store = backend.new_store()
    data_dir, _ = init_node(tmp_path, "FAM", node_key, store=store)
    monkeypatch.setenv("SIJILL_SIGNER_PASSPHRASE", PASSPHRASE)
    settings = NodeSettings(
        data_dir=data_dir,
        store=store,
        deployment=path,
        rpc_url=devchain.rpc_url,
        agency="FAM",
        keystore=data_dir / "signer.json",
        kek_hex=KEK,
        batcher=BatcherSettings(batch_size=1000, max_age=0.0),
        registry_ttl=0.0,  # ask the registry at every step
    )
    node = AgencyNode(settings, create=False)
    intake, batcher = node.intake, node.batcher

    def submit(kind: str) -> Any:
        return intake.submit(kind, EXAMPLES[kind](), actor="officer:test", request_id=secrets.token_hex(4))

    def state(accepted: Any) -> str:
        return str(intake.stored(accepted.record_type, accepted.record_id).state)

    def step_until(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not done():
            node.lease.claim()  # the node is not started: on PostgreSQL the test holds the lease
            batcher.step()
            assert time.monotonic() < deadline, node.health()
            time.sleep(0.2)

    try:
        marriages = [submit("marriage") for _ in range(3)]
        companies = [submit("commercial") for _ in range(2)]
        assert batcher.close_batch("marriage", force=True)  # built just before the council decides
        govern(DISALLOW, "marriage")
        with caplog.at_level(logging.WARNING, logger="sijill.batcher"):
            step_until(lambda: all(state(c) == "anchored" for c in companies))

            # The companies went ahead of the dissolved batch; nothing was sent to be refused.
            assert contracts["RecordLedger"].functions.head(agency_code("FAM")).call()[1] == 1
            assert w3.eth.get_transaction_count(address(node_key)) == 1, "one anchor, no refused one"
            assert all(state(m) == "pending" for m in marriages)
            (hold,) = batcher.holds
            assert "3 leaves of marriage wait" in hold and "FAM may not anchor 'marriage' records" in hold
            assert batcher.held_leaves == 3
            health = node.health()
            assert health["status"] == "degraded" and hold in health["errors"] and health["backlog"] == 3
            assert any("holding marriage" in r.getMessage() for r in caplog.records)

            # New marriages are refused, by every path, and nothing of them is stored.
            leaves = sum(1 for _ in node.store.iter_prefix(b"leaf/"))
            with pytest.raises(IntakeError, match="agency FAM may not anchor 'marriage' records") as refused:
                submit("marriage")
            assert refused.value.kind == "forbidden" and refused.value.message_ar
            (rejected,) = intake.submit_many(
                [("marriage", marriage_example())], actor="officer:test", request_id="b"
            )
            assert isinstance(rejected, RecordInvalid) and rejected.problems[0].rule == "record-type"
            with pytest.raises(IntakeError, match="may not anchor 'marriage'"):
                intake.amend(
                    "marriage",
                    marriages[1].record_id,
                    expected_version=1,
                    data=marriage_example(),
                    reason=1,
                    actor="officer:test",
                    request_id="a",
                )
            assert sum(1 for _ in node.store.iter_prefix(b"leaf/")) == leaves
            # A revocation needs no right to the type: it is taken, and waits for its leaf.
            intake.revoke(
                "marriage",
                marriages[0].record_id,
                expected_version=1,
                reason=3,
                actor="officer:t",
                request_id="r",
            )
            assert submit("commercial").record_type == "commercial", "the other type is untouched"

            govern(ALLOW, "marriage")
            leaf_status = contracts["RecordLedger"].functions.leafStatus
            step_until(
                lambda: (
                    all(state(m) == "anchored" for m in marriages)
                    and leaf_status(agency_code("FAM"), marriages[0].leaf).call()[0] == 2
                )
            )
            node.lease.claim()
            batcher.step()
            assert batcher.holds == [] and batcher.held_leaves == 0
            assert any("no longer holding marriage" in r.getMessage() for r in caplog.records)
        live = Web3ChainView(w3, deployment, compiled)
        now = int(time.time())
        assert (
            verify(intake.bundle("marriage", marriages[1].record_id), live, now=now).verdict
            == Verdict.AUTHENTIC
        )
        assert (
            verify(intake.bundle("marriage", marriages[0].record_id), live, now=now).verdict
            == Verdict.REVOKED
        )
        assert node.health()["status"] == "ok"
    finally:
        node.stop()


def test_a_node_will_not_start_with_another_agencys_key(
    net: Net, backend: Backend, devchain: Any, tmp_path: Path
) -> None:
    store = backend.new_store()
    data_dir, _ = init_node(tmp_path, "REPD", net.keys["CSO"], store=store)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("sijill")),
            "serve",
            "--data-dir",
            str(data_dir),
            "--agency",
            "REPD",
            "--rpc",
            devchain.rpc_url,
            "--deployment",
            str(net.deployment),
            "--port",
            str(free_port()),
            *(("--store", store) if store else ()),
        ],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, (run.stdout, run.stderr)
    (line,) = run.stderr.strip().splitlines()
    assert f"{address(net.keys['CSO'])} is not a signer of REPD in the registry: it signs for CSO" in line


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    ("who", "call", "error", "expected"),
    [
        ("REPD", "anchor marriage", "RecordTypeNotAllowed", {"agency": "REPD", "recordType": "marriage"}),
        ("outsider", "anchor title", "NotASigner", {"account": "ADDRESS"}),
        ("outsider", "revoke", "NotASigner", {"account": "ADDRESS"}),
        ("retired", "anchor marriage", "SignerRetired", {"account": "ADDRESS", "validTo": "VALID_TO"}),
        ("retired", "revoke", "SignerRetired", {"account": "ADDRESS", "validTo": "VALID_TO"}),
        ("suspended", "anchor court-order", "AgencyNotActive", {"agency": "MOJ", "status": 2}),
        ("suspended", "revoke", "AgencyNotActive", {"agency": "MOJ", "status": 2}),
    ],
)
def test_the_ledger_refuses_by_name(
    net: Net, who: str, call: str, error: str, expected: dict[str, Any]
) -> None:
    key = {"REPD": net.spare["REPD"], "outsider": secrets.token_bytes(32), "retired": net.spare["CSO"]}.get(
        who, net.spare["MOJ"]
    )
    sender = TxManager(net.w3, Account.from_key(key), net.decoder)
    leaf = os.urandom(32)
    if call == "revoke":
        function = net.ledger.functions.revoke([leaf], 1)
    else:
        function = net.ledger.functions.anchor(
            record_type(call.split()[1]), build_tree([leaf]).root, 1, 1, ZERO32
        )
    valid_to = net.registry.functions.signerInfo(address(net.spare["CSO"])).call()[2]
    wanted = {k: {"ADDRESS": sender.address, "VALID_TO": valid_to}.get(v, v) for k, v in expected.items()}
    sent = net.w3.eth.get_transaction_count(sender.account.address)
    with pytest.raises(ContractRevert) as refused:
        sender.transact(function)
    assert (refused.value.error, refused.value.args_by_name) == (error, wanted), str(refused.value)
    assert net.w3.eth.get_transaction_count(sender.account.address) == sent, (
        "refused before anything was sent"
    )


def test_a_leaf_change_by_another_agency_stays_in_its_own_namespace(net: Net) -> None:
    cso = net.servers["CSO"]
    leaves = []
    for target in (net.targets["CSO"], net.spares["CSO"]):
        with cso.client("officer") as officer:
            bundle = json.loads(
                officer.get(f"/v1/records/marriage/{target.record_id}/bundle", params={"version": 1}).content
            )
        leaves.append(bytes.fromhex(bundle["leaf"][2:]))
    status = net.ledger.functions.leafStatus
    before = [status(agency_code("CSO"), leaf).call() for leaf in leaves]
    # REPD's signer revokes CSO's first leaf and supersedes its second: both go through, into
    # REPD's own namespace, where REPD never anchored them.
    repd = TxManager(net.w3, Account.from_key(net.spare["REPD"]), net.decoder)
    sent = [
        repd.send_call(net.ledger.functions.revoke([leaves[0]], 3)),
        repd.send_call(net.ledger.functions.supersede([leaves[1]], [os.urandom(32)], 2)),
    ]
    for pending in sent:
        assert repd.wait(pending)["status"] == 1
    assert [status(agency_code("CSO"), leaf).call() for leaf in leaves] == before
    assert (
        status(agency_code("REPD"), leaves[0]).call()[0] == 2
        and status(agency_code("REPD"), leaves[1]).call()[0] == 1
    )
    with cso.client("officer") as officer:
        bundle = officer.get(f"/v1/records/marriage/{net.targets['CSO'].record_id}/bundle")
        assert officer.post("/v1/verify", content=bundle.content).json()["verdict"] == "authentic-current"


def test_a_suspended_agencys_node_holds_and_resumes(net: Net) -> None:
    """Last in this file: CRA is suspended, and reinstated whatever happens."""
    cra, target = net.servers["CRA"], net.targets["CRA"]
    signer = address(net.keys["CRA"])
    sent_before = net.w3.eth.get_transaction_count(signer)
    ledger_status = net.ledger.functions.leafStatus
    with cra.client("officer") as officer:
        leaf = bytes.fromhex(officer.get(f"/v1/records/commercial/{target.record_id}").json()["leaf"][2:])
    net.govern(SUSPEND, "CRA")
    try:
        ready = _eventually(lambda: httpx.get(cra.url + "/readyz"), lambda r: r.status_code == 503)
        assert any("agency CRA is suspended in the registry" in p for p in ready.json()["problems"])
        with cra.client("officer") as officer, cra.client("supervisor") as supervisor:
            record = {"recordType": "commercial", "record": commercial_example()}
            refused = expect_problem(officer.post("/v1/records", json=record), 403, "forbidden")
            assert (
                "agency CRA is suspended in the registry" in refused["detail"]
                and "موقوفة" in refused["detailAr"]
            )
            revocation = {"version": target.version, "reason": 3}
            revoked = supervisor.post(
                f"/v1/records/commercial/{target.record_id}/revocation", json=revocation
            )
            assert revoked.status_code == 200, revoked.text
        ready = _eventually(
            lambda: httpx.get(cra.url + "/readyz"),
            lambda r: any(
                "0 leaves and 1 revocation or supersession wait" in p for p in r.json()["problems"]
            ),
        )
        metrics = httpx.get(cra.url + "/metrics").text
        assert "\nsijill_held_operations 1\n" in metrics and "\nsijill_held_leaves 0\n" in metrics
        assert ledger_status(agency_code("CRA"), leaf).call()[0] == 0, "the revocation waits"
        assert net.w3.eth.get_transaction_count(signer) == sent_before, "nothing sent to be refused"
    finally:
        net.govern(REINSTATE, "CRA")
    _eventually(lambda: httpx.get(cra.url + "/readyz"), lambda r: r.status_code == 200)
    _eventually(lambda: ledger_status(agency_code("CRA"), leaf).call()[0], lambda state: state == 2)
    with cra.client("officer") as officer:
        created = officer.post(
            "/v1/records", json={"recordType": "commercial", "record": commercial_example()}
        )
        assert created.status_code == 201, created.text
        assert wait_anchored(officer, created.json()["links"]["bundle"]).status_code == 200
