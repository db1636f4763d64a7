"""TxManager against the real anvil node, with a real HTTP proxy in front of it for faults.

The proxy (`local_http.FaultyRpc`) forwards JSON-RPC to anvil and, when told, misbehaves the
way networks and pools do: it drops the connection, answers 502, answers late (after the client
gave up, while the node did get the request), swallows `eth_sendRawTransaction` (answers success
and forwards nothing: a transaction the pool lost), or answers a chosen JSON-RPC error, with or
without forwarding the request first: how Besu refuses a transaction (its exact messages).
Every test uses a fresh account: gas is free, so an account with no ether can send, and no
test disturbs another's nonces.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from local_http import SEND, FaultyRpc
from web3 import Web3
from web3.types import TxParams

from ledger.codes import record_type
from node.chain.client import RevertDecoder
from node.chain.deploy import dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.txfaults import PoolVerdict, classify
from node.chain.txmanager import BroadcastUncertain, PendingTx, TxManager, TxSettings
from node.chain.txrpc import connect_for_sending
from node.errors import ChainError, ContractRevert

pytestmark = pytest.mark.chain

HTTP_TIMEOUT = 5.0
FAST = TxSettings(backoff_initial=0.02, backoff_max=0.1, poll_interval=0.1, resubmit_after=0.5)


@pytest.fixture
def proxy(devchain: DevChain) -> Iterator[FaultyRpc]:
    faulty = FaultyRpc(devchain.rpc_url)
    yield faulty
    faulty.close()


@pytest.fixture
def account() -> LocalAccount:
    fresh: LocalAccount = Account.create()
    return fresh


def manager_via(
    proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder, **settings: Any
) -> TxManager:
    """A manager talking through the proxy, with quick retries.

    Its HTTP timeout leaves room for a loaded machine: the tests count the calls that reach the
    proxy, and an answer slower than the timeout would be retried and counted twice (seen with
    0.5 s while six test processes shared two cores). A test of a late answer makes the proxy
    later than this."""
    w3 = connect_for_sending(proxy.url, timeout=HTTP_TIMEOUT)
    return TxManager(w3, account, decoder, replace(FAST, **settings))


def ping(account: LocalAccount) -> TxParams:
    """The cheapest transaction: nothing to itself."""
    return {"to": account.address, "data": HexBytes(os.urandom(4))}


def mined_nonce(w3: Web3, account: LocalAccount) -> int:
    return w3.eth.get_transaction_count(account.address, "latest")


def test_pool_messages_of_besu_and_anvil_map_to_recoveries() -> None:
    cases = {
        "Known transaction": PoolVerdict.KNOWN,  # Besu
        "transaction already imported": PoolVerdict.KNOWN,  # anvil
        "already known": PoolVerdict.KNOWN,  # geth
        "Nonce too low": PoolVerdict.NONCE_TAKEN,
        "nonce too low": PoolVerdict.NONCE_TAKEN,
        "Replacement transaction underpriced": PoolVerdict.NONCE_TAKEN,
        "replacement transaction underpriced": PoolVerdict.NONCE_TAKEN,
        "Nonce too high": PoolVerdict.NONCE_GAP,
        "Transaction nonce is too distant from current sender nonce": PoolVerdict.NONCE_GAP,
        "Gas price below configured minimum gas price": PoolVerdict.BELOW_MINIMUM,
        "Gas price below current base fee": PoolVerdict.UNDERPRICED,
        "max fee per gas less than block base fee": PoolVerdict.UNDERPRICED,
        "transaction underpriced": PoolVerdict.UNDERPRICED,
        "txpool is full": PoolVerdict.BUSY,
        "Initial sync is still in progress": PoolVerdict.BUSY,  # Besu -32008
        POOL_OFF[1]: PoolVerdict.BUSY,  # Besu -32002
        "Sender account not authorized to send transactions": PoolVerdict.NOT_AUTHORIZED,  # Besu -32007
        "Upfront cost exceeds account balance": PoolVerdict.REFUSED,
        "Wrong chainId": PoolVerdict.REFUSED,
    }
    assert {message: classify(message) for message in cases} == cases


def test_free_gas_chain_gets_gas_price_zero(
    w3: Web3, devchain: DevChain, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = TxManager(connect_for_sending(devchain.rpc_url), account, decoder, FAST)
    deep = TxManager(
        connect_for_sending(devchain.rpc_url), Account.create(), decoder, TxSettings(confirmations=1)
    )
    pending = manager.send(ping(account), label="ping")
    deep_pending = deep.send(ping(deep.account), gas=30_000, label="deep ping")
    receipt = manager.wait(pending)
    assert receipt["status"] == 1 and receipt["transactionHash"] == pending.tx_hash
    assert receipt["effectiveGasPrice"] == 0
    tx = w3.eth.get_transaction(pending.tx_hash)
    assert tx["type"] == 0 and tx["gasPrice"] == 0
    assert manager.find_receipt(pending.tx_hash) == receipt
    assert manager.find_receipt(HexBytes(os.urandom(32))) is None

    deep_receipt = deep.wait(deep_pending)
    assert w3.eth.block_number >= deep_receipt["blockNumber"] + 1


def test_chain_with_a_base_fee_gets_eip1559_fees_or_the_forced_price(decoder: RevertDecoder) -> None:
    funded = dev_accounts(2)
    with DevChain(DevChainConfig(port=free_port(), block_time=1.0, base_fee=10**9)) as chain:
        w3 = connect_for_sending(chain.rpc_url)
        dynamic = TxManager(w3, funded[0], decoder, FAST)
        forced = TxManager(w3, funded[1], decoder, TxSettings(gas_price=3 * 10**9))
        p_dynamic = dynamic.send(ping(funded[0]), label="eip-1559")
        p_forced = forced.send(ping(funded[1]), label="forced")
        r_dynamic, r_forced = dynamic.wait(p_dynamic), forced.wait(p_forced)
        tx_dynamic, tx_forced = (
            w3.eth.get_transaction(p_dynamic.tx_hash),
            w3.eth.get_transaction(p_forced.tx_hash),
        )
        base_fee = w3.eth.get_block(r_dynamic["blockNumber"])["baseFeePerGas"]
    assert tx_dynamic["type"] == 2 and tx_dynamic["maxFeePerGas"] >= 2 * base_fee
    assert r_dynamic["effectiveGasPrice"] >= base_fee > 0
    assert tx_forced["type"] == 0 and r_forced["effectiveGasPrice"] == 3 * 10**9


def test_transport_faults_are_retried_without_sending_twice(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("drop", "eth_estimateGas", times=2)
    proxy.inject("502", "eth_getBlockByNumber")
    proxy.delay = 2 * HTTP_TIMEOUT
    proxy.inject("late", SEND)  # the node takes it; the answer comes after the client's timeout
    pending = manager.send(ping(account), label="through faults")
    receipt = manager.wait(pending)
    assert receipt["status"] == 1 and receipt["transactionHash"] == pending.tx_hash
    assert proxy.calls["eth_estimateGas"] == 3 and proxy.calls["eth_getBlockByNumber"] >= 2
    assert proxy.calls[SEND] == 2  # the retry sent the same bytes: "already imported", fine
    assert mined_nonce(w3, account) == pending.nonce + 1 == 1


def test_retries_are_bounded(proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder) -> None:
    manager = manager_via(proxy, account, decoder, max_retries=3)
    proxy.inject("drop", "eth_estimateGas", times=100)
    started = time.monotonic()
    with pytest.raises(ChainError, match=r"estimating gas: the node did not answer after 4 attempts"):
        manager.send(ping(account), label="never")
    assert proxy.calls["eth_estimateGas"] == 4
    assert time.monotonic() - started >= 0.5 * (0.02 + 0.04 + 0.08)  # backoff, even jittered

    proxy.clear()
    proxy.inject("502", SEND, times=100)
    with pytest.raises(BroadcastUncertain, match="may still be mined") as caught:
        manager.send(ping(account), gas=30_000, label="unsent")
    assert proxy.calls[SEND] == 4
    assert manager.find_receipt(caught.value.pending.tx_hash) is None
    assert manager.in_flight() == []


def test_swallowed_send_is_resubmitted_and_mined_once(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("swallow", SEND)
    pending = manager.send(ping(account), label="lost once")
    assert proxy.calls[SEND] == 1 and mined_nonce(w3, account) == 0
    receipt = manager.wait(pending, timeout=20)
    assert proxy.calls[SEND] == 2  # resubmitted once, the very same signed bytes
    assert receipt["transactionHash"] == pending.tx_hash and receipt["status"] == 1
    time.sleep(1.2)  # another block: nothing else from this account appears
    assert mined_nonce(w3, account) == 1


def test_lost_transactions_are_resent_without_waiting(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    """A caller that never waits (the batcher polls `find_receipt`) still gets holes filled."""
    manager = manager_via(proxy, account, decoder, resubmit_after=60.0)
    proxy.inject("swallow", SEND)
    lost = manager.send(ping(account), gas=30_000, label="lost")
    assert manager.resend_missing() == 1
    assert manager.resend_missing() == 0  # the node holds it now

    proxy.inject("swallow", SEND)
    hole = manager.send(ping(account), gas=30_000, label="hole")
    # The node's next nonce is below ours: this send first resends the hole, then follows it.
    last = manager.send(ping(account), gas=30_000, label="last")
    assert proxy.calls[SEND] == 5
    assert manager.wait(last, timeout=20)["status"] == 1
    for pending in (lost, hole):
        receipt = manager.find_receipt(pending.tx_hash_hex)
        assert receipt is not None and receipt["status"] == 1
    assert mined_nonce(w3, account) == 3


def test_nonce_taken_by_another_transaction(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder, resubmit_after=60.0)
    proxy.swallow_sends = True
    lost = manager.send(ping(account), gas=30_000, label="lost")
    other = TxManager(w3, account, decoder)  # another process with the same key
    other.wait(other.send(ping(account), gas=30_000, label="theirs"))
    with pytest.raises(ChainError, match=f"lost: nonce {lost.nonce} was used by another transaction"):
        manager.wait(lost, timeout=10)
    assert manager.in_flight() == []


def test_nonce_resyncs_after_another_process_used_the_account(
    w3: Web3, devchain: DevChain, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = TxManager(connect_for_sending(devchain.rpc_url), account, decoder, FAST)
    assert manager.resync() == 0
    other = TxManager(w3, account, decoder)
    theirs = other.send(ping(account), gas=30_000, label="theirs")  # nonce 0, still in the pool
    mine = manager.send(ping(account), gas=30_000, label="after theirs")  # "replacement underpriced"
    assert mine.nonce == 1
    assert manager.wait(mine)["status"] == 1 and other.wait(theirs)["status"] == 1

    third = TxManager(w3, account, decoder)
    third.wait(
        third.send(ping(account), gas=30_000, label="theirs again")
    )  # nonce 2, mined: the manager still thinks 2 is next
    again = manager.send(ping(account), gas=30_000, label="after theirs mined")  # "nonce too low"
    assert again.nonce == 3
    assert manager.wait(again)["status"] == 1
    assert mined_nonce(w3, account) == 4


def test_max_in_flight_blocks_sends(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder, max_in_flight=2, in_flight_timeout=0.5)
    proxy.swallow_sends = True  # nothing gets mined: the two slots stay taken
    first = manager.send(ping(account), gas=30_000, label="first")
    second = manager.send(ping(account), gas=30_000, label="second")
    started = time.monotonic()
    with pytest.raises(ChainError, match=r"2 transactions .* still in flight after 0\.5s"):
        manager.send(ping(account), gas=30_000, label="third")
    assert time.monotonic() - started >= 0.5
    assert [p.nonce for p in manager.in_flight()] == [0, 1]

    proxy.swallow_sends = False
    assert manager.wait(second, timeout=20)["status"] == 1  # resends the first as well
    assert manager.find_receipt(first.tx_hash) is not None

    # Mined transactions free their slots even when nobody waits for them.
    patient = manager_via(proxy, account, decoder, max_in_flight=2, in_flight_timeout=20)
    unwaited = [patient.send(ping(account), gas=30_000, label=f"unwaited {i}") for i in range(2)]
    third = patient.send(ping(account), gas=30_000, label="third")
    assert mined_nonce(w3, account) > unwaited[0].nonce  # it had to wait for a block
    assert [p.nonce for p in (*unwaited, third)] == [2, 3, 4]
    assert patient.wait(third)["status"] == 1


def test_a_send_waiting_behind_lost_transactions_resends_them(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    """Every slot is held by a transaction the pool lost (an anvil restart) and nobody waits
    for them (the batcher only polls receipts): the next send resends them and goes ahead.
    Found by the soak: it used to wait `in_flight_timeout`, fail, and do so again for ever, and
    a node took records that it never anchored again."""
    manager = manager_via(proxy, account, decoder, max_in_flight=2, in_flight_timeout=15)
    proxy.swallow_sends = True
    lost = [manager.send(ping(account), gas=30_000, label=f"lost {i}") for i in range(2)]
    proxy.swallow_sends = False
    started = time.monotonic()
    after = manager.send(ping(account), gas=30_000, label="after")
    assert time.monotonic() - started < 10, "the lost ones were resent, not waited out"
    # Two lost (the second send resent the first into the same void), two resent, one new.
    assert proxy.calls[SEND] == 6
    assert manager.wait(after, timeout=20)["status"] == 1
    for pending in lost:
        receipt = manager.find_receipt(pending.tx_hash)
        assert receipt is not None and receipt["status"] == 1
    assert mined_nonce(w3, account) == 3


def test_transactions_the_chain_lost_with_its_blocks_do_not_hold_the_slots(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    """The chain goes back past blocks that held transactions still counted in flight (nobody
    waited for them: the batcher only polls receipts). Their nonces now sit above a hole, so no
    resend can get them mined: the next send must not wait behind them for ever (issue 15: a
    node stopped anchoring after anvil was killed and restarted from an older state), but sign
    from the chain's nonce again."""
    manager = manager_via(proxy, account, decoder, max_in_flight=2, in_flight_timeout=15)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    assert manager.wait(manager.send(ping(account), gas=30_000, label="kept"), timeout=20)["status"] == 1
    unwaited = [manager.send(ping(account), gas=30_000, label=f"unwaited {i}") for i in range(2)]
    for pending in unwaited:
        w3.eth.wait_for_transaction_receipt(pending.tx_hash, timeout=20)
    assert [p.nonce for p in manager.in_flight()] == [1, 2]
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    assert mined_nonce(w3, account) == 0
    started = time.monotonic()
    after = manager.send(ping(account), gas=30_000, label="after")
    assert time.monotonic() - started < 10, "the stranded ones were let go, not waited out"
    assert after.nonce == 0
    assert manager.wait(after, timeout=20)["status"] == 1
    assert mined_nonce(w3, account) == 1


def test_threads_share_one_nonce_sequence(
    w3: Web3, devchain: DevChain, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = TxManager(connect_for_sending(devchain.rpc_url), account, decoder, FAST)
    sent: list[PendingTx] = []
    errors: list[BaseException] = []

    def send_one(i: int) -> None:
        try:
            sent.append(manager.send(ping(account), gas=30_000, label=f"thread {i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.nonce for p in sent) == list(range(6))
    receipts = [manager.wait(p) for p in sent]
    assert all(r["status"] == 1 for r in receipts)
    assert mined_nonce(w3, account) == 6


def test_reverts_are_named(
    devchain: DevChain, contracts: dict[str, Any], account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = TxManager(connect_for_sending(devchain.rpc_url), account, decoder, FAST)
    ledger = contracts["RecordLedger"]
    anchor = ledger.functions.anchor(record_type("title"), os.urandom(32), 1, 1, b"\0" * 32)
    tx: TxParams = {"to": anchor.address, "data": anchor._encode_transaction_data()}

    with pytest.raises(
        ContractRevert, match=r"anchor batch: AgencyRegistry\.NotASigner\(account="
    ) as at_estimate:
        manager.send(tx, label="anchor batch")
    assert at_estimate.value.args_by_name == {"account": account.address}
    assert manager.in_flight() == []

    # With the gas given there is no estimate: the failure is mined, then named by replaying it.
    pending = manager.send(tx, gas=200_000, label="anchor batch")
    mined_failure = r"anchor batch \(0x[0-9a-f]{64}, block \d+\): AgencyRegistry\.NotASigner\(account="
    with pytest.raises(ContractRevert, match=mined_failure) as mined:
        manager.wait(pending)
    assert mined.value.error == "NotASigner"
    receipt = manager.find_receipt(pending.tx_hash)
    assert receipt is not None and receipt["status"] == 0


# Besu's refusals of eth_sendRawTransaction, exactly as it words them (RpcErrorType in
# hyperledger/besu), answered by the proxy: what the manager does with each.
KNOWN = (-32000, "Known transaction")
NONCE_TOO_LOW = (-32001, "Nonce too low")
NONCE_TOO_HIGH = (-32006, "Nonce too high")
TOO_DISTANT = (-32000, "Transaction nonce is too distant from current sender nonce")
BELOW_BASE_FEE = (-32009, "Gas price below current base fee")
BELOW_MINIMUM = (-32009, "Gas price below configured minimum gas price")
NOT_AUTHORIZED = (-32007, "Sender account not authorized to send transactions")
SYNCING = (-32008, "Initial sync is still in progress")
POOL_OFF = (
    -32002,
    "Transaction pool not enabled. (Either txpool explicitly disabled, or node not yet in sync).",
)


def test_besu_known_transaction_is_sent(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    """Besu's answer to a transaction it already holds (a retry whose first attempt got through)."""
    manager = manager_via(proxy, account, decoder)
    proxy.inject("forward-error", SEND, error=KNOWN)
    pending = manager.send(ping(account), gas=30_000, label="known")
    assert proxy.calls[SEND] == 1 and manager.in_flight() == [pending]
    assert manager.wait(pending)["status"] == 1 and mined_nonce(w3, account) == 1


def test_besu_nonce_too_low_resyncs_past_the_used_nonce(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    assert manager.resync() == 0
    other = TxManager(w3, account, decoder)  # another process with the key takes nonce 0
    other.wait(other.send(ping(account), gas=30_000, label="theirs"))
    proxy.inject("error", SEND, error=NONCE_TOO_LOW)  # Besu's word for our nonce 0 now
    mine = manager.send(ping(account), gas=30_000, label="after theirs")
    assert mine.nonce == 1 and proxy.calls[SEND] == 2
    assert manager.wait(mine)["status"] == 1 and mined_nonce(w3, account) == 2


@pytest.mark.parametrize("gap", [NONCE_TOO_HIGH, TOO_DISTANT], ids=["nonce-too-high", "too-distant"])
def test_besu_nonce_gap_resends_then_resyncs_without_skipping_a_nonce(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder, gap: tuple[int, str]
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("error", SEND, times=2, error=gap)
    pending = manager.send(ping(account), gas=30_000, label="gap")
    # First: resend the earlier in-flight ones (none); then: take the node's nonce again (0).
    assert proxy.calls[SEND] == 3 and pending.nonce == 0
    assert w3.eth.get_transaction(pending.tx_hash)["nonce"] == 0


def test_besu_gas_price_below_the_base_fee_rereads_the_fees(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("error", SEND, error=BELOW_BASE_FEE)
    blocks_read = proxy.calls["eth_getBlockByNumber"]
    pending = manager.send(ping(account), gas=30_000, label="fees moved")
    assert proxy.calls[SEND] == 2 and proxy.calls["eth_getBlockByNumber"] == blocks_read + 2
    assert w3.eth.get_transaction(pending.tx_hash)["nonce"] == 0


def test_besu_minimum_gas_price_above_the_chains_fees_fails_naming_the_setting(
    proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("error", SEND, times=5, error=BELOW_MINIMUM)
    refused = r"free gas: the node refused gas price 0 wei: Gas price below configured minimum gas price; "
    with pytest.raises(ChainError, match=refused + r".*--min-gas-price=0"):
        manager.send(ping(account), gas=30_000, label="free gas")
    assert proxy.calls[SEND] == 1 and manager.in_flight() == []  # the same fees would be refused again
    forced = manager_via(proxy, account, decoder, gas_price=7)
    with pytest.raises(ChainError, match=r"refused gas price 7 wei: .*raise the sender's forced gas price"):
        forced.send(ping(account), gas=30_000, label="forced")
    proxy.clear()
    assert manager.send(ping(account), gas=30_000, label="after the fix").nonce == 0  # no nonce used up


def test_besu_sender_not_on_the_allow_list_fails_naming_the_sync(
    proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("error", SEND, error=NOT_AUTHORIZED)
    with pytest.raises(ChainError) as refused:
        manager.send(ping(account), gas=30_000, label="anchor batch 1")
    message = str(refused.value)
    assert message.startswith(
        "anchor batch 1: the node refused the transaction: Sender account not authorized to send "
        f"transactions: {account.address} is not on its account allow-list."
    )
    assert "run `sijill network sync-permissions`" in message
    assert proxy.calls[SEND] == 1 and manager.in_flight() == []  # no retry: only the operator can help
    assert manager.send(ping(account), gas=30_000, label="once allowed").nonce == 0


@pytest.mark.parametrize("busy", [SYNCING, POOL_OFF], ids=["initial-sync", "pool-not-enabled"])
def test_besu_node_still_syncing_is_waited_for(
    w3: Web3, proxy: FaultyRpc, account: LocalAccount, decoder: RevertDecoder, busy: tuple[int, str]
) -> None:
    manager = manager_via(proxy, account, decoder)
    proxy.inject("error", SEND, times=2, error=busy)
    pending = manager.send(ping(account), gas=30_000, label="while syncing")
    assert proxy.calls[SEND] == 3 and pending.nonce == 0
    assert w3.eth.get_transaction(pending.tx_hash)["nonce"] == 0
