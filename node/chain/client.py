"""Talking to the chain: connect, sign locally, send, wait, and name every revert.

Rules for Besu, which the dev chain (anvil) is configured to follow as well:
- sign locally and send with `eth_sendRawTransaction` (Besu has no `eth_sendTransaction`);
- set the gas price explicitly: a free-gas network (base fee zero) takes legacy transactions
  at gas price 0; a chain with a base fee gets EIP-1559 fees; `gas_price` forces a price;
- read `latest` (QBFT has immediate finality and no `safe`/`finalized` tags);
- a revert is decoded against the contracts' ABIs into `ContractRevert` carrying the custom
  error's name and arguments, e.g. `RecordLedger.SequenceMismatch(agency=REPD, expected=2, given=5)`.

Sending transactions (nonces, fees, retries, resubmission) is `node.chain.txmanager.TxManager`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import BlockIdentifier

from ledger.codes import decode_code
from ledger.errors import InvalidCode
from node.errors import ChainError, ContractRevert

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


def without_validation(w3: Web3) -> Web3:
    """`w3` without web3's validation middleware, which asks the node for `eth_chainId` twice
    around every call (three requests instead of one) and refuses blocks whose extraData is
    longer than 32 bytes, as every QBFT block's is. The chain id is checked once on connecting
    and every transaction is signed locally with it."""
    w3.middleware_onion.remove("validation")
    return w3


def connect(rpc_url: str, *, timeout: float = 10.0, expect_chain_id: int | None = None) -> Web3:
    """A Web3 over HTTP JSON-RPC that answered `eth_chainId`; `ChainError` if it did not."""
    w3 = without_validation(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout})))
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
