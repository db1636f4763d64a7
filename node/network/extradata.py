"""The QBFT extraData codec: the RLP list in every QBFT block header naming the validators.

`encode_qbft_extra_data` writes it exactly as Besu's QbftExtraDataCodec does (the genesis holds
one with the validators only) and `decode_qbft_extra_data` reads it as strictly; docs/besu.md,
"The genesis", and tests/python/test_besu_network.py check both against Besu's own bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address

VANITY_LENGTH = 32


@dataclass(frozen=True, slots=True)
class QbftExtraData:
    """The fields of a QBFT block's extraData, as Besu's QbftExtraDataCodec reads them.

    `vote` is (recipient, add?) or None; `seals` are 65-byte signatures (r, s, recovery id)."""

    vanity: bytes
    validators: tuple[str, ...]
    vote: tuple[str, bool] | None = None
    round: int = 0
    seals: tuple[bytes, ...] = field(default=())


def encode_qbft_extra_data(
    validators: Sequence[str],
    vanity: bytes = b"\0" * VANITY_LENGTH,
    *,
    vote: tuple[str, bool] | None = None,
    round_number: int = 0,
    seals: Sequence[bytes] = (),
) -> bytes:
    """RLP([vanity, [validators], vote, round, [seals]]) exactly as Besu encodes QBFT extraData.

    Mirrors QbftExtraDataCodec.encode (hyperledger/besu, consensus/qbft): the vanity as bytes,
    each validator as its 20 address bytes, no vote as an empty list (a vote is
    [recipient, 0xff to add | empty to drop]), the round with `writeIntScalar` (minimal
    big-endian bytes, so round 0 is the empty string 0x80) and the seals as a list of byte
    strings. A genesis has validators only: `RLP([32 zero bytes, [addresses], [], 0, []])`.
    """
    if len(vanity) != VANITY_LENGTH:
        raise ValueError(f"the vanity is {VANITY_LENGTH} bytes, got {len(vanity)}")
    if round_number < 0 or round_number >= 2**31:
        raise ValueError(f"a round is a non-negative Java int, got {round_number}")
    encoded_vote: list[bytes] = []
    if vote is not None:
        encoded_vote = [_address_bytes(vote[0]), b"\xff" if vote[1] else b""]
    for seal in seals:
        if len(seal) != 65:
            raise ValueError(f"a seal is 65 bytes (r, s, recovery id), got {len(seal)}")
    item = [bytes(vanity), [_address_bytes(v) for v in validators], encoded_vote, round_number, list(seals)]
    encoded: bytes = rlp.encode(item)
    return encoded


def decode_qbft_extra_data(data: bytes | str) -> QbftExtraData:
    """The fields of QBFT extraData (bytes or 0x-hex); `ValueError` if Besu would not read it.

    As strict as QbftExtraDataCodec.decodeRaw: canonical RLP with nothing after the list, a
    32-byte vanity, 20-byte validators, a vote that is an empty list or [address, 0xff | empty],
    a scalar round without leading zero bytes, and 65-byte seals."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if not raw:
        raise ValueError("extraData is empty (QBFT needs its RLP list)")
    try:
        items = rlp.decode(raw, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"extraData is not canonical RLP: {exc}") from None
    if not isinstance(items, list) or len(items) != 5:
        raise ValueError("QBFT extraData is a list of 5 items: vanity, validators, vote, round, seals")
    vanity, validators, vote, round_bytes, seals = items
    if not isinstance(vanity, bytes) or len(vanity) != VANITY_LENGTH:
        raise ValueError(f"the vanity must be {VANITY_LENGTH} bytes")
    if not isinstance(validators, list) or any(not isinstance(v, bytes) or len(v) != 20 for v in validators):
        raise ValueError("the validators must be a list of 20-byte addresses")
    decoded_vote: tuple[str, bool] | None = None
    if not isinstance(vote, list):
        raise ValueError("the vote must be a list (empty for no vote)")
    if vote:
        if (
            len(vote) != 2
            or not isinstance(vote[0], bytes)
            or len(vote[0]) != 20
            or vote[1] not in (b"", b"\xff")
        ):
            raise ValueError("a vote is [20-byte address, 0xff (add) or empty (drop)]")
        decoded_vote = (to_checksum_address(vote[0]), vote[1] == b"\xff")
    if not isinstance(round_bytes, bytes) or len(round_bytes) > 4 or round_bytes[:1] == b"\0":
        raise ValueError("the round must be a scalar of at most 4 bytes without leading zeros")
    if not isinstance(seals, list) or any(not isinstance(s, bytes) or len(s) != 65 for s in seals):
        raise ValueError("the seals must be a list of 65-byte signatures")
    return QbftExtraData(
        vanity=vanity,
        validators=tuple(to_checksum_address(v) for v in validators),
        vote=decoded_vote,
        round=int.from_bytes(round_bytes, "big"),
        seals=tuple(seals),
    )


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(to_checksum_address(address)[2:])
