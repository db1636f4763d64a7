"""The signed request between agencies' nodes: its wire format, and signing one.

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

The receiving node checks such a request (node/peer/auth.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import coincurve

from ledger.codes import AGENCY_CODE_PATTERN
from ledger.hashing import keccak256
from ledger.receipts import address_of
from node.errors import NodeError

VERSION = "sijill-peer/1"
PEER_HEADERS = ("Sijill-Agency", "Sijill-Signer", "Sijill-Timestamp", "Sijill-Nonce", "Sijill-Signature")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,11}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_TARGET = re.compile(r"/[!-~]*")  # printable ASCII, no space: as in an HTTP request line
HEADER_RULES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "sijill-agency": (AGENCY_CODE_PATTERN, "an agency code such as CSO", "رمز جهة مثل CSO"),
    "sijill-signer": (_ADDRESS, "0x and 40 hex digits", "0x ثم 40 رقمًا ست عشريًا"),
    "sijill-timestamp": (_TIMESTAMP, "unix seconds in decimal", "ثوانٍ منذ 1970 بالنظام العشري"),
    "sijill-nonce": (_NONCE, "32 lower-case hex digits", "32 رقمًا ست عشريًا بأحرف صغيرة"),
    "sijill-signature": (_SIGNATURE, "0x and 130 hex digits", "0x ثم 130 رقمًا ست عشريًا"),
}


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
