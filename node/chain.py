"""Talking to the chain: connect, sign locally, send, wait, and name every revert.

Rules for Besu, which the dev chain (anvil) is configured to follow as well:
- sign locally and send with `eth_sendRawTransaction` (Besu has no `eth_sendTransaction`);
- set the gas price explicitly: a free-gas network (base fee zero) takes legacy transactions
  at gas price 0; a chain with a base fee gets EIP-1559 fees; `gas_price` forces a price;
- read `latest` (QBFT has immediate finality and no `safe`/`finalized` tags);
- a revert is decoded against the contracts' ABIs into `ContractRevert` carrying the custom
  error's name and arguments, e.g. `RecordLedger.SequenceMismatch(agency=REPD, expected=2, given=5)`.

The batching, retry and resubmission machinery of the agency node builds on `TxSender`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, TxParams, TxReceipt

from ledger.codes import decode_code
from ledger.errors import InvalidCode
from node.errors import ChainError, ContractRevert

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


def connect(rpc_url: str, *, timeout: float = 10.0, expect_chain_id: int | None = None) -> Web3:
    """A Web3 over HTTP JSON-RPC that answered `eth_chainId`; `ChainError` if it did not."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # requests, JSON and RPC errors alike mean "not reachable"
        raise ChainError(f"no JSON-RPC node answers at {rpc_url}: {type(exc).__name__}") from exc
    if expect_chain_id is not None and chain_id != expect_chain_id:
        raise ChainError(f"{rpc_url} is chain {chain_id}, expected {expect_chain_id}")
    return w3


@dataclass(frozen=True, slots=True)
class _ErrorSpec:
    contract: str
    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]


class RevertDecoder:
    """Maps revert data to the custom error (name and arguments) of the given ABIs."""

    def __init__(self, abis: dict[str, Sequence[dict[str, Any]]]) -> None:
        self._specs: dict[bytes, _ErrorSpec] = {}
        for contract, abi in abis.items():
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = tuple(_abi_type(i) for i in item["inputs"])
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                self._specs.setdefault(
                    selector,
                    _ErrorSpec(contract, item["name"], types, tuple(i["name"] for i in item["inputs"])),
                )

    def decode(self, data: bytes | str | None, context: str = "") -> ContractRevert:
        """The `ContractRevert` for revert `data` (hex or bytes), whatever it holds."""
        raw = HexBytes(data) if data else HexBytes(b"")
        prefix = f"{context}: " if context else ""
        selector, body = bytes(raw[:4]), bytes(raw[4:])
        spec = self._specs.get(selector)
        try:
            if spec is not None:
                values = abi_decode(list(spec.types), body)
                args = {n: _readable(v, t) for n, t, v in zip(spec.names, spec.types, values, strict=True)}
                shown = ", ".join(f"{k}={v}" for k, v in args.items())
                return ContractRevert(
                    spec.contract, spec.name, args, f"{prefix}{spec.contract}.{spec.name}({shown})"
                )
            if selector == _ERROR_STRING:
                (reason,) = abi_decode(["string"], body)
                return ContractRevert("", "Error", {"reason": reason}, f"{prefix}reverted: {reason}")
            if selector == _PANIC:
                (code,) = abi_decode(["uint256"], body)
                return ContractRevert("", "Panic", {"code": code}, f"{prefix}panic 0x{code:02x}")
        except Exception:  # malformed revert data: fall through to the raw report
            pass
        shown = raw.hex() or "no data"
        return ContractRevert(
            "", "Unknown", {"data": shown}, f"{prefix}reverted without a known error ({shown})"
        )


def _abi_type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _readable(value: object, abi_type: str) -> object:
    """bytes32 codes as their text (e.g. REPD), other bytes as hex, addresses checksummed."""
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, bytes):
        if len(value) == 32:
            try:
                return decode_code(value)
            except InvalidCode:
                pass
        return "0x" + value.hex()
    return value


class TxSender:
    """Signs and sends transactions from one account, managing its nonce locally.

    Thread-safe: the nonce is taken under a lock, so several threads may send from one account.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        decoder: RevertDecoder,
        *,
        gas_price: int | None = None,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.1,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.decoder = decoder
        self.chain_id = w3.eth.chain_id
        self._gas_price = gas_price
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._nonce: int | None = None

    @classmethod
    def from_key(cls, w3: Web3, private_key: str | bytes, decoder: RevertDecoder, **kwargs: Any) -> TxSender:
        return cls(w3, Account.from_key(private_key), decoder, **kwargs)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def fees(self) -> dict[str, int]:
        """Fee fields for a new transaction (see the module docstring)."""
        if self._gas_price is not None:
            return {"gasPrice": self._gas_price}
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self.w3.eth.gas_price}
        if base_fee == 0:
            return {"gasPrice": 0}
        tip = self.w3.eth.max_priority_fee
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def transact(self, call: ContractFunction, *, context: str = "", gas: int | None = None) -> TxReceipt:
        """Send a contract call and wait for its receipt; `ContractRevert` if it reverts."""
        tx: TxParams = {
            "from": self.account.address,
            "to": call.address,
            "data": call._encode_transaction_data(),
        }
        return self.send(tx, context=context or call.fn_name, gas=gas)

    def deploy(self, bytecode: bytes, constructor_args: bytes = b"", *, context: str = "deploy") -> TxReceipt:
        """Send a contract creation and wait for its receipt (`contractAddress` set)."""
        tx: TxParams = {"from": self.account.address, "data": HexBytes(bytecode + constructor_args)}
        return self.send(tx, context=context)

    def send(self, tx: TxParams, *, context: str = "", gas: int | None = None) -> TxReceipt:
        """Estimate (reverts surface here, named), sign, send and wait for one transaction."""
        if gas is None:
            gas = self._estimate(tx, context)
        tx_hash = self.send_raw(tx, gas=gas)
        receipt = self.wait(tx_hash)
        if receipt["status"] != 1:
            # Replay at the receipt's block for the revert data (the estimate passed earlier).
            self._estimate(tx, context, block=receipt["blockNumber"])
            raise ChainError(f"{context}: transaction {tx_hash.hex()} reverted")
        return receipt

    def send_raw(self, tx: TxParams, *, gas: int) -> HexBytes:
        """Sign with the next nonce and send, without waiting; the transaction hash."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
            full: dict[str, Any] = {
                **{k: v for k, v in tx.items() if k != "from"},
                **self.fees(),
                "gas": gas,
                "nonce": self._nonce,
                "chainId": self.chain_id,
            }
            signed = self.account.sign_transaction(full)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                # The pool disagrees about our nonce (another process, a restart): resync next time.
                self._nonce = None
                raise ChainError(f"the node refused the transaction: {_rpc_message(exc)}") from None
            self._nonce += 1
            return tx_hash

    def wait(self, tx_hash: HexBytes) -> TxReceipt:
        """Poll for a receipt; `ChainError` after the timeout."""
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._receipt_timeout, poll_latency=self._poll_interval
            )
        except TimeExhausted as exc:
            raise ChainError(f"no receipt for {tx_hash.hex()} after {self._receipt_timeout:g}s") from exc

    def _estimate(self, tx: TxParams, context: str, block: int | None = None) -> int:
        try:
            estimate = (
                self.w3.eth.estimate_gas(tx, block) if block is not None else self.w3.eth.estimate_gas(tx)
            )
        except ContractLogicError as exc:
            data = exc.data if isinstance(exc.data, str) else None
            raise self.decoder.decode(data, context) from None
        except Web3RPCError as exc:
            # e.g. an opcode the chain's fork rules do not have ("EVM error NotActivated")
            raise ChainError(f"{context}: the node rejected the transaction: {_rpc_message(exc)}") from None
        # Headroom: state can change between the estimate and inclusion.
        return int(estimate * 1.2) + 10_000


def _rpc_message(exc: Web3RPCError) -> str:
    error = (exc.rpc_response or {}).get("error")
    return str(error.get("message")) if isinstance(error, dict) else str(exc)


def call_view(call: ContractFunction, decoder: RevertDecoder, *, block: BlockIdentifier = "latest") -> Any:
    """Call a view function; a revert becomes a named `ContractRevert`."""
    try:
        return call.call(block_identifier=block)
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else None
        raise decoder.decode(data, call.fn_name) from None
