"""Sending one account's transactions reliably: nonces, fees, retries, resubmission.

The agency node anchors every batch with a transaction from its signer account. Between the
node and a block lie an HTTP connection that can fail, a transaction pool that can refuse or
forget a transaction, and other processes that may use the same account. `TxManager` owns
that account's stream of transactions and keeps three promises:

- A transaction executes at most once. It is signed once, with one nonce; every retry and
  every resubmission sends the very same signed bytes (same hash). Two transactions with the
  same nonce can never both execute, so a lost answer never turns into a double anchor.
- It does not give up on passing trouble. Transport faults (refused or dropped connections,
  timeouts, HTTP 5xx/429) are retried with exponential backoff and jitter, up to
  `max_retries`; then `ChainError`. The pool's refusals are mapped to a recovery:

  | the node says (Besu / anvil, geth)                                   | meaning, recovery              |
  | -------------------------------------------------------------------- | ------------------------------ |
  | Known transaction / transaction already imported, already known      | it is in the pool: sent        |
  | Nonce too low / nonce too low                                        | nonce used: ours? sent; else   |
  | Replacement transaction underpriced (both)                           |   resync nonce, sign anew      |
  | Nonce too high, Transaction nonce is too distant from current sender | gap: resend our earlier ones,  |
  |   nonce                                                              |   then resync nonce            |
  | Gas price below current base fee / max fee per gas less than block   | fees moved: re-read fees, sign |
  |   base fee, transaction underpriced                                  |   anew (same nonce)            |
  | Gas price below configured minimum gas price (Besu)                  | re-read fees; the same: fail,  |
  |                                                                      |   naming --min-gas-price       |
  | Sender account not authorized to send transactions (Besu)            | fail, naming sync-permissions  |
  | txpool is full; Initial sync is still in progress, Transaction pool  | back off and retry             |
  |   not enabled (Besu, a node still syncing)                           |                                |
  | anything else (upfront cost, wrong chain id, ...)                    | `ChainError` naming it         |

  Besu's messages and codes are its RpcErrorType (hyperledger/besu, ethereum/api): -32000
  "Known transaction", -32001 "Nonce too low", -32006 "Nonce too high", -32000 "Transaction
  nonce is too distant from current sender nonce" (the layered pool keeps at most
  --tx-pool-max-future-by-sender future nonces per sender), -32009 "Gas price below configured
  minimum gas price" / "Gas price below current base fee", -32007 "Sender account not
  authorized to send transactions" (the sender is not on the node's account allow-list:
  https://besu.hyperledger.org/private-networks/how-to/use-permissioning/local), -32008
  "Initial sync is still in progress", -32002 "Transaction pool not enabled. (Either txpool
  explicitly disabled, or node not yet in sync)." A refusal consumes no nonce: the next send
  signs the same nonce again. docs/besu-operations.md has what the operator does for each.

- A dropped transaction comes back. While `wait` polls for a receipt it also checks that
  the node still holds the transaction; missing for `resubmit_after` seconds, the same raw
  transaction is broadcast again. A `send` that has waited that long for a free slot does the
  same for every in-flight transaction the node lost (a caller polling `find_receipt` never
  waits). If the account's mined nonce passes ours without our receipt, another transaction
  took the nonce: `ChainError`, and the caller decides. In-flight transactions whose nonces
  all sit above a hole in the account's (a chain that lost the blocks holding our earlier ones)
  can never be mined: they are forgotten rather than resent, and the next send signs from the
  chain's nonce again.

Fees follow the chain (see node/chain/client.py): legacy gas price 0 on a free-gas chain (Besu's
zero base fee, anvil --base-fee 0), EIP-1559 fees when there is a base fee, or a forced
`gas_price`. Few transactions stay in flight (`max_in_flight`, default 4): Besu's pool keeps
only a handful of future nonces per sender. Reverts are named at estimation, or by replaying
a mined transaction that failed, through `RevertDecoder`.

Give the manager a Web3 whose provider does not retry by itself (`connect_for_sending`):
web3's HTTPProvider otherwise retries most calls five times, multiplying the manager's own.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt

from node.chain.client import RevertDecoder, _rpc_message, without_validation
from node.errors import ChainError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TxSettings:
    """How patient the manager is. Times in seconds."""

    gas_price: int | None = None  # force a legacy gas price (else follow the chain)
    confirmations: int = 0  # blocks on top of the receipt's; 0 on QBFT (immediate finality)
    max_in_flight: int = 4
    in_flight_timeout: float = 120.0  # how long `send` waits for a free slot
    max_retries: int = 5  # transport retries per call (and pool recoveries per send)
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    resubmit_after: float = 15.0  # missing from the pool this long: broadcast again
    receipt_timeout: float = 300.0
    poll_interval: float = 0.25

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.max_retries < 0 or self.confirmations < 0:
            raise ValueError("max_in_flight >= 1, max_retries >= 0 and confirmations >= 0 are required")
        if min(self.backoff_initial, self.backoff_max, self.poll_interval) <= 0:
            raise ValueError("backoff and poll intervals must be positive")


@dataclass(frozen=True, slots=True)
class PendingTx:
    """A signed, sent transaction: what `wait` needs, and the raw bytes to send it again."""

    tx_hash: HexBytes
    nonce: int
    raw: HexBytes
    label: str
    gas: int
    params: dict[str, Any] = field(repr=False, compare=False)  # to, data, value: to replay a failure

    @property
    def tx_hash_hex(self) -> str:
        return self.tx_hash.to_0x_hex()


class BroadcastUncertain(ChainError):
    """The node never answered a send: it may or may not hold `pending` (check `find_receipt`)."""

    def __init__(self, message: str, pending: PendingTx) -> None:
        super().__init__(message)
        self.pending = pending


class _Pool(enum.Enum):
    ACCEPTED = "accepted"
    KNOWN = "known"
    NONCE_TAKEN = "nonce taken"
    NONCE_GAP = "nonce gap"
    UNDERPRICED = "underpriced"
    BELOW_MINIMUM = "below the node's minimum gas price"
    NOT_AUTHORIZED = "sender not authorized"
    BUSY = "busy"
    REFUSED = "refused"


# Matched in order, lower case: "replacement transaction underpriced" before "underpriced".
_POOL_MESSAGES: tuple[tuple[str, _Pool], ...] = (
    ("known transaction", _Pool.KNOWN),  # Besu
    ("already known", _Pool.KNOWN),  # geth
    ("already imported", _Pool.KNOWN),  # anvil, reth
    ("replacement transaction underpriced", _Pool.NONCE_TAKEN),
    ("nonce too low", _Pool.NONCE_TAKEN),
    ("nonce is too low", _Pool.NONCE_TAKEN),
    ("nonce too high", _Pool.NONCE_GAP),
    ("too distant from current sender nonce", _Pool.NONCE_GAP),  # Besu's layered pool
    ("gas price below configured minimum gas price", _Pool.BELOW_MINIMUM),  # Besu -32009
    ("gas price below", _Pool.UNDERPRICED),  # Besu -32009: "... below current base fee"
    ("less than block base fee", _Pool.UNDERPRICED),  # anvil, geth
    ("transaction underpriced", _Pool.UNDERPRICED),
    ("sender account not authorized to send transactions", _Pool.NOT_AUTHORIZED),  # Besu -32007
    ("pool is full", _Pool.BUSY),
    ("txpool is full", _Pool.BUSY),
    ("initial sync is still in progress", _Pool.BUSY),  # Besu -32008
    ("transaction pool not enabled", _Pool.BUSY),  # Besu -32002: not yet in sync (or disabled)
)


# Set by the manager, whatever the caller's transaction says.
_MANAGED_FIELDS = frozenset(
    {"from", "nonce", "gas", "chainId", "type", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"}
)


def _classify(message: str) -> _Pool:
    lowered = message.lower()
    return next((kind for text, kind in _POOL_MESSAGES if text in lowered), _Pool.REFUSED)


# Faults of the way to the node, not answers of the node: worth another try.
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # connection cut mid-answer
    ProviderConnectionError,
)


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(exc, _TRANSPORT_ERRORS)


def connect_for_sending(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A Web3 over HTTP whose provider does not retry: `TxManager` does, with backoff."""
    return without_validation(
        Web3(
            Web3.HTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
            )
        )
    )


class TxManager:
    """Signs, sends and follows the transactions of one account. Thread-safe.

    `send` (or `send_call`) returns a `PendingTx` at once; `wait` gives its receipt. A caller
    that keeps its own records instead (the batcher stores the hash) polls `find_receipt` and
    calls `resend_missing` now and then; `send` also refills holes the pool left behind.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        decoder: RevertDecoder,
        settings: TxSettings | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.decoder = decoder
        self.settings = settings or TxSettings()
        self._nonce_lock = threading.Lock()  # held from nonce allocation until the node accepts
        self._nonce: int | None = None
        self._slots = threading.Condition()
        self._in_flight: dict[HexBytes, PendingTx] = {}
        self._reserved = 0
        self.chain_id: int = self._rpc("reading the chain id", lambda: self.w3.eth.chain_id)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def in_flight(self) -> list[PendingTx]:
        """Sent transactions not yet seen mined, by nonce."""
        with self._slots:
            return sorted(self._in_flight.values(), key=lambda p: p.nonce)

    # -- sending ------------------------------------------------------------------------------

    def send(self, tx: TxParams, *, gas: int | None = None, label: str) -> PendingTx:
        """Estimate (reverts surface here, named), sign with the next nonce and broadcast.

        Blocks while `max_in_flight` transactions are pending (`ChainError` after
        `in_flight_timeout`). Does not wait for the receipt: see `wait`.
        """
        sender = tx.get("from")
        if sender is not None and to_checksum_address(sender) != self.address:
            raise ValueError(f"{label}: transaction is from {sender!r}, this manager sends as {self.address}")
        params: dict[str, Any] = {k: v for k, v in tx.items() if k not in _MANAGED_FIELDS}
        if gas is None:
            gas = int(tx["gas"]) if "gas" in tx else self._estimate(params, label)
        self._reserve_slot(label)
        pending: PendingTx | None = None
        try:
            with self._nonce_lock:
                pending = self._send_locked(params, gas, label)
        finally:
            with self._slots:
                self._reserved -= 1
                if pending is not None:
                    self._in_flight[pending.tx_hash] = pending
                self._slots.notify_all()
        assert pending is not None  # _send_locked returned or raised
        return pending

    def send_call(
        self, call: ContractFunction, *, label: str | None = None, gas: int | None = None
    ) -> PendingTx:
        """`send` for a contract call; the label defaults to the function's name."""
        tx: TxParams = {"to": call.address, "data": call._encode_transaction_data()}
        return self.send(tx, gas=gas, label=label or call.fn_name)

    def transact(
        self, call: ContractFunction, *, label: str | None = None, gas: int | None = None
    ) -> TxReceipt:
        """Send a contract call and wait for its receipt; `ContractRevert` if it reverts."""
        return self.wait(self.send_call(call, label=label, gas=gas))

    def resync(self) -> int:
        """Take the next nonce from the node's pending count again (after a restart, say)."""
        with self._nonce_lock:
            self._nonce = self._pending_nonce()
            return self._nonce

    def resend_missing(self, *, below: int | None = None) -> int:
        """Broadcast again the in-flight transactions (nonce < `below`) the node no longer holds.

        The same signed bytes each time, so none can execute twice. Returns how many were sent.
        """
        self._forget_mined()
        self._forget_stranded()
        resent = 0
        for earlier in self.in_flight():
            if below is not None and earlier.nonce >= below:
                break
            if not self._node_knows(earlier.tx_hash):
                outcome, message = self._broadcast(earlier)
                log.warning(
                    "resent %s (nonce %d): %s", earlier.label, earlier.nonce, message or outcome.value
                )
                resent += 1
        return resent

    def _send_locked(self, params: dict[str, Any], gas: int, label: str) -> PendingTx:
        if self._nonce is None:
            self._nonce = self._pending_nonce()
        else:  # also with nothing in flight: a chain that lost blocks forgot nonces it had mined
            self._close_gap()
        fees = self._fees()
        gap_filled = False
        for _ in range(self.settings.max_retries + 1):
            pending = self._sign(params, gas, fees, self._nonce, label)
            try:
                outcome, message = self._broadcast(pending)
            except BroadcastUncertain:
                self._nonce = None  # the node may hold it or not: ask it next time
                raise
            if outcome is _Pool.NONCE_TAKEN and self._node_knows(pending.tx_hash):
                outcome = _Pool.KNOWN  # an earlier attempt of this very send got through
            if outcome in (_Pool.ACCEPTED, _Pool.KNOWN):
                self._nonce += 1
                return pending
            log.warning("%s: nonce %d refused (%s): %s", label, pending.nonce, outcome.value, message)
            if outcome is _Pool.NONCE_TAKEN:
                self._nonce = max(self._pending_nonce(), pending.nonce + 1)
            elif outcome is _Pool.NONCE_GAP and not gap_filled:
                self.resend_missing(below=pending.nonce)
                gap_filled = True
            elif outcome is _Pool.NONCE_GAP:
                self._nonce = self._pending_nonce()
            elif outcome is _Pool.UNDERPRICED and self.settings.gas_price is None:
                fees = self._fees()
            elif outcome is _Pool.BELOW_MINIMUM:
                refused, fees = fees, self._fees()
                if fees == refused:  # the chain's fees are what the node refuses: its setting is off
                    raise ChainError(_below_minimum(label, refused, message, forced=self.settings.gas_price))
            elif outcome is _Pool.NOT_AUTHORIZED:
                raise ChainError(
                    f"{label}: the node refused the transaction: {message}: {self.address} is not on "
                    "its account allow-list. Once the council has made it a current signer of an "
                    "active agency, run `sijill network sync-permissions` (docs/besu-operations.md)"
                )
            elif outcome is _Pool.BUSY:
                time.sleep(self.settings.backoff_initial)
            else:
                raise ChainError(f"{label}: the node refused the transaction: {message}")
        raise ChainError(f"{label}: the node kept refusing the transaction: {message}")

    def _close_gap(self) -> None:
        """Before signing past in-flight transactions, make sure the node still holds them.

        A pool that lost one of ours reports a lower next nonce, and would queue every later
        transaction behind the hole for ever; resending ours fills it.
        """
        assert self._nonce is not None
        node_next = self._pending_nonce()
        if node_next >= self._nonce:
            return
        ours = {p.nonce for p in self.in_flight()}
        if all(n in ours for n in range(node_next, self._nonce)):
            self.resend_missing(below=self._nonce)
        else:
            log.warning("nonces %d to %d are lost; continuing from %d", node_next, self._nonce - 1, node_next)
            self._nonce = node_next
            with self._slots:  # signed with nonces that go to new transactions: never mined now
                for tx_hash in [h for h, p in self._in_flight.items() if p.nonce >= node_next]:
                    del self._in_flight[tx_hash]
                self._slots.notify_all()

    def _sign(
        self, params: dict[str, Any], gas: int, fees: dict[str, int], nonce: int, label: str
    ) -> PendingTx:
        full: dict[str, Any] = {**params, **fees, "gas": gas, "nonce": nonce, "chainId": self.chain_id}
        signed = self.account.sign_transaction(full)
        return PendingTx(
            HexBytes(signed.hash), nonce, HexBytes(signed.raw_transaction), label, gas, dict(params)
        )

    def _broadcast(self, pending: PendingTx) -> tuple[_Pool, str]:
        """Send the raw transaction; the pool's verdict. `BroadcastUncertain` if no answer."""
        what = f"{pending.label}: sending {pending.tx_hash.to_0x_hex()} (nonce {pending.nonce})"
        try:
            answer = self._rpc(what, lambda: self.w3.eth.send_raw_transaction(pending.raw))
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            return _classify(message), message
        except ChainError as exc:
            raise BroadcastUncertain(f"{exc}; it may still be mined: check find_receipt", pending) from exc
        if HexBytes(answer) != pending.tx_hash:
            log.warning("%s: the node answered hash %s", what, HexBytes(answer).to_0x_hex())
        return _Pool.ACCEPTED, ""

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, pending: PendingTx, *, timeout: float | None = None) -> TxReceipt:
        """The receipt of `pending` once mined (and `confirmations` deep), resending it if dropped.

        `ContractRevert` (or `ChainError`) naming the label if it failed, `ChainError` if its
        nonce went to another transaction or no receipt came within `timeout`.
        """
        limit = self.settings.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        missing_since: float | None = None
        hash_hex = pending.tx_hash.to_0x_hex()
        while True:
            receipt = self.find_receipt(pending.tx_hash)
            if receipt is not None and self._confirmed(receipt, deadline, pending):
                self._release(pending)
                if receipt["status"] != 1:
                    raise self._failure(pending, receipt)
                return receipt
            now = time.monotonic()
            if receipt is None and self._node_knows(pending.tx_hash):
                missing_since = None
            elif receipt is None:
                if self._mined_nonce() > pending.nonce and self.find_receipt(pending.tx_hash) is None:
                    self._release(pending)
                    raise ChainError(
                        f"{pending.label}: nonce {pending.nonce} was used by another transaction; "
                        f"{hash_hex} will never be mined"
                    )
                if missing_since is None:
                    missing_since = now
                elif now - missing_since >= self.settings.resubmit_after:
                    log.warning("%s: the node no longer holds %s; sending it again", pending.label, hash_hex)
                    self.resend_missing(below=pending.nonce)
                    outcome, message = self._broadcast(pending)
                    if outcome not in (_Pool.ACCEPTED, _Pool.KNOWN):
                        log.warning("%s: resending %s: %s", pending.label, hash_hex, message)
                    missing_since = now
            if now >= deadline:
                raise ChainError(f"{pending.label}: no receipt for {hash_hex} after {limit:g}s")
            time.sleep(min(self.settings.poll_interval, max(deadline - now, 0.01)))

    def find_receipt(self, tx_hash: HexBytes | bytes | str) -> TxReceipt | None:
        """The receipt of a mined transaction, None if the chain has none (e.g. after a crash)."""
        try:
            return self._rpc(
                "reading a receipt", lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            )
        except TransactionNotFound:
            return None

    def _confirmed(self, receipt: TxReceipt, deadline: float, pending: PendingTx) -> bool:
        """Wait until `confirmations` blocks sit on the receipt's; False if it moved (a reorg)."""
        if self.settings.confirmations == 0:
            return True
        target = receipt["blockNumber"] + self.settings.confirmations
        while self._rpc("reading the block number", lambda: self.w3.eth.block_number) < target:
            if time.monotonic() >= deadline:
                raise ChainError(
                    f"{pending.label}: {pending.tx_hash.to_0x_hex()} mined in block {receipt['blockNumber']} "
                    f"but not {self.settings.confirmations} blocks deep in time"
                )
            time.sleep(self.settings.poll_interval)
        again = self.find_receipt(pending.tx_hash)
        return again is not None and again["blockHash"] == receipt["blockHash"]

    def _failure(self, pending: PendingTx, receipt: TxReceipt) -> ChainError:
        """Why a mined transaction failed: replay it in its block for the revert data."""
        block = receipt["blockNumber"]
        where = f"{pending.label} ({pending.tx_hash_hex}, block {block})"
        call: TxParams = {**pending.params, "from": self.account.address, "gas": pending.gas}  # type: ignore[typeddict-item]
        try:
            self._rpc("replaying a failed transaction", lambda: self.w3.eth.call(call, block))
        except ContractLogicError as exc:
            return self.decoder.decode(exc.data if isinstance(exc.data, str) else None, where)
        except Web3RPCError as exc:
            return ChainError(f"{where}: failed: {_rpc_message(exc)}")
        return ChainError(f"{where}: failed (status 0), though replaying it there does not")

    # -- slots, nonces, fees, transport ---------------------------------------------------------

    def _reserve_slot(self, label: str) -> None:
        """Wait for a free slot: mining frees them. A transaction the node lost (a pool emptied
        by a restart) is never mined unless it is sent again, and a caller that never `wait`s
        (the batcher) would not resend it: so after `resubmit_after` seconds of waiting, and
        again every `resubmit_after`, the in-flight transactions the node no longer holds are
        broadcast again, or lost ones could hold every slot for ever."""
        deadline = time.monotonic() + self.settings.in_flight_timeout
        resend_at = time.monotonic() + self.settings.resubmit_after
        while True:
            with self._slots:
                if len(self._in_flight) + self._reserved < self.settings.max_in_flight:
                    self._reserved += 1
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChainError(
                        f"{label}: {self.settings.max_in_flight} transactions from {self.address} still "
                        f"in flight after {self.settings.in_flight_timeout:g}s; is the chain mining?"
                    )
                self._slots.wait(min(remaining, self.settings.poll_interval))
            if time.monotonic() >= resend_at:
                self.resend_missing()  # forgets the mined ones first
                resend_at = time.monotonic() + self.settings.resubmit_after
            else:
                self._forget_mined()  # mined transactions free their slots, waited for or not

    def _forget_mined(self) -> None:
        mined = self._mined_nonce()
        with self._slots:
            for tx_hash in [h for h, p in self._in_flight.items() if p.nonce < mined]:
                del self._in_flight[tx_hash]
            self._slots.notify_all()

    def _forget_stranded(self) -> None:
        """Forget in-flight transactions that can never be mined: all of them sit above a hole
        in the account's nonces, which only a chain that lost the blocks holding our earlier
        transactions leaves (ours were mined, or the account's nonce would not have passed
        them). Resending them would only park them in the pool while they hold every slot; the
        next send signs from the chain's nonce again (`_close_gap`), and their callers, asking
        for receipts that never come, send their work again."""
        with self._slots:
            lowest = min((p.nonce for p in self._in_flight.values()), default=None)
        if lowest is None or lowest <= self._mined_nonce():
            return
        with self._slots:
            stranded = [h for h, p in self._in_flight.items() if p.nonce >= lowest]
            for tx_hash in stranded:
                del self._in_flight[tx_hash]
            self._slots.notify_all()
        log.warning("%d in-flight transactions above a hole in the nonces are forgotten", len(stranded))

    def _release(self, pending: PendingTx) -> None:
        with self._slots:
            self._in_flight.pop(pending.tx_hash, None)
            self._slots.notify_all()

    def _pending_nonce(self) -> int:
        return self._rpc(
            "reading the account nonce",
            lambda: self.w3.eth.get_transaction_count(self.account.address, "pending"),
        )

    def _mined_nonce(self) -> int:
        return self._rpc(
            "reading the account nonce",
            lambda: self.w3.eth.get_transaction_count(self.account.address, "latest"),
        )

    def _node_knows(self, tx_hash: HexBytes) -> bool:
        """Whether the node holds the transaction, pending or mined."""
        try:
            self._rpc("looking up a transaction", lambda: self.w3.eth.get_transaction(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _fees(self) -> dict[str, int]:
        if self.settings.gas_price is not None:
            return {"gasPrice": self.settings.gas_price}
        block = self._rpc("reading the latest block", lambda: self.w3.eth.get_block("latest"))
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self._rpc("reading the gas price", lambda: self.w3.eth.gas_price)}
        if base_fee == 0:
            return {"gasPrice": 0}
        tip = self._rpc("reading the priority fee", lambda: self.w3.eth.max_priority_fee)
        # Twice the base fee survives six full blocks of base-fee rises.
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def _estimate(self, params: dict[str, Any], label: str) -> int:
        call: TxParams = {**params, "from": self.account.address}  # type: ignore[typeddict-item]
        try:
            estimate = self._rpc(f"{label}: estimating gas", lambda: self.w3.eth.estimate_gas(call))
        except ContractLogicError as exc:
            raise self.decoder.decode(exc.data if isinstance(exc.data, str) else None, label) from None
        except Web3RPCError as exc:
            raise ChainError(f"{label}: the node rejected the transaction: {_rpc_message(exc)}") from None
        # Headroom: state can change between the estimate and inclusion.
        return int(estimate * 1.2) + 10_000

    def _rpc(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, retried on transport faults with exponential backoff and jitter."""
        delay = self.settings.backoff_initial
        for attempt in range(self.settings.max_retries + 1):
            try:
                return call()
            except Exception as exc:
                if not _is_transport_error(exc):
                    raise
                if attempt == self.settings.max_retries:
                    raise ChainError(
                        f"{what}: the node did not answer after {attempt + 1} attempts "
                        f"({type(exc).__name__}: {_short(exc)})"
                    ) from exc
                pause = min(delay, self.settings.backoff_max) * random.uniform(0.5, 1.0)
                log.warning("%s: %s; retrying in %.2fs", what, type(exc).__name__, pause)
                time.sleep(pause)
                delay *= 2
        raise AssertionError("unreachable")


def _below_minimum(label: str, fees: dict[str, int], message: str, *, forced: int | None) -> str:
    price = fees.get("gasPrice", fees.get("maxFeePerGas"))
    if forced is not None:
        fix = "raise the sender's forced gas price to the node's --min-gas-price at least"
    else:
        fix = (
            "the chain's fees give no more: on the free-gas network start every Besu node with "
            "--min-gas-price=0 (docs/besu.md), or force a gas price at or above the node's minimum"
        )
    return f"{label}: the node refused gas price {price} wei: {message}; {fix}"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."


__all__ = [
    "BroadcastUncertain",
    "PendingTx",
    "TxManager",
    "TxSettings",
    "connect_for_sending",
]
