"""A load report as ONE self-contained HTML page: inline CSS, inline SVG charts, no script.

The page loads nothing: no script, font, stylesheet or image URL, and a Content-Security-Policy
(``default-src 'none'``) forbids any. Every string taken from the report is HTML-escaped.
Missing sections and null values render as "—" (or a chart saying "no data").

Report shape (version 1, written by ``sealrtc load``): ``scenario``, ``participants``
(planned/joined/failed/intruders), ``metrics`` (histogram summaries ``join_ms``,
``first_frame_ms``, ``latency_ms`` = ``{count, p50, p90, p95, p99, max}`` or null; ``frames``,
``decrypt_failures``, ``intruder_decrypts``, ``intruder_failures``, ``freezes``), ``rooms``
(``{room, participants, metrics}``), ``generator`` (``cpu_percent``, ``loop_lag_ms``, ``saturated``,
``saturation_reasons``), ``assertions`` (``{expr, value, ok, reason}``), ``intervals`` (see
:mod:`sealrtc.report.csv`), ``verdict`` and ``exit_status``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .plot import PALETTE, Series, line_chart

__all__ = ["render_html"]

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #111827; font: 14px/1.45 system-ui, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.sub { color: #4b5563; margin: 0; }
.verdict { font-size: 14px; font-weight: 700; letter-spacing: .05em; padding: 3px 10px; border-radius: 999px;
  color: #fff; background: #6b7280; text-transform: uppercase; }
.verdict.pass { background: #15803d; } .verdict.fail { background: #b91c1c; }
.verdict.saturated { background: #c2410c; } .verdict.interrupted { background: #6b7280; }
.warning { margin: 16px 0 0; padding: 10px 14px; border-radius: 8px; background: #fef2f2; color: #991b1b;
  border: 1px solid #fca5a5; font-weight: 600; }
.warning ul { margin: 4px 0 0; font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; margin-top: 18px; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 12px; }
.card .label { color: #4b5563; font-size: 12px; }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card.bad { border-color: #fca5a5; background: #fef2f2; } .card.bad .value { color: #b91c1c; }
.card.warn { border-color: #fcd34d; background: #fffbeb; } .card.warn .value { color: #b45309; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; }
figure { margin: 0; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 12px 6px; }
figcaption { font-weight: 600; margin-bottom: 2px; }
svg.plot { display: block; width: 100%; max-width: 760px; height: auto; }
table { border-collapse: collapse; background: #fff; border: 1px solid #e5e7eb; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; white-space: nowrap; }
th { background: #f9fafb; font-weight: 600; color: #374151; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.expr { font-family: ui-monospace, monospace; text-align: left; white-space: normal; }
.tag { font: 11px system-ui, sans-serif; color: #4b5563; background: #eef0f3; border-radius: 4px; padding: 1px 5px; }
.ok { color: #15803d; font-weight: 700; } .no { color: #b91c1c; font-weight: 700; }
tr.problem td { background: #fef2f2; }
.wrap { overflow-x: auto; }
.side { display: flex; gap: 18px; flex-wrap: wrap; align-items: flex-start; }
footer { margin-top: 30px; color: #6b7280; font-size: 12px; }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
DASH = "\u2014"
TIMES = "\u00d7"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _get(node: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: object) -> str:
    n = _num(value)
    return DASH if n is None else (f"{int(n):,}" if n == int(n) else f"{n:,.1f}")


def _ms(value: object) -> str:
    n = _num(value)
    if n is None:
        return DASH
    return f"{n:,.0f} ms" if n >= 100 else f"{n:.1f} ms"


def _value(value: object) -> str:
    n = _num(value)
    return DASH if n is None else f"{n:.5g}"


def _total(section: object) -> float | None:
    if not isinstance(section, Mapping):
        return None
    values = [_num(v) for v in section.values()]
    return sum(v for v in values if v is not None)


def _loss_percent(metrics: object) -> float | None:
    lost, decrypted = _num(_get(metrics, "frames", "lost")), _num(_get(metrics, "frames", "decrypted"))
    if lost is None or decrypted is None:
        return None
    return 100.0 * lost / (lost + decrypted) if lost + decrypted else 0.0


def _scenario(report: Mapping[str, Any]) -> str:
    s = _get(report, "scenario")
    if not isinstance(s, Mapping):
        return "scenario unknown"
    parts = []
    per_room = ", ".join(
        f"{_count(s.get(k))} {label}"
        for k, label in (("publishers", "pub"), ("subscribers", "sub"), ("intruders", "intruder"))
    )
    parts.append(f"{_count(s.get('rooms'))} rooms {TIMES} ({per_room})")
    parts.append(f"{_count(s.get('duration'))} s, ramp {_value(s.get('ramp'))}/s")
    parts.append(f"target: {s.get('target', DASH)}")
    e2ee = s.get("e2ee")
    parts.append(f"E2EE {'on' if e2ee else 'OFF'}" + (f" (suite {s.get('suite')})" if e2ee and "suite" in s else ""))
    parts.append(f"media: {s.get('media', DASH)}")
    parts.append(f"probes {'on' if s.get('probe') else 'off'}")
    decode_every = _num(s.get("decode_every"))
    if decode_every is not None:
        parts.append(f"1 subscriber in {_count(decode_every)} decodes" if decode_every else "verify-only (no decoding)")
    parts.append(f"{_count(s.get('workers'))} workers")
    return " · ".join(_e(p) for p in parts)


def _card(label: str, value: str, level: str = "") -> str:
    return f'<div class="card {level}"><div class="label">{_e(label)}</div><div class="value">{value}</div></div>'


def _headline(report: Mapping[str, Any]) -> str:
    p, m = _get(report, "participants"), _get(report, "metrics")
    planned, joined, failed = (_num(_get(p, k)) for k in ("planned", "joined", "failed"))
    latency = _get(m, "latency_ms")
    lost, loss = _get(m, "frames", "lost"), _loss_percent(m)
    freezes = _get(m, "freezes", "count")
    failures, intruder = _total(_get(m, "decrypt_failures")), _num(_get(m, "intruder_decrypts"))
    short = joined is not None and planned is not None and joined < planned
    cards = [
        _card("joined / planned", f"{_count(joined)} / {_count(planned)}", "bad" if short or (failed or 0) > 0 else ""),
        _card("latency p50", _e(_ms(_get(latency, "p50")))),
        _card("latency p95", _e(_ms(_get(latency, "p95")))),
        _card("latency p99", _e(_ms(_get(latency, "p99")))),
        *[
            _card(f"{kind} latency p95", _e(_ms(_get(m, f"latency_{kind}_ms", "p95"))))
            for kind in ("video", "audio")
            if _get(m, f"latency_{kind}_ms") is not None
        ],
        _card(
            "frames lost",
            _e(_count(lost)) + (f" <small>({loss:.2f} %)</small>" if loss is not None else ""),
            "warn" if (_num(lost) or 0) > 0 else "",
        ),
        _card("freezes", _e(_count(freezes)), "warn" if (_num(freezes) or 0) > 0 else ""),
        _card("decrypt failures", _e(_count(failures)), "warn" if (failures or 0) > 0 else ""),
        _card("intruder decrypts", _e(_count(intruder)), "bad" if (intruder or 0) > 0 else ""),
    ]
    return f'<section class="cards">{"".join(cards)}</section>'


def _column(intervals: Sequence[Mapping[str, Any]], key: str) -> list[float | None]:
    return [_num(row.get(key)) for row in intervals]


def _charts(report: Mapping[str, Any]) -> str:
    raw = _get(report, "intervals")
    intervals = [row for row in raw if isinstance(row, Mapping)] if isinstance(raw, Sequence) else []
    xs = _column(intervals, "t")
    x_max = _num(_get(report, "duration_s"))

    def chart(title: str, y_label: str, *series: tuple[str, str, str], integer: bool = False) -> str:
        lines = [
            Series(label, _column(intervals, key), PALETTE[i], unit) for i, (label, key, unit) in enumerate(series)
        ]
        svg = line_chart(title, xs, lines, y_label=y_label, x_max=x_max, integer=integer)
        return f"<figure><figcaption>{_e(title)}</figcaption>{svg}</figure>"

    people = [("joined", "joined", ""), ("intruders", "intruders", "")]
    if any(row.get("failed") is not None for row in intervals):
        people.append(("failed", "failed", ""))
    charts = [
        chart("Participants joined", "participants", *people, integer=True),
        chart("End-to-end latency", "ms", ("p50", "latency_p50", "ms"), ("p95", "latency_p95", "ms")),
        chart("Video frame rate per track", "frames / s", ("fps", "fps", "fps")),
        chart(
            "Frames lost and freezes", "count", ("frames lost", "lost", ""), ("freezes", "freezes", ""), integer=True
        ),
        chart(
            "Decrypt failures and intruder decrypts",
            "count",
            ("decrypt failures", "decrypt_failures", ""),
            ("intruder decrypts", "intruder_decrypts", ""),
            integer=True,
        ),
        chart("Generator CPU", "%", ("CPU", "cpu_percent", "%")),
        chart("Generator event-loop lag", "ms", ("loop lag", "loop_lag_ms", "ms")),
    ]
    return f'<section class="charts">{"".join(charts)}</section>'


def _table(headers: Sequence[str], rows: Sequence[str], empty: str, text_columns: Sequence[int] = (0,)) -> str:
    head = "".join(f'<th class="{"text" if i in text_columns else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    if not rows:
        rows = [f'<tr><td class="text" colspan="{len(headers)}">{_e(empty)}</td></tr>']
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _assertions(report: Mapping[str, Any]) -> str:
    raw = _get(report, "assertions")
    rows = []
    for a in raw if isinstance(raw, Sequence) else []:
        if not isinstance(a, Mapping):
            continue
        ok = a.get("ok") is True
        mark = '<span class="ok">PASS</span>' if ok else '<span class="no">FAIL</span>'
        default = ' <span class="tag">default</span>' if a.get("default") is True else ""
        rows.append(
            f'<tr class="{"" if ok else "problem"}"><td>{mark}</td>'
            f'<td class="expr">{_e(a.get("expr", ""))}{default}</td>'
            f'<td>{_e(_value(a.get("value")))}</td><td class="text">{_e(a.get("reason") or "")}</td></tr>'
        )
    return _table(("result", "assertion", "measured", "reason"), rows, "no assertions", (0, 1, 3))


def _room_row(room: Mapping[str, Any]) -> str:
    p, m = room.get("participants"), room.get("metrics")
    latency = _get(m, "latency_ms")
    failures, intruder = _total(_get(m, "decrypt_failures")), _num(_get(m, "intruder_decrypts"))
    planned, joined, failed = (_num(_get(p, k)) for k in ("planned", "joined", "failed"))
    problem = (
        (failed or 0) > 0
        or (intruder or 0) > 0
        or (joined is not None and planned is not None and joined < planned)
        or (_num(_get(m, "frames", "lost")) or 0) > 0
        or (_num(_get(m, "freezes", "count")) or 0) > 0
        or (failures or 0) > 0
    )
    cells = [
        f"{_count(joined)} / {_count(planned)}",
        _count(failed),
        _ms(_get(latency, "p50")),
        _ms(_get(latency, "p95")),
        _ms(_get(latency, "p99")),
        _count(_get(m, "frames", "decrypted")),
        _count(_get(m, "frames", "lost")),
        _count(_get(m, "freezes", "count")),
        _count(failures),
        _count(intruder),
    ]
    tds = "".join(f"<td>{_e(c)}</td>" for c in cells)
    return f'<tr class="{"problem" if problem else ""}"><td>{_e(room.get("room", "?"))}</td>{tds}</tr>'


def _rooms(report: Mapping[str, Any]) -> str:
    raw = _get(report, "rooms")
    rows = [_room_row(r) for r in raw if isinstance(r, Mapping)] if isinstance(raw, Sequence) else []
    headers = (
        "room",
        "joined",
        "failed",
        "p50",
        "p95",
        "p99",
        "decrypted",
        "lost",
        "freezes",
        "decrypt fail.",
        "intruder dec.",
    )
    return _table(headers, rows, "no rooms")


def _histograms(report: Mapping[str, Any]) -> str:
    rows = []
    for label, summary in (
        ("end-to-end latency", _get(report, "metrics", "latency_ms")),
        ("video latency", _get(report, "metrics", "latency_video_ms")),
        ("audio latency", _get(report, "metrics", "latency_audio_ms")),
        ("join", _get(report, "metrics", "join_ms")),
        ("first frame", _get(report, "metrics", "first_frame_ms")),
        ("generator loop lag", _get(report, "generator", "loop_lag_ms")),
    ):
        cells = [_count(_get(summary, "count") or 0)] + [
            _ms(_get(summary, k)) for k in ("p50", "p90", "p95", "p99", "max")
        ]
        rows.append(f"<tr><td>{_e(label)}</td>{''.join(f'<td>{_e(c)}</td>' for c in cells)}</tr>")
    return _table(("ms", "samples", "p50", "p90", "p95", "p99", "max"), rows, "")


def _reasons(report: Mapping[str, Any]) -> str:
    rows = []
    for label, key in (("decrypt failures", "decrypt_failures"), ("intruder failures", "intruder_failures")):
        section = _get(report, "metrics", key)
        for reason, n in section.items() if isinstance(section, Mapping) else ():
            rows.append(f"<tr><td>{_e(label)}</td><td class='text'>{_e(reason)}</td><td>{_e(_count(n))}</td></tr>")
    return _table(("counter", "reason", "frames"), rows, "no failures recorded", (0, 1))


def _warning(report: Mapping[str, Any]) -> str:
    if _get(report, "generator", "saturated") is not True:
        return ""
    reasons = _get(report, "generator", "saturation_reasons")
    items = (
        "".join(f"<li>{_e(r)}</li>" for r in reasons)
        if isinstance(reasons, Sequence) and not isinstance(reasons, str)
        else ""
    )
    return (
        '<div class="warning" role="alert">The load generator was saturated: its own CPU or event loop was the'
        f" bottleneck, so these numbers are suspect.{f'<ul>{items}</ul>' if items else ''}</div>"
    )


def render_html(report: Mapping[str, object]) -> str:
    """The whole report page as one string (UTF-8 HTML5, nothing external)."""
    verdict = str(report.get("verdict") or "unknown")
    assertions = _get(report, "assertions")
    results = [a for a in assertions if isinstance(a, Mapping)] if isinstance(assertions, Sequence) else []
    passed = sum(1 for a in results if a.get("ok") is True)
    rooms, planned = _num(_get(report, "scenario", "rooms")), _num(_get(report, "participants", "planned"))
    title = f"sealrtc load — {verdict} — {_count(rooms)} rooms, {_count(planned)} participants"
    started = _e(report.get("started_at") or DASH)
    duration = _num(report.get("duration_s"))
    summary = f"{passed} of {len(results)} assertions passed" if results else "no assertions"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
            f'<h1>sealrtc load <span class="verdict {_e(verdict)}">{_e(verdict)}</span></h1>',
            f'<p class="sub">{_scenario(report)}</p>',
            f'<p class="sub">started {started}, ran {_e(_count(duration))} s · {_e(summary)}</p>',
            _warning(report),
            _headline(report),
            "<h2>Assertions</h2>",
            _assertions(report),
            "<h2>Over time</h2>",
            _charts(report),
            "<h2>Rooms</h2>",
            _rooms(report),
            '<h2>Distributions and failures</h2><div class="side">',
            _histograms(report),
            _reasons(report),
            "</div>",
            f"<footer>{_e(report.get('tool') or 'sealrtc load')} report,"
            f" schema version {_e(report.get('version', DASH))}, exit status {_e(report.get('exit_status', DASH))}."
            " Percentiles come from merged HdrHistograms"
            " (the JSON report holds them); interval counts are per interval.</footer>",
            "</main></body></html>",
        ]
    )
