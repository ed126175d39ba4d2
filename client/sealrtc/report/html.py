"""A load report as ONE self-contained HTML page: inline CSS, inline SVG charts, no script.

The page loads nothing: no script, font, stylesheet or image URL, and a Content-Security-Policy
(``default-src 'none'``) forbids any. Every string taken from the report is HTML-escaped.
Missing sections and null values render as "—" (or a chart saying "no data").

The page reads a typed :class:`~sealrtc.report.model.LoadReport` (its JSON: ``report.schema.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from .assertions import AssertionSyntaxError, Counter, Percentile, parse
from .assertions import Number as AssertedNumber
from .html_cells import (
    DASH,
    Column,
    card,
    count_text,
    esc,
    grouped_table,
    kbps_card,
    kbps_text,
    ms_text,
    pick,
    rounded,
    table,
    value_text,
)
from .html_recovery import fault_spans, faults_section, links_section, recovery_cards
from .jsonread import Number
from .measures import Bitrate, Frames, Freezes, Metrics, ParticipantRow, Participants, RoomReport
from .media_line import media_line
from .model import LoadReport
from .plot import PALETTE, Series, Threshold, line_chart

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
th, td { padding: 6px 8px; border-bottom: 1px solid #e5e7eb; text-align: right; white-space: nowrap; }
th { background: #f9fafb; font-weight: 600; color: #374151; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
th.group { text-align: center; border-left: 1px solid #e5e7eb; } th.under { text-align: right; }
td.expr { font-family: ui-monospace, monospace; text-align: left; white-space: normal; }
.tag { font: 11px system-ui, sans-serif; color: #4b5563; background: #eef0f3; border-radius: 4px; padding: 1px 5px; }
.ok { color: #15803d; font-weight: 700; } .no { color: #b91c1c; font-weight: 700; }
tr.problem td { background: #fef2f2; }
.wrap { overflow-x: auto; }
.side { display: flex; gap: 18px; flex-wrap: wrap; align-items: flex-start; }
footer { margin-top: 30px; color: #6b7280; font-size: 12px; }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TIMES = "\u00d7"


def _scenario(report: LoadReport) -> str:
    s = report.scenario
    if s is None:
        return "scenario unknown"
    parts = []
    per_room = ", ".join(
        f"{count_text(n)} {label}"
        for n, label in ((s.publishers, "pub"), (s.subscribers, "sub"), (s.intruders, "intruder"))
    )
    parts.append(f"{_many(s.rooms, 'room')} {TIMES} ({per_room})")
    parts.append(f"{count_text(s.duration)} s, ramp {value_text(s.ramp)}/s")
    parts.append(f"target: {s.target if s.target is not None else DASH}")
    suite = f" (suite {s.suite})" if s.e2ee and s.suite is not None else ""
    parts.append(f"E2EE {'on' if s.e2ee else 'OFF'}" + suite)
    parts.append(f"media: {media_line(s, unknown=DASH)}")
    parts.append(f"probes {'on' if s.probe else 'off'}")
    if s.decode_every is not None:
        parts.append(
            f"1 subscriber in {count_text(s.decode_every)} decodes" if s.decode_every else "verify-only (no decoding)"
        )
    parts.append(_many(s.workers, "worker"))
    return " · ".join(esc(p) for p in parts)


def _many(n: Number | None, word: str) -> str:
    """``1 room``, ``3 rooms``, ``— rooms``."""
    return f"{count_text(n)} {word}" if n == 1 else f"{count_text(n)} {word}s"


def _opt(value: object) -> object:
    return DASH if value is None else value


def _headline(report: LoadReport) -> str:
    p, m = report.participants or Participants(), report.metrics or Metrics()
    frames, freezes_section = m.frames or Frames(), m.freezes or Freezes()
    bitrate = m.bitrate or Bitrate()
    lost, loss, freezes = frames.lost, m.loss_percent, freezes_section.count
    failures = m.decrypt_failures.total if m.decrypt_failures is not None else None
    intruder = m.intruder_decrypts
    short = p.joined is not None and p.planned is not None and p.joined < p.planned
    cards = [
        card(
            "joined / planned",
            f"{count_text(p.joined)} / {count_text(p.planned)}",
            "bad" if short or (p.failed or 0) > 0 else "",
        ),
        card("video latency p50", esc(ms_text(pick(m.latency_video_ms, "p50")))),
        card("video latency p95", esc(ms_text(pick(m.latency_video_ms, "p95")))),
        card("video latency p99", esc(ms_text(pick(m.latency_video_ms, "p99")))),
        card("audio latency p50", esc(ms_text(pick(m.latency_audio_ms, "p50")))),
        card("audio latency p95", esc(ms_text(pick(m.latency_audio_ms, "p95")))),
        card("video received", kbps_card(bitrate.shown("received_video_kbps"))),
        card("audio received", kbps_card(bitrate.shown("received_audio_kbps"))),
        card("sent per publisher", kbps_card(bitrate.total("sent"))),
        card(
            "frames lost",
            esc(count_text(lost)) + (f" <small>({loss:.2f} %)</small>" if loss is not None else ""),
            "warn" if (lost or 0) > 0 else "",
        ),
        card("freezes", esc(count_text(freezes)), "warn" if (freezes or 0) > 0 else ""),
        card("decrypt failures", esc(count_text(failures)), "warn" if (failures or 0) > 0 else ""),
        card("intruder decrypts", esc(count_text(intruder)), "bad" if (intruder or 0) > 0 else ""),
        *recovery_cards(report, m),
    ]
    return f'<section class="cards">{"".join(cards)}</section>'


CHART_OF = {
    "latency_ms": "latency",
    "latency_video_ms": "latency",
    "latency_audio_ms": "latency",
    "loop_lag_ms": "lag",
    "cpu_percent": "cpu",
}
"""The chart that shows what an assertion's histogram (or counter) measures, for its threshold
line (the charts plot per-second values; the assertion judges the whole run)."""


def _thresholds(report: LoadReport) -> dict[str, list[Threshold]]:
    """Each chart's assertion limits: every comparison of a charted measure with a number."""
    out: dict[str, list[Threshold]] = {}
    for outcome in report.assertions:
        try:
            assertion = parse(outcome.expr)
        except AssertionSyntaxError:
            continue  # a report from another version: nothing to draw
        for comparison in (c for conjunction in assertion.any_of for c in conjunction):
            measured, limit = comparison.left, comparison.right
            if isinstance(measured, AssertedNumber):
                measured, limit = limit, measured
            if not isinstance(limit, AssertedNumber):
                continue
            if isinstance(measured, Percentile) and measured.function != "count":
                name, label = measured.histogram, f"{measured.function}({measured.histogram})"
            elif isinstance(measured, Counter):
                name, label = measured.name, measured.name
            else:
                continue
            chart = CHART_OF.get(name)
            if chart is not None:
                out.setdefault(chart, []).append(Threshold(limit.value, f"{label} {comparison.op} {limit.text}"))
    return out


def _clock(started_at: str | None) -> str | None:
    """``HH:MM:SS UTC`` of the run's start (None when the report has no readable start)."""
    if not started_at:
        return None
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if started.tzinfo is not None:
        started = started.astimezone(UTC)
    return started.strftime("%H:%M:%S UTC")


def _charts(report: LoadReport) -> str:
    intervals = report.intervals
    xs = [row.get("t") for row in intervals]
    thresholds = _thresholds(report)
    spans = fault_spans(report)
    clock = _clock(report.started_at)
    x_label = f"time (s after {clock})" if clock else "time (s)"

    def chart(
        title: str, y_label: str, *series: tuple[str, str, str], integer: bool = False, measures: str = ""
    ) -> str:
        lines = [
            Series(label, [row.get(key) for row in intervals], PALETTE[i], unit)
            for i, (label, key, unit) in enumerate(series)
        ]
        svg = line_chart(title, xs, lines, y_label=y_label, x_label=x_label, x_max=report.duration_s,
                         integer=integer, thresholds=thresholds.get(measures, ()), spans=spans)  # fmt: skip
        return f"<figure><figcaption>{esc(title)}</figcaption>{svg}</figure>"

    people = [("joined", "joined", ""), ("intruders", "intruders", "")]
    if any(row.get("failed") is not None for row in intervals):
        people.append(("failed", "failed", ""))
    # a kind nobody sent (--no-audio) has no line: it was absent, not lost
    bitrate = report.metrics.bitrate if report.metrics is not None else None
    rates = [("sent", "sent_kbps", "kbit/s")] + [
        (f"received {kind}", f"received_{kind}_kbps", "kbit/s")
        for kind in ("video", "audio")
        if bitrate is None or bitrate.get(f"sent_{kind}_kbps") != 0
    ]
    charts = [
        chart("Participants joined", "participants", *people, integer=True),
        chart(
            "End-to-end latency, video and audio",
            "ms",
            ("video p50", "latency_video_p50", "ms"),
            ("video p95", "latency_video_p95", "ms"),
            ("audio p50", "latency_audio_p50", "ms"),
            ("audio p95", "latency_audio_p95", "ms"),
            measures="latency",
        ),
        chart("Bitrate: sent by all publishers, received by all subscribers", "kbit/s", *rates),
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
        chart("Generator CPU", "%", ("CPU", "cpu_percent", "%"), measures="cpu"),
        chart("Generator event-loop lag", "ms", ("loop lag", "loop_lag_ms", "ms"), measures="lag"),
    ]
    return f'<section class="charts">{"".join(charts)}</section>'


def _assertions(report: LoadReport) -> str:
    rows = []
    for a in report.assertions:
        mark = '<span class="ok">PASS</span>' if a.ok else '<span class="no">FAIL</span>'
        default = ' <span class="tag">default</span>' if a.default else ""
        rows.append(
            f'<tr class="{"" if a.ok else "problem"}"><td>{mark}</td>'
            f'<td class="expr">{esc(a.expr)}{default}</td>'
            f'<td>{esc(value_text(a.value))}</td><td class="text">{esc(a.reason or "")}</td></tr>'
        )
    return table(("result", "assertion", "measured", "reason"), rows, "no assertions", (0, 1, 3))


def _room_row(room: RoomReport) -> str:
    p, m = room.participants or Participants(), room.metrics or Metrics()
    frames, freezes = m.frames or Frames(), (m.freezes or Freezes()).count
    failures = m.decrypt_failures.total if m.decrypt_failures is not None else None
    intruder = m.intruder_decrypts
    problem = (
        (p.failed or 0) > 0
        or (intruder or 0) > 0
        or (p.joined is not None and p.planned is not None and p.joined < p.planned)
        or (frames.lost or 0) > 0
        or (freezes or 0) > 0
        or (failures or 0) > 0
    )
    cells = [
        f"{count_text(p.joined)} / {count_text(p.planned)}",
        count_text(p.failed),
        ms_text(pick(m.latency_video_ms, "p50")),
        ms_text(pick(m.latency_video_ms, "p95")),
        ms_text(pick(m.latency_audio_ms, "p50")),
        ms_text(pick(m.latency_audio_ms, "p95")),
        count_text(rounded((m.bitrate or Bitrate()).shown("received_video_kbps"))),
        count_text(rounded((m.bitrate or Bitrate()).shown("received_audio_kbps"))),
        count_text(frames.decrypted),
        count_text(frames.lost),
        count_text(freezes),
        count_text(failures),
        count_text(intruder),
    ]
    tds = "".join(f"<td>{esc(c)}</td>" for c in cells)
    name = room.room if room.room is not None else "?"
    return f'<tr class="{"problem" if problem else ""}"><td>{esc(name)}</td>{tds}</tr>'


def _rooms(report: LoadReport) -> str:
    rows = [_room_row(r) for r in report.rooms]
    columns: list[Column] = [
        "room",
        "joined",
        "failed",
        ("video latency", ("p50", "p95")),
        ("audio latency", ("p50", "p95")),
        ("received kbit/s", ("video", "audio")),
        "decrypted",
        "lost",
        "freezes",
        "decrypt fail.",
        "intruder dec.",
    ]
    return grouped_table(columns, rows, "no rooms")


HTML_PARTICIPANT_ROWS = 1000
"""Participants the page lists (the worst); the JSON and ``--csv-participants`` have them all."""


def _reasons_text(counts: Mapping[str, int] | None) -> str:
    if counts is None:
        return DASH
    seen = [f"{reason} {n:,}" for reason, n in sorted(counts.items()) if n]
    return ", ".join(seen) if seen else "0"


def _participant_row(row: ParticipantRow) -> str:
    # an intruder's decrypt failures are the point: its frames are refused
    failures = row.decrypt_failures.total if row.decrypt_failures is not None and row.role != "intruder" else 0
    problem = row.failed or (row.freezes or 0) > 0 or (row.lost or 0) > 0 or failures > 0
    cells = [
        ms_text(row.join_ms),
        ms_text(row.first_frame_ms),
        ms_text(row.latency_video_p50),
        ms_text(row.latency_video_p95),
        ms_text(row.latency_audio_p50),
        ms_text(row.latency_audio_p95),
        DASH if row.fps is None else f"{row.fps:.1f}",
        kbps_text(row.sent_kbps),
        kbps_text(row.received_kbps),
        count_text(row.lost),
        count_text(row.freezes),
    ]
    texts = [
        row.id + (" (failed)" if row.failed else ""),
        row.role,
        row.room if row.room is not None else DASH,
        str(row.worker) if row.worker is not None else DASH,
    ]
    return (
        f'<tr class="{"problem" if problem else ""}">'
        + "".join(f'<td class="text">{esc(t)}</td>' for t in texts)
        + "".join(f"<td>{esc(c)}</td>" for c in cells)
        + f'<td class="text">{esc(_reasons_text(row.decrypt_failures))}</td>'
        + f"<td>{esc(count_text(row.reconnects) if row.reconnects else '')}</td></tr>"
    )


def _participants(report: LoadReport) -> str:
    """Every participant, worst first (failed, then most freezes, most lost, highest video p95)."""
    ordered = sorted(report.participant_rows, key=ParticipantRow.worst_first)
    rows = [_participant_row(r) for r in ordered[:HTML_PARTICIPANT_ROWS]]
    headers = ("participant", "role", "room", "worker", "join", "first frame", "video p50", "video p95",
               "audio p50", "audio p95", "fps", "sent", "received", "lost", "freezes", "decrypt failures",
               "reconnects")  # fmt: skip
    more = len(ordered) - len(rows)
    note = (
        f'<p class="sub">The {len(rows):,} worst of {len(ordered):,} participants; the JSON report and'
        " <code>--csv-participants</code> list them all.</p>"
        if more > 0
        else ""
    )
    return "<h2>Participants, worst first</h2>" + table(headers, rows, "no participant rows", (0, 1, 2, 3, 15)) + note


def _histograms(report: LoadReport) -> str:
    m = report.metrics or Metrics()
    rows = []
    for label, summary in (
        ("video latency", m.latency_video_ms),
        ("audio latency", m.latency_audio_ms),
        ("join", m.join_ms),
        ("first frame", m.first_frame_ms),
        ("generator loop lag", report.generator.loop_lag_ms if report.generator is not None else None),
    ):
        cells = [count_text(pick(summary, "count") or 0)] + [
            ms_text(pick(summary, k)) for k in ("p50", "p90", "p95", "p99", "max")
        ]
        rows.append(f"<tr><td>{esc(label)}</td>{''.join(f'<td>{esc(c)}</td>' for c in cells)}</tr>")
    return table(("ms", "samples", "p50", "p90", "p95", "p99", "max"), rows, "")


def _reasons(report: LoadReport) -> str:
    m = report.metrics or Metrics()
    rows = []
    for label, counts in (("decrypt failures", m.decrypt_failures), ("intruder failures", m.intruder_failures)):
        for reason, n in (counts or {}).items():
            rows.append(
                f"<tr><td>{esc(label)}</td><td class='text'>{esc(reason)}</td><td>{esc(count_text(n))}</td></tr>"
            )
    return table(("counter", "reason", "frames"), rows, "no failures recorded", (0, 1))


def _warning(report: LoadReport) -> str:
    generator = report.generator
    if generator is None or generator.saturated is not True:
        return ""
    items = "".join(f"<li>{esc(r)}</li>" for r in generator.saturation_reasons)
    return (
        '<div class="warning" role="alert">The load generator was saturated: its own CPU or event loop was the'
        f" bottleneck, so these numbers are suspect.{f'<ul>{items}</ul>' if items else ''}</div>"
    )


def _key_lifecycle(report: LoadReport) -> str:
    """Key changes and what subscribers saw within 2 s of them (only for runs that had some)."""
    k = report.metrics.keys if report.metrics is not None else None
    if k is None or not (k.rotations or k.epochs or k.joins):
        return ""
    failures = k.decrypt_failures.total if k.decrypt_failures is not None else None
    rows = [
        ("rotations (keying v1)", count_text(k.rotations)),
        ("highest epoch (keying v2)", count_text(k.epochs)),
        ("decrypt failures within 2 s of a change", count_text(failures)),
        ("frames lost within 2 s of a change", count_text(k.frames_lost)),
        ("freezes within 2 s of a change", count_text(k.freezes)),
        ("longest gap in decrypted video near a change", ms_text(k.longest_gap_ms)),
        ("subscribers who joined during the run", count_text(k.joins)),
        ("their join p50 / max", f"{ms_text(pick(k.join_ms, 'p50'))} / {ms_text(pick(k.join_ms, 'max'))}"),
        (
            "their first frame p50 / max",
            f"{ms_text(pick(k.first_frame_ms, 'p50'))} / {ms_text(pick(k.first_frame_ms, 'max'))}",
        ),
    ]
    body = [f'<tr><td class="text">{esc(label)}</td><td>{esc(value)}</td></tr>' for label, value in rows]
    return "<h2>Key lifecycle</h2>" + table(("measure", "value"), body, "no key changes")


def render_html(report: LoadReport | Mapping[str, object]) -> str:
    """The whole report page as one string (UTF-8 HTML5, nothing external). A mapping is report
    JSON, read with :meth:`LoadReport.from_json` (whatever it holds, the page renders)."""
    if not isinstance(report, LoadReport):
        report = LoadReport.from_json(report)
    verdict = report.verdict or "unknown"
    passed = sum(1 for a in report.assertions if a.ok)
    rooms = report.scenario.rooms if report.scenario is not None else None
    planned = report.participants.planned if report.participants is not None else None
    title = f"sealrtc load — {verdict} — {_many(rooms, 'room')}, {_many(planned, 'participant')}"
    started = esc(report.started_at or DASH)
    duration = report.duration_s
    summary = f"{passed} of {len(report.assertions)} assertions passed" if report.assertions else "no assertions"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
            f'<h1>sealrtc load <span class="verdict {esc(verdict)}">{esc(verdict)}</span></h1>',
            f'<p class="sub">{_scenario(report)}</p>',
            f'<p class="sub">started {started}, ran {esc(count_text(duration))} s · {esc(summary)}</p>',
            _warning(report),
            _headline(report),
            "<h2>Assertions</h2>",
            _assertions(report),
            "<h2>Over time</h2>",
            _charts(report),
            faults_section(report),
            "<h2>Rooms</h2>",
            _rooms(report),
            links_section(report),
            _key_lifecycle(report),
            _participants(report),
            '<h2>Distributions and failures</h2><div class="side">',
            _histograms(report),
            _reasons(report),
            "</div>",
            f"<footer>{esc(report.tool or 'sealrtc load')} report,"
            f" schema version {esc(_opt(report.version))}, exit status {esc(_opt(report.exit_status))}."
            " Percentiles come from merged HdrHistograms (the JSON report holds them).</footer>",
            "</main></body></html>",
        ]
    )
