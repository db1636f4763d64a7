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

Text normalisation never refuses anything; the characters it cannot make harmless are refused
instead (`refused_character`), at intake and by every verifier. They are characters that make
text look different from what is stored, or that have no meaning outside one system:
- bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
  reorder what is shown, so a name or a number displays differently from what was anchored
  ("Trojan Source", CVE-2021-42574). The direction *marks* above are removed instead: they
  only nudge neutral characters, and editors insert them on their own;
- every other format character (Unicode category Cf) and every other default-ignorable code
  point (drawn as nothing: soft hyphen U+00AD, word joiner and the invisible operators
  U+2060-U+2064, variation selectors, the combining grapheme joiner U+034F, Hangul fillers,
  tags U+E0000-U+E0FFF...), and the visible format marks no registry value needs (Arabic
  number signs U+0600-U+0605 and U+0890-U+0891, end of ayah U+06DD and U+08E2, interlinear
  annotation U+FFF9-U+FFFB...). A name that differs from another only by an invisible
  character would hash differently and look the same; a clerk retypes it instead;
- control characters (Cc) that white-space folding does not turn into a space;
- lone surrogates (Cs), private-use characters (Co) and noncharacters: no two systems agree on
  what they show, or they are not characters at all.

These classes are written out below (`REFUSED_RANGES`), as of Unicode 17.0, so that every
verifier refuses the same code points whatever its own Unicode version; a test checks them
against this Python's database, and the JavaScript verifier has the same table.
Intake also refuses code points unassigned in its Unicode database (`unicodedata`, 14.0.0 in
Python 3.11): what NFC does to them is not fixed until they are assigned. A verifier does not
refuse those, since which code points are assigned depends on its own version.

`is_canonical_text` lets a verifier insist that a disclosed value is already canonical (normalised,
and none of the characters above), so that no two different byte strings can verify as the same
field and no disclosed value displays as something other than what it is.
"""

import bisect
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

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
MAX_EXACT_INTEGER = _MAX_EXACT = 2**53 - 1  # the largest integer JSON carries exactly
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
    """Whether `text` is already in canonical form: normalised, and holding no character of
    `REFUSED_RANGES` (unassigned code points are not refused here: see the module docstring).

    A verifier asks this of every disclosed text, so nearly all text takes the fast path of
    `plainly_canonical`; anything else is checked in full (`is_canonical_text_reference`); a test
    compares the two on every code point."""
    return plainly_canonical(text) or is_canonical_text_reference(text)


def plainly_canonical(text: str) -> bool:
    """Whether `text` is certainly canonical and refused by nothing, told without normalising it:
    printable text (str.isprintable: no white space but U+0020, and no control, format,
    surrogate, private-use or unassigned code point) that holds no character normalisation
    removes or maps and none of the printable refused ones, is already NFC, and has no doubled,
    leading or trailing space. Nearly all text of a record is such text; False only means "check
    it in full". Intake's text rules (`ledger.records`) and `is_canonical_text` both start here."""
    return (
        type(text) is str
        and text.isprintable()
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
        and (
            text.isascii()
            or (_PRINTABLE_CHANGED.search(text) is None and unicodedata.is_normalized("NFC", text))
        )
    )


def is_canonical_text_reference(text: str) -> bool:
    """`is_canonical_text` by its definition: normalising changes nothing, nothing is refused."""
    return normalize_text(text) == text and not _holds_refused(text)


# ------------------------------------------------------------------------ refused characters

RefusedKind = Literal["control", "bidi", "format", "surrogate", "private-use", "noncharacter", "unassigned"]

#: The code points canonical text may not hold, as (first, last, kind), sorted; see the module
#: docstring. Format and default-ignorable code points are those of Unicode 17.0 (U+13439-U+1343F
#: were assigned in 15.0, after this Python's database; intake refuses them as unassigned anyway).
REFUSED_RANGES: tuple[tuple[int, int, RefusedKind], ...] = tuple(
    sorted(
        [
            (0x0000, 0x0008, "control"),  # U+0009-U+000D are white space: folded to a space
            (0x000E, 0x001B, "control"),  # U+001C-U+001F are white space too (Python's str.isspace)
            (0x007F, 0x0084, "control"),
            (0x0086, 0x009F, "control"),  # U+0085 (next line) is white space
            (0x00AD, 0x00AD, "format"),  # soft hyphen
            (0x034F, 0x034F, "format"),  # combining grapheme joiner
            (0x0600, 0x0605, "format"),  # Arabic number signs (span the digits that follow)
            (0x06DD, 0x06DD, "format"),  # Arabic end of ayah
            (0x070F, 0x070F, "format"),  # Syriac abbreviation mark
            (0x0890, 0x0891, "format"),  # Arabic pound and piastre marks above
            (0x08E2, 0x08E2, "format"),  # Arabic disputed end of ayah
            (0x115F, 0x1160, "format"),  # Hangul choseong and jungseong fillers
            (0x17B4, 0x17B5, "format"),  # Khmer inherent vowels
            (0x180B, 0x180F, "format"),  # Mongolian free variation selectors, vowel separator
            (0x202A, 0x202E, "bidi"),  # LRE, RLE, PDF, LRO, RLO
            (0x2060, 0x2065, "format"),  # word joiner, invisible operators, (reserved, ignorable)
            (0x2066, 0x2069, "bidi"),  # LRI, RLI, FSI, PDI
            (0x206A, 0x206F, "format"),  # deprecated: symmetric swapping, Arabic shaping, digit shapes
            (0x3164, 0x3164, "format"),  # Hangul filler
            (0xD800, 0xDFFF, "surrogate"),
            (0xE000, 0xF8FF, "private-use"),
            (0xFDD0, 0xFDEF, "noncharacter"),
            (0xFE00, 0xFE0F, "format"),  # variation selectors
            (0xFFA0, 0xFFA0, "format"),  # halfwidth Hangul filler
            (0xFFF0, 0xFFF8, "format"),  # reserved, default-ignorable
            (0xFFF9, 0xFFFB, "format"),  # interlinear annotation anchor, separator, terminator
            (0x110BD, 0x110BD, "format"),  # Kaithi number sign
            (0x110CD, 0x110CD, "format"),  # Kaithi number sign above
            (0x13430, 0x1343F, "format"),  # Egyptian hieroglyph format controls
            (0x1BCA0, 0x1BCA3, "format"),  # shorthand format controls
            (0x1D173, 0x1D17A, "format"),  # musical symbol beams, ties, slurs, phrases
            (0xE0000, 0xE0FFF, "format"),  # tags, variation selectors supplement, reserved
            (0xF0000, 0xFFFFD, "private-use"),
            (0x100000, 0x10FFFD, "private-use"),
            # The last two code points of every plane.
            *((plane << 16 | 0xFFFE, plane << 16 | 0xFFFF, "noncharacter") for plane in range(17)),
        ]
    )
)
_REFUSED_FIRSTS = [first for first, _, _ in REFUSED_RANGES]

#: What each class of refused character is, in English and Arabic (the module docstring says why
#: each is refused), for messages that name one.
REFUSED_KIND_TEXT: Mapping[RefusedKind, tuple[str, str]] = {
    "control": ("a control character", "محرف تحكم"),
    "bidi": (
        "a bidirectional embedding, override or isolate: it makes text display in another order "
        "than it is stored",
        "محرف تحكم في اتجاه الكتابة (تضمين أو تجاوز أو عزل) يجعل النص يظهر بترتيب غير الذي حُفظ به",
    ),
    "format": (
        "a format or invisible character: it changes how text looks, or is not seen at all",
        "محرف تنسيق أو محرف غير مرئي يغيّر شكل النص أو لا يظهر أصلًا",
    ),
    "surrogate": (
        "half of a UTF-16 surrogate pair, not a character",
        "نصف زوج بديل في ترميز UTF-16 وليس محرفًا",
    ),
    "private-use": (
        "a private-use character, with no agreed meaning outside the system that made it",
        "محرف للاستخدام الخاص لا معنى متفقًا عليه له خارج النظام الذي أنتجه",
    ),
    "noncharacter": ("a Unicode noncharacter", "رمز محجوز في يونيكود لا يمثل محرفًا"),
    "unassigned": (
        f"a code point not assigned in Unicode {unicodedata.unidata_version}",
        f"رمز غير مُعرَّف في يونيكود {unicodedata.unidata_version}",
    ),
}


def _character_class(code_points: list[int]) -> re.Pattern[str]:
    """A regular expression matching any of `code_points` (sorted), written as ranges."""
    ranges: list[list[int]] = []
    for c in code_points:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


_REFUSED = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b, _ in REFUSED_RANGES) + "]")
# The few code points of the table that str.isprintable() passes (default-ignorable marks and
# letters: variation selectors, Hangul fillers...). Every other one is a control, format,
# surrogate, private-use or unassigned code point, which str.isprintable() fails (white space
# too, but normalised text has none but U+0020). Text that is printable and holds none of these
# holds nothing of the table: the fast path, ten times faster than searching for the table.
_PRINTABLE_REFUSED = _character_class(
    [c for a, b, kind in REFUSED_RANGES if kind == "format" for c in range(a, b + 1) if chr(c).isprintable()]
)


# What can make printable text not canonical, besides white space and NFC: the printable code
# points normalisation removes or maps (tatweel, keheh, Farsi yeh, Arabic-Indic digits; the
# others it removes are format characters, which are not printable) and the printable refused ones.
_PRINTABLE_CHANGED = _character_class(
    sorted(
        {c for c in _TRANSLATE if chr(c).isprintable()}
        | {
            c
            for a, b, kind in REFUSED_RANGES
            if kind == "format"
            for c in range(a, b + 1)
            if chr(c).isprintable()
        }
    )
)


def _holds_refused(text: str) -> bool:
    if text.isprintable() and _PRINTABLE_REFUSED.search(text) is None:
        return False
    return _REFUSED.search(text) is not None


@dataclass(frozen=True, slots=True)
class RefusedCharacter:
    """A character that canonical text may not hold, and which class of them it is."""

    code_point: int
    kind: RefusedKind

    @property
    def label(self) -> str:
        """The code point as Unicode writes it: `U+202E`."""
        return f"U+{self.code_point:04X}"

    @property
    def description(self) -> str:
        """The code point, its Unicode name and its class, in English: `U+202E RIGHT-TO-LEFT
        OVERRIDE, a bidirectional embedding, override or isolate: ...`. A character class, never
        the text around it, so a message may carry it whatever the text is."""
        name = unicodedata.name(chr(self.code_point), "")
        return f"{self.label}{' ' + name if name else ''}, {REFUSED_KIND_TEXT[self.kind][0]}"


def show_refused(text: str) -> str:
    """`text` with every character of `REFUSED_RANGES` written out as `⟨U+202E⟩`, for showing
    text that may not be canonical (an agency's name read from the chain, which other software
    may have set): a direction override or an invisible character then shows as what it is and
    no longer acts. Canonical text comes back unchanged; the browser verifier's `showRefused`
    does the same."""
    if not _holds_refused(text):
        return text
    return _REFUSED.sub(lambda m: f"⟨U+{ord(m[0]):04X}⟩", text)


def refused_character(text: str) -> RefusedCharacter | None:
    """The first character of `text` that intake refuses, or None (see the module docstring).

    That is a character of `REFUSED_RANGES`, or a code point unassigned in this Python's
    Unicode database (`unicodedata.unidata_version`)."""
    # Fast path, taken by nearly all text: printable (str.isprintable is false only for white
    # space other than U+0020 and for categories Cc, Cf, Cs, Co and Cn, unassigned included),
    # and none of the table's printable code points.
    if text.isprintable() and _PRINTABLE_REFUSED.search(text) is None:
        return None
    for character in text:
        code_point = ord(character)
        index = bisect.bisect_right(_REFUSED_FIRSTS, code_point) - 1
        if index >= 0 and code_point <= REFUSED_RANGES[index][1]:
            return RefusedCharacter(code_point, REFUSED_RANGES[index][2])
        if unicodedata.category(character) == "Cn":
            return RefusedCharacter(code_point, "unassigned")
    return None


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
