"""What the commands write and show at their end, shared by ``load``, ``report merge``,
``publish`` and ``subscribe``: report files (JSON, CSV, HTML) and the summary with its verdict."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..report.judge import Judgement, Verdict
from ..report.measures import Metrics, Summary
from .common import CliError, ExitStatus, check_json_target, write_json
from .display import Display, TableRows
from .faults import load_rows

__all__ = ["check_output_target", "finish", "load_summary", "write_outputs"]


def check_output_target(path: str | None, flag: str) -> None:
    """Refuse, before a run, a report path that cannot be written (``-`` is stdout)."""
    if path:
        try:
            check_json_target(path)
        except CliError as exc:
            raise CliError(str(exc).replace("--json", flag)) from None


def write_outputs(judgement: Judgement, args: argparse.Namespace) -> None:
    """Write the reports asked for (``--json``, ``--csv``, ``--html``); ``-`` means stdout."""
    report = judgement.report
    write_json(args.json, report.to_json())
    if args.csv:
        from ..report.csv import intervals_csv, write_intervals_csv

        if args.csv == "-":
            sys.stdout.write(intervals_csv(report))
        else:
            with _writing("--csv", args.csv):
                write_intervals_csv(report, Path(args.csv))
    if args.html:
        from ..report.html import render_html

        if args.html == "-":
            sys.stdout.write(render_html(report))
        else:
            with _writing("--html", args.html):
                Path(args.html).write_text(render_html(report), encoding="utf-8")


@contextlib.contextmanager
def _writing(flag: str, target: str) -> Iterator[None]:
    """A report that cannot be written after all (the disk filled up during the run): one line."""
    try:
        yield
    except OSError as exc:
        raise CliError(f"cannot write {flag} {target}: {exc.strerror or exc.__class__.__name__}") from None


def _shown(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _p(summary: Summary | None, function: str) -> Any:
    value = summary.value(function) if summary is not None else None
    return "-" if value is None else value


def _latency_text(h: Summary | None) -> str:
    count = h.count if h is not None and h.count is not None else 0
    return f"p50 {_p(h, 'p50')}  p95 {_p(h, 'p95')}  p99 {_p(h, 'p99')}  ({count} frames)"


def _key_rows(m: Metrics) -> list[Sequence[Any]]:
    """The key lifecycle's line, for runs that changed keys or replaced subscribers."""
    k = m.keys
    if k is None or not (k.rotations or k.epochs or k.joins):
        return []
    changes = f"{k.rotations} rotations" if k.rotations else f"epoch {k.epochs}"
    failures = k.decrypt_failures.total if k.decrypt_failures is not None else 0
    text = (f"{changes}; within 2 s of a change: {failures} decrypt failures, {k.frames_lost} lost, "
            f"{k.freezes} freezes, longest gap {k.longest_gap_ms} ms")  # fmt: skip
    if k.joins:
        text += f"; {k.joins} joins during the run (first frame p50 {_p(k.first_frame_ms, 'p50')} ms)"
    return [("key changes", text)]


def load_summary(display: Display, judgement: Judgement, *, wrote: bool = True) -> None:
    """The end of ``load`` and ``report merge``: the numbers, failed assertions, saturation,
    errors and the verdict."""
    report = judgement.report
    m, p, g, s = report.metrics, report.participants, report.generator, report.scenario
    assert m is not None and p is not None and g is not None and s is not None  # the builder sets them
    lat = m.latency_ms
    frames = m.frames.to_json() if m.frames is not None else {}
    freezes = m.freezes.to_json() if m.freezes is not None else {"count": 0, "total_ms": 0}
    refused = m.intruder_failures.total if m.intruder_failures is not None else 0
    rows: list[Sequence[Any]] = [
        ("participants", f"{p.joined}/{p.planned} joined, {p.failed} failed, {p.intruders} intruders"),
        ("latency ms", f"p50 {_p(lat, 'p50')}  p95 {_p(lat, 'p95')}  p99 {_p(lat, 'p99')}"
                       f"  max {_p(lat, 'max')}  ({lat.count if lat is not None else 0} frames)"),
        *[
            (f"{kind} latency ms", _latency_text(summary))
            for kind, summary in (("video", m.latency_video_ms), ("audio", m.latency_audio_ms))
            if summary is not None
        ],
        ("frames", "  ".join(f"{k} {v}" for k, v in frames.items())),
        ("freezes", f"{freezes['count']} ({freezes['total_ms']} ms)"),
        ("decrypt failures", m.decrypt_failures.total if m.decrypt_failures is not None else 0),
        ("intruders", f"{m.intruder_decrypts} decrypted, {refused} refused"),
        *_key_rows(m),
        *load_rows(report),
        ("generator", f"{g.workers} worker(s), CPU {g.cpu_percent}% (busiest {g.cpu_percent_max}%), "
                      f"loop lag p99 {_p(g.loop_lag_ms, 'p99')} ms (all workers merged)"),
    ]  # fmt: skip
    for r in judgement.results:
        rows.append((f"assert {r.expr}", f"{'ok' if r.ok else 'FAILED'} (value {_shown(r.value)})"))
        if not r.ok and display.quiet:
            display.say(f"assertion failed: {r.expr} ({r.reason or f'value {_shown(r.value)}'})")
    for reason in g.saturation_reasons:
        display.say(f"generator saturated: {reason} — its latencies are not trustworthy; use more workers or "
                    "fewer participants")  # fmt: skip
    for error in report.errors[:5]:
        display.say(f"error: {error}")
    failed = judgement.failed
    missing = report.missing_shards or ()
    verdicts = {
        Verdict.PASS: "every assertion holds",
        Verdict.FAIL: f"{failed} assertion(s) failed" if failed else f"shard(s) {', '.join(map(str, missing))} missing",
        Verdict.SATURATED: "the generator saturated: numbers not trustworthy"
        + (f" (and {failed} assertion(s) failed)" if failed else ""),
        Verdict.INTERRUPTED: "partial reports written" if wrote else "the results so far are above",
    }
    mode = "" if s.e2ee is not False else ", plain: no E2EE"
    title = f"sealrtc {display.command} summary ({report.duration_s} s, {s.target}{mode})"
    status = judgement.exit_status
    display.summary(title, ("", "value"), rows, verdicts[judgement.verdict], status == 0, status=status)


def finish(
    display: Display,
    summary: dict[str, Any],
    *,
    elapsed: float,
    interrupted: bool,
    status: int,
    verdict: str,
    json_target: str | None,
    table: TableRows,
) -> int:
    """The end of a publish/subscribe run: verdict into the report, the report written, the
    summary shown; an interrupted run keeps its report (exit 130)."""
    if interrupted:
        status, verdict = ExitStatus.INTERRUPTED, f"after {elapsed:.1f} s; {verdict}"
    summary |= {"duration_s": round(elapsed, 2), "interrupted": interrupted, "exit_status": int(status)}
    summary["verdict"] = verdict
    write_json(json_target, summary)
    header, rows = table
    title = f"sealrtc {display.command} summary ({elapsed:.1f} s)"
    display.summary(title, header, rows, verdict, status == ExitStatus.OK, status=int(status))
    return status
