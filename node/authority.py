"""What the registry lets this node do now: which record types its agency may anchor, and
whether its agency is active and its signer current.

The council can change all of it while the node runs: disallow a record type, suspend the
agency, retire the node's signer key. The contract then refuses the node's anchors, so the node
must (1) stop taking in records it cannot anchor, and say why; (2) keep every record it has
already accepted, never sending what the chain would refuse, and anchor it once the council
allows it again; (3) say meanwhile why those records wait (docs/node.md, "Authority").

`Authority` holds the registry's last answer (`Standing`). The batcher's loop refreshes it at
most every `ttl` seconds; intake reads it without asking the chain, so no request waits on the
chain, and while the chain is away the last answer stays in force.

At start the node asks once and refuses a signer key the registry gives to another agency, or
to none (`check_signer`): such a node could never anchor, and its receipts would name a signer
no verifier accepts for its agency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.codes import agency_code, decode_code
from node.chain.client import RevertDecoder, call_view
from node.errors import ChainError, ContractRevert, NodeError


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the registry refuses something, in English and Arabic, and the custom error it names."""

    error: str
    message_en: str
    message_ar: str


@dataclass(frozen=True, slots=True)
class Standing:
    """The registry's answer for this node: a refusal of the agency as a whole (suspended, signer
    retired), or None, and the record types the agency may anchor."""

    agency: str
    agency_refusal: Refusal | None
    record_types: frozenset[str]

    def refusal(self, record_type: str) -> Refusal | None:
        """Why an anchor of `record_type` would be refused now; None when it would go through."""
        if self.agency_refusal is not None:
            return self.agency_refusal
        if record_type not in self.record_types:
            return Refusal(
                "RecordTypeNotAllowed",
                f"agency {self.agency} may not anchor {record_type!r} records: the registry does "
                "not allow it (the council decides which record types an agency anchors)",
                f"سجل الجهات لا يسمح للجهة {self.agency} بتثبيت هذا النوع من السجلات",
            )
        return None


def check_signer(registry: Any, agency: str, signer: str) -> None:
    """`NodeError` unless the registry lists `signer` (ever) as a signer of `agency`."""
    holder = registry.functions.signerInfo(to_checksum_address(signer)).call()[0]
    if holder == agency_code(agency):
        return
    if holder == b"\0" * 32:
        raise NodeError(f"{signer} is not a signer of {agency} in the registry, nor of any other agency")
    raise NodeError(
        f"{signer} is not a signer of {agency} in the registry: it signs for {decode_code(holder)}. "
        f"Start the node with {agency}'s signer key"
    )


class Authority:
    """The registry's last answer for one agency and signer, refreshed when older than `ttl`."""

    def __init__(
        self,
        registry: Any,
        agency: str,
        signer: str,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.agency = agency
        self.signer = to_checksum_address(signer)
        self.ttl = ttl
        self._clock = clock
        self._decoder = RevertDecoder({"AgencyRegistry": registry.abi})
        self._lock = threading.Lock()
        self._standing = self._ask()
        self._asked_at = clock()

    @property
    def standing(self) -> Standing:
        """The last answer (never asks the chain)."""
        return self._standing

    def refusal(self, record_type: str) -> Refusal | None:
        """Why an anchor of `record_type` would be refused, as of the last answer."""
        return self._standing.refusal(record_type)

    def refresh(self, *, force: bool = False) -> Standing:
        """Ask the registry again if the answer is older than `ttl` (or `force`); `ChainError`
        when the chain does not answer, the last answer staying in force."""
        with self._lock:
            if force or self._clock() - self._asked_at >= self.ttl:
                self._standing = self._ask()
                self._asked_at = self._clock()
            return self._standing

    def _ask(self) -> Standing:
        word = agency_code(self.agency)
        try:
            try:
                call_view(self.registry.functions.authorizeSigner(self.signer), self._decoder)
                refusal = None
            except ContractRevert as revert:
                refusal = self._agency_refusal(revert)
            types = self.registry.functions.recordTypes(word).call()
        except ContractRevert:
            raise
        except Exception as exc:  # transport and decoding errors alike: the registry did not answer
            raise ChainError(f"cannot read the registry: {type(exc).__name__}") from None
        return Standing(self.agency, refusal, frozenset(decode_code(t) for t in types))

    def _agency_refusal(self, revert: ContractRevert) -> Refusal:
        if revert.error == "AgencyNotActive":
            return Refusal(
                revert.error,
                f"agency {self.agency} is suspended in the registry: it can anchor nothing, and takes "
                "no new records, until the council reinstates it",
                f"الجهة {self.agency} موقوفة في سجل الجهات: "
                "لا تثبّت شيئًا ولا تقبل سجلات جديدة حتى يعيدها المجلس",
            )
        if revert.error == "SignerRetired":
            return Refusal(
                revert.error,
                f"the node's signer {self.signer} was retired from the registry at block "
                f"{revert.args_by_name.get('validTo')}: restart the node with {self.agency}'s current key",
                "مفتاح التوقيع لهذه العقدة أُوقف العمل به في سجل الجهات: أعد تشغيلها بالمفتاح الحالي للجهة",
            )
        if revert.error == "NotASigner":
            return Refusal(
                revert.error,
                f"the node's signer {self.signer} is not a signer in the registry",
                "مفتاح التوقيع لهذه العقدة ليس مسجلًا في سجل الجهات",
            )
        raise revert
