"""A comparison of two load reports as ONE self-contained HTML page, in the load report page's
style (its stylesheet and Content-Security-Policy: nothing loaded, no script). Every string
taken from a report or a file name is HTML-escaped. Pure: returns text."""

from __future__ import annotations

from html import escape

from .compare import Comparison, Row, Side
from .html import CSP, CSS
from .html_cells import DASH

__all__ = ["render_compare_html"]

EXTRA_CSS = """
td.better { color: #15803d; font-weight: 600; } td.worse { color: #b91c1c; font-weight: 600; }
td.name { font-family: ui-monospace, monospace; text-align: left; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _side(label: str, side: Side) -> str:
    r, s = side.report, side.report.scenario
    mode = DASH if s is None or s.e2ee is None else "E2EE" if s.e2ee else "plain (no E2EE)"
    facts = [
        mode,
        f"target {s.target if s is not None and s.target else DASH}",
        f"{r.duration_s:g} s" if r.duration_s is not None else DASH,
    ]
    if r.started_at:
        facts.append(f"started {r.started_at}")
    if r.verdict:
        facts.append(f"verdict {r.verdict}")
    return f'<p class="sub"><b>{_e(label)}</b> {_e(side.file)}: {_e(" · ".join(facts))}</p>'


def _table(headers: tuple[str, ...], rows: list[str], empty: str, text_columns: tuple[int, ...] = (0,)) -> str:
    head = "".join(f'<th class="{"text" if i in text_columns else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    if not rows:
        rows = [f'<tr><td class="text" colspan="{len(headers)}">{_e(empty)}</td></tr>']
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _row(row: Row) -> str:
    trend = row.trend if row.trend in ("better", "worse") else ""
    tds = "".join(f"<td>{_e(c)}</td>" for c in row.cells())
    return (
        f'<tr class="{"problem" if trend == "worse" else ""}"><td class="name">{_e(row.metric.name)}</td>'
        f'{tds}<td class="text {trend}">{_e(trend)}</td></tr>'
    )


def _thresholds(comparison: Comparison) -> str:
    rows = []
    for t in comparison.thresholds:
        mark = '<span class="no">TRIPPED</span>' if t.tripped else '<span class="ok">OK</span>'
        rows.append(
            f'<tr class="{"problem" if t.tripped else ""}"><td>{mark}</td><td class="expr">{_e(t.expr)}</td>'
            f'<td class="text">{_e(t.found)}</td></tr>'
        )
    return _table(("result", "threshold", "found"), rows, "no thresholds (--fail-if) given", (0, 1, 2))


def render_compare_html(comparison: Comparison) -> str:
    """The comparison page as one string (UTF-8 HTML5, nothing external)."""
    verdict = "fail" if comparison.tripped else "pass"
    notes = []
    if comparison.differences:
        notes.append(f'<p class="sub">The runs differ in: {_e("; ".join(comparison.differences))}</p>')
    for file in comparison.saturated:
        notes.append(
            f'<div class="warning" role="alert">{_e(file)}: the load generator saturated; its numbers are not '
            "trustworthy.</div>"
        )
    rows = [_row(row) for row in comparison.rows]
    headers = ("metric", "BASE", "NEW", "change", "change %", "")
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>sealrtc report compare — {_e(verdict)}</title><style>{CSS}{EXTRA_CSS}</style></head><body><main>",
            f'<h1>sealrtc report compare <span class="verdict {verdict}">{verdict}</span></h1>',
            _side("BASE", comparison.base),
            _side("NEW", comparison.new),
            *notes,
            "<h2>Thresholds</h2>",
            _thresholds(comparison),
            "<h2>Metrics</h2>",
            _table(headers, rows, "no metrics"),
            "<footer>change = NEW - BASE; change % is relative to BASE; better/worse follows each metric's"
            " direction (latency, loss and CPU: lower is better; fps: higher). Percentiles come from each"
            " report's merged histograms.</footer>",
            "</main></body></html>",
        ]
    )
