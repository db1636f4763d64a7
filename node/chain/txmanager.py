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
  `max_retries`; then `ChainError` (node/chain/txrpc.py). The pool's refusals are mapped to a
  recovery (node/chain/txfaults.py has what Besu, anvil and geth say, and what each calls for). A
  refusal consumes no nonce: the next send signs the same nonce again.
- A dropped transaction comes back. While `wait` polls for a receipt it also checks that
  the node still holds the transaction; missing for `resubmit_after` seconds, the same raw
  transaction is broadcast again. A `send` that has waited that long for a free slot does the
  same for every in-flight transaction the node lost (a caller polling `find_receipt` never
  waits). If the account's mined nonce passes ours without our receipt, another transaction
  took the nonce: `ChainError`, and the caller decides. In-flight transactions whose nonces
  all sit above a hole in the account's (a chain that lost the blocks holding our earlier ones)
  can never be mined: they are forgotten rather than resent, and the next send signs from the
  chain's nonce again.

Few transactions stay in flight (`max_in_flight`, default 4): Besu's pool keeps only a handful
of future nonces per sender. The calls to the node, their retries and the reads the manager
decides on (nonces, fees, estimates, receipts, why a transaction failed) are `AccountRpc`
(node/chain/txrpc.py), which `TxManager` builds on; give it a Web3 from `connect_for_sending`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3RPCError
from web3.types import TxParams, TxReceipt

from node.chain.client import RevertDecoder, _rpc_message
from node.chain.txfaults import PoolVerdict, classify
from node.chain.txrpc import AccountRpc
from node.errors import ChainError

log = logging.getLogger("node.txmanager")  # its name before it moved to node.chain, which logs show


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


# Set by the manager, whatever the caller's transaction says.
_MANAGED_FIELDS = frozenset(
    {"from", "nonce", "gas", "chainId", "type", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"}
)


class TxManager(AccountRpc):
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
            if outcome is PoolVerdict.NONCE_TAKEN and self._node_knows(pending.tx_hash):
                outcome = PoolVerdict.KNOWN  # an earlier attempt of this very send got through
            if outcome in (PoolVerdict.ACCEPTED, PoolVerdict.KNOWN):
                self._nonce += 1
                return pending
            log.warning("%s: nonce %d refused (%s): %s", label, pending.nonce, outcome.value, message)
            if outcome is PoolVerdict.NONCE_TAKEN:
                self._nonce = max(self._pending_nonce(), pending.nonce + 1)
            elif outcome is PoolVerdict.NONCE_GAP and not gap_filled:
                self.resend_missing(below=pending.nonce)
                gap_filled = True
            elif outcome is PoolVerdict.NONCE_GAP:
                self._nonce = self._pending_nonce()
            elif outcome is PoolVerdict.UNDERPRICED and self.settings.gas_price is None:
                fees = self._fees()
            elif outcome is PoolVerdict.BELOW_MINIMUM:
                refused, fees = fees, self._fees()
                if fees == refused:  # the chain's fees are what the node refuses: its setting is off
                    raise ChainError(_below_minimum(label, refused, message, forced=self.settings.gas_price))
            elif outcome is PoolVerdict.NOT_AUTHORIZED:
                raise ChainError(
                    f"{label}: the node refused the transaction: {message}: {self.address} is not on "
                    "its account allow-list. Once the council has made it a current signer of an "
                    "active agency, run `sijill network sync-permissions` (docs/besu-operations.md)"
                )
            elif outcome is PoolVerdict.BUSY:
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

    def _broadcast(self, pending: PendingTx) -> tuple[PoolVerdict, str]:
        """Send the raw transaction; the pool's verdict. `BroadcastUncertain` if no answer."""
        what = f"{pending.label}: sending {pending.tx_hash.to_0x_hex()} (nonce {pending.nonce})"
        try:
            answer = self._rpc(what, lambda: self.w3.eth.send_raw_transaction(pending.raw))
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            return classify(message), message
        except ChainError as exc:
            raise BroadcastUncertain(f"{exc}; it may still be mined: check find_receipt", pending) from exc
        if HexBytes(answer) != pending.tx_hash:
            log.warning("%s: the node answered hash %s", what, HexBytes(answer).to_0x_hex())
        return PoolVerdict.ACCEPTED, ""

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
                    if outcome not in (PoolVerdict.ACCEPTED, PoolVerdict.KNOWN):
                        log.warning("%s: resending %s: %s", pending.label, hash_hex, message)
                    missing_since = now
            if now >= deadline:
                raise ChainError(f"{pending.label}: no receipt for {hash_hex} after {limit:g}s")
            time.sleep(min(self.settings.poll_interval, max(deadline - now, 0.01)))

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


__all__ = [
    "BroadcastUncertain",
    "PendingTx",
    "TxManager",
    "TxSettings",
]
