"""Checking signed peer requests: the calling agency's signer, asked of the AgencyRegistry.

A request is signed as node/peer/signing.py describes. The receiving node checks, in this
order, and stops at the first failure:
1. the five headers are present, once each, and well formed (401);
2. the timestamp is within `max_skew` seconds of its clock, either way (401);
3. the signature recovers to `Sijill-Signer` over the message rebuilt with its own agency as the
   audience, so a request addressed to another agency, or altered in method, target or body,
   fails here (401);
4. the registry's `authorizeSigner` names exactly `Sijill-Agency` for the signer (401 if it is
   not a signer or is retired, 403 if its agency is suspended or is another one, 403 if it is
   the called agency itself); answers are cached for `cache_ttl` seconds, good and bad alike;
5. the nonce is new for this signer (401). Nonces are kept in the node's store, so a restart does
   not reopen the window, and dropped once older than twice `max_skew`, when a replay would fail
   step 2 anyway.

Only requests that pass steps 1 to 4 write to the store: an unauthenticated caller cannot fill
it. What each authenticated agency may then see is `PeerPolicy` (node/peer/policy.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.codes import AGENCY_CODE_PATTERN, decode_code
from ledger.receipts import ReceiptError, recover_signer
from node.chain.client import RevertDecoder, call_view
from node.errors import ContractRevert, NodeError
from node.peer.signing import HEADER_RULES, PEER_HEADERS, personal_sign_digest, signing_message
from node.store import Store, make_key

NONCE_PREFIX = b"peer-nonce/"
"""Store keys `peer-nonce/{signer}/{nonce}` -> {"timestamp": t}: the nonces seen lately."""

PRUNE_EVERY_CALLS = 1000
PRUNE_EVERY_SECONDS = 60.0
MAX_CACHED_SIGNERS = 4096


class PeerAuthError(NodeError):
    """A peer request refused: the HTTP `status`, a short kebab-case `code`, and what is wrong in
    English and Arabic. The messages say what to fix, never how the node works inside."""

    def __init__(self, status: int, code: str, message_en: str, message_ar: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ar = message_ar


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who an authenticated peer request came from."""

    agency: str
    signer: str  # lower-case 0x address


# Registry refusals, by custom error: (status, code, English, Arabic); {agency} is filled in.
_REFUSALS: dict[str, tuple[int, str, str, str]] = {
    "NotASigner": (
        401,
        "peer-not-a-signer",
        "the signing key is not a signer of any agency in the registry",
        "مفتاح التوقيع ليس مفتاحًا مسجلًا لأي جهة في سجل الجهات",
    ),
    "SignerRetired": (
        401,
        "peer-signer-retired",
        "the signing key has been retired from the registry",
        "مفتاح التوقيع أُوقف العمل به في سجل الجهات",
    ),
    "AgencyNotActive": (
        403,
        "peer-agency-not-active",
        "agency {agency} is not active in the registry",
        "الجهة {agency} غير نشطة في سجل الجهات",
    ),
}


class PeerAuthenticator:
    """Checks signed peer requests addressed to this node's agency (`audience`).

    `registry` is the web3 contract object of the AgencyRegistry. One authenticator per store:
    its lock is what makes a nonce's check-and-set atomic. `clock` gives unix time; it drives the
    timestamp check, the cache and the pruning, so that tests can move it."""

    def __init__(
        self,
        store: Store,
        registry: Any,
        audience: str,
        *,
        max_skew: int = 60,
        cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not AGENCY_CODE_PATTERN.fullmatch(audience):
            raise NodeError(f"the audience {audience!r} is not an agency code")
        if max_skew <= 0:
            raise NodeError("max_skew must be a positive number of seconds")
        self.store = store
        self.registry = registry
        self.audience = audience
        self.max_skew = max_skew
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._decoder = RevertDecoder({"AgencyRegistry": registry.abi})
        # signer -> (expires at, agency code or the refusal's custom error name and agency)
        self._cache: dict[str, tuple[float, str | tuple[str, str]]] = {}
        self._cache_lock = threading.Lock()
        self._nonce_lock = threading.Lock()
        self._prune_lock = threading.Lock()
        self._calls_since_prune = 0
        self._last_prune = clock()

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> PeerIdentity:
        """The identity of a signed request, or `PeerAuthError`. `path` is the request target as
        received (see `request_target`); `headers` any mapping, looked up case-insensitively."""
        values = _peer_headers(headers)
        agency, signer = values["sijill-agency"], values["sijill-signer"].lower()
        timestamp, nonce = int(values["sijill-timestamp"]), values["sijill-nonce"]
        now = self._clock()
        if abs(now - timestamp) > self.max_skew:
            raise PeerAuthError(
                401,
                "peer-timestamp-skew",
                f"Sijill-Timestamp is more than {self.max_skew} s away from this node's clock: "
                "check the calling node's clock and send a fresh request",
                f"الترويسة Sijill-Timestamp تختلف عن ساعة هذه العقدة بأكثر من {self.max_skew} ثانية: "
                "اضبط ساعة العقدة المرسِلة وأرسل طلبًا جديدًا",
            )
        message = signing_message(
            method=method,
            target=path,
            audience=self.audience,
            agency=agency,
            signer=signer,
            timestamp=timestamp,
            nonce=nonce,
            body=body,
        )
        try:
            recovered = recover_signer(
                personal_sign_digest(message), bytes.fromhex(values["sijill-signature"][2:])
            )
        except ReceiptError:
            recovered = None
        if recovered != signer:
            raise PeerAuthError(
                401,
                "peer-signature-invalid",
                f"Sijill-Signature is not {signer}'s signature of this request to {self.audience}",
                f"الترويسة Sijill-Signature ليست توقيع {signer} على هذا الطلب الموجَّه إلى {self.audience}",
            )
        self._check_signer(signer, agency)
        self._remember_nonce(signer, nonce, timestamp)
        return PeerIdentity(agency, signer)

    def prune_nonces(self) -> int:
        """Delete the nonces older than twice `max_skew` (their requests are refused as stale
        anyway); return how many were deleted."""
        if not self._prune_lock.acquire(blocking=False):
            return 0  # another thread is at it
        try:
            horizon = self._clock() - 2 * self.max_skew
            self._last_prune, self._calls_since_prune = self._clock(), 0
            old = [
                key
                for key, entry in self.store.iter_json(NONCE_PREFIX)
                if not isinstance(entry, dict)
                or not isinstance(entry.get("timestamp"), int)
                or entry["timestamp"] < horizon
            ]
            with self.store.write_batch() as wb:
                for key in old:
                    self.store.delete(wb, key)
            return len(old)
        finally:
            self._prune_lock.release()

    def _check_signer(self, signer: str, agency: str) -> None:
        answer = self._registry_answer(signer)
        if isinstance(answer, tuple):
            error, on_chain = answer
            status, code, message_en, message_ar = _REFUSALS[error]
            raise PeerAuthError(
                status, code, message_en.format(agency=on_chain), message_ar.format(agency=on_chain)
            )
        if answer != agency:
            raise PeerAuthError(
                403,
                "peer-agency-mismatch",
                f"the signing key is not a signer of agency {agency}",
                f"مفتاح التوقيع ليس من مفاتيح الجهة {agency}",
            )
        if agency == self.audience:
            raise PeerAuthError(
                403,
                "peer-same-agency",
                f"this is agency {agency}'s own node: peer requests come from other agencies",
                f"هذه عقدة الجهة {agency} نفسها: طلبات الجهات الأخرى فقط تُقبل هنا",
            )

    def _registry_answer(self, signer: str) -> str | tuple[str, str]:
        """The agency `signer` currently signs for, or (custom error, agency) if the registry
        refuses it; from the cache while fresh."""
        now = self._clock()
        with self._cache_lock:
            cached = self._cache.get(signer)
            if cached is not None and cached[0] > now:
                return cached[1]
        answer: str | tuple[str, str]
        try:
            word = call_view(
                self.registry.functions.authorizeSigner(to_checksum_address(signer)), self._decoder
            )
            answer = decode_code(word)
        except ContractRevert as revert:
            if revert.error not in _REFUSALS:
                raise _chain_unavailable() from None
            answer = (revert.error, str(revert.args_by_name.get("agency", "")))
        except Exception as exc:  # transport, RPC and decoding errors alike: the registry did not answer
            raise _chain_unavailable() from exc
        with self._cache_lock:
            if len(self._cache) >= MAX_CACHED_SIGNERS:
                self._cache = {s: entry for s, entry in self._cache.items() if entry[0] > now}
                while len(self._cache) >= MAX_CACHED_SIGNERS:  # oldest first: dicts keep order
                    del self._cache[next(iter(self._cache))]
            self._cache[signer] = (now + self.cache_ttl, answer)
        return answer

    def _remember_nonce(self, signer: str, nonce: str, timestamp: int) -> None:
        key = make_key("peer-nonce", signer, nonce)
        with self._nonce_lock:
            if self.store.get(key) is not None:
                raise PeerAuthError(
                    401,
                    "peer-replay",
                    "this request was already received (Sijill-Nonce reused): send a fresh request",
                    "سبق استلام هذا الطلب (أُعيد استخدام Sijill-Nonce): أرسل طلبًا جديدًا",
                )
            self.store.put_json(None, key, {"timestamp": timestamp})
            self._calls_since_prune += 1
            due = (
                self._calls_since_prune >= PRUNE_EVERY_CALLS
                or self._clock() - self._last_prune >= PRUNE_EVERY_SECONDS
            )
        if due:
            self.prune_nonces()


def _peer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The five peer headers by lower-case name, checked present, single and well formed."""
    found: dict[str, str] = {}
    # items() of a starlette Headers lists a repeated header once per value: refuse conflicting repeats.
    for name, value in headers.items():
        lower = name.lower()
        if lower not in HEADER_RULES:
            continue
        if lower in found and found[lower] != value:
            raise PeerAuthError(
                401,
                "peer-headers-malformed",
                f"header {_display(lower)} is sent more than once",
                f"الترويسة {_display(lower)} مرسلة أكثر من مرة",
            )
        found[lower] = value
    missing = [name for name in PEER_HEADERS if name.lower() not in found]
    if missing:
        raise PeerAuthError(
            401,
            "peer-headers-missing",
            f"missing request headers: {', '.join(missing)}",
            f"ترويسات ناقصة في الطلب: {'، '.join(missing)}",
        )
    for lower, (pattern, rule_en, rule_ar) in HEADER_RULES.items():
        if not pattern.fullmatch(found[lower]):
            raise PeerAuthError(
                401,
                "peer-headers-malformed",
                f"header {_display(lower)} must be {rule_en}",
                f"الترويسة {_display(lower)} يجب أن تكون {rule_ar}",
            )
    return found


def _display(lower: str) -> str:
    return next(name for name in PEER_HEADERS if name.lower() == lower)


def _chain_unavailable() -> PeerAuthError:
    return PeerAuthError(
        503,
        "chain-unavailable",
        "the agency registry cannot be checked just now: try again shortly",
        "تعذّر التحقق من سجل الجهات الآن: أعد المحاولة بعد قليل",
    )
