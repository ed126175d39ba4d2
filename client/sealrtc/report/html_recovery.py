"""The HTML report's sections for runs that went wrong on purpose or not: faults (on the charts'
time axis and in a table), the recovery tiles, and one row per link profile."""

from __future__ import annotations

from collections.abc import Mapping

from .html_cells import DASH, Column, card, count_text, esc, grouped_table, ms_text, pick, table, value_text
from .jsonread import number
from .measures import Frames, Freezes, Metrics, Participants
from .model import FaultReport, LoadReport, ProfileReport
from .plot import Span

__all__ = ["fault_spans", "faults_section", "links_section", "recovery_cards"]


def recovery_cards(report: LoadReport, m: Metrics) -> list[str]:
    """Reconnects, time to recover and availability, for runs that lost their server or had
    faults (a plain run has nothing to recover from: no tiles)."""
    if not (m.reconnects or report.faults):
        return []
    availability = m.availability_percent
    return [
        card("reconnects", esc(count_text(m.reconnects))),
        card("time to recover p95", esc(ms_text(pick(m.time_to_recover_ms, "p95")))),
        card(
            "availability",
            DASH if availability is None else f"{availability:.1f} <small>%</small>",
            "warn" if availability is not None and availability < 99 else "",
        ),
    ]


def fault_spans(report: LoadReport) -> list[Span]:
    """The run's faults on the time axis (a fault of unknown time is in the table only)."""
    return [
        Span(float(f.at_s), float(f.length_s) if f.length_s is not None else None, f.spec or f.kind or "fault")
        for f in report.faults
        if f.at_s is not None
    ]


def _fault_row(f: FaultReport) -> str:
    external = f.kind == "external"
    # an external fault was seen, not planned: who lost media is in the recovery numbers
    unrecovered = not external and f.lost_media is not None and (f.recovered or 0) < f.lost_media
    length = DASH if f.length_s is None else ("instant" if f.length_s == 0 else f"{value_text(f.length_s)} s")
    cells = [
        DASH if f.at_s is None else f"{value_text(f.at_s)} s",
        length,
        count_text(f.watched),
        count_text(f.lost_media),
        count_text(f.recovered),
        ms_text(pick(f.recovery_ms, "p50")),
        ms_text(pick(f.recovery_ms, "p95")),
        ms_text(pick(f.recovery_ms, "max")),
    ]
    texts = [f.spec or DASH, f.kind or DASH]
    return (
        f'<tr class="{"problem" if unrecovered else ""}">'
        + "".join(f'<td class="text">{esc(t)}</td>' for t in texts)
        + "".join(f"<td>{esc(c)}</td>" for c in cells)
        + "</tr>"
    )


def faults_section(report: LoadReport) -> str:
    """The run's faults (only for runs that had some): when, how long, and what the legitimate
    subscribers watching then went through."""
    if not report.faults:
        return ""
    headers = ("fault", "kind", "at", "length", "watched", "lost media", "recovered", "recovery p50",
               "recovery p95", "recovery max")  # fmt: skip
    note = (
        '<p class="sub">Watched: subscribers with video when the fault struck; lost media: those whose'
        " video stopped; recovery: from the last decrypted video frame before to the first after."
        " The charts above mark each fault.</p>"
    )
    return "<h2>Faults</h2>" + table(headers, [_fault_row(f) for f in report.faults], "no faults", (0, 1)) + note


def _direction(link: Mapping[str, object] | None) -> list[str]:
    """A direction's dropped %, queue drops and mean added delay; dashes when it was not
    impaired (no datagram went through an impairment that way)."""
    offered = link.get("offered") if link else None
    if link is None or not isinstance(offered, int) or isinstance(offered, bool) or offered <= 0:
        return [DASH] * 3
    share, queue, delay = (number(link.get(k)) for k in ("dropped_percent", "queue_dropped", "mean_delay_ms"))
    return [DASH if share is None else f"{share:.1f} %", count_text(queue), ms_text(delay)]


def _profile_row(row: ProfileReport) -> str:
    p, m = row.participants or Participants(), row.metrics or Metrics()
    cells = [
        f"{count_text(p.joined)} / {count_text(p.planned)}",
        ms_text(pick(m.latency_video_ms, "p95")),
        count_text((m.frames or Frames()).lost),
        count_text((m.freezes or Freezes()).count),
        DASH if m.availability_percent is None else f"{m.availability_percent:.1f} %",
        count_text(m.reconnects),
        *_direction(row.impairment.get("up")),
        *_direction(row.impairment.get("down")),
    ]
    name = row.profile if row.profile is not None else "?"
    return f'<tr><td class="text">{esc(name)}</td>{"".join(f"<td>{esc(c)}</td>" for c in cells)}</tr>'


def links_section(report: LoadReport) -> str:
    """One row per link profile (only for runs that impaired links): what its participants
    measured next to what their impaired links did to datagrams."""
    if not report.profiles:
        return ""
    per_direction = ("dropped", "queue", "delay")
    columns: list[Column] = [
        *("link profile", "participants", "video p95", "lost", "freezes", "availability", "reconnects"),
        ("uplink (sent)", per_direction),
        ("downlink (received)", per_direction),
    ]
    rows = [_profile_row(r) for r in report.profiles]
    note = (
        '<p class="sub">Uplink: what the participants sent; downlink: what they received. Dropped: the share'
        " of datagrams the in-process impairment dropped; queue: how many of them overflowed the rate"
        " limiter's queue; delay: the mean delay it added. A dash: that direction was not impaired."
        " Latency, losses and freezes are the profile's subscribers' alone.</p>"
    )
    return "<h2>Links</h2>" + grouped_table(columns, rows, "no profiles") + note
