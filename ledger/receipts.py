"""Intake receipts: the agency's signed promise, given before its record is anchored.

When a node accepts a record it signs, with the agency's signer key, an EIP-712 typed-data
message over the record's leaf and a deadline by which the leaf will be anchored. An auditor can
later show any receipt that was not honoured. The types and domain are those of the
`RecordLedger` contract, which can check a receipt itself (`receiptDigest`, `receiptSigner`):

    domain:  EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
             name "Sijill RecordLedger", version "1", the chain id, the RecordLedger address
    message: Receipt(bytes32 agency,bytes32 recordType,bytes32 recordId,uint32 version,
                     bytes32 leaf,uint64 intakeTime,uint64 anchorBy)

agency, recordType and recordId are the zero-padded short codes of `ledger.codes`; times are
unix seconds. Any EIP-712 implementation (eth_account, ethers `verifyTypedData`) recovers the
signer from these; this module computes the digest directly and signs and recovers with
libsecp256k1 (coincurve), because receipts are on the hot path of intake and verification.
Signatures are 65 bytes r ‖ s ‖ v with v 27 or 28 and a low s, as OpenZeppelin's ECDSA requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from ledger.codes import agency_code, record_id, record_type
from ledger.errors import LedgerError
from ledger.hashing import keccak256

DOMAIN_NAME = "Sijill RecordLedger"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
RECEIPT_TYPE = (
    "Receipt(bytes32 agency,bytes32 recordType,bytes32 recordId,uint32 version,bytes32 leaf,"
    "uint64 intakeTime,uint64 anchorBy)"
)
DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE.encode())
RECEIPT_TYPEHASH = keccak256(RECEIPT_TYPE.encode())

# secp256k1 group order; a signature's s must be at most half of it (no malleable twins).
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _N // 2


class ReceiptError(LedgerError):
    """A receipt or signature that is malformed or does not verify."""


@dataclass(frozen=True, slots=True)
class ReceiptDomain:
    """The EIP-712 domain: which chain and which RecordLedger the receipt is for."""

    chain_id: int
    ledger: str  # 0x-prefixed address of the RecordLedger

    def separator(self) -> bytes:
        return _domain_separator(self.chain_id, self.ledger.lower())


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the agency signs at intake."""

    agency: str
    record_type: str
    record_id: str
    version: int
    leaf: bytes
    intake_time: int
    anchor_by: int

    def struct_hash(self) -> bytes:
        if len(self.leaf) != 32:
            raise ReceiptError("a receipt's leaf is 32 bytes")
        if not 0 < self.version < 2**32:
            raise ReceiptError(f"a receipt's version is 1 to 2^32-1, got {self.version}")
        if not 0 <= self.intake_time <= self.anchor_by < 2**64:
            raise ReceiptError("a receipt needs 0 <= intakeTime <= anchorBy < 2^64")
        return keccak256(
            _typehash_and_codes(self.agency, self.record_type)
            + record_id(self.record_id)
            + self.version.to_bytes(32, "big")
            + self.leaf
            + self.intake_time.to_bytes(32, "big")
            + self.anchor_by.to_bytes(32, "big")
        )


def receipt_digest(receipt: Receipt, domain: ReceiptDomain) -> bytes:
    """The EIP-712 digest the signer signs: keccak256(0x1901 ‖ domainSeparator ‖ structHash)."""
    return keccak256(b"\x19\x01" + domain.separator() + receipt.struct_hash())


_codes: dict[tuple[str, str], bytes] = {}


def _typehash_and_codes(agency: str, kind: str) -> bytes:
    """`RECEIPT_TYPEHASH ‖ agency ‖ recordType`: the same few on every receipt, so kept."""
    if type(agency) is not str or type(kind) is not str:  # agency_code and record_type say why
        return RECEIPT_TYPEHASH + agency_code(agency) + record_type(kind)
    cached = _codes.get((agency, kind))
    if cached is None:
        cached = RECEIPT_TYPEHASH + agency_code(agency) + record_type(kind)
        if len(_codes) < 1024:
            _codes[(agency, kind)] = cached
    return cached


class ReceiptSigner:
    """Signs receipts with one key, keeping the parsed libsecp256k1 key (intake's hot path)."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(private_key)

    def sign(self, receipt: Receipt, domain: ReceiptDomain) -> bytes:
        """A 65-byte signature (r ‖ s ‖ v, v in {27, 28}) of the receipt."""
        signature = self._key.sign_recoverable(receipt_digest(receipt, domain), hasher=None)
        return signature[:64] + bytes([signature[64] + 27])


def sign_receipt(receipt: Receipt, domain: ReceiptDomain, private_key: bytes) -> bytes:
    """A 65-byte signature (r ‖ s ‖ v, v in {27, 28}) of the receipt."""
    signature = coincurve.PrivateKey(private_key).sign_recoverable(
        receipt_digest(receipt, domain), hasher=None
    )
    return signature[:64] + bytes([signature[64] + 27])


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The address (0x + 40 lower-case hex) that signed `digest`; `ReceiptError` if none can."""
    if len(signature) != 65:
        raise ReceiptError(f"a signature is 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (27, 28):
        raise ReceiptError(f"signature v must be 27 or 28, got {v}")
    if int.from_bytes(signature[32:64], "big") > _HALF_N:
        raise ReceiptError("signature s is in the upper half of the curve order (malleable)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception/ValueError for bad points
        raise ReceiptError(f"signature does not recover a key: {exc}") from None
    return "0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex()


def recover_receipt_signer(receipt: Receipt, domain: ReceiptDomain, signature: bytes) -> str:
    """The address that signed the receipt (lower-case hex)."""
    return recover_signer(receipt_digest(receipt, domain), signature)


def address_of(private_key: bytes) -> str:
    """The address (lower-case hex) of a private key."""
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return "0x" + keccak256(public)[-20:].hex()


_separators: dict[tuple[int, str], bytes] = {}


def _domain_separator(chain_id: int, ledger: str) -> bytes:
    cached = _separators.get((chain_id, ledger))
    if cached is None:
        address = bytes.fromhex(ledger.removeprefix("0x"))
        if len(address) != 20:
            raise ReceiptError(f"the ledger address {ledger!r} is not 20 bytes")
        cached = keccak256(
            DOMAIN_TYPEHASH
            + keccak256(DOMAIN_NAME.encode())
            + keccak256(DOMAIN_VERSION.encode())
            + chain_id.to_bytes(32, "big")
            + address.rjust(32, b"\0")
        )
        if len(_separators) < 64:
            _separators[(chain_id, ledger)] = cached
    return cached
