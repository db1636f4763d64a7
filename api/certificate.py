"""The printable certificate of a record: one A4 page (HTML, or PDF through WeasyPrint) with a QR code.

A citizen prints it or sends it as a PDF; a clerk scans its QR code with a phone, and the page
behind the code verifies the record against the chain. The certificate itself proves nothing on
its own (paper is easy to forge): it shows what the holder disclosed and says so, and the scan
is the check.

It shows the fields of a *disclosed* bundle: each disclosed field with its value, each hidden
field as "مخفي / hidden" (a hidden field carries only its hash, so no hidden value can reach the
page). Arabic comes first (the page is right to left), English beside it. Labels come from
`api/web/labels.json`, shared with the browser verifier (the label rule is in `api/web/README.md`).

The HTML is self-contained: inline CSS (api/web/certificate.css) and an inline SVG QR code, no
URL of any kind besides the verify URL printed as text, fonts by family name only ("Amiri", then
any serif). The page the node serves (`/c/<token>`) links the same CSS from `/web/certificate.css`
instead, since the API's Content-Security-Policy admits no inline style (api/guard.py). Every value is
escaped (jinja2 autoescape): values are user data. The agency's name is read from the chain, where
software other than Sijill may have set it: a direction override or an invisible character in
it is written out as `⟨U+202E⟩` (`show_refused`), never left to act, and a note says so.

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

WeasyPrint is imported by `certificate_pdf` only: importing it takes about a second.
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

import segno
from jinja2 import Environment, StrictUndefined, Template
from markupsafe import Markup
from pydantic import BaseModel

from ledger.bundle import Bundle
from ledger.canonical import show_refused
from ledger.records import CommercialRecord, MarriageRecord, TitleRecord

LABELS_FILE = Path(__file__).resolve().parent / "web" / "labels.json"

#: The largest QR code a certificate carries: version 10 (57 x 57 modules), about 0.5 mm a
#: module at 3 cm, still read by any phone camera. A verify URL is short (about 70 characters).
MAX_QR_VERSION = 10
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
_ERROR_LEVELS = ("M", "Q", "H")  # M or better

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


def _ui(key: str) -> Pair:
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


# --------------------------------------------------------------------------------- QR code


def qr_code(url: str) -> segno.QRCode:
    """The QR code of a verify URL: error correction M or better, version at most 10.

    An all-uppercase URL (`HTTPS://HOST/V/ABC...`) is encoded in alphanumeric mode, which is
    denser than bytes; segno picks the mode by itself.
    """
    if not url:
        raise CertificateError("empty verify URL")
    try:
        qr = segno.make_qr(url, error="m", boost_error=True)
    except segno.DataOverflowError:
        raise CertificateError(f"the verify URL ({len(url)} characters) does not fit any QR code") from None
    version = qr.version
    if not isinstance(version, int) or version > MAX_QR_VERSION or qr.error not in _ERROR_LEVELS:
        raise CertificateError(
            f"the verify URL ({len(url)} characters) needs a QR code of version {version}; "
            f"a certificate carries at most version {MAX_QR_VERSION} at error level M"
        )
    return qr


def qr_svg(url: str) -> str:
    """Inline `<svg>` markup of the QR code (no XML declaration or namespace), 4-module quiet zone.

    Drawn in module units with a viewBox, so it scales to any size; 4 px a module by default, and
    `shape-rendering="crispEdges"` so browsers draw no anti-aliased seams between modules.
    """
    qr = qr_code(url)
    size = qr.symbol_size(scale=1, border=QR_BORDER)[0]
    svg = qr.svg_inline(scale=1, border=QR_BORDER, omitsize=True, svgclass="qr", lineclass=None, dark="#000")
    attributes = f'<svg width="{4 * size}" height="{4 * size}" shape-rendering="crispEdges" role="img" '
    return re.sub(r"^<svg ", attributes, svg, count=1)


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


# --------------------------------------------------------------------------------- HTML


@dataclass(frozen=True, slots=True)
class _Row:
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
        return "", _ui("none")
    if value is True or value is False:
        return "", _ui("yes" if value else "no")
    return str(value), None


def _rows(bundle: Bundle) -> list[_Row]:
    schema = _schemas().get(bundle.record_type, _NO_SCHEMA)
    governorates = labels()["governorates"]
    fields: list[tuple[str, bool, Any]] = [(f.path, False, f.value) for f in bundle.disclosed]
    fields += [(h.path, True, None) for h in bundle.hidden]
    fields.sort(key=lambda field: _order_key(field[0], schema))
    rows: list[_Row] = []
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
            _Row(
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
    zone = _ui("cairoTime")
    abbreviation = when.tzname()  # EET or EEST: tells winter from summer
    english = f"{zone[1]} ({abbreviation})" if abbreviation else zone[1]
    return when.strftime("%Y-%m-%d %H:%M"), (zone[0], english)


def registry_number(bundle: Bundle) -> tuple[Pair, str | None]:
    """The label of the registry's own number for the record's type and its value, None when the
    holder hid it (or the type has none)."""
    segment = REGISTRY_NUMBER.get(bundle.record_type)
    if segment is None:
        return _ui("registryNumber"), None
    value = bundle.disclosed_values().get("/" + segment)
    return _pair("segments", segment) or _ui("registryNumber"), value if isinstance(value, str) else None


CSS_FILE = Path(__file__).resolve().parent / "web" / "certificate.css"


@cache
def certificate_css() -> str:
    """The certificate's stylesheet (api/web/certificate.css): inlined in the PDF's HTML, linked
    from the page the node serves, whose CSP admits no inline style."""
    return CSS_FILE.read_text(encoding="utf-8")


_TEMPLATE = """\
{%- macro en(text) %}<span class="en" lang="en" dir="ltr">{{ text }}</span>{% endmacro -%}
{%- macro both(pair) %}<span class="chip">{{ pair[0] }}</span> {{ en(pair[1]) }}{% endmacro -%}
{%- macro key(pair) %}<div class="k">{{ pair[0] }}{{ en(pair[1]) }}</div>{% endmacro -%}
<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading[0] }} / {{ heading[1] }} · {{ number or b.record_id }}</title>
{% if stylesheet -%}
<link rel="stylesheet" href="{{ stylesheet }}">
{%- else -%}
<style>{{ css }}</style>
{%- endif %}
</head>
<body>
<main class="sheet">
<header class="masthead">
  <div class="state">{{ ui.state[0] }} {{ en(ui.state[1]) }}</div>
  <div class="agency-ar">{{ agency[0] }}</div>
  {% if agency[1] != agency[0] %}<div class="agency-en" lang="en" dir="ltr">{{ agency[1] }}</div>{% endif %}
  {% if agency_marked -%}
  <div class="notes agency-note">{{ ui.agencyNameNote[0] }} {{ en(ui.agencyNameNote[1]) }}</div>
  {%- endif %}
</header>
<h1><span class="ar">{{ heading[0] }}</span>{{ en(heading[1]) }}</h1>
<table class="meta"><tr>
  <td class="lead">{{ key(number_label) }}
    {%- if number %}<div class="v"><bdi dir="auto">{{ number }}</bdi></div>
    {%- else %}<div class="v not-disclosed">{{ ui.notDisclosed[0] }}{{ en(ui.notDisclosed[1]) }}</div>
    {%- endif %}</td>
  <td>{{ key(ui.version) }}<div class="v"><bdi dir="ltr">{{ b.version }}</bdi></div></td>
  <td>{{ key(ui.anchored) }}<div class="v"><bdi dir="ltr">{{ anchored_at[0] }}</bdi></div>
      <div class="s zone">{{ anchored_at[1][0] }} · {{ en(anchored_at[1][1]) }}</div>
      <div class="s"><span class="chip">{{ ui.block[0] }} <bdi dir="ltr">{{ c.anchored_block }}</bdi></span>
        · {{ en(ui.block[1] ~ " " ~ c.anchored_block) }}</div></td>
  <td>{{ key(ui.issued) }}<div class="v"><bdi dir="ltr">{{ issued_at[0] }}</bdi></div>
      <div class="s zone">{{ issued_at[1][0] }} · {{ en(issued_at[1][1]) }}</div></td>
</tr></table>
<table class="fields">
<thead><tr><th class="lab">{{ ui.field[0] }}</th><th class="val">{{ ui.value[0] }} {{ en(ui.value[1]) }}</th>
  <th class="lab-en" lang="en" dir="ltr">{{ ui.field[1] }}</th></tr></thead>
<tbody>
{%- for row in rows %}
<tr class="{{ 'group' if row.group }}{{ ' hidden' if row.hidden }}">
  <td class="lab">{{ row.label[0] }}</td>
  <td class="val">
  {%- if row.hidden -%}
    {{ both(ui.hidden) }}
  {%- elif row.translation -%}
    {{ both(row.translation) }}{% if row.code %} <bdi class="code" dir="ltr">{{ row.code }}</bdi>{% endif %}
  {%- else -%}
    <bdi dir="{{ row.direction }}">{{ row.text }}</bdi>
  {%- endif -%}
  </td>
  <td class="lab-en" lang="en" dir="ltr">{{ row.label[1] }}</td>
</tr>
{%- endfor %}
</tbody>
</table>
{% if any_hidden %}<div class="notes">{{ ui.hiddenNote[0] }} {{ en(ui.hiddenNote[1]) }}</div>{% endif %}
<section class="verify">
<table class="verify-box"><tr>
  <td>
    <h2>{{ ui.verifyTitle[0] }} {{ en(ui.verifyTitle[1]) }}</h2>
    <p>{{ ui.scan[0] }}</p>
    <p class="en" lang="en" dir="ltr">{{ ui.scan[1] }}</p>
    <p class="s">{{ ui.orType[0] }} {{ en(ui.orType[1]) }}</p>
    <div class="url mono" lang="en" dir="ltr">{{ c.verify_url }}</div>
    <div class="rely">{{ ui.relyOnScan[0] }}</div>
    <div class="rely en" lang="en" dir="ltr">{{ ui.relyOnScan[1] }}</div>
  </td>
  <td class="code-cell">{{ qr }}</td>
</tr></table>
<table class="hashes">
  <tr><td class="k">{{ ui.recordId[0] }} {{ en(ui.recordId[1]) }}</td>
    <td class="mono" dir="ltr">{{ b.record_id }} ({{ b.agency }})</td></tr>
  <tr><td class="k">{{ ui.leaf[0] }} {{ en(ui.leaf[1]) }}</td><td class="mono" dir="ltr">{{ leaf }}</td></tr>
  <tr><td class="k">{{ ui.root[0] }} {{ en(ui.root[1]) }}</td><td class="mono" dir="ltr">{{ root }}</td></tr>
</table>
</section>
</main>
</body>
</html>
"""


@cache
def _template_object() -> Template:
    environment = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(_TEMPLATE)


def certificate_html(cert: Certificate, stylesheet: str | None = None) -> str:
    """The certificate as one self-contained HTML page (A4 when printed); with `stylesheet`, a
    URL, the page links its CSS from there instead of carrying it inline."""
    bundle = cert.bundle
    anchor = bundle.anchor
    if anchor is None:  # Certificate checks it; a bundle swapped in by dataclasses.replace is not
        raise CertificateError("a certificate is only issued for an anchored record")
    kind = record_type_label(bundle.record_type)
    number_label, number = registry_number(bundle)
    title = _ui("certificate")
    ui = {key: (entry["ar"], entry["en"]) for key, entry in labels()["ui"].items()}
    return _template_object().render(
        b=bundle,
        c=cert,
        ui=ui,
        css=Markup(certificate_css()),
        stylesheet=stylesheet,
        heading=(f"{title[0]} — {kind[0]}", f"{title[1]} — {kind[1]}"),
        agency=tuple(show_refused(part) for part in split_agency_name(cert.agency_name)),
        agency_marked=show_refused(cert.agency_name) != cert.agency_name,
        number_label=number_label,
        number=number,
        anchored_at=cairo_time(cert.anchored_at),
        issued_at=cairo_time(cert.issued_at),
        rows=_rows(bundle),
        any_hidden=bool(bundle.hidden),
        qr=Markup(qr_svg(cert.verify_url)),
        leaf="0x" + bundle.leaf.hex(),
        root="0x" + anchor.root.hex(),
    )


def certificate_pdf(cert: Certificate) -> bytes:
    """The certificate as a PDF (WeasyPrint; fonts embedded). WeasyPrint is imported here, lazily."""
    import weasyprint  # type: ignore[import-untyped]

    html = certificate_html(cert)
    # The page refers to nothing outside itself; should it ever, nothing is fetched (no protocol allowed).
    fetcher = weasyprint.URLFetcher(allowed_protocols=(), allow_redirects=False)
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None).write_pdf()
    return pdf
