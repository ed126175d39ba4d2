"""The load summary's rows for recovery, faults and impaired links (none for a plain run)."""

from __future__ import annotations

from collections.abc import Mapping

from ..report.measures import Metrics, Summary
from ..report.model import LoadReport, ProfileReport

__all__ = ["load_rows"]


def _recoveries(summary: Summary | None) -> str:
    if summary is None or not summary.count:
        return "no recoveries"
    return f"p50 {summary.p50:.0f} ms, p95 {summary.p95:.0f} ms, max {summary.max:.0f} ms"


def _link(name: str, d: Mapping[str, object] | None) -> str:
    offered = d.get("offered") if d else None
    if not d or not isinstance(offered, int) or not offered:
        return ""
    delay, share = d.get("mean_delay_ms"), d.get("dropped_percent")
    delay_text = f"{delay:.0f} ms" if isinstance(delay, int | float) else "-"
    share_text = f"{share:.1f}%" if isinstance(share, int | float) else "-"
    return f"{name}: {d.get('dropped')}/{offered} datagrams dropped ({share_text}), mean delay {delay_text}"


def _measured(m: Metrics | None) -> str:
    if m is None:
        return ""
    video = m.latency_video_ms.p95 if m.latency_video_ms is not None else "-"
    lost = m.frames.lost if m.frames is not None else "-"
    freezes = m.freezes.count if m.freezes is not None else "-"
    return f"video p95 {video} ms, lost {lost}, freezes {freezes}, availability {m.availability_percent}%"


def _profile(row: ProfileReport) -> tuple[str, str]:
    links = [t for t in (_link("up", row.impairment.get("up")), _link("down", row.impairment.get("down"))) if t]
    who = f"{row.participants.planned} participant(s)" if row.participants is not None else ""
    parts = [who, "; ".join(links) or "not impaired", _measured(row.metrics)]
    return f"link {row.profile}", "; ".join(p for p in parts if p)


def load_rows(report: LoadReport) -> list[tuple[str, str]]:
    """Rows for runs that lost their server, had faults or impaired links."""
    m = report.metrics
    rows: list[tuple[str, str]] = []
    if m is not None and (m.reconnects or report.faults):
        missed = f", {m.outage_frames_missed} video frame(s) missed during outages" if m.outage_frames_missed else ""
        rows.append(("recovery", f"{m.reconnects} reconnect(s), time to recover {_recoveries(m.time_to_recover_ms)}, "
                                 f"availability {m.availability_percent}%{missed}"))  # fmt: skip
    for f in report.faults:
        if f.kind == "external":
            rows.append((f"fault {f.spec}", f"at {f.at_s} s, away {f.length_s} s (not planned: see recovery)"))
        else:
            rows.append((f"fault {f.spec}", f"{f.lost_media}/{f.watched} subscribers lost media, {f.recovered} "
                                            f"recovered: {_recoveries(f.recovery_ms)}"))  # fmt: skip
    rows += [_profile(row) for row in report.profiles]
    return rows
