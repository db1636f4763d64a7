"""Node-to-node requests (node/peer/): signed headers checked against the AgencyRegistry of the
demo deployment on anvil, replay protection in a real LevelDB store, the sharing policy, and
the client talking to a small HTTP server over a real socket."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from ledger_helpers import sample_record, signed_bundle
from starlette.datastructures import Headers
from web3 import Web3
from web3.exceptions import ContractCustomError

from ledger.bundle import Bundle, bundle_to_json, disclose, dump_bundle
from ledger.codes import agency_code
from ledger.fields import RecordKey, seal_record
from node.chain.devchain import free_port
from node.errors import NodeError
from node.peer import auth as peer_module
from node.peer.auth import PeerAuthenticator, PeerAuthError, PeerIdentity
from node.peer.client import PeerClient, PeerRequestError
from node.peer.policy import PeerPolicy
from node.peer.signing import PEER_HEADERS, sign_request, signing_message
from node.store import Store

NOW = 1_790_000_000
PATH = "/v1/peer/records/title/T1/bundle"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store", os.urandom(32), create=True) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(contracts: dict[str, Any]) -> Any:
    return contracts["AgencyRegistry"]


@pytest.fixture
def auth(store: Store, registry: Any, clock: Clock) -> PeerAuthenticator:
    """The REPD node's authenticator."""
    return PeerAuthenticator(store, registry, "REPD", clock=clock)


def key_of(account: LocalAccount) -> bytes:
    return bytes(account.key)


def signed(
    account: LocalAccount,
    *,
    agency: str = "CSO",
    audience: str = "REPD",
    method: str = "GET",
    path: str = PATH,
    body: bytes = b"",
    timestamp: int = NOW,
    nonce: str | None = None,
) -> dict[str, str]:
    return sign_request(
        key_of(account),
        method=method,
        path=path,
        audience=audience,
        agency=agency,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
    )


def refused(
    auth: PeerAuthenticator, headers: Any, *, method: str = "GET", path: str = PATH, body: bytes = b""
) -> PeerAuthError:
    with pytest.raises(PeerAuthError) as caught:
        auth.authenticate(method, path, headers, body)
    return caught.value


def nonce_keys(store: Store) -> list[str]:
    return [key.decode() for key, _ in store.iter_prefix(b"peer-nonce/")]


# ---------------------------------------------------------------------------------- signing


def test_signature_is_eip191_personal_sign_of_the_documented_message(accounts: list[LocalAccount]) -> None:
    cso = accounts[2]
    headers = signed(cso, nonce="0" * 32, body=b"{}", method="post")
    message = signing_message(
        method="POST",
        target=PATH,
        audience="REPD",
        agency="CSO",
        signer=cso.address,
        timestamp=NOW,
        nonce="0" * 32,
        body=b"{}",
    )
    assert message.split("\n") == [
        "sijill-peer/1",
        "POST",
        PATH,
        "REPD",
        "CSO",
        cso.address.lower(),
        str(NOW),
        "0" * 32,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",  # sha256 of b"{}"
    ]
    # eth_account signs deterministically (RFC 6979) as coincurve does: the very same bytes.
    expected = Account.sign_message(encode_defunct(text=message), cso.key).signature
    assert headers["Sijill-Signature"] == "0x" + bytes(expected).hex()
    assert headers["Sijill-Signer"] == cso.address.lower()
    assert headers["Sijill-Timestamp"] == str(NOW)


def test_sign_request_refuses_what_cannot_be_signed(accounts: list[LocalAccount]) -> None:
    with pytest.raises(NodeError, match="request target"):
        signed(accounts[2], path="/v1/peer/a b")
    with pytest.raises(NodeError, match="request target"):
        signed(accounts[2], path="v1/peer")
    with pytest.raises(NodeError, match="agency code"):
        signed(accounts[2], audience="repd")
    with pytest.raises(NodeError, match="nonce"):
        signed(accounts[2], nonce="ABC")
    fresh = sign_request(key_of(accounts[2]), method="GET", path=PATH, audience="REPD", agency="CSO")
    assert len(fresh["Sijill-Nonce"]) == 32
    assert fresh["Sijill-Nonce"] != signed(accounts[2])["Sijill-Nonce"]


# ---------------------------------------------------------------------------------- authentication


@pytest.mark.chain
def test_a_good_request_authenticates_to_its_agency_and_signer(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    body = b'{"ask": "title T1"}'
    identity = auth.authenticate("POST", PATH, signed(accounts[2], method="POST", body=body), body)
    assert identity == PeerIdentity("CSO", accounts[2].address.lower())
    cra = auth.authenticate("GET", PATH + "?x=1", signed(accounts[3], agency="CRA", path=PATH + "?x=1"), b"")
    assert cra == PeerIdentity("CRA", accounts[3].address.lower())


@pytest.mark.chain
def test_a_signature_made_by_eth_account_is_accepted(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    cso, nonce = accounts[2], os.urandom(16).hex()
    message = signing_message(
        method="GET",
        target=PATH,
        audience="REPD",
        agency="CSO",
        signer=cso.address,
        timestamp=NOW,
        nonce=nonce,
        body=b"",
    )
    signature = Account.sign_message(encode_defunct(text=message), cso.key).signature
    headers = {
        "Sijill-Agency": "CSO",
        "Sijill-Signer": cso.address,  # checksummed: any case is accepted
        "Sijill-Timestamp": str(NOW),
        "Sijill-Nonce": nonce,
        "Sijill-Signature": "0x" + bytes(signature).hex().upper(),
    }
    assert auth.authenticate("GET", PATH, headers, b"") == PeerIdentity("CSO", cso.address.lower())


@pytest.mark.chain
@pytest.mark.parametrize(
    ("what", "received"),
    [
        ("method", {"method": "DELETE"}),
        ("path", {"path": "/v1/peer/records/title/T2/bundle"}),
        ("query", {"path": PATH + "?all=1"}),
        ("body", {"body": b'{"ask": "more"}'}),
    ],
)
def test_a_request_altered_in_transit_is_refused(
    auth: PeerAuthenticator, accounts: list[LocalAccount], what: str, received: dict[str, Any]
) -> None:
    headers = signed(accounts[2])
    error = refused(auth, headers, **received)
    assert (error.status, error.code) == (401, "peer-signature-invalid"), what
    assert nonce_keys(auth.store) == [], "a refused request leaves no trace in the store"


@pytest.mark.chain
def test_a_request_signed_for_another_agency_is_refused(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    error = refused(auth, signed(accounts[2], audience="CRA"))
    assert (error.status, error.code) == (401, "peer-signature-invalid")
    assert "REPD" in error.message_en and "REPD" in error.message_ar


@pytest.mark.chain
def test_altered_headers_break_the_signature(auth: PeerAuthenticator, accounts: list[LocalAccount]) -> None:
    good = signed(accounts[2])
    signature = bytes.fromhex(good["Sijill-Signature"][2:])
    twin_s = SECP256K1_N - int.from_bytes(signature[32:64], "big")
    high_s = signature[:32] + twin_s.to_bytes(32, "big") + bytes([55 - signature[64]])  # v 27 <-> 28
    for name, value in [
        ("Sijill-Signer", accounts[3].address),  # claims another key
        ("Sijill-Timestamp", str(NOW + 1)),
        ("Sijill-Nonce", "f" * 32),
        ("Sijill-Signature", "0x" + "00" * 64 + "1b"),
        ("Sijill-Signature", "0x" + high_s.hex()),  # the malleable twin of a good signature
    ]:
        error = refused(auth, {**good, name: value})
        assert (error.status, error.code) == (401, "peer-signature-invalid"), name


@pytest.mark.chain
def test_a_replayed_request_is_refused_also_after_a_restart(
    store: Store, registry: Any, clock: Clock, accounts: list[LocalAccount]
) -> None:
    headers = signed(accounts[2])
    first = PeerAuthenticator(store, registry, "REPD", clock=clock)
    first.authenticate("GET", PATH, headers, b"")
    error = refused(first, headers)
    assert (error.status, error.code) == (401, "peer-replay")
    assert nonce_keys(store) == [f"peer-nonce/{accounts[2].address.lower()}/{headers['Sijill-Nonce']}"]
    assert store.get_json(f"peer-nonce/{accounts[2].address.lower()}/{headers['Sijill-Nonce']}".encode()) == {
        "timestamp": NOW
    }
    restarted = PeerAuthenticator(store, registry, "REPD", clock=clock)
    assert refused(restarted, headers).code == "peer-replay"
    # The same nonce from another signer is another request.
    cra = signed(accounts[3], agency="CRA", nonce=headers["Sijill-Nonce"])
    assert restarted.authenticate("GET", PATH, cra, b"").agency == "CRA"


@pytest.mark.chain
def test_concurrent_replays_let_exactly_one_through(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    headers = signed(accounts[2])
    auth.authenticate("GET", PATH, signed(accounts[2]), b"")  # warm the cache: the race is on the nonce
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            auth.authenticate("GET", PATH, headers, b"")
            outcomes.append("ok")
        except PeerAuthError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["peer-replay"] * 7


@pytest.mark.chain
@pytest.mark.parametrize("offset", [-61, 61, -3600, 10**6])
def test_stale_and_future_timestamps_are_refused(
    auth: PeerAuthenticator, accounts: list[LocalAccount], offset: int
) -> None:
    error = refused(auth, signed(accounts[2], timestamp=NOW + offset))
    assert (error.status, error.code) == (401, "peer-timestamp-skew")
    assert "60 s" in error.message_en


@pytest.mark.chain
@pytest.mark.parametrize("offset", [-60, 60])
def test_timestamps_at_the_edge_of_the_window_are_accepted(
    auth: PeerAuthenticator, accounts: list[LocalAccount], offset: int
) -> None:
    assert auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW + offset), b"").agency == "CSO"


@pytest.mark.chain
def test_a_key_that_is_not_a_signer_is_refused(auth: PeerAuthenticator, accounts: list[LocalAccount]) -> None:
    error = refused(auth, signed(accounts[7], agency="CSO"))
    assert (error.status, error.code) == (401, "peer-not-a-signer")
    assert nonce_keys(auth.store) == []


@pytest.mark.chain
def test_a_signer_claiming_another_agency_is_refused(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    error = refused(auth, signed(accounts[2], agency="CRA"))  # CSO's key
    assert (error.status, error.code) == (403, "peer-agency-mismatch")
    assert "CRA" in error.message_en
    unknown = refused(auth, signed(accounts[2], agency="NOPE"))
    assert unknown.code == "peer-agency-mismatch"


@pytest.mark.chain
def test_an_agency_calling_itself_is_refused(auth: PeerAuthenticator, accounts: list[LocalAccount]) -> None:
    error = refused(auth, signed(accounts[1], agency="REPD"))
    assert (error.status, error.code) == (403, "peer-same-agency")


@pytest.mark.chain
@pytest.mark.parametrize("missing", PEER_HEADERS)
def test_each_missing_header_is_named(
    auth: PeerAuthenticator, accounts: list[LocalAccount], missing: str
) -> None:
    headers = {k: v for k, v in signed(accounts[2]).items() if k != missing}
    error = refused(auth, headers)
    assert (error.status, error.code) == (401, "peer-headers-missing")
    assert error.message_en == f"missing request headers: {missing}"
    assert missing in error.message_ar


@pytest.mark.chain
def test_all_missing_headers_are_named_at_once(auth: PeerAuthenticator) -> None:
    error = refused(auth, {"Authorization": "Bearer x"})
    assert error.message_en == "missing request headers: " + ", ".join(PEER_HEADERS)


@pytest.mark.chain
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Sijill-Agency", "cso"),
        ("Sijill-Agency", "C"),
        ("Sijill-Agency", "CSO\n"),
        ("Sijill-Signer", "0x1234"),
        ("Sijill-Signer", "70997970C51812dc3A010C7d01b50e0d17dc79C8aa"),
        ("Sijill-Timestamp", "-1"),
        ("Sijill-Timestamp", "1790000000.5"),
        ("Sijill-Timestamp", "01790000000"),
        ("Sijill-Timestamp", "1" * 13),
        ("Sijill-Nonce", "A" * 32),
        ("Sijill-Nonce", "a" * 31),
        ("Sijill-Signature", "0x" + "ab" * 64),
        ("Sijill-Signature", "ab" * 65),
    ],
)
def test_each_malformed_header_is_named(
    auth: PeerAuthenticator, accounts: list[LocalAccount], name: str, value: str
) -> None:
    error = refused(auth, {**signed(accounts[2]), name: value})
    assert (error.status, error.code) == (401, "peer-headers-malformed")
    assert name in error.message_en and name in error.message_ar


@pytest.mark.chain
def test_header_names_are_case_insensitive(auth: PeerAuthenticator, accounts: list[LocalAccount]) -> None:
    lower = {k.lower(): v for k, v in signed(accounts[2]).items()}
    upper = {k.upper(): v for k, v in signed(accounts[2]).items()}
    assert auth.authenticate("GET", PATH, lower, b"").agency == "CSO"
    assert auth.authenticate("GET", PATH, upper, b"").agency == "CSO"
    raw = [(k.encode(), v.encode()) for k, v in signed(accounts[2]).items()]
    assert auth.authenticate("GET", PATH, Headers(raw=raw), b"").agency == "CSO"


@pytest.mark.chain
def test_a_header_sent_twice_with_different_values_is_refused(
    auth: PeerAuthenticator, accounts: list[LocalAccount]
) -> None:
    headers = signed(accounts[2])
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"sijill-agency", b"CRA"))
    error = refused(auth, Headers(raw=raw))
    assert (error.code, error.message_en) == (
        "peer-headers-malformed",
        "header Sijill-Agency is sent more than once",
    )
    mixed = {**headers, "sijill-nonce": "e" * 32}
    assert refused(auth, mixed).code == "peer-headers-malformed"


# ---------------------------------------------------------------------------------- the registry


class CountingRegistry:
    """The real registry, counting the calls to authorizeSigner."""

    def __init__(self, real: Any) -> None:
        self.abi = real.abi
        self.functions = self
        self.calls = 0
        self._real = real

    def authorizeSigner(self, address: str) -> Any:
        self.calls += 1
        return self._real.functions.authorizeSigner(address)


@pytest.mark.chain
def test_registry_answers_are_cached_good_and_bad(
    store: Store, registry: Any, clock: Clock, accounts: list[LocalAccount]
) -> None:
    counting = CountingRegistry(registry)
    auth = PeerAuthenticator(store, counting, "REPD", cache_ttl=5.0, clock=clock)
    for _ in range(3):
        auth.authenticate("GET", PATH, signed(accounts[2]), b"")
        assert refused(auth, signed(accounts[7])).code == "peer-not-a-signer"
    assert refused(auth, signed(accounts[2], agency="CRA")).code == "peer-agency-mismatch"
    assert counting.calls == 2, "one question per signer while the answers are fresh"
    clock.now += 6
    auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW + 6), b"")
    assert refused(auth, signed(accounts[7], timestamp=NOW + 6)).code == "peer-not-a-signer"
    assert counting.calls == 4


@pytest.mark.chain
def test_an_unreachable_chain_is_503_and_not_cached(
    store: Store, registry: Any, clock: Clock, accounts: list[LocalAccount]
) -> None:
    dead = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", request_kwargs={"timeout": 2}))
    counting = CountingRegistry(dead.eth.contract(address=registry.address, abi=registry.abi))
    auth = PeerAuthenticator(store, counting, "REPD", clock=clock)
    headers = signed(accounts[2])
    error = refused(auth, headers)
    assert (error.status, error.code) == (503, "chain-unavailable")
    assert "127.0.0.1" not in error.message_en, "no internals in the message"
    assert nonce_keys(store) == [], "the nonce is not spent: the caller may retry the same request"
    assert refused(auth, headers).code == "chain-unavailable"
    assert counting.calls == 2, "an outage is not cached"


class RevertingRegistry:
    """A registry whose authorizeSigner reverts with the given custom error."""

    def __init__(self, abi: Any, signature: str, types: list[str], values: list[Any]) -> None:
        self.abi = abi
        self.functions = self
        self.data = "0x" + (function_signature_to_4byte_selector(signature) + abi_encode(types, values)).hex()

    def authorizeSigner(self, address: str) -> Any:
        return self

    fn_name = "authorizeSigner"

    def call(self, **_: Any) -> Any:
        raise ContractCustomError(data=self.data)


@pytest.mark.chain
@pytest.mark.parametrize(
    ("signature", "types", "values", "status", "code"),
    [
        (
            "SignerRetired(address,uint64)",
            ["address", "uint64"],
            ["SIGNER", 1234],
            401,
            "peer-signer-retired",
        ),
        (
            "AgencyNotActive(bytes32,uint8)",
            ["bytes32", "uint8"],
            [agency_code("CSO"), 2],
            403,
            "peer-agency-not-active",
        ),
        ("NotASigner(address)", ["address"], ["SIGNER"], 401, "peer-not-a-signer"),
    ],
)
def test_registry_refusals_map_to_statuses(
    store: Store,
    registry: Any,
    clock: Clock,
    accounts: list[LocalAccount],
    signature: str,
    types: list[str],
    values: list[Any],
    status: int,
    code: str,
) -> None:
    values = [accounts[2].address if v == "SIGNER" else v for v in values]
    auth = PeerAuthenticator(
        store, RevertingRegistry(registry.abi, signature, types, values), "REPD", clock=clock
    )
    error = refused(auth, signed(accounts[2]))
    assert (error.status, error.code) == (status, code)
    if code == "peer-agency-not-active":
        assert "CSO" in error.message_en and "CSO" in error.message_ar


@pytest.mark.chain
def test_an_unknown_revert_is_503(
    store: Store, registry: Any, clock: Clock, accounts: list[LocalAccount]
) -> None:
    strange = RevertingRegistry(registry.abi, "Error(string)", ["string"], ["odd"])
    error = refused(PeerAuthenticator(store, strange, "REPD", clock=clock), signed(accounts[2]))
    assert (error.status, error.code) == (503, "chain-unavailable")


# ---------------------------------------------------------------------------------- nonce pruning


@pytest.mark.chain
def test_old_nonces_are_pruned_and_recent_ones_kept(
    auth: PeerAuthenticator, clock: Clock, accounts: list[LocalAccount]
) -> None:
    old = signed(accounts[2], timestamp=NOW)
    auth.authenticate("GET", PATH, old, b"")
    clock.now = NOW + 100
    recent = signed(accounts[2], timestamp=NOW + 100)
    auth.authenticate("GET", PATH, recent, b"")  # 100 s since the last pruning: prunes, keeps both
    assert len(nonce_keys(auth.store)) == 2
    clock.now = NOW + 121  # `old` is now more than 2 * max_skew old, `recent` is not
    assert auth.prune_nonces() == 1
    assert [k.rsplit("/", 1)[1] for k in nonce_keys(auth.store)] == [recent["Sijill-Nonce"]]
    assert refused(auth, old).code == "peer-timestamp-skew", "a pruned nonce cannot be replayed"
    assert auth.prune_nonces() == 0


@pytest.mark.chain
def test_pruning_runs_by_itself_after_a_minute(
    auth: PeerAuthenticator, clock: Clock, accounts: list[LocalAccount]
) -> None:
    first = signed(accounts[2])
    auth.authenticate("GET", PATH, first, b"")
    clock.now = NOW + 130
    auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW + 130), b"")
    assert first["Sijill-Nonce"] not in "".join(nonce_keys(auth.store))
    assert len(nonce_keys(auth.store)) == 1


@pytest.mark.chain
def test_pruning_runs_by_itself_after_many_calls(
    store: Store,
    registry: Any,
    clock: Clock,
    accounts: list[LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peer_module, "PRUNE_EVERY_CALLS", 3)
    auth = PeerAuthenticator(store, registry, "REPD", max_skew=10, clock=clock)
    auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW - 10), b"")
    clock.now = NOW + 15  # under a minute since the authenticator started: only the count can trigger
    auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW + 15), b"")
    assert len(nonce_keys(store)) == 2
    auth.authenticate("GET", PATH, signed(accounts[2], timestamp=NOW + 16), b"")  # the third: prunes
    assert len(nonce_keys(store)) == 2, "the nonce of NOW - 10 is more than 2 * 10 s older than NOW + 15"


# ---------------------------------------------------------------------------------- policy


POLICY = {
    "CSO": {"title": ["/owners", "/title_number"], "commercial": [""]},
    "CRA": {"title": []},
}
PATHS = ["/area_m2", "/owners/0/name", "/owners/1/share", "/ownership", "/title_number", "/title_numbers"]


def test_policy_prefixes_match_whole_segments() -> None:
    policy = PeerPolicy.from_json(POLICY)
    assert policy.visible_paths("CSO", "title", PATHS) == [
        "/owners/0/name",
        "/owners/1/share",
        "/title_number",
    ]
    assert policy.visible_paths("CSO", "commercial", PATHS) == PATHS
    assert policy.visible_paths("CRA", "title", PATHS) == [], (
        "listed with no fields: sees the record, no field"
    )
    assert policy.visible_paths("CRA", "marriage", PATHS) is None
    assert policy.visible_paths("NID", "title", PATHS) is None
    assert [policy.may_see(*who) for who in (("CRA", "title"), ("CRA", "marriage"), ("NID", "title"))] == [
        True,
        False,
        False,
    ], "may_see is whether visible_paths is not None"
    assert PeerPolicy.from_json({"CSO": {"title": ["/own"]}}).visible_paths("CSO", "title", PATHS) == []
    assert PeerPolicy.from_json({"CSO": {"title": ["/owners/0"]}}).visible_paths("CSO", "title", PATHS) == [
        "/owners/0/name"
    ]
    assert policy.to_json() == POLICY
    assert PeerPolicy.from_json(policy.to_json()).to_json() == POLICY


def test_a_star_segment_stands_for_any_one_segment() -> None:
    paths = [
        "/owners/0/name",
        "/owners/0/national_id",
        "/owners/1/name",
        "/owners/12/name/x",
        "/owners",
        "/use",
    ]
    names = PeerPolicy.from_json({"CSO": {"title": ["/owners/*/name"]}})
    assert names.visible_paths("CSO", "title", paths) == [
        "/owners/0/name",
        "/owners/1/name",
        "/owners/12/name/x",
    ]
    every = PeerPolicy.from_json({"CSO": {"title": ["/*"]}})
    assert every.visible_paths("CSO", "title", paths) == paths


def test_policy_load(tmp_path: Path) -> None:
    assert PeerPolicy.load(None).to_json() == {}
    assert PeerPolicy.load(tmp_path / "absent.json").to_json() == {}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    assert PeerPolicy.load(path).to_json() == POLICY


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"CSO": {"title": ["/owners"]', "not valid JSON"),
        ('["CSO"]', "a peer policy is an object"),
        ('{"cso": {"title": []}}', "'cso' is not an agency code"),
        ('{"CSO": ["title"]}', "CSO: expected an object"),
        ('{"CSO": {"Title": []}}', "CSO: 'Title' is not a record type"),
        ('{"CSO": {"title": "/owners"}}', "CSO.title: expected a list of field pointers"),
        ('{"CSO": {"title": ["owners"]}}', "CSO.title: field pointer 'owners' must start with '/'"),
        ('{"CSO": {"title": ["/owners/"]}}', "'/owners/' has an empty segment"),
        ('{"CSO": {"title": ["/a~2b"]}}', "'/a~2b' has a '~' that is not ~0 or ~1"),
        ('{"CSO": {"title": [7]}}', "CSO.title: 7 is not a field pointer"),
        ('{"CSO": {"title": []}, "CSO": {}}', "key 'CSO' appears twice"),
    ],
)
def test_a_bad_policy_file_names_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(text)
    with pytest.raises(NodeError) as caught:
        PeerPolicy.load(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


# ---------------------------------------------------------------------------------- the client


def problem_json(status: int, detail: str, code: str) -> bytes:
    return json.dumps({"type": "about:blank", "status": status, "detail": detail, "code": code}).encode()


@pytest.fixture
def repd_node(store: Store, registry: Any) -> Iterator[tuple[str, Bundle, list[PeerIdentity]]]:
    """A small HTTP server standing in for REPD's peer API: authenticates, applies the policy,
    discloses. Yields its URL, the full bundle it holds, and who it has served."""
    auth = PeerAuthenticator(store, registry, "REPD")  # the real clock: the client signs with it
    bundle = signed_bundle(seal_record(RecordKey("REPD", "title", "T1", 1), sample_record()))
    policy = PeerPolicy.from_json({"CSO": {"title": ["/owners"]}})
    served: list[PeerIdentity] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                identity = auth.authenticate(self.command, self.path, dict(self.headers.items()), b"")
            except PeerAuthError as exc:
                return self.reply(exc.status, problem_json(exc.status, exc.message_en, exc.code))
            served.append(identity)
            if self.path.startswith("/echo"):
                return self.reply(200, json.dumps({"target": self.path, "agency": identity.agency}).encode())
            if self.path == "/v1/peer/records/title/T9/bundle":  # a node answering with the wrong record
                return self.reply(200, dump_bundle(bundle))
            if self.path != "/v1/peer/records/title/T1/bundle":
                return self.reply(404, problem_json(404, "no such record", "not-found"))
            visible = policy.visible_paths(identity.agency, "title", [f.path for f in bundle.disclosed])
            if visible is None:
                return self.reply(
                    403, problem_json(403, f"{identity.agency} may not see title records", "denied")
                )
            return self.reply(200, dump_bundle(disclose(bundle, visible)))

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bundle, served
    finally:
        server.shutdown()
        server.server_close()


def client_for(url: str, account: LocalAccount, agency: str) -> PeerClient:
    return PeerClient(url, agency=agency, audience="REPD", account_key=key_of(account))


@pytest.mark.chain
def test_the_client_fetches_a_bundle_as_the_policy_allows(
    repd_node: tuple[str, Bundle, list[PeerIdentity]], accounts: list[LocalAccount]
) -> None:
    url, full, served = repd_node
    with client_for(url, accounts[2], "CSO") as client:
        bundle = client.fetch_bundle("title", "T1")
    assert served == [PeerIdentity("CSO", accounts[2].address.lower())]
    assert bundle.leaf == full.leaf
    assert sorted(bundle.disclosed_values()) == [
        "/owners/0/name",
        "/owners/0/national_id",
        "/owners/0/share",
        "/owners/1/name",
        "/owners/1/national_id",
        "/owners/1/share",
    ]
    assert bundle_to_json(bundle)["hidden"], "the other fields are hidden, by hash"


@pytest.mark.chain
def test_the_signed_target_is_what_travels_on_the_wire(
    repd_node: tuple[str, Bundle, list[PeerIdentity]], accounts: list[LocalAccount]
) -> None:
    url, _, _ = repd_node
    with client_for(url, accounts[2], "CSO") as client:
        response = client.get("/echo/ملف?q=a b&n=é&x=%2F")
    assert response.status_code == 200, response.text
    assert response.json()["target"] == "/echo/%D9%85%D9%84%D9%81?q=a%20b&n=%C3%A9&x=%2F"


@pytest.mark.chain
def test_the_client_reports_refusals_with_the_problem_detail(
    repd_node: tuple[str, Bundle, list[PeerIdentity]], accounts: list[LocalAccount]
) -> None:
    url, _, _ = repd_node
    with client_for(url, accounts[3], "CRA") as client, pytest.raises(PeerRequestError) as denied:
        client.fetch_bundle("title", "T1")
    assert (denied.value.status, denied.value.detail) == (403, "CRA may not see title records")
    assert denied.value.problem["code"] == "denied"
    with client_for(url, accounts[7], "CSO") as client, pytest.raises(PeerRequestError) as outsider:
        client.fetch_bundle("title", "T1")
    assert outsider.value.status == 401 and outsider.value.problem["code"] == "peer-not-a-signer"
    with client_for(url, accounts[2], "CSO") as client:
        with pytest.raises(PeerRequestError) as missing:
            client.fetch_bundle("title", "T2")
        assert (missing.value.status, missing.value.detail) == (404, "no such record")
        with pytest.raises(PeerRequestError, match="not of the record asked for"):
            client.fetch_bundle("title", "T9")
        with pytest.raises(NodeError, match="not a record type and id"):
            client.fetch_bundle("title", "../admin")


def test_an_unreachable_node_is_a_peer_request_error(accounts: list[LocalAccount]) -> None:
    with (
        client_for(f"http://127.0.0.1:{free_port()}", accounts[2], "CSO") as client,
        pytest.raises(PeerRequestError, match="did not answer") as caught,
    ):
        client.get("/v1/peer/ping")
    assert caught.value.status is None
