"""`ledger.chainview.ChainView` over JSON-RPC: what `ledger.verify` asks, answered by a node.

Every call reads current state at `latest` (signer validity ranges are stored on-chain), so a
Besu node without archive history answers them all. Any transport or decoding failure becomes
`ChainUnavailable`, which verification reports as unknown, never as passed.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from ledger.chainview import AgencyStatus, BatchInfo, ChainUnavailable, LeafState, LeafStatusInfo
from ledger.codes import agency_code, decode_code
from node.chain.toolchain import CompiledContract


class Web3ChainView:
    """Read-only view of one deployment (RecordLedger + AgencyRegistry) on one chain."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], compiled: dict[str, CompiledContract]) -> None:
        self._w3 = w3
        contracts = deployment["contracts"]
        self._ledger = w3.eth.contract(
            address=contracts["RecordLedger"]["address"], abi=compiled["RecordLedger"].abi
        )
        self._registry = w3.eth.contract(
            address=contracts["AgencyRegistry"]["address"], abi=compiled["AgencyRegistry"].abi
        )
        self.chain_id: int = self._ask(lambda: w3.eth.chain_id)
        self.ledger: str = self._ledger.address.lower()
        self.registry: str = self._ask(lambda: self._ledger.functions.registry().call()).lower()

    def batch(self, agency: str, root: bytes) -> BatchInfo | None:
        kind, seq, block, timestamp, count = self._ask(
            lambda: self._ledger.functions.batch(agency_code(agency), root).call()
        )
        if seq == 0:
            return None
        return BatchInfo(self._ask(lambda: decode_code(kind)), seq, block, timestamp, count)

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo:
        state, reason, block, successor = self._ask(
            lambda: self._ledger.functions.leafStatus(agency_code(agency), leaf).call()
        )
        return LeafStatusInfo(self._ask(lambda: LeafState(state)), reason, block, bytes(successor))

    def agency_status(self, agency: str) -> AgencyStatus:
        info = self._ask(lambda: self._registry.functions.agencyInfo(agency_code(agency)).call())
        status: AgencyStatus = self._ask(lambda: AgencyStatus(info[1]))
        return status

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool:
        account = Web3.to_checksum_address(signer)
        return bool(
            self._ask(
                lambda: self._registry.functions.isSignerValidAt(agency_code(agency), account, block).call()
            )
        )

    def latest_block(self) -> int:
        return int(self._ask(lambda: self._w3.eth.block_number))

    @staticmethod
    def _ask(call: Any) -> Any:
        try:
            return call()
        except ChainUnavailable:
            raise
        except Exception as exc:  # transport, RPC and ABI decoding errors alike
            raise ChainUnavailable(f"{type(exc).__name__}: {exc}") from None
