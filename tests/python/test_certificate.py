"""The printable certificate (api/certificate.py, api/certificate_render.py): real sealed, signed,
anchored and disclosed bundles of each record type, rendered to HTML and PDF, and checked with
poppler and zbar.

Every PDF, its PNG (100 dpi) and its HTML are written under build/test-output/certificates/ for a
person to look at.
"""

from __future__ import annotations

import base64
import html as html_module
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args

import pytest

from api.certificate import (
    LABELS_FILE,
    Certificate,
    CertificateError,
    field_label,
    split_agency_name,
    value_label,
)
from api.certificate_render import certificate_html, certificate_pdf, qr_code, qr_svg
from ledger.bundle import Bundle, SignedReceipt, disclose, make_bundle, with_anchor
from ledger.fields import RecordKey, flatten, seal_record
from ledger.hashing import keccak256
from ledger.merkle import build_tree
from ledger.national_id import BORN_ABROAD, GOVERNORATES
from ledger.receipts import Receipt, ReceiptDomain, address_of, sign_receipt
from ledger.records import validate_record
from ledger.records.commercial import BusinessStatus, LegalForm
from ledger.records.examples import (
    TODAY,
    commercial_example,
    make_national_id,
    marriage_example,
    title_example,
)
from ledger.records.marriage import MarriageStatus
from ledger.records.title import Encumbrance, LandUse

OUTPUT = Path(__file__).resolve().parents[2] / "build" / "test-output" / "certificates"

CHAIN_ID = 31337
LEDGER = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
SIGNER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")  # anvil #1
INTAKE = int(datetime(2026, 11, 27, 13, 58, tzinfo=UTC).timestamp())
ANCHORED_AT = int(datetime(2026, 11, 27, 14, 3, 17, tzinfo=UTC).timestamp())
ISSUED_AT = int(datetime(2026, 12, 2, 9, 41, tzinfo=UTC).timestamp())
#: Times in Egypt's summer (EEST, UTC+3, from the last Friday of April to the last Thursday of October).
SUMMER_ANCHORED_AT = int(datetime(2026, 7, 15, 10, 0, tzinfo=UTC).timestamp())
SUMMER_ISSUED_AT = int(datetime(2026, 7, 20, 21, 30, tzinfo=UTC).timestamp())

AGENCIES = {
    "title": ("REPD", "T2019-45873", "مصلحة الشهر العقاري والتوثيق / Real Estate Publicity Department"),
    "marriage": ("CSO", "M2024-001122", "قطاع الأحوال المدنية / Civil Status Organization"),
    "commercial": ("CRA", "C-000981", "مصلحة السجل التجاري / Commercial Registry Authority"),
}
EXAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "title": title_example,
    "marriage": marriage_example,
    "commercial": commercial_example,
}
#: What each partly disclosed certificate hides (the values must appear nowhere).
HIDDEN = {
    "title": ["/area_m2", "/owners/1/national_id", "/owners/2/national_id"],
    "marriage": ["/husband/national_id", "/wife/date_of_birth", "/wife/national_id"],
    "commercial": ["/capital/amount", "/owners/0/national_id", "/owners/1/national_id"],
}

#: The number each registry gives a record, its field and English label: what a clerk compares.
REGISTRY_NUMBERS = {
    "title": ("/title_number", "Title number"),
    "marriage": ("/contract_number", "Contract number"),
    "commercial": ("/registration_number", "Registration number"),
}

#: The fields whose values are code words, shown translated.
ENUM_FIELDS = {"use", "kind", "legal_form", "state", "currency"}

_BIDI_AND_SPACE = re.compile(r"[\s\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def anchored_bundle(record_type: str, record: dict[str, Any] | None = None) -> Bundle:
    """A full bundle as a node makes it: validated, sealed, receipt signed, anchored in a batch."""
    agency, record_id, _ = AGENCIES[record_type]
    data = validate_record(record_type, record or EXAMPLES[record_type](), today=TODAY)
    sealed = seal_record(RecordKey(agency, record_type, record_id, 1), data)
    domain = ReceiptDomain(CHAIN_ID, LEDGER)
    message = Receipt(agency, record_type, record_id, 1, sealed.leaf, INTAKE, INTAKE + 600)
    receipt = SignedReceipt(
        INTAKE, INTAKE + 600, address_of(SIGNER_KEY), sign_receipt(message, domain, SIGNER_KEY)
    )
    bundle = make_bundle(sealed, chain_id=CHAIN_ID, ledger=LEDGER, registry=REGISTRY, receipt=receipt)
    others = [keccak256(f"{record_type}-other-{i}".encode()) for i in range(6)]
    tree = build_tree([sealed.leaf, *others])
    return with_anchor(bundle, tree.root, tree.proof(sealed.leaf))


def verify_url(bundle: Bundle, base: str = "HTTPS://REGISTRY.EXAMPLE.GOV.EG:8601/V/") -> str:
    return base + base64.b32encode(bundle.leaf[:20]).decode()


def certificate(bundle: Bundle, url: str | None = None) -> Certificate:
    return Certificate(
        bundle=bundle,
        agency_name=AGENCIES[bundle.record_type][2],
        anchored_block=1842,
        anchored_at=ANCHORED_AT,
        issued_at=ISSUED_AT,
        verify_url=url or verify_url(bundle),
    )


def run(*command: str | Path) -> str:
    tool = str(command[0])
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (poppler-utils, zbar-tools)")
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=True).stdout


def squeeze(text: str) -> str:
    """Text without white space and bidi controls: pdftotext puts both in Arabic runs."""
    return _BIDI_AND_SPACE.sub("", text)


@dataclass(frozen=True)
class Rendered:
    cert: Certificate
    html: str
    pdf: Path
    png: Path
    text: str  # pdftotext


def render(name: str, cert: Certificate) -> Rendered:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page = certificate_html(cert)
    (OUTPUT / f"{name}.html").write_text(page, encoding="utf-8")
    pdf = OUTPUT / f"{name}.pdf"
    pdf.write_bytes(certificate_pdf(cert))
    png = OUTPUT / f"{name}.png"
    png.unlink(missing_ok=True)
    run("pdftoppm", "-png", "-r", "100", "-singlefile", pdf, OUTPUT / name)
    return Rendered(cert, page, pdf, png, run("pdftotext", pdf, "-"))


CASES = [f"{kind}-{disclosure}" for kind in AGENCIES for disclosure in ("full", "partial")]
CASES.append("title-unnumbered-summer")  # the title number hidden, made in Egypt's summer time


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    out = {}
    for kind in AGENCIES:
        full = anchored_bundle(kind)
        # The full one carries an http:// URL of a LAN node (alphanumeric mode), the partial one a
        # lower-case https:// URL (byte mode, a larger code): both must scan.
        out[f"{kind}-full"] = render(
            f"{kind}-full", certificate(full, verify_url(full, "HTTP://10.0.0.5:8601/V/"))
        )
        keep = [f.path for f in full.disclosed if f.path not in HIDDEN[kind]]
        partial = disclose(full, keep)
        url = verify_url(partial).lower() if kind == "marriage" else verify_url(partial)
        out[f"{kind}-partial"] = render(f"{kind}-partial", certificate(partial, url))
    full = anchored_bundle("title")
    unnumbered = disclose(full, [f.path for f in full.disclosed if f.path != "/title_number"])
    summer = replace(certificate(unnumbered), anchored_at=SUMMER_ANCHORED_AT, issued_at=SUMMER_ISSUED_AT)
    out["title-unnumbered-summer"] = render("title-unnumbered-summer", summer)
    return out


@dataclass(frozen=True)
class Word:
    text: str
    x: float  # left edge, points from the page's left
    y: float  # top edge, points from the page's top


def words(pdf: Path) -> list[Word]:
    """Every word poppler finds on the page, where it is."""
    html = run("pdftotext", "-bbox", pdf, "-")
    word = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>'
    found = re.findall(word, html)
    return [Word(html_module.unescape(text), float(x), float(y)) for x, y, text in found]


def where(all_words: list[Word], text: str) -> list[Word]:
    return sorted((w for w in all_words if w.text == text), key=lambda w: w.y)


# --------------------------------------------------------------------------------- the PDF


@pytest.mark.parametrize("case", CASES)
def test_one_a4_page(rendered: dict[str, Rendered], case: str) -> None:
    info = run("pdfinfo", rendered[case].pdf)
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, re.M)
    assert size is not None, info
    assert (round(float(size[1])), round(float(size[2]))) == (595, 842)


@pytest.mark.parametrize("case", CASES)
def test_amiri_is_embedded(rendered: dict[str, Rendered], case: str) -> None:
    fonts = run("pdffonts", rendered[case].pdf).splitlines()[2:]
    embedded = {
        line.split()[0].split("+")[-1]: m[1]
        for line in fonts
        if (m := re.search(r"\s(yes|no)\s+(?:yes|no)\s+(?:yes|no)\s+\d+\s+\d+\s*$", line))
    }
    assert embedded.get("Amiri") == "yes", fonts
    assert all(flag == "yes" for flag in embedded.values()), fonts


@pytest.mark.parametrize("case", CASES)
def test_qr_code_scans_to_the_verify_url(rendered: dict[str, Rendered], case: str) -> None:
    decoded = run("zbarimg", "--raw", "-q", rendered[case].png)
    assert decoded == rendered[case].cert.verify_url + "\n"


@pytest.mark.parametrize("case", CASES)
def test_disclosed_values_are_shown(rendered: dict[str, Rendered], case: str) -> None:
    result = rendered[case]
    text = squeeze(result.text)
    for field in result.cert.bundle.disclosed:
        value = field.value
        label = value_label(value) if field.path.rsplit("/", 1)[-1] in ENUM_FIELDS else None
        if field.path.endswith("/governorate"):
            expected = [GOVERNORATES[value].name_ar, GOVERNORATES[value].name_en, value]
        elif label is not None:
            expected = list(label)
        elif value is None or value == []:
            expected = ["لايوجد", "none"]
        else:
            # pdftotext cuts mixed Arabic and Latin text into runs in visual order: look for words.
            expected = re.findall(r"\w+", str(value))
        for word in expected:
            assert squeeze(word) in text, (field.path, word)
    for fixed in ("Registry certificate", "Scan the code", "امسح الرمز"):
        assert squeeze(fixed) in text
    assert squeeze(split_agency_name(result.cert.agency_name)[1]) in text
    assert squeeze(result.cert.verify_url) in text
    assert "0x" + result.cert.bundle.leaf.hex() in text


@pytest.mark.parametrize("kind", list(AGENCIES))
def test_the_registry_number_leads(rendered: dict[str, Rendered], kind: str) -> None:
    """A clerk compares the registry's own number (issue 15.7): it is the first box under the
    heading (the right-most, the page being right to left), above the fields."""
    result = rendered[f"{kind}-full"]
    path, label = REGISTRY_NUMBERS[kind]
    number = result.cert.bundle.disclosed_values()[path]
    on_page = words(result.pdf)
    first = where(on_page, number)[0]
    (version,) = where(on_page, "Version")
    (table_head,) = where(on_page, "Field")
    assert first.y < table_head.y, "the number is in the boxes above the fields"
    assert abs(first.y - version.y) < 40 and first.x > version.x, "the first box, right of the version's"
    assert squeeze(label) in squeeze(result.text)
    assert 'class="lead"' in result.html and f'<bdi dir="auto">{number}</bdi>' in result.html


def test_a_hidden_registry_number_is_said_to_be_not_disclosed(rendered: dict[str, Rendered]) -> None:
    result = rendered["title-unnumbered-summer"]
    full_number = rendered["title-full"].cert.bundle.disclosed_values()["/title_number"]
    assert full_number not in result.text and full_number not in result.html
    assert squeeze("not disclosed by the holder") in squeeze(result.text)
    assert squeeze("لم يُفصح عنه صاحب الشهادة") in squeeze(result.text)
    assert squeeze("Title number") in squeeze(result.text)


@pytest.mark.parametrize("kind", list(AGENCIES))
def test_the_internal_id_is_named_as_the_systems_at_the_foot(
    rendered: dict[str, Rendered], kind: str
) -> None:
    """The internal id is no "رقم السجل" (a clerk reads that as the registry's number): it is the
    "internal record ID", with the hashes below the verify box."""
    result = rendered[f"{kind}-full"]
    on_page = words(result.pdf)
    (record_id,) = where(on_page, result.cert.bundle.record_id)
    (scan,) = where(on_page, "Scan")
    assert record_id.y > scan.y
    assert squeeze("Internal record ID") in squeeze(result.text) and "Record ID" not in result.text
    assert squeeze("المعرّف الداخلي للقيد") in squeeze(result.text)
    assert "رقم السجل<" not in result.html


def test_times_are_cairos_with_the_zone_named(rendered: dict[str, Rendered]) -> None:
    """Egypt's wall clock (Africa/Cairo), not UTC: 14:03 UTC on 27 November is 16:03 EET; 10:00
    UTC on 15 July is 13:00 EEST, and 21:30 UTC on 20 July is already 21 July in Cairo."""
    winter = squeeze(rendered["title-partial"].text)
    assert "2026-11-2716:03" in winter and "2026-12-0211:41" in winter
    assert winter.count("Cairotime(EET)") == 2 and winter.count(squeeze("بتوقيت القاهرة")) == 2
    summer = squeeze(rendered["title-unnumbered-summer"].text)
    assert "2026-07-1513:00" in summer and "2026-07-2100:30" in summer
    assert summer.count("Cairotime(EEST)") == 2
    for case in CASES:
        assert "UTC" not in rendered[case].text, case


def test_without_zone_data_no_certificate_is_made() -> None:
    """A system without Africa/Cairo (no tzdata at all) gets a clear error naming what to
    install, never a certificate in UTC. Run in a Python that finds no zone data anywhere."""
    code = (
        "import sys; sys.modules['tzdata'] = None\n"  # the tzdata Python package, if ever installed
        "sys.path.insert(0, 'tests/python')\n"
        "from test_certificate import anchored_bundle, certificate\n"
        "from api.certificate import CertificateError\n"
        "from api.certificate_render import certificate_html\n"
        "try:\n    certificate_html(certificate(anchored_bundle('title')))\n"
        "except CertificateError as exc:\n    print(exc)\n"
    )
    root = OUTPUT.parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONTZPATH": str(root / "build" / "no-zone-data")},
    )
    assert result.stdout.startswith("no time zone data for Africa/Cairo: install the system's tzdata"), result


@pytest.mark.parametrize("kind", list(AGENCIES))
def test_hidden_values_appear_nowhere(rendered: dict[str, Rendered], kind: str) -> None:
    full, partial = rendered[f"{kind}-full"], rendered[f"{kind}-partial"]
    secrets = [v for path, v in full.cert.bundle.disclosed_values().items() if path in HIDDEN[kind]]
    assert len(secrets) == len(HIDDEN[kind]) and all(secrets)
    assert [h.path for h in partial.cert.bundle.hidden] == HIDDEN[kind]
    pdf_bytes = partial.pdf.read_bytes()
    for secret in secrets:
        # Shown in the full certificate, so the check below could fail.
        assert squeeze(secret) in squeeze(full.text)
        assert secret not in partial.text and squeeze(secret) not in squeeze(partial.text)
        assert secret not in partial.html
        assert secret.encode() not in pdf_bytes
    # Each hidden field is shown as hidden, in both languages; the full one shows none.
    assert squeeze(partial.text).count("hidden") >= len(HIDDEN[kind])
    assert squeeze(partial.text).count("مخفي") >= len(HIDDEN[kind])
    assert partial.html.count('<span class="chip">مخفي</span>') == len(HIDDEN[kind])
    assert "مخفي" not in squeeze(full.text) and "hidden" not in full.text


# --------------------------------------------------------------------------------- the HTML


@pytest.mark.parametrize("case", CASES)
def test_html_is_self_contained(rendered: dict[str, Rendered], case: str) -> None:
    page = rendered[case].html
    url = html_module.escape(rendered[case].cert.verify_url)
    assert page.count(url) == 1
    rest = page.replace(url, "")
    assert not re.search(
        r"(?i)\b(?:https?|ftp|file|data):|//[a-z0-9.-]+\.[a-z]|\bsrc\s*=|\bhref\s*=|url\(|@import", rest
    )
    assert page.startswith('<!DOCTYPE html>\n<html lang="ar" dir="rtl">')
    assert "<svg " in page and "<?xml" not in page
    assert "@page { size: A4; margin: 8mm; }" in page
    assert 'font-family: "Amiri", serif' in page


def test_user_data_is_escaped() -> None:
    record = title_example()
    record["district"] = 'حي <script>alert("x")</script> & <b>Co</b>'
    bundle = anchored_bundle("title", record)
    page = certificate_html(certificate(bundle))
    assert "<script" not in page.lower() and "<b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in page


def test_agency_name_is_not_markup() -> None:
    bundle = anchored_bundle("title")
    page = certificate_html(replace(certificate(bundle), agency_name="<img src=x> / <i>Agency</i>"))
    assert "<img" not in page and "<i>" not in page and "&lt;i&gt;Agency&lt;/i&gt;" in page


def test_an_agency_name_from_the_chain_shows_refused_characters_as_code_points() -> None:
    """The registry checks only a name's length: a name set by other software holding U+202E (which
    would turn "ecitsuj fo yrtsiniM" into "Ministry of Justice" on the page) is shown with the
    override written out, in the page and in the PDF, and a note says so in both languages."""
    bundle = anchored_bundle("title")
    spoofed = replace(certificate(bundle), agency_name="وزارة\u2067 العدل / \u202eecitsuj fo yrtsiniM")
    page = certificate_html(spoofed)
    assert "\u202e" not in page and "\u2067" not in page
    assert "⟨U+202E⟩ecitsuj fo yrtsiniM" in page and "وزارة⟨U+2067⟩ العدل" in page
    assert "محارف خفية أو محارف تغيّر اتجاه الكتابة" in page and "direction-changing characters" in page
    pdf = render("title-spoofed-agency", spoofed)
    # (pdftotext gives the brackets' glyphs one code point each, mirrored or not: look past them.)
    assert "\u202e" not in pdf.text and re.search("U\\+202E.ecitsujfoyrtsiniM", squeeze(pdf.text))
    plain = certificate_html(certificate(bundle))
    assert "⟨U+" not in plain and "direction-changing characters" not in plain


def test_fields_in_record_order() -> None:
    """Schema order with list items by number, not the bundle's byte order of paths."""
    record = title_example()
    record["owners"] = [
        {
            "name": f"مالك رقم {i + 1}",
            "national_id": make_national_id(date(1975, 3, 22), "12", serial=f"{i:03d}"),
            "share": "1/11",
        }
        for i in range(11)
    ]
    page = certificate_html(certificate(anchored_bundle("title", record)))
    labels = re.findall(r'<td class="lab-en" lang="en" dir="ltr">([^<]*)</td>', page)
    assert labels[:3] == ["Title number", "Governorate", "District"]
    assert labels[-2:] == ["Registration date", "Registry office"]
    owner_rows = [label for label in labels if label.startswith("Owner ")]
    assert owner_rows[:3] == ["Owner 1 › Name", "Owner 1 › National ID", "Owner 1 › Share"]
    assert owner_rows.index("Owner 2 › Name") < owner_rows.index("Owner 10 › Name")
    assert owner_rows[-1] == "Owner 11 › Share"


@pytest.mark.parametrize("kind", list(AGENCIES))
def test_segment_key_order_gives_the_certificate_order(rendered: dict[str, Rendered], kind: str) -> None:
    """The verify page orders fields by the key order of `segments` in labels.json (list items by
    number); that order must agree with every schema, so both pages list fields alike."""
    segments = list(json.loads(LABELS_FILE.read_text(encoding="utf-8"))["segments"])

    def key(path: str) -> list[tuple[int, int, str]]:
        return [(0, int(t), "") if t.isdigit() else (1, segments.index(t), t) for t in path.split("/")[1:]]

    paths = sorted(flatten(validate_record(kind, EXAMPLES[kind](), today=TODAY)), key=key)
    shown = re.findall(r'<td class="lab-en" lang="en" dir="ltr">([^<]*)</td>', rendered[f"{kind}-full"].html)
    assert [html_module.unescape(label) for label in shown] == [field_label(path)[1] for path in paths]


def test_enum_and_governorate_values_are_translated(rendered: dict[str, Rendered]) -> None:
    page = rendered["title-full"].html
    assert '<span class="chip">سكني</span> <span class="en" lang="en" dir="ltr">Residential</span>' in page
    assert ">residential<" not in page
    assert '<span class="chip">الدقهلية</span>' in page and ">Dakahlia<" in page
    assert '<span class="chip">لا يوجد</span>' in rendered["marriage-full"].html  # event_date null
    commercial = rendered["commercial-full"].html
    assert ">Limited liability company<" in commercial and ">Egyptian pound<" in commercial


def test_header_shows_agency_dates_and_identity(rendered: dict[str, Rendered]) -> None:
    page = rendered["title-partial"].html
    assert "مصلحة الشهر العقاري والتوثيق" in page and "Real Estate Publicity Department" in page
    assert "شهادة قيد — سند ملكية عقارية" in page and "Registry certificate — Real-estate title" in page
    assert ">2026-11-27 16:03<" in page and ">2026-12-02 11:41<" in page and "1842" in page
    assert ">T2019-45873 (REPD)<" in page
    # The ledger by the one name the verify page gives it too (api/web/app.js), never "السلسلة".
    assert "تاريخ التثبيت في دفتر القيود المشترك" in page and "السلسلة" not in page
    bundle = rendered["title-partial"].cert.bundle
    assert bundle.anchor is not None
    assert "0x" + bundle.leaf.hex() in page and "0x" + bundle.anchor.root.hex() in page


def test_weasyprint_is_imported_lazily() -> None:
    code = "import sys, api.certificate_render; print('weasyprint' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=OUTPUT.parents[2]
    )
    assert result.stdout == "False\n"


def test_certificate_needs_an_anchored_bundle() -> None:
    bundle = anchored_bundle("marriage")
    with pytest.raises(CertificateError, match="anchored"):
        certificate(replace(bundle, anchor=None))


def test_agency_name_split() -> None:
    assert split_agency_name("مصلحة السجل التجاري / Commercial Registry Authority") == (
        "مصلحة السجل التجاري",
        "Commercial Registry Authority",
    )
    assert split_agency_name("مصلحة السجل التجاري") == ("مصلحة السجل التجاري", "مصلحة السجل التجاري")


# --------------------------------------------------------------------------------- QR code


def test_qr_code_of_a_realistic_url() -> None:
    url = "HTTPS://REGISTRY.EXAMPLE.GOV.EG:8601/V/" + base64.b32encode(bytes(range(20))).decode()
    assert len(url) == 39 + 32
    qr = qr_code(url)
    assert isinstance(qr.version, int) and qr.version <= 10
    assert qr.error in ("M", "Q", "H")
    assert qr.mode == "alphanumeric"
    lower = qr_code(url.lower())
    assert lower.mode == "byte" and isinstance(lower.version, int) and lower.version <= 10


def test_qr_code_refuses_a_url_too_long() -> None:
    with pytest.raises(CertificateError, match="version"):
        qr_code("HTTPS://REGISTRY.EXAMPLE.GOV.EG/V/" + "A" * 600)  # fits a larger QR code, not v10
    with pytest.raises(CertificateError):
        qr_code("https://example.gov.eg/" + "x" * 5000)  # fits no QR code at all
    with pytest.raises(CertificateError):
        qr_code("")


def test_qr_svg_markup() -> None:
    url = "HTTP://10.0.0.5:8601/V/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    svg = qr_svg(url)
    modules = qr_code(url).symbol_size(scale=1, border=0)[0]
    assert svg.startswith("<svg ") and svg.endswith("</svg>") and "<?xml" not in svg
    assert f'viewBox="0 0 {modules + 8} {modules + 8}"' in svg  # a 4-module quiet zone each side
    assert 'shape-rendering="crispEdges"' in svg
    assert "http://www.w3.org" not in svg


# --------------------------------------------------------------------------------- labels


def test_field_label_examples() -> None:
    assert field_label("/owners/0/name") == ("المالك 1 › الاسم", "Owner 1 › Name")
    assert field_label("/title_number") == ("رقم السند", "Title number")
    assert field_label("/encumbrances/0/registered_on") == (
        "العبء 1 › تاريخ القيد",
        "Encumbrance 1 › Registered on",
    )
    assert field_label("/owners/11/share") == ("المالك 12 › الحصة", "Owner 12 › Share")
    assert field_label("/husband/national_id") == ("الزوج › الرقم القومي", "Husband › National ID")
    assert field_label("/dower/deferred") == ("الصداق › مؤخر الصداق", "Dower (mahr) › Deferred")
    assert field_label("/status/event_date") == ("الحالة › تاريخ الواقعة", "Status › Event date")
    assert field_label("/activities/1") == ("النشاط 2", "Activity 2")
    assert field_label("/head_office/governorate") == (
        "المركز الرئيسي › المحافظة",
        "Head office › Governorate",
    )
    assert field_label("/capital/currency") == ("رأس المال › العملة", "Capital › Currency")
    # Unknown segments fall back to the raw token (unescaped); an index after an unknown one counts.
    assert field_label("/extra/0/a~1b") == ("extra 1 › a/b", "extra 1 › a/b")


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_every_field_of_the_examples_has_a_label(kind: str) -> None:
    labels = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    for path in flatten(validate_record(kind, EXAMPLES[kind](), today=TODAY)):
        tokens = path.split("/")[1:]
        for i, token in enumerate(tokens):
            if token.isdigit():
                assert tokens[i - 1] in labels["items"], (path, tokens[i - 1])
            else:
                assert token in labels["segments"], (path, token)
        ar, en = field_label(path)
        assert "_" not in en and not re.search(r"[a-z]", ar), (path, ar, en)


def test_every_enum_value_has_a_label() -> None:
    enums = {
        *get_args(LandUse),
        *get_args(Encumbrance.model_fields["kind"].annotation),
        *get_args(MarriageStatus.model_fields["state"].annotation),
        *get_args(LegalForm),
        *get_args(BusinessStatus.model_fields["state"].annotation),
    }
    assert {"residential", "mortgage", "married", "divorced", "llc", "struck_off"} <= enums
    for value in enums:
        label = value_label(value)
        assert label is not None and all(label), value
    for kind, example in EXAMPLES.items():
        for path, value in flatten(validate_record(kind, example(), today=TODAY)).items():
            if path.rsplit("/", 1)[-1] in ENUM_FIELDS:
                assert value_label(value) is not None, (kind, path, value)
    assert value_label("محمد") is None and value_label(None) is None and value_label(12) is None


def test_labels_file_is_plain_and_complete() -> None:
    labels = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    assert set(labels) == {"recordTypes", "segments", "items", "values", "governorates", "ui"}
    for section in labels.values():
        for key, entry in section.items():
            assert set(entry) == {"ar", "en"}, key
            assert entry["ar"].strip() and entry["en"].strip(), key
            assert re.search(r"[\u0600-\u06ff]", entry["ar"]), key
    assert set(labels["recordTypes"]) == {"title", "marriage", "commercial"}
    assert labels["governorates"] == {
        code: {"ar": g.name_ar, "en": g.name_en} for code, g in GOVERNORATES.items() if code != BORN_ABROAD
    }
    assert labels["ui"]["hidden"] == {"ar": "مخفي", "en": "hidden"}
