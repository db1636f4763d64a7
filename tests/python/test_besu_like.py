"""The node on a chain set up like Sijill's Besu QBFT network: what Besu would refuse, it must not do.

Besu cannot run here, so anvil plays it (2 s blocks, zero base fee, gas price 0), and a small
recording JSON-RPC forwarder (`BesuLikeRpc`) stands in front of it and answers as Besu does
where anvil is more lenient:

- the block tags `finalized` and `safe` exist only on a proof-of-stake chain. On QBFT Besu's
  `finalizedBlockHeader()` / `safeBlockHeader()` are empty and `AbstractBlockParameterMethod`
  answers `RpcErrorType.UNKNOWN_BLOCK`, i.e. `{"code": -39001, "message": "Unknown block"}`
  (hyperledger/besu, ethereum/api/src/main/java/org/hyperledger/besu/ethereum/api/jsonrpc/
  internal/methods/AbstractBlockParameterMethod.java, `posRelatedResult`, and
  .../internal/response/RpcErrorType.java; see also matter-labs/zksync-os-server#1370, "Besu ...
  does not support safe/finalized when run in QBFT mode");
- the network's RPC enables the ETH, NET, WEB3 and TXPOOL APIs only: a method Besu does not
  have is `-32601 Method not found`, one of a disabled API `-32604 Method not enabled`
  (Besu's JSON-RPC executor checks `RpcMethod.rpcMethodExists`, then the enabled methods), and
  `eth_sendTransaction` is refused (-32604: Besu holds no keys).

Every call the node makes goes through the forwarder and is recorded; the tests then assert that
none used those tags and every method is one Besu's enabled APIs provide. The node runs its real
code paths: in process (`AgencyNode`: intake, batcher, tx manager, indexer) and as a `sijill
serve` process (through the HTTP API). A second chain with a base fee exercises the tx manager's
other branch, EIP-1559 fees, on the same 2 s blocks. Block period and gas limit are those of the
genesis `sijill network init` writes (node/network/genesis.py), and the batcher's largest call (a
1,024-leaf supersede) is sent through the forwarder to show it fits in such a block.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from api_helpers import KEK, PASSPHRASE, deploy_fresh, init_node, start_server, stop_server, wait_anchored
from eth_account import Account
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from local_http import LocalServer
from web3 import Web3

from ledger.codes import agency_code
from ledger.records.examples import numbered_records
from node.batcher import BatcherSettings
from node.chain.client import connect
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.limits import MAX_LEAVES_PER_CALL
from node.chain.toolchain import CompiledContract
from node.intake import Accepted
from node.network.options import RPC_APIS, NetworkOptions
from node.service import AgencyNode, NodeSettings

pytestmark = pytest.mark.chain

BLOCK_TIME = float(NetworkOptions().block_period)  # the genesis' blockperiodseconds: 2 s
GAS_LIMIT = NetworkOptions().gas_limit  # the genesis `sijill network init` writes

# The methods of Besu's ETH, NET, WEB3 and TXPOOL APIs: its `RpcMethod` enum (besu-eth/besu,
# ethereum/api/src/main/java/org/hyperledger/besu/ethereum/api/jsonrpc/RpcMethod.java) with those
# prefixes, less eth_sendTransaction, which Besu answers "not supported, use eth_sendRawTransaction".
BESU_ENABLED = frozenset(
    {
        "eth_accounts",
        "eth_blobBaseFee",
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_coinbase",
        "eth_config",
        "eth_createAccessList",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockAccessList",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_getLogs",
        "eth_getProof",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionBySenderAndNonce",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_getUncleByBlockHashAndIndex",
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getUncleCountByBlockHash",
        "eth_getUncleCountByBlockNumber",
        "eth_maxPriorityFeePerGas",
        "eth_mining",
        "eth_newBlockFilter",
        "eth_newFilter",
        "eth_newPendingTransactionFilter",
        "eth_protocolVersion",
        "eth_sendRawTransaction",
        "eth_simulateV1",
        "eth_subscribe",
        "eth_syncing",
        "eth_uninstallFilter",
        "eth_unsubscribe",
        "net_enode",
        "net_listening",
        "net_peerCount",
        "net_services",
        "net_version",
        "txpool_besuPendingTransactions",
        "txpool_besuStatistics",
        "txpool_besuTransactions",
        "txpool_content",
        "txpool_contentFrom",
        "txpool_inspect",
        "txpool_status",
        "web3_clientVersion",
        "web3_sha3",
    }
)
# Besu has these API groups; the agency node may not use them: "Method not enabled". (The network
# also enables QBFT and PERM, node/network/options.py RPC_APIS, for the operators' tools such as
# `sijill network sync-permissions`; an agency node must work with ETH, NET, WEB3 and TXPOOL alone.)
NODE_APIS = frozenset({"ETH", "NET", "WEB3", "TXPOOL"})
BESU_DISABLED_PREFIXES = ("admin_", "debug_", "trace_", "miner_", "qbft_", "ibft_", "perm_", "priv_", "eea_")
POS_ONLY_TAGS = frozenset({"finalized", "safe"})
UNKNOWN_BLOCK = {"code": -39001, "message": "Unknown block"}


def _tags_in(value: Any) -> set[str]:
    """The PoS-only block tags anywhere in a call's params (a filter's fromBlock, a call's block)."""
    if isinstance(value, str):
        return {value} & POS_ONLY_TAGS
    if isinstance(value, list):
        return set().union(*(_tags_in(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(_tags_in(v) for v in value.values()))
    return set()


class BesuLikeRpc:
    """A threaded JSON-RPC forwarder to anvil that records every call and refuses, with Besu's
    own errors, what a Besu QBFT node with the ETH, NET, WEB3 and TXPOOL APIs would refuse."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: list[tuple[str, list[Any]]] = []
        self.sent: dict[str, float] = {}  # transaction hash -> when it was first broadcast
        self.refused: list[tuple[str, list[Any], dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = LocalServer(self._handle)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()

    def methods(self) -> Counter[str]:
        with self._lock:
            return Counter(method for method, _ in self.calls)

    def tagged(self) -> list[tuple[str, list[Any]]]:
        """Every recorded call that named `finalized` or `safe`."""
        with self._lock:
            return [(m, p) for m, p in self.calls if _tags_in(p)]

    def _refusal(self, call: dict[str, Any]) -> dict[str, Any] | None:
        method, params = str(call.get("method", "")), call.get("params") or []
        if method == "eth_sendTransaction":
            return {
                "code": -32604,
                "message": "The method eth_sendTransaction is not supported. "
                "Use eth_sendRawTransaction to send a signed transaction to Besu.",
            }
        if method.startswith(BESU_DISABLED_PREFIXES):
            return {"code": -32604, "message": "Method not enabled"}
        if method not in BESU_ENABLED:
            return {"code": -32601, "message": "Method not found"}
        if _tags_in(params):
            return UNKNOWN_BLOCK
        return None

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers["Content-Length"]))
        document = json.loads(body)
        batch = isinstance(document, list)
        calls: list[dict[str, Any]] = document if batch else [document]
        answers: dict[int, dict[str, Any]] = {}
        forward: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            for index, call in enumerate(calls):
                self.calls.append((str(call.get("method", "")), call.get("params") or []))
                if call.get("method") == "eth_sendRawTransaction":
                    tx_hash = "0x" + keccak(HexBytes(call["params"][0])).hex()
                    self.sent.setdefault(tx_hash, time.time())
                error = self._refusal(call)
                if error is None:
                    forward.append((index, call))
                else:
                    self.refused.append((str(call.get("method", "")), call.get("params") or [], error))
                    answers[index] = {"jsonrpc": "2.0", "id": call.get("id"), "error": error}
        if forward:
            upstream = self._session().post(
                self.upstream,
                json=[c for _, c in forward] if batch else forward[0][1],
                timeout=30,
            )
            if not upstream.ok:
                self._reply(handler, upstream.status_code, upstream.content)
                return
            got = upstream.json()
            if batch:
                by_id = {json.dumps(a.get("id")): a for a in got}
                for index, call in forward:
                    answers[index] = by_id[json.dumps(call.get("id"))]
            else:
                answers[0] = got
        reply = [answers[i] for i in range(len(calls))] if batch else answers[0]
        self._reply(handler, 200, json.dumps(reply).encode())

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, content: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass


def assert_besu_would_accept(rpc: BesuLikeRpc) -> Counter[str]:
    """No call named `finalized`/`safe`, every method is in Besu's enabled APIs, nothing refused."""
    methods = rpc.methods()
    assert rpc.tagged() == [], f"the node asked for a PoS-only block tag: {rpc.tagged()[:5]}"
    assert set(methods) <= BESU_ENABLED, f"methods Besu would not answer: {set(methods) - BESU_ENABLED}"
    assert rpc.refused == [], f"calls Besu would refuse: {rpc.refused[:5]}"
    return methods


class BlockClock:
    """When each block first appeared (wall clock), polled every 50 ms over a connection of its own."""

    def __init__(self, url: str) -> None:
        self._w3 = connect(url)
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            number = self._w3.eth.block_number
            self.seen.setdefault(number, time.time())
            self._stop.wait(0.05)

    def wait_for(self, number: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while number not in self.seen:
            assert time.monotonic() < deadline, f"block {number} never seen"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def set_balance(w3: Web3, address: str, wei: int) -> None:
    """Test set-up on anvil itself (not through the forwarder): an account's balance."""
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
    assert w3.eth.get_balance(address) == wei  # type: ignore[arg-type]


@dataclass
class Network:
    chain: DevChain
    w3: Web3  # straight to anvil: the tests' own reads and set-up, never recorded
    keys: dict[str, bytes]
    deployment: Path
    root: Path

    def address(self, code: str) -> str:
        return str(Account.from_key(self.keys[code]).address)


@contextlib.contextmanager
def _network(config: DevChainConfig, compiled: dict[str, CompiledContract], root: Path) -> Iterator[Network]:
    """anvil with `config`, and the three demo agencies deployed on it with fresh signer keys."""
    with DevChain(config) as chain:
        w3 = connect(chain.rpc_url)
        keys, deployment = deploy_fresh(w3, compiled, root / "deployment.json")
        yield Network(chain, w3, keys, deployment, root)


@pytest.fixture(scope="module")
def free_gas(
    compiled: dict[str, CompiledContract], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Network]:
    """Besu's production settings: 2 s blocks, zero base fee, gas price 0."""
    config = DevChainConfig(port=free_port(), block_time=BLOCK_TIME, base_fee=0, gas_limit=GAS_LIMIT)
    with _network(config, compiled, tmp_path_factory.mktemp("free-gas")) as network:
        yield network


@pytest.fixture
def rpc(free_gas: Network) -> Iterator[BesuLikeRpc]:
    forwarder = BesuLikeRpc(free_gas.chain.rpc_url)
    yield forwarder
    forwarder.close()


@dataclass(frozen=True)
class Timing:
    """One batch's way to anchored, wall-clock seconds."""

    closed: float  # the batch was built (its leaves left the queue)
    sent: float  # its anchor transaction reached the endpoint
    block_seen: float  # the block holding it appeared
    anchored: float  # the batcher stored its proofs
    node_mean: float  # the batcher's own close -> anchored mean for the wave

    def __str__(self) -> str:
        parts = (
            f"close -> sent {self.sent - self.closed:.2f} s",
            f"-> in a block {self.block_seen - self.closed:.2f} s",
            f"-> anchored {self.anchored - self.closed:.2f} s",
            f"(block -> anchored {self.anchored - self.block_seen:.2f} s; node: {self.node_mean:.2f} s)",
        )
        return ", ".join(parts)


def _node(network: Network, rpc_url: str, code: str, monkeypatch: pytest.MonkeyPatch) -> AgencyNode:
    data_dir, _tokens = init_node(network.root, code, network.keys[code])
    monkeypatch.setenv("SIJILL_SIGNER_PASSPHRASE", PASSPHRASE)
    settings = NodeSettings(
        data_dir=data_dir,
        deployment=network.deployment,
        rpc_url=rpc_url,
        agency=code,
        keystore=data_dir / "signer.json",
        kek_hex=KEK,
        batcher=BatcherSettings(batch_size=10_000, max_age=0.3),
    )
    return AgencyNode(settings, create=False)


def _wait_proofs(node: AgencyNode, leaves: list[bytes], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """Wait until every leaf's proof is stored and its batch marked anchored; those batches by root."""
    deadline = time.monotonic() + timeout
    while True:
        proofs = [node.store.get(b"proof/" + leaf.hex().encode()) for leaf in leaves]
        if all(p is not None for p in proofs):
            roots = {bytes(p[:32]).hex() for p in proofs if p is not None}
            batches = {root: node.store.get_json(f"batch/{root}".encode()) for root in roots}
            if all(b is not None and b["status"] == "anchored" for b in batches.values()):
                return batches  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"not anchored in {timeout:g}s: {node.health()}"
        time.sleep(0.02)


def _wait_ops_done(node: AgencyNode, count: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        ops = [op for _, op in node.store.iter_json(b"op/")]
        if len(ops) == count and all(op["status"] == "done" for op in ops):
            return ops
        assert time.monotonic() < deadline, f"operations not done in {timeout:g}s: {ops}"
        time.sleep(0.05)


def test_the_network_enables_what_the_node_needs() -> None:
    assert set(RPC_APIS) >= NODE_APIS
    assert {m.split("_")[0].upper() for m in BESU_ENABLED} == NODE_APIS


def test_the_forwarder_answers_pos_tags_as_besu_does(rpc: BesuLikeRpc) -> None:
    """The instrument itself: `finalized`/`safe` get Besu's error, anvil-only methods are refused,
    everything else reaches anvil; single calls and batches alike."""
    post = requests.Session()

    def call(id_: int, method: str, *params: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}

    def ask(body: Any) -> Any:
        return post.post(rpc.url, json=body, timeout=5).json()

    finalized = ask(call(1, "eth_getBlockByNumber", "finalized", False))
    assert finalized == {"jsonrpc": "2.0", "id": 1, "error": UNKNOWN_BLOCK}
    assert ask(call(2, "eth_getLogs", {"fromBlock": "safe"}))["error"] == UNKNOWN_BLOCK
    assert ask(call(3, "anvil_mine"))["error"] == {"code": -32601, "message": "Method not found"}
    assert ask(call(4, "debug_traceTransaction"))["error"] == {
        "code": -32604,
        "message": "Method not enabled",
    }
    answers = ask(
        [
            call(5, "eth_blockNumber"),
            call(6, "eth_getBalance", "0x" + "11" * 20, "finalized"),
            call(7, "eth_getBlockByNumber", "latest", False),
        ]
    )
    assert [a["id"] for a in answers] == [5, 6, 7]
    assert "result" in answers[0] and answers[1]["error"] == UNKNOWN_BLOCK and "result" in answers[2]
    assert len(rpc.tagged()) == 3 and len(rpc.refused) == 5
    with pytest.raises(AssertionError, match="PoS-only block tag"):
        assert_besu_would_accept(rpc)


def test_free_gas_anchoring_from_an_empty_account_within_one_block(
    free_gas: Network, rpc: BesuLikeRpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process node (intake -> batcher -> tx manager -> indexer) through the forwarder:
    gas price 0 from a signer holding nothing, every batch anchored in the block after it closes
    and counted as anchored as soon as its receipt is in (no confirmation blocks), revoke and
    supersede sent the same way, and not one call Besu would refuse."""
    w3 = free_gas.w3
    signer = free_gas.address("REPD")
    set_balance(w3, signer, 0)
    node = _node(free_gas, rpc.url, "REPD", monkeypatch)
    assert node.tx.settings.confirmations == 0 and node.indexer.confirmations == 0
    clock = BlockClock(free_gas.chain.rpc_url)
    node.start()
    accepted = []
    timings: list[Timing] = []
    anchor_txs: list[str] = []
    try:
        for wave in range(3):
            # Start each wave at another moment of the block period, so batches close at different
            # phases (right after anchoring the last one, every wave would close at the same one).
            time.sleep(0.7 * wave)
            batches_before, seconds_before = node.batcher.anchored_batches, node.batcher.anchor_seconds_total
            # One write batch for the wave, so its records queue at once and make one batch (records
            # trickling in over more than max_age make several, and a fifth batch in one block period
            # waits for the next block: the node keeps at most 4 anchors in flight).
            wave_records = [
                result
                for result in node.intake.submit_many(
                    (("title", r) for r in numbered_records("title", 8, start=1000 + 100 * wave)),
                    actor="officer:besu-like",
                    request_id=f"wave-{wave}",
                )
                if isinstance(result, Accepted)
            ]
            assert len(wave_records) == 8
            accepted += wave_records
            batches = _wait_proofs(node, [a.leaf for a in wave_records])
            # The batcher marks a batch anchored, then counts it for /metrics: wait for the count.
            deadline = time.monotonic() + 30
            while node.batcher.anchored_batches - batches_before < len(batches):
                assert time.monotonic() < deadline, "the batcher did not count its anchored batches"
                time.sleep(0.01)
            anchor_txs += [b["tx"] for b in batches.values()]
            last = max(batches.values(), key=lambda b: b["seq"])  # the one finalised last
            assert node.batcher.last_anchor_at is not None
            clock.wait_for(last["block"])  # the node may have seen it first
            timings.append(
                Timing(
                    closed=last["builtAt"],
                    sent=rpc.sent[last["tx"]],
                    block_seen=clock.seen[last["block"]],
                    anchored=node.batcher.last_anchor_at,
                    # The node's own metric (/metrics): close to proofs stored, summed over batches.
                    node_mean=(node.batcher.anchor_seconds_total - seconds_before)
                    / (node.batcher.anchored_batches - batches_before),
                )
            )

        # Then a revocation and an amendment (a supersede once the new version is anchored).
        changed = dict(next(numbered_records("title", 1, start=1000)), area_m2="131")
        node.intake.amend(
            "title",
            accepted[0].record_id,
            expected_version=1,
            data=changed,
            reason=1,
            actor="s",
            request_id="a",
        )
        node.intake.revoke(
            "title", accepted[1].record_id, expected_version=1, reason=2, actor="s", request_id="r"
        )
        ops = _wait_ops_done(node, 2)
        deadline = time.monotonic() + 20
        while node.indexer.checkpoint < w3.eth.block_number - 1:  # the indexer follows `latest`
            assert time.monotonic() < deadline, node.health()
            time.sleep(0.1)
        indexed = list(node.store.iter_json(b"chain/batch/REPD/"))
        assert len(indexed) >= 4, "every anchored batch indexed"
    finally:
        node.stop()
        clock.stop()

    # Gas price 0 on every transaction (legacy: the chain's base fee is 0), from an empty account.
    for tx_hash in anchor_txs + [op["tx"] for op in ops]:
        tx = w3.eth.get_transaction(tx_hash)
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        assert tx["type"] == 0 and tx["gasPrice"] == 0 and receipt["effectiveGasPrice"] == 0, tx
        assert tx["from"] == signer
    assert w3.eth.get_balance(signer) == 0  # type: ignore[arg-type]
    assert w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"] == 0

    # Confirmation depth 0: each batch is sent as it closes, mined in the next block, and counted
    # as anchored as soon as its receipt is in: well before the block after (waiting for one
    # confirmation would take a whole block period more).
    print("\n" + "\n".join(str(t) for t in timings))
    for t in timings:
        # Bounds with room for a loaded 2-core machine; what they rule out is waiting for a
        # confirmation block, which would add a whole block period after the block is seen.
        assert t.sent - t.closed < 1.5, t  # sent as it closes
        assert t.block_seen - t.sent < BLOCK_TIME + 1.0, t  # in the next block
        assert t.anchored - t.block_seen < 0.95 * BLOCK_TIME, t  # no confirmation block awaited
        assert t.anchored - t.closed < 2 * BLOCK_TIME + 1.0, t  # about one block period in all

    methods = assert_besu_would_accept(rpc)
    print("JSON-RPC methods the node used:", dict(sorted(methods.items())))
    assert {"eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getLogs"} <= set(methods)


def test_sijill_serve_anchors_through_a_besu_like_endpoint(free_gas: Network, rpc: BesuLikeRpc) -> None:
    """The `sijill serve` process (start-up checks, API, batcher, indexer, peers) against the
    forwarder: a record created over HTTP is anchored at gas price 0, with no refused call."""
    data_dir, tokens = init_node(free_gas.root, "CSO", free_gas.keys["CSO"])
    set_balance(free_gas.w3, free_gas.address("CSO"), 0)
    server = start_server(data_dir, "CSO", free_gas.keys["CSO"], tokens, rpc.url, free_gas.deployment)
    try:
        with server.client() as officer:
            record = next(numbered_records("marriage", 1, start=7000))
            created = officer.post("/v1/records", json={"recordType": "marriage", "record": record})
            assert created.status_code == 201, created.text
            bundle = wait_anchored(officer, created.json()["links"]["bundle"], timeout=30)
            assert bundle.status_code == 200, bundle.text
            root = bundle.json()["anchor"]["root"]
    finally:
        assert stop_server(server) == 0, server.log_tail()
    ledger = json.loads(free_gas.deployment.read_text())["contracts"]["RecordLedger"]["address"]
    topics = [None, "0x" + agency_code("CSO").hex(), None, root]  # BatchAnchored(agency, _, root)
    logs = free_gas.w3.eth.get_logs({"address": ledger, "fromBlock": 0, "topics": topics})
    assert len(logs) == 1
    tx = free_gas.w3.eth.get_transaction(logs[0]["transactionHash"])
    assert tx["type"] == 0 and tx["gasPrice"] == 0 and tx["from"] == free_gas.address("CSO")
    assert free_gas.w3.eth.get_balance(free_gas.address("CSO")) == 0  # type: ignore[arg-type]
    methods = assert_besu_would_accept(rpc)
    print("\nJSON-RPC methods sijill serve used:", dict(sorted(methods.items())))


def test_the_largest_calls_the_batcher_makes_fit_a_block(
    free_gas: Network, rpc: BesuLikeRpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batcher sends revocations and supersessions in calls of up to MAX_LEAVES_PER_CALL
    leaves, with no fixed gas limit: the tx manager estimates and adds 20 % + 10,000. Besu
    refuses a transaction whose gas limit exceeds the block's, so the largest of each, sent as
    `send_ops` sends it (`tx.send_call(call)`), must be mined in a block of the genesis' size.
    (Fresh leaves: the contract keeps no list of anchored leaves, and fresh ones cost the most.)"""
    node = _node(free_gas, rpc.url, "CRA", monkeypatch)
    try:
        count = MAX_LEAVES_PER_CALL
        ledger = node.ledger.functions
        revoke = node.tx.send_call(ledger.revoke([os.urandom(32) for _ in range(count)], 2))
        old, new = ([os.urandom(32) for _ in range(count)] for _ in range(2))
        supersede = node.tx.send_call(ledger.supersede(old, new, 3))
        receipts = [node.tx.wait(revoke, timeout=20), node.tx.wait(supersede, timeout=20)]
    finally:
        node.stop()
    for pending, receipt in zip((revoke, supersede), receipts, strict=True):
        assert receipt["status"] == 1 and pending.gas <= GAS_LIMIT
        print(f"\n{pending.label} of {count:,} leaves: {receipt['gasUsed']:,} gas, limit {pending.gas:,}")
    assert_besu_would_accept(rpc)


def test_a_chain_with_a_base_fee_gets_eip1559_anchors(
    compiled: dict[str, CompiledContract], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tx manager's other branch: where the chain has a base fee (Besu without zeroBaseFee),
    anchors are EIP-1559 (type 2) transactions, mined on 2 s blocks, still with nothing refused."""
    config = DevChainConfig(port=free_port(), block_time=BLOCK_TIME, base_fee=10**9, gas_limit=GAS_LIMIT)
    with _network(config, compiled, tmp_path) as network:
        forwarder = BesuLikeRpc(network.chain.rpc_url)
        try:
            signer = network.address("REPD")
            set_balance(network.w3, signer, 10**18)  # fees are paid here
            node = _node(network, forwarder.url, "REPD", monkeypatch).start()
            try:
                records = [
                    node.intake.submit("title", r, actor="officer", request_id=f"e{i}")
                    for i, r in enumerate(numbered_records("title", 4, start=3000))
                ]
                batches = _wait_proofs(node, [a.leaf for a in records])
            finally:
                node.stop()
            for batch in batches.values():
                tx = network.w3.eth.get_transaction(batch["tx"])
                receipt = network.w3.eth.get_transaction_receipt(batch["tx"])
                base_fee = network.w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
                assert tx["type"] == 2 and receipt["status"] == 1
                assert tx["maxFeePerGas"] >= 2 * base_fee > 0 and receipt["effectiveGasPrice"] >= base_fee
            methods = assert_besu_would_accept(forwarder)
            assert "eth_maxPriorityFeePerGas" in methods
        finally:
            forwarder.close()
