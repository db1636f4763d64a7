"""The manager's calls to the node: each retried on transport faults, and what it reads.

`AccountRpc._rpc` runs one JSON-RPC call, retried on faults of the way to the node (refused or
dropped connections, timeouts, HTTP 5xx/429: node/chain/txfaults.py) with exponential backoff and
jitter, up to `max_retries`; then `ChainError`. So give the manager a Web3 whose provider does not
retry by itself (`connect_for_sending`): web3's HTTPProvider otherwise retries most calls five
times, multiplying the manager's own.

On top of it, the reads `TxManager` decides on: the account's pending and mined nonces, whether
the node holds a transaction, the fees to offer, gas estimates (reverts named there, through
`RevertDecoder`), receipts, and why a mined transaction failed (replayed in its block). Fees
follow the chain (see node/chain/client.py): legacy gas price 0 on a free-gas chain (Besu's zero
base fee, anvil --base-fee 0), EIP-1559 fees when there is a base fee, or a forced `gas_price`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxParams, TxReceipt

from node.chain.client import RevertDecoder, _rpc_message, without_validation
from node.chain.txfaults import is_transport_error
from node.errors import ChainError

if TYPE_CHECKING:
    from node.chain.txmanager import PendingTx, TxSettings

log = logging.getLogger("node.txmanager")  # the manager's retries, logged under its name

T = TypeVar("T")


def connect_for_sending(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A Web3 over HTTP whose provider does not retry: `TxManager` does, with backoff."""
    return without_validation(
        Web3(
            Web3.HTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
            )
        )
    )


class AccountRpc:
    """One account's calls to the node, for `TxManager` (which sets these attributes)."""

    w3: Web3
    account: LocalAccount
    decoder: RevertDecoder
    settings: TxSettings
    chain_id: int

    @property
    def address(self) -> str:
        """The account's address, checksummed."""
        return str(self.account.address)

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
                if not is_transport_error(exc):
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


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."
