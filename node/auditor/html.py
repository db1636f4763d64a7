"""The audit report as one self-contained HTML page an auditor can hand on (`sijill audit --html`).

`render_html` lays out an `AuditReport` (`node.auditor.report`): the verdict, a summary, every
check, every finding, an inline SVG of batches anchored per day and the batch table (up to
`HTML_BATCHES` rows), with Arabic headings beside the English. Inline CSS and SVG only: no
script, no fetch. Everything quoted from the export is escaped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape as html_escape
from typing import TYPE_CHECKING, Any

from ledger.canonical import show_refused

if TYPE_CHECKING:
    from node.auditor.report import AuditReport

HTML_BATCHES = 5_000
"""Rows of the HTML batch table: batches with findings first, then the latest."""


def _when(at: int | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Naskh Arabic",sans-serif;
margin:2rem auto;max-width:75rem;padding:0 1rem;color:#1d2430;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d6dbe3}
[dir=rtl]{font-family:"Noto Naskh Arabic","Geeza Pro","Arial",sans-serif}
.ar{margin-inline-start:.75rem;color:#4a5568}
table{border-collapse:collapse;width:100%;font-size:.86rem}
th,td{border:1px solid #d6dbe3;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}tr.bad td{background:#fff3f2}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
.verdict{display:inline-block;padding:.4rem .8rem;border-radius:.3rem;font-weight:600}
.clean{background:#e3f6e8;color:#14532d}.findings{background:#fde2e0;color:#7f1d1d}
.pass{color:#166534;font-weight:600}.fail{color:#b91c1c;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.note{color:#4a5568;font-size:.85rem}
"""


def render_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page: inline CSS and SVG, no script, no fetch."""
    data = report.to_json()
    e = _e
    m, log, summary = report.manifest, report.log, data["summary"]
    clean = not report.findings
    verdict = (
        '<span class="verdict clean">No findings <span dir="rtl" lang="ar">لا مخالفات</span></span>'
        if clean
        else f'<span class="verdict findings">{len(report.findings)} findings '
        f'<span dir="rtl" lang="ar">{len(report.findings)} مخالفة</span></span>'
    )
    facts = [
        ("Agency", f"{e(m.agency)} — {e(show_refused(report.agency_name))}"),
        (
            "Chain",
            f"{m.chain_id}, blocks {log.from_block} to {log.to_block} (latest {_when(log.latest_time)})",
        ),
        ("RecordLedger", f"<code>{e(m.ledger)}</code>"),
        ("AgencyRegistry", f"<code>{e(m.registry)}</code>"),
        ("Export", f"{e(m.source or 'unknown source')}, {_when(m.exported_at)}"),
        (
            "Batches",
            f"{summary['exportedBatches']} exported, {summary['chainBatches']} on-chain "
            f"(head {log.head_seq})",
        ),
        ("Leaves", str(summary["exportedLeaves"])),
        ("Receipts", f"{summary['receipts']} ({summary['receiptsNotYetDue']} not yet due)"),
        ("Leaf changes", f"{summary['revocations']} revocations, {summary['supersessions']} supersessions"),
    ]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Sijill audit: {e(m.agency)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Audit of {e(m.agency)}\'s log <span class="ar" dir="rtl" lang="ar">تقرير تدقيق سجل الجهة '
        f"{e(m.agency)}</span></h1>",
        f"<p>{verdict}</p>",
        _heading("Summary", "الملخص"),
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>",
        _heading("Checks", "الفحوص"),
        "<table><thead><tr><th>check</th><th>holds that</th><th>checked</th><th>failed</th><th>result</th>"
        "</tr></thead><tbody>",
    ]
    for check in data["checks"]:
        failed = bool(check["failed"])
        result = '<span class="fail">FAILED</span>' if failed else '<span class="pass">passed</span>'
        parts.append(
            f"<tr{' class=bad' if failed else ''}><td><code>{e(check['id'])}</code></td>"
            f"<td>{e(check['title'])}</td><td>{check['checked']}</td><td>{check['failed']}</td><td>{result}</td></tr>"
        )
    parts += ["</tbody></table>", _heading("Findings", "المخالفات")]
    if clean:
        parts.append("<p>None: the export and the chain agree on every check.</p>")
    else:
        parts.append(
            "<table><thead><tr><th>#</th><th>finding</th><th>what</th><th>batch</th><th>leaf</th></tr></thead><tbody>"
        )
        for number, finding in enumerate(data["findings"], 1):
            seq = finding.get("seq", "")
            leaf = finding.get("leaf", "")
            parts.append(
                f"<tr class=bad><td>{number}</td><td><code>{e(finding['id'])}</code></td>"
                f"<td>{e(finding['message'])}</td><td>{e(str(seq))}</td><td><code>{e(str(leaf))}</code></td></tr>"
            )
        parts.append("</tbody></table>")
    parts += [
        _heading("Batches anchored per day", "الدفعات المثبتة في كل يوم"),
        _timeline_svg(data["timeline"]),
    ]
    parts += [_heading("Batches", "الدفعات"), _batches_table(data["batches"])]
    parts.append(
        f'<p class="note">Written by <code>sijill audit</code> at {_when(int(time.time()))}. Finding ids and '
        "what each check proves: docs/audit.md.</p></body></html>\n"
    )
    return "\n".join(parts)


def _e(value: object) -> str:
    return html_escape(str(value), quote=True)


def _heading(english: str, arabic: str) -> str:
    return f'<h2>{english} <span class="ar" dir="rtl" lang="ar">{arabic}</span></h2>'


def _batches_table(rows: list[dict[str, Any]]) -> str:
    shown = rows
    note = ""
    if len(rows) > HTML_BATCHES:
        flagged = [r for r in rows if r["findings"]]
        unflagged = [r for r in rows if not r["findings"]]
        rest = unflagged[len(unflagged) - max(0, HTML_BATCHES - len(flagged)) :]
        shown = sorted(flagged[:HTML_BATCHES] + rest, key=lambda r: r["seq"])
        note = (
            f'<p class="note">{len(shown)} of {len(rows)} batches: those with findings and the latest. '
            "The JSON report (--json) lists all.</p>"
        )
    lines = [
        note + "<table><thead><tr><th>seq</th><th>root</th><th>type</th><th>leaves</th><th>block</th>"
        "<th>time (UTC)</th><th>signer</th><th>state</th><th>findings</th></tr></thead><tbody>"
    ]
    for row in shown:
        bad = bool(row["findings"]) or row["state"] not in ("anchored", "pending")
        lines.append(
            f"<tr{' class=bad' if bad else ''}><td>{row['seq']}</td><td><code>{_e(row['root'])}</code></td>"
            f"<td>{_e(row['recordType'])}</td><td>{row['count']}</td><td>{_e(row['block'] or '')}</td>"
            f"<td>{_when(row['timestamp']) if row['timestamp'] else ''}</td>"
            f"<td><code>{_e(row['signer'] or '')}</code></td><td>{_e(row['state'])}</td>"
            f"<td>{_e(', '.join(row['findings']))}</td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _timeline_svg(days: list[dict[str, Any]]) -> str:
    """Bars of batches anchored per day, the part with findings in red; inline SVG."""
    width, height, left, bottom, top = 960, 240, 48, 56, 16
    if not days:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img" '
            'aria-label="no anchored batches"><text x="8" y="30" font-size="14">No anchored batches.</text>'
            "</svg>"
        )
    peak = max(d["batches"] for d in days)
    plot_w, plot_h = width - left - 8, height - bottom - top
    step = plot_w / len(days)
    bar = min(40.0, max(1.0, step * 0.8))
    label_every = max(1, len(days) // 12)
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="batches anchored per day">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#8a94a6"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8a94a6"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        total_h = plot_h * day["batches"] / peak
        bad_h = plot_h * day["flagged"] / peak
        title = (
            f"{day['day']}: {day['batches']} batches, {day['leaves']} leaves, {day['flagged']} with findings"
        )
        shapes.append(
            f'<g><title>{_e(title)}</title><rect x="{x:.1f}" y="{top + plot_h - total_h:.1f}" '
            f'width="{bar:.1f}" height="{total_h:.1f}" fill="#3b6fb6"/>'
            + (
                f'<rect x="{x:.1f}" y="{top + plot_h - bad_h:.1f}" width="{bar:.1f}" height="{bad_h:.1f}" '
                'fill="#c53030"/>'
                if day["flagged"]
                else ""
            )
            + "</g>"
        )
        if i % label_every == 0:
            cx, cy = x + bar / 2, top + plot_h + 12
            shapes.append(
                f'<text x="{cx:.1f}" y="{cy}" font-size="10" text-anchor="end" '
                f'transform="rotate(-40 {cx:.1f} {cy})">{_e(day["day"])}</text>'
            )
    shapes.append("</svg>")
    legend = (
        '<p class="note"><span style="color:#3b6fb6">■</span> batches anchored '
        '<span style="color:#c53030">■</span> batches with findings</p>'
    )
    return "".join(shapes) + legend
