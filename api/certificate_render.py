"""The printable certificate drawn: one A4 page (HTML, or PDF through WeasyPrint) with a QR code.

What the page shows, and in which words and order, is api/certificate.py's.

The HTML is self-contained: inline CSS (api/web/certificate.css) and an inline SVG QR code, no
URL of any kind besides the verify URL printed as text, fonts by family name only ("Amiri", then
any serif). The page the node serves (`/c/<token>`) links the same CSS from `/web/certificate.css`
instead, since the API's Content-Security-Policy admits no inline style (api/guard.py). Every value is
escaped (jinja2 autoescape): values are user data. The agency's name is read from the chain, where
software other than Sijill may have set it: a direction override or an invisible character in
it is written out as `⟨U+202E⟩` (`show_refused`), never left to act, and a note says so.

WeasyPrint is imported by `certificate_pdf` only: importing it takes about a second.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import segno
from jinja2 import Environment, StrictUndefined, Template
from markupsafe import Markup

from api.certificate import (
    Certificate,
    CertificateError,
    cairo_time,
    field_rows,
    labels,
    record_type_label,
    registry_number,
    split_agency_name,
    ui_label,
)
from ledger.canonical import show_refused

#: The largest QR code a certificate carries: version 10 (57 x 57 modules), about 0.5 mm a
#: module at 3 cm, still read by any phone camera. A verify URL is short (about 70 characters).
MAX_QR_VERSION = 10
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
_ERROR_LEVELS = ("M", "Q", "H")  # M or better


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


# --------------------------------------------------------------------------------- HTML and PDF


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
    title = ui_label("certificate")
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
        rows=field_rows(bundle),
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
