"""Short codes: how agencies and record types are named on-chain.

The contracts key agencies and record types by `bytes32`. A code is short ASCII text,
left-aligned and zero-padded to 32 bytes, exactly as `ethers.encodeBytes32String` and
Solidity's `bytes32("title")` lay it out, so a code reads the same in every tool.

- Agency codes are upper case: a letter, then letters, digits, `_` or `-` (2 to 31 bytes),
  e.g. `REPD`, `CSO`, `CRA`.
- Record types are lower case: a letter, then letters, digits, `_` or `-` (1 to 31 bytes),
  e.g. `title`, `marriage`, `commercial`. The set is open: the council allows new types.

Record ids use the same layout: 1 to 31 characters of A-Z, a-z, 0-9, `_` or `-`, starting
with a letter or digit (a ULID fits). An id never carries personal data: the node assigns it.

At most 31 bytes, so the last byte of the word is always zero and a code never fills it.

An agency also has a display name in the registry, public and shown to citizens (the verify
page, the certificate): by convention "Arabic / English", e.g. "مصلحة السجل التجاري / Commercial
Registry Authority". It is text like a record's (`agency_name`): put in canonical form
(`normalize_text`: NFC, tatweel and invisible direction marks removed, white space collapsed),
then refused if it holds a character canonical text may not hold (a direction override could
make one agency's name read as another's), or if it is empty or over 128 bytes of UTF-8 (the
registry's own limit, `InvalidAgencyName` in the contract). The code, not the name, is what
every check relies on.
"""

import re
from typing import NewType

from ledger.canonical import normalize_text, refused_character
from ledger.errors import InvalidAgencyName, InvalidCode

Bytes32 = NewType("Bytes32", bytes)

AGENCY_CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_-]{1,30}")
RECORD_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,30}")
RECORD_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}")

#: The most bytes of UTF-8 an agency name may take (AgencyRegistry's limit).
AGENCY_NAME_MAX_BYTES = 128

#: The record types the registries in scope keep; the contracts accept any valid type.
KNOWN_RECORD_TYPES = ("title", "marriage", "commercial")


def agency_code(code: str) -> Bytes32:
    """The bytes32 form of an agency code, or `InvalidCode` naming the rule broken."""
    return _encode(code, AGENCY_CODE_PATTERN, "agency code", "an upper-case letter then A-Z, 0-9, _ or -")


def record_type(name: str) -> Bytes32:
    """The bytes32 form of a record type, or `InvalidCode` naming the rule broken."""
    return _encode(name, RECORD_TYPE_PATTERN, "record type", "a lower-case letter then a-z, 0-9, _ or -")


def record_id(text: str) -> Bytes32:
    """The bytes32 form of a record id, or `InvalidCode` naming the rule broken."""
    return _encode(text, RECORD_ID_PATTERN, "record id", "a letter or digit then A-Z, a-z, 0-9, _ or -")


def agency_name(text: str) -> str:
    """An agency's display name in canonical form, or `InvalidAgencyName` naming what is wrong.

    The name is normalised as record text is; a name holding a refused character is refused,
    naming the code point, and so is one empty or over `AGENCY_NAME_MAX_BYTES` once normalised."""
    if not isinstance(text, str):
        raise InvalidAgencyName(f"an agency name must be text, got {type(text).__name__}")
    name = normalize_text(text)
    refused = refused_character(name)
    if refused is not None:
        raise InvalidAgencyName(
            f"the agency name holds {refused.description}; remove it (an agency name is shown to "
            "citizens as it is)"
        )
    size = len(name.encode())
    if not 1 <= size <= AGENCY_NAME_MAX_BYTES:
        raise InvalidAgencyName(
            f"the agency name is {size} bytes long once normalised: 1 to {AGENCY_NAME_MAX_BYTES} "
            "bytes of UTF-8 are allowed"
        )
    return name


def decode_code(word: bytes) -> str:
    """The text of a bytes32 code (agency or record type); `InvalidCode` if it is not one."""
    if len(word) != 32:
        raise InvalidCode(f"a code is 32 bytes, got {len(word)}")
    text = word.rstrip(b"\0")
    if b"\0" in text or not text:
        raise InvalidCode(f"0x{word.hex()} is not a zero-padded code")
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidCode(f"0x{word.hex()} is not ASCII") from None
    if not (AGENCY_CODE_PATTERN.fullmatch(decoded) or RECORD_TYPE_PATTERN.fullmatch(decoded)):
        raise InvalidCode(f"{decoded!r} is neither an agency code nor a record type")
    return decoded


def _encode(text: str, pattern: re.Pattern[str], what: str, rule: str) -> Bytes32:
    if not isinstance(text, str):
        raise InvalidCode(f"{what} must be text, got {type(text).__name__}")
    if not pattern.fullmatch(text):
        raise InvalidCode(f"{what} {text!r} is invalid: it must be {rule}, at most 31 characters")
    return Bytes32(text.encode("ascii").ljust(32, b"\0"))
