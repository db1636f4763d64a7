"""Canonical form: the one byte string each value hashes as.

A record is stored, hashed and shown in its canonical form, computed once at intake, so that the
same record typed on any keyboard hashes the same and a verifier never has to guess how a value
was written. Two layers:

1. Text normalisation (`normalize_text`), applied to every string of a record at intake, in
   this order (docs/proof-bundle.md, "Canonical text", lists the exact code points):
   - Arabic tatweel (U+0640) removed: it only stretches a word on screen;
   - invisible format characters removed: zero-width space/joiners (U+200B-U+200D), the byte
     order mark (U+FEFF), and the direction marks LRM, RLM and ALM (U+200E, U+200F, U+061C),
     which editors insert around mixed Arabic/Latin text;
   - Persian keyboard letters mapped to their Arabic forms: keheh U+06A9 -> kaf U+0643, Farsi
     yeh U+06CC -> yeh U+064A (a Persian or Urdu layout types these for the same letter);
   - Arabic-Indic (U+0660-U+0669) and extended Arabic-Indic (U+06F0-U+06F9) digits -> ASCII 0-9;
   - Unicode NFC, after those (which can leave a letter beside a mark it composes with);
   - whitespace: any run of Unicode white space becomes one space, and the ends are trimmed.
   What is *not* folded, on purpose: hamza forms of alef (أ إ آ ا), taa marbuta and haa (ة ه),
   alef maqsura and yeh (ى ي). These are spellings, and in an official record a different
   spelling of a name is a difference a clerk must see, not a keyboard accident.
2. JSON canonicalisation (RFC 8785, JCS), the serialisation of every hashed value. Records hold
   no floating-point numbers: decimals (areas, capital) are canonical decimal strings and shares
   are fractions, so no value depends on binary floating point.

`is_canonical_text` lets a verifier insist that a disclosed value is already canonical, so that
no two different byte strings can verify as the same field.
"""

import json
import re
import unicodedata
from typing import Any

import rfc8785

from ledger.errors import LedgerError

_REMOVED = dict.fromkeys(map(ord, "\u0640\u200b\u200c\u200d\ufeff\u200e\u200f\u061c"))
_MAPPED = {
    0x06A9: "\u0643",  # keheh -> kaf
    0x06CC: "\u064a",  # farsi yeh -> yeh
    **{0x0660 + i: str(i) for i in range(10)},
    **{0x06F0 + i: str(i) for i in range(10)},
}
_TRANSLATE = {**_REMOVED, **_MAPPED}
_WHITESPACE = re.compile(r"\s+")
_MAX_EXACT = 2**53 - 1
_dumps_str = json.JSONEncoder(ensure_ascii=False).encode


class NotCanonical(LedgerError):
    """A value that cannot be put in canonical form (e.g. a float, a non-string key)."""


def normalize_text(text: str) -> str:
    """The canonical form of a piece of text (see the module docstring)."""
    # NFC after the removals and mappings, not before: a removed tatweel or joiner, or a Farsi yeh
    # mapped to yeh, can leave a letter beside a mark it composes with (yeh + hamza above is
    # U+0626), and the result must already be NFC, or the record it is stored in never verifies.
    text = unicodedata.normalize("NFC", text.translate(_TRANSLATE))
    return _WHITESPACE.sub(" ", text).strip()


def is_canonical_text(text: str) -> bool:
    """Whether `text` is already in canonical form."""
    return normalize_text(text) == text


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value made of str, int, bool, None, lists and str-keyed dicts.

    Scalars, the hot path of field hashing, take a fast path: for a string, Python's
    `json.dumps(..., ensure_ascii=False)` escapes exactly what RFC 8785 escapes (quote,
    backslash, control characters, with lower-case `\\u00xx`) and nothing else; a test checks
    the two agree on arbitrary text. Everything else goes through the `rfc8785` package.
    """
    kind = type(value)
    if kind is str:
        try:
            return _dumps_str(value).encode()
        except UnicodeEncodeError:
            raise NotCanonical("text with a lone surrogate is not valid Unicode") from None
    if kind is int and -_MAX_EXACT <= value <= _MAX_EXACT:
        return str(value).encode()
    if value is None or kind is bool:
        return b"null" if value is None else (b"true" if value else b"false")
    _check(value)
    return rfc8785.dumps(value)


def _check(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_EXACT:
            raise NotCanonical(f"integer {value} is outside the exact JSON range (±2^53-1); use a string")
        return
    if isinstance(value, float):
        raise NotCanonical(f"floating-point value {value!r}: records use decimal strings instead")
    if isinstance(value, list):
        for item in value:
            _check(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"object key {key!r} is not a string")
            _check(item)
        return
    raise NotCanonical(f"{type(value).__name__} is not a JSON value")


# ------------------------------------------------------------------------ hostile JSON

SAFE_OPENERS = 256
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit`: check before json.loads.

    Text with fewer than SAFE_OPENERS brackets cannot nest deep enough to matter and is not
    scanned (the hot path)."""
    return raw.count(b"[") + raw.count(b"{") > SAFE_OPENERS and nesting_depth(raw, limit) > limit


def nesting_depth(raw: bytes, limit: int) -> int:
    """How deeply arrays and objects nest, outside string values; limit + 1 if deeper.

    json.loads recurses in C once per level, bounded only by the interpreter's recursion limit,
    and a dependency of eth-account (py_ecc) raises that limit to 100,000 at import: a hostile
    `[[[[...` then overflows the C stack and kills the process. So depth is checked first, with
    byte operations only: drop escape pairs, cut out string contents, keep the brackets, and
    peel matched innermost pairs one level per round.
    """
    outside = b"".join(raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = _NOT_BRACKETS.sub(b"", outside)
    for depth in range(limit + 1):
        if not brackets:
            return depth
        peeled = _INNERMOST_PAIR.sub(b"", brackets)
        if peeled == brackets:  # unbalanced or mismatched: json.loads rejects it if it is short
            return depth if len(brackets) <= limit else limit + 1
        brackets = peeled
    return limit + 1
