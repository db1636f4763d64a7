"""The printable certificate of a record: what it shows, in which words and in which order.

A citizen prints it or sends it as a PDF; a clerk scans its QR code with a phone, and the page
behind the code verifies the record against the chain. The certificate itself proves nothing on
its own (paper is easy to forge): it shows what the holder disclosed and says so, and the scan
is the check. The page itself (HTML, PDF, the QR code) is drawn by api/certificate_render.py.

It shows the fields of a *disclosed* bundle: each disclosed field with its value, each hidden
field as "مخفي / hidden" (a hidden field carries only its hash, so no hidden value can reach the
page). Arabic comes first (the page is right to left), English beside it. Labels come from
`api/web/labels.json`, shared with the browser verifier (the label rule is in `api/web/README.md`).

A clerk compares the certificate with the registry's own papers, so the registry's own number of
the record (title, contract or commercial registration number, as the verify page leads with it)
comes first, or "not disclosed" when the holder hid it; the node's internal record id sits with the
hashes at the foot, plainly labelled as the system's. Times are Egypt's: Africa/Cairo from the
system's zone data (EET in winter, EEST in summer), the zone named beside each. Without zone data
no certificate is made (CertificateError says what to install), rather than one in UTC or a guessed
offset.

Fields are listed in the record's own order (the order of its schema, list items by number), not
in the bundle's byte order of paths, where `/owners/10` comes before `/owners/2` and the title
number after the unit number. Paths the schema does not know come last, in path order.
"""

from __future__ import annotations

import json
import re
import types
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from ledger.bundle import Bundle
from ledger.records import CommercialRecord, MarriageRecord, TitleRecord

LABELS_FILE = Path(__file__).resolve().parent / "web" / "labels.json"

_INDEX = re.compile(r"0|[1-9][0-9]*")
_SEPARATOR = " › "
_UNKNOWN_FIELD = 1_000_000  # position of a segment the schema does not know: after all known ones

#: The field holding the number the registry itself gives a record of each type (api/web/app.js
#: REGISTRY_NUMBER says the same): what a clerk compares with the papers.
REGISTRY_NUMBER = {
    "title": "title_number",
    "marriage": "contract_number",
    "commercial": "registration_number",
}

#: Egypt's time: UTC+2, and UTC+3 in summer since daylight saving time came back in 2023.
ZONE = "Africa/Cairo"

Pair = tuple[str, str]


class CertificateError(Exception):
    """A certificate that cannot be made: not anchored, or a verify URL too long for its QR code."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """What a certificate shows besides the bundle's fields, all read from the chain or the node."""

    bundle: Bundle  # the disclosed bundle; anchored
    agency_name: str  # on-chain name, "Arabic / English" (or one name for both)
    anchored_block: int
    anchored_at: int  # unix seconds, the anchoring block's time
    issued_at: int  # unix seconds, when this certificate (share) was made
    verify_url: str  # what the QR code carries

    def __post_init__(self) -> None:
        if self.bundle.anchor is None:
            raise CertificateError("a certificate is only issued for an anchored record")
        if not self.verify_url:
            raise CertificateError("a certificate needs a verify URL for its QR code")


# --------------------------------------------------------------------------------- labels


@cache
def labels() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """The shared labels file (`api/web/labels.json`), read once."""
    data: dict[str, dict[str, dict[str, str]]] = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    return data


def _pair(section: str, key: str) -> Pair | None:
    entry = labels()[section].get(key)
    return None if entry is None else (entry["ar"], entry["en"])


def ui_label(key: str) -> Pair:
    """The (Arabic, English) words of an entry of the labels file's `ui` section."""
    entry = labels()["ui"][key]
    return entry["ar"], entry["en"]


def _tokens(path: str) -> list[str]:
    """The reference tokens of a JSON Pointer, unescaped (RFC 6901)."""
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]] if path else []


def field_label(path: str) -> Pair:
    """The (Arabic, English) label of a field path.

    `/owners/0/name` -> ("المالك 1 › الاسم", "Owner 1 › Name").

    Each segment is labelled from `segments`; an array index n after a segment s turns s's label
    into `items[s]` followed by n + 1 ("Owner 1"); an unknown segment is shown as itself.
    """
    parts: list[Pair] = []
    previous: str | None = None  # the last token, if it was a name (not an index)
    for token in _tokens(path):
        if _INDEX.fullmatch(token):
            number = str(int(token) + 1)
            if previous is not None and parts:
                ar, en = _pair("items", previous) or parts[-1]
                parts[-1] = (f"{ar} {number}", f"{en} {number}")
            else:
                parts.append((number, number))
            previous = None
        else:
            parts.append(_pair("segments", token) or (token, token))
            previous = token
    return _SEPARATOR.join(ar for ar, _ in parts), _SEPARATOR.join(en for _, en in parts)


def value_label(value: object) -> Pair | None:
    """The (Arabic, English) translation of an enum value ("residential" -> ("سكني", "Residential"))."""
    return _pair("values", value) if isinstance(value, str) else None


def record_type_label(record_type: str) -> Pair:
    return _pair("recordTypes", record_type) or (record_type, record_type)


def split_agency_name(name: str) -> Pair:
    """The Arabic and English parts of an on-chain agency name written "Arabic / English"."""
    ar, separator, en = name.partition(" / ")
    return (ar.strip(), en.strip()) if separator else (name.strip(), name.strip())


# --------------------------------------------------------------------------------- record order


@dataclass(frozen=True, slots=True)
class _Schema:
    positions: Mapping[str, int]  # template path ("/owners/*/name") -> position among its siblings
    enums: frozenset[str]  # template paths whose values are code words (value_label applies)


def _schema_of(model: type[BaseModel]) -> _Schema:
    positions: dict[str, int] = {}
    enums: set[str] = set()

    def walk_model(prefix: str, current: type[BaseModel]) -> None:
        for position, (name, info) in enumerate(current.model_fields.items()):
            positions[prefix + "/" + name] = position
            walk_type(prefix + "/" + name, info.annotation)

    def walk_type(path: str, annotation: Any) -> None:
        origin = get_origin(annotation)
        if origin is Annotated:
            walk_type(path, get_args(annotation)[0])
        elif origin is list:
            walk_type(path + "/*", get_args(annotation)[0])
        elif origin is Union or origin is types.UnionType:
            for arm in get_args(annotation):
                walk_type(path, arm)
        elif origin is Literal:
            enums.add(path)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            walk_model(path, annotation)
        elif path.endswith("/currency"):
            enums.add(path)  # ISO 4217 codes: the common ones have labels

    walk_model("", model)
    return _Schema(positions, frozenset(enums))


@cache
def _schemas() -> Mapping[str, _Schema]:
    return {
        "title": _schema_of(TitleRecord),
        "marriage": _schema_of(MarriageRecord),
        "commercial": _schema_of(CommercialRecord),
    }


_NO_SCHEMA = _Schema({}, frozenset())


def _template(path: str) -> str:
    return "".join("/*" if _INDEX.fullmatch(t) else "/" + t for t in path.split("/")[1:])


def _order_key(path: str, schema: _Schema) -> list[tuple[int, int, bytes]]:
    key: list[tuple[int, int, bytes]] = []
    template = ""
    for token in path.split("/")[1:]:
        if _INDEX.fullmatch(token):
            template += "/*"
            key.append((0, int(token), b""))
        else:
            template += "/" + token
            key.append((1, schema.positions.get(template, _UNKNOWN_FIELD), token.encode()))
    return key


# --------------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One row of the certificate's table of fields, as the page shows it."""

    label: Pair
    hidden: bool
    text: str  # the value as shown (user data), when not translated
    direction: str  # "rtl" or "ltr": the value's own direction
    translation: Pair | None  # an enum value's or a governorate's name
    code: str  # shown small beside a translation (a governorate's code)
    group: bool  # first row of a new top-level part of the record


def _direction(text: str) -> str:
    """The direction of a text by its first strong character (the HTML `dir="auto"` rule)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def _shown(value: Any) -> tuple[str, Pair | None]:
    if value is None or value == [] or value == {}:
        return "", ui_label("none")
    if value is True or value is False:
        return "", ui_label("yes" if value else "no")
    return str(value), None


def field_rows(bundle: Bundle) -> list[FieldRow]:
    """The rows of the table of fields: every field of `bundle`, disclosed or hidden, in the
    record's own order, labelled, with code words and governorates translated."""
    schema = _schemas().get(bundle.record_type, _NO_SCHEMA)
    governorates = labels()["governorates"]
    fields: list[tuple[str, bool, Any]] = [(f.path, False, f.value) for f in bundle.disclosed]
    fields += [(h.path, True, None) for h in bundle.hidden]
    fields.sort(key=lambda field: _order_key(field[0], schema))
    rows: list[FieldRow] = []
    previous_group: list[str] | None = None
    previous_nested = False
    for path, hidden, value in fields:
        # A rule between parts of the record (an owner, the dower...), not between plain fields.
        tokens = path.split("/")[1:]
        group = tokens[:2] if len(tokens) > 2 and _INDEX.fullmatch(tokens[1]) else tokens[:1]
        nested = len(tokens) > 1
        new_group = previous_group is not None and group != previous_group and (nested or previous_nested)
        text, translation, code = "", None, ""
        if not hidden:
            text, translation = _shown(value)
            template = _template(path)
            if translation is None and template in schema.enums:
                translation = value_label(value)
            if translation is None and template.endswith("/governorate") and isinstance(value, str):
                entry = governorates.get(value)
                if entry is not None:
                    translation, code = (entry["ar"], entry["en"]), value
        rows.append(
            FieldRow(
                label=field_label(path),
                hidden=hidden,
                text=text,
                direction=_direction(text),
                translation=translation,
                code=code,
                group=new_group,
            )
        )
        previous_group, previous_nested = group, nested
    return rows


@cache
def cairo_zone() -> ZoneInfo:
    """Africa/Cairo from the system's zone data (Debian's tzdata), else the tzdata Python package."""
    try:
        return ZoneInfo(ZONE)
    except ZoneInfoNotFoundError:
        raise CertificateError(
            f"no time zone data for {ZONE}: install the system's tzdata package (apt-get install "
            "tzdata) or the tzdata Python package; a certificate shows Egypt's time, never UTC instead"
        ) from None


def cairo_time(seconds: int) -> tuple[str, Pair]:
    """A unix time as Cairo's wall clock, and the zone named in (Arabic, English):
    ("2026-11-27 16:03", ("بتوقيت القاهرة", "Cairo time (EET)"))."""
    when = datetime.fromtimestamp(seconds, cairo_zone())
    zone = ui_label("cairoTime")
    abbreviation = when.tzname()  # EET or EEST: tells winter from summer
    english = f"{zone[1]} ({abbreviation})" if abbreviation else zone[1]
    return when.strftime("%Y-%m-%d %H:%M"), (zone[0], english)


def registry_number(bundle: Bundle) -> tuple[Pair, str | None]:
    """The label of the registry's own number for the record's type and its value, None when the
    holder hid it (or the type has none)."""
    segment = REGISTRY_NUMBER.get(bundle.record_type)
    if segment is None:
        return ui_label("registryNumber"), None
    value = bundle.disclosed_values().get("/" + segment)
    return _pair("segments", segment) or ui_label("registryNumber"), value if isinstance(value, str) else None
