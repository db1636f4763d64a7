"""Node-to-node requests between agencies, authenticated by the on-chain AgencyRegistry.

The chain is the PKI: there are no shared secrets between agencies. A calling node signs each
HTTP request with its agency's signer key (the key it anchors with); the called node recovers
the signing address, asks the AgencyRegistry whether that address is a current signer of the
agency the request claims, and refuses any request it has seen before.

Wire format, version `sijill-peer/1`. Five request headers, all required:

    Sijill-Agency     the caller's agency code, e.g. CSO
    Sijill-Signer     the signer's address: 0x and 40 hex digits, any case
    Sijill-Timestamp  unix seconds, decimal, no sign and no leading zero
    Sijill-Nonce      32 lower-case hex digits (16 random bytes), never reused by a signer
    Sijill-Signature  0x and 130 hex digits: the 65-byte signature r ‖ s ‖ v (v 27 or 28, low s)

The signed message is UTF-8 text, these nine lines joined by "\\n", without a trailing newline:

    sijill-peer/1
    {method, upper case}                 GET
    {request target as sent}             /v1/peer/records/title/01ABC/bundle?x=1
    {audience: the called agency code}   REPD
    {caller agency code}                 CSO
    {signer address, lower case}         0x70997970c51812dc3a010c7d01b50e0d17dc79c8
    {timestamp}                          1790000000
    {nonce}                              9f86d081884c7d659a2feaa0c55ad015
    {sha256 hex of the body}             e3b0c442...b855 (the hash of b"" for a GET)

The request target is the path and query exactly as they travel in the request line
(percent-encoding untouched): a proxy that rewrites either breaks the signature. A server
rebuilds it from the ASGI scope with `request_target(scope["raw_path"], scope["query_string"])`.
The signature is EIP-191 `personal_sign` over the message, so any Ethereum tool can make one
(eth_account `sign_message(encode_defunct(text=message))`, ethers `signMessage`):
digest = keccak256("\\x19Ethereum Signed Message:\\n" ‖ decimal byte length ‖ message).

The receiving node checks, in this order, and stops at the first failure:
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
it. What each authenticated agency may then see is `PeerPolicy`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import httpx
from eth_utils.address import to_checksum_address

from ledger.bundle import Bundle, BundleError, load_bundle
from ledger.codes import AGENCY_CODE_PATTERN, RECORD_ID_PATTERN, RECORD_TYPE_PATTERN, decode_code
from ledger.fields import MAX_PATH_BYTES
from ledger.hashing import keccak256
from ledger.receipts import ReceiptError, address_of, recover_signer
from node.chain.client import RevertDecoder, call_view
from node.errors import ContractRevert, NodeError
from node.store import Store, make_key

VERSION = "sijill-peer/1"
PEER_HEADERS = ("Sijill-Agency", "Sijill-Signer", "Sijill-Timestamp", "Sijill-Nonce", "Sijill-Signature")
NONCE_PREFIX = b"peer-nonce/"
"""Store keys `peer-nonce/{signer}/{nonce}` -> {"timestamp": t}: the nonces seen lately."""

PRUNE_EVERY_CALLS = 1000
PRUNE_EVERY_SECONDS = 60.0
MAX_CACHED_SIGNERS = 4096

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,11}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_TARGET = re.compile(r"/[!-~]*")  # printable ASCII, no space: as in an HTTP request line
_HEADER_RULES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "sijill-agency": (AGENCY_CODE_PATTERN, "an agency code such as CSO", "رمز جهة مثل CSO"),
    "sijill-signer": (_ADDRESS, "0x and 40 hex digits", "0x ثم 40 رقمًا ست عشريًا"),
    "sijill-timestamp": (_TIMESTAMP, "unix seconds in decimal", "ثوانٍ منذ 1970 بالنظام العشري"),
    "sijill-nonce": (_NONCE, "32 lower-case hex digits", "32 رقمًا ست عشريًا بأحرف صغيرة"),
    "sijill-signature": (_SIGNATURE, "0x and 130 hex digits", "0x ثم 130 رقمًا ست عشريًا"),
}


class PeerAuthError(NodeError):
    """A peer request refused: the HTTP `status`, a short kebab-case `code`, and what is wrong in
    English and Arabic. The messages say what to fix, never how the node works inside."""

    def __init__(self, status: int, code: str, message_en: str, message_ar: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ar = message_ar


class PeerRequestError(NodeError):
    """A request to another agency's node that did not give what was asked. `status` is the
    HTTP status (None when no answer came), `detail` the problem's detail or what went wrong."""

    def __init__(self, status: int | None, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{detail} (HTTP {status})" if status is not None else detail)
        self.status = status
        self.detail = detail
        self.problem = problem if problem is not None else {}


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who an authenticated peer request came from."""

    agency: str
    signer: str  # lower-case 0x address


def request_target(raw_path: bytes, query_string: bytes = b"") -> str:
    """The request target as signed: the raw path, then '?' and the raw query if there is one
    (ASGI's `scope["raw_path"]` and `scope["query_string"]`)."""
    target = raw_path.decode("ascii", errors="replace")
    return f"{target}?{query_string.decode('ascii', errors='replace')}" if query_string else target


def signing_message(
    *,
    method: str,
    target: str,
    audience: str,
    agency: str,
    signer: str,
    timestamp: int,
    nonce: str,
    body: bytes,
) -> str:
    """The text that is signed (see the module docstring)."""
    lines = (VERSION, method.upper(), target, audience, agency, signer.lower(), str(timestamp), nonce)
    return "\n".join((*lines, hashlib.sha256(body).hexdigest()))


def personal_sign_digest(message: str) -> bytes:
    """The EIP-191 (version 0x45, `personal_sign`) digest of a text message."""
    data = message.encode()
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def sign_request(
    account_key: bytes,
    *,
    method: str,
    path: str,
    audience: str,
    agency: str,
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The five headers for a request to `audience`'s node, signed with `account_key` (the
    caller agency's 32-byte signer key). `path` is the request target exactly as sent."""
    if not _METHOD.fullmatch(method.upper()):
        raise NodeError(f"{method!r} is not an HTTP method")
    if not _TARGET.fullmatch(path):
        raise NodeError(f"{path!r} is not a request target: '/' then printable ASCII without spaces")
    for what, code in (("audience", audience), ("agency", agency)):
        if not AGENCY_CODE_PATTERN.fullmatch(code):
            raise NodeError(f"the {what} {code!r} is not an agency code")
    timestamp = int(time.time()) if timestamp is None else timestamp
    if not _TIMESTAMP.fullmatch(str(timestamp)):
        raise NodeError(f"the timestamp {timestamp!r} is not unix seconds")
    nonce = secrets.token_hex(16) if nonce is None else nonce
    if not _NONCE.fullmatch(nonce):
        raise NodeError("a nonce is 32 lower-case hex digits (16 random bytes)")
    signer = address_of(account_key)
    message = signing_message(
        method=method,
        target=path,
        audience=audience,
        agency=agency,
        signer=signer,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
    )
    signature = coincurve.PrivateKey(account_key).sign_recoverable(personal_sign_digest(message), hasher=None)
    return {
        "Sijill-Agency": agency,
        "Sijill-Signer": signer,
        "Sijill-Timestamp": str(timestamp),
        "Sijill-Nonce": nonce,
        "Sijill-Signature": "0x" + (signature[:64] + bytes([signature[64] + 27])).hex(),
    }


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
        if lower not in _HEADER_RULES:
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
    for lower, (pattern, rule_en, rule_ar) in _HEADER_RULES.items():
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


# ------------------------------------------------------------------------------ sharing policy


class PeerPolicy:
    """What each other agency may see of this agency's records: {peer agency: {record type:
    [JSON Pointer prefixes]}}. Loaded from a JSON file; an agency or type not listed sees nothing (403).

    A prefix allows the field it names and everything under it, by whole segments: "/owners"
    allows "/owners" and "/owners/0/name", not "/ownership"; "" allows every field. A segment
    "*" stands for any one segment, such as every item of a list: "/owners/*/name" allows each
    owner's name and not their national IDs.
    """

    def __init__(self, rules: Mapping[str, Mapping[str, Iterable[str]]] | None = None) -> None:
        """A policy from already-parsed rules; checked as `from_json` checks them."""
        self._rules: dict[str, dict[str, tuple[str, ...]]] = _check_rules(rules if rules is not None else {})

    @classmethod
    def load(cls, path: Path | None) -> PeerPolicy:
        """The policy in the JSON file at `path`; an empty one (nothing shared) when `path` is
        None or there is no such file. `NodeError` naming the file and the problem otherwise."""
        if path is None or not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NodeError(f"cannot read the peer policy {path}: {exc}") from None
        try:
            document = json.loads(text, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise NodeError(f"the peer policy {path} is not valid JSON: {exc}") from None
        try:
            return cls.from_json(document)
        except NodeError as exc:
            raise NodeError(f"the peer policy {path}: {exc}") from None

    @classmethod
    def from_json(cls, obj: Any) -> PeerPolicy:
        """A policy from its JSON document; `NodeError` naming the first thing wrong."""
        return cls(obj)

    def may_see(self, peer: str, record_type: str) -> bool:
        """Whether `peer` may see any record of `record_type` (asked before the store is)."""
        return record_type in self._rules.get(peer, {})

    def visible_paths(self, peer: str, record_type: str, paths: Iterable[str]) -> list[str] | None:
        """None if `peer` may not see records of `record_type` at all; else those of `paths` that
        are equal to or under one of its allowed prefixes, in the order given."""
        prefixes = self._rules.get(peer, {}).get(record_type)
        if prefixes is None:
            return None
        if "" in prefixes:
            return list(paths)
        return [p for p in paths if any(_under(p, pre) for pre in prefixes)]

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """The JSON document of the policy."""
        return {
            peer: {kind: list(prefixes) for kind, prefixes in types.items()}
            for peer, types in self._rules.items()
        }


def _check_rules(rules: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(rules, Mapping):
        raise NodeError("a peer policy is an object: {agency code: {record type: [field pointers]}}")
    checked: dict[str, dict[str, tuple[str, ...]]] = {}
    for peer, types in rules.items():
        if not isinstance(peer, str) or not AGENCY_CODE_PATTERN.fullmatch(peer):
            raise NodeError(f"{peer!r} is not an agency code (an upper-case letter, then A-Z, 0-9, _ or -)")
        if not isinstance(types, Mapping):
            raise NodeError(f"{peer}: expected an object {{record type: [field pointers]}}")
        checked[peer] = {}
        for kind, prefixes in types.items():
            if not isinstance(kind, str) or not RECORD_TYPE_PATTERN.fullmatch(kind):
                raise NodeError(
                    f"{peer}: {kind!r} is not a record type (a lower-case letter, then a-z, 0-9, _ or -)"
                )
            if isinstance(prefixes, str | bytes) or not isinstance(prefixes, Iterable):
                raise NodeError(f"{peer}.{kind}: expected a list of field pointers")
            checked[peer][kind] = tuple(_check_pointer(p, f"{peer}.{kind}") for p in prefixes)
    return checked


def _under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or under it, by whole segments, "*" matching any one segment."""
    if "*" not in prefix:
        return path == prefix or path.startswith(prefix + "/")
    wanted = prefix[1:].split("/")
    segments = path[1:].split("/")
    return len(segments) >= len(wanted) and all(w in ("*", s) for w, s in zip(wanted, segments, strict=False))


def _check_pointer(pointer: Any, where: str) -> str:
    if not isinstance(pointer, str):
        raise NodeError(f"{where}: {pointer!r} is not a field pointer (text)")
    if pointer == "":
        return pointer
    problem = None
    if not pointer.startswith("/"):
        problem = "must start with '/' (or be \"\" for every field)"
    elif len(pointer.encode()) > MAX_PATH_BYTES:
        problem = f"is longer than {MAX_PATH_BYTES} bytes"
    elif "" in pointer[1:].split("/"):
        problem = "has an empty segment (no '//' and no trailing '/')"
    elif re.search(r"~(?![01])", pointer):
        problem = "has a '~' that is not ~0 or ~1"
    if problem is not None:
        raise NodeError(f"{where}: field pointer {pointer!r} {problem}")
    return pointer


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [k for k, _ in pairs]
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice in one object")
    return result


# ------------------------------------------------------------------------------ client


class PeerClient:
    """Signs and sends requests to another agency's node API (httpx).

    `agency` is this node's agency and `account_key` its signer key; `audience` is the agency
    whose node is at `base_url`."""

    def __init__(
        self, base_url: str, *, agency: str, audience: str, account_key: bytes, timeout: float = 10.0
    ) -> None:
        for what, code in (("agency", agency), ("audience", audience)):
            if not AGENCY_CODE_PATTERN.fullmatch(code):
                raise NodeError(f"the {what} {code!r} is not an agency code")
        self.agency = agency
        self.audience = audience
        self._key = account_key
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def request(self, method: str, path: str, *, body: bytes = b"") -> httpx.Response:
        """Send a signed request; the signature covers the target as httpx puts it on the wire."""
        request = self._http.build_request(method, path, content=body)
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            sign_request(
                self._key, method=method, path=target, audience=self.audience, agency=self.agency, body=body
            )
        )
        try:
            return self._http.send(request)
        except httpx.HTTPError as exc:
            raise PeerRequestError(
                None,
                f"the {self.audience} node at {self._http.base_url} did not answer: {type(exc).__name__}",
            ) from exc

    def get(self, path: str) -> httpx.Response:
        """A signed GET of `path` (with its query string, if any)."""
        return self.request("GET", path)

    def fetch_bundle(self, record_type: str, record_id: str) -> Bundle:
        """The proof bundle of a record of the called agency, as its policy lets this agency see
        it. Checked to be a well-formed bundle of that very record; verify it against the chain
        (`ledger.verify`) before relying on it."""
        if not RECORD_TYPE_PATTERN.fullmatch(record_type) or not RECORD_ID_PATTERN.fullmatch(record_id):
            raise NodeError(f"{record_type!r}/{record_id!r} is not a record type and id")
        response = self.get(f"/v1/peer/records/{record_type}/{record_id}/bundle")
        if response.status_code != 200:
            problem = _problem(response)
            detail = problem.get("detail")
            raise PeerRequestError(
                response.status_code,
                str(detail) if isinstance(detail, str) and detail else response.reason_phrase,
                problem,
            )
        try:
            bundle = load_bundle(response.content)
        except BundleError as exc:
            raise PeerRequestError(200, f"the {self.audience} node sent an invalid bundle: {exc}") from None
        if (bundle.agency, bundle.record_type, bundle.record_id) != (self.audience, record_type, record_id):
            raise PeerRequestError(
                200,
                f"the {self.audience} node sent the bundle of {bundle.agency} {bundle.record_type} "
                f"{bundle.record_id}, not of the record asked for",
            )
        return bundle

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 problem document of an error response ({} if it has none)."""
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
