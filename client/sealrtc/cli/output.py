"""What the commands write and show at their end, shared by ``load``, ``report merge``,
``publish`` and ``subscribe``: report files (JSON, CSV, HTML) and the summary with its verdict."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..report.judge import Judgement, Verdict
from ..report.measures import Bitrate, Metrics, Summary
from ..report.media_line import media_line
from ..report.model import LoadReport
from .common import CliError, ExitStatus, check_json_target, write_json
from .display import Display, TableRows
from .faults import load_rows
from .isolation import namespace_hint

__all__ = [
    "check_output_target",
    "check_report_targets",
    "finish",
    "grouped_errors",
    "load_summary",
    "no_latency_reason",
    "report_targets",
    "stats_line",
    "write_outputs",
]


def check_output_target(path: str | None, flag: str) -> None:
    """Refuse, before a run, a report path that cannot be written (``-`` is stdout)."""
    if path:
        try:
            check_json_target(path)
        except CliError as exc:
            raise CliError(str(exc).replace("--json", flag), exc.status) from None


def check_report_targets(targets: Sequence[tuple[str, str | None]]) -> None:
    """Refuse, before a run, report outputs (``(flag, path)`` pairs) that could not be written:
    a path that cannot be, two reports to one file, or more than one report to stdout (``-``),
    which would run them together into one stream that no tool reads. All are usage errors, in
    one line."""
    to_stdout = [f"{flag} -" for flag, target in targets if target == "-"]
    if len(to_stdout) > 1:
        named = f"{', '.join(to_stdout[:-1])} and {to_stdout[-1]}"
        if len(to_stdout) == 2:
            raise CliError(f"{named} cannot both go to stdout: give one of them a file", ExitStatus.USAGE)
        raise CliError(f"{named} cannot all go to stdout: give all but one of them a file", ExitStatus.USAGE)
    files: dict[str, str] = {}
    for flag, target in targets:
        if not target or target == "-":
            continue
        where = os.path.realpath(target)
        if where in files:
            raise CliError(f"{files[where]} and {flag} name the same file ({target}): one would overwrite the "
                           "other; give each its own file", ExitStatus.USAGE)  # fmt: skip
        files[where] = flag
    for flag, target in targets:
        check_output_target(target, flag)


def report_targets(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """The load report's outputs of ``load`` and ``report merge``, for :func:`check_report_targets`."""
    return [("--json", args.json), ("--csv", args.csv), ("--html", args.html),
            ("--csv-participants", args.csv_participants)]  # fmt: skip


def write_outputs(judgement: Judgement, args: argparse.Namespace) -> None:
    """Write the reports asked for (``--json``, ``--csv``, ``--html``, ``--csv-participants``);
    ``-`` means stdout."""
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
    if args.csv_participants:
        from ..report.csv import participants_csv, write_participants_csv

        if args.csv_participants == "-":
            sys.stdout.write(participants_csv(report))
        else:
            with _writing("--csv-participants", args.csv_participants):
                write_participants_csv(report, args.csv_participants)


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


def _bitrate_text(b: Bitrate | None) -> str:
    """Mean per participant while connected: what each publisher sent, each subscriber received."""
    b = b or Bitrate()
    return (f"video sent {_shown(b.shown('sent_video_kbps'))} received {_shown(b.shown('received_video_kbps'))}, "
            f"audio sent {_shown(b.shown('sent_audio_kbps'))} received {_shown(b.shown('received_audio_kbps'))} "
            "(per participant)")  # fmt: skip


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


ERROR_GROUPS = 5
"""Distinct error messages shown at the end of a run; the rest are counted ("and N more")."""
_PARTICIPANT_ERROR = re.compile(r"(?P<role>publisher|subscriber|intruder) \d+ in (?P<room>.+?): (?P<message>.+)", re.S)


def grouped_errors(errors: Sequence[str], *, failed: int = 0, limit: int = ERROR_GROUPS) -> list[str]:
    """The run's errors as lines a person reads: one per distinct message, across workers, with
    how many participants (and of which role) it hit, most frequent first; what does not fit
    is counted, never dropped silently. ``failed``: participants that failed in all (workers
    keep a bounded number of messages, so the report may hold fewer)."""
    groups: dict[str, Counter[str]] = {}
    for error in errors:
        match = _PARTICIPANT_ERROR.fullmatch(error)
        message, role = (_roomless(match["message"], match["room"]), match["role"]) if match else (error, "")
        groups.setdefault(message, Counter())[role] += 1
    ordered = sorted(groups.items(), key=lambda item: -item[1].total())
    lines = [_error_line(message, roles) for message, roles in ordered[:limit]]
    if len(ordered) > limit:
        rest = sum(roles.total() for _, roles in ordered[limit:])
        lines.append(f"and {len(ordered) - limit} more distinct error(s) ({rest} in all): see the JSON report's errors")
    described = sum(roles.total() - roles[""] for roles in groups.values())
    if 0 < described < failed:
        lines.append(f"{failed} participants failed in all; the messages above cover {described} (each worker "
                     "keeps its first ones)")  # fmt: skip
    return lines


def _roomless(message: str, room: str) -> str:
    """The message with its room's URL path as ``/ROOM``: one server that cannot be reached is
    one error, whichever room's URL said so."""
    return re.sub(rf"/{re.escape(room)}(?![\w-])", "/ROOM", message)


def _error_line(message: str, roles: Counter[str]) -> str:
    """``20 subscribers: cannot reach ...``; ``20 participants (5 publishers, 15 subscribers): ...``."""
    kinds = [(role, n) for role, n in sorted(roles.items()) if role]
    if not kinds:
        return message if roles[""] == 1 else f"{message} ({roles['']} times)"
    named = [f"{n} {role}{'s' if n > 1 else ''}" for role, n in kinds]
    if len(kinds) == 1 and not roles[""]:
        return f"{named[0]}: {message}"
    people = sum(n for _, n in kinds)
    return f"{people} participants ({', '.join(named)}): {message}"


def no_latency_reason(report: LoadReport, kind: str | None = None) -> str:
    """Why a load report has no latency samples (of ``kind``, video or audio, when given), in
    the words of the flag that decides it."""
    s, m = report.scenario, report.metrics
    decrypted = m.frames.decrypted if m is not None and m.frames is not None else None
    if kind is not None and s is not None and s.extra.get(kind) is False:
        return f"no {kind}: publishers ran with --no-{kind}"
    if s is not None and s.probe is False:
        return "no probes: publishers ran with --no-probe"
    if s is not None and s.subscribers == 0:
        return "no subscribers: nobody received"
    if not decrypted:
        return "no frame reached a subscriber" if s is None or s.e2ee is False else "no frame decrypted"
    return "no probe samples"


def load_summary(display: Display, judgement: Judgement, *, wrote: bool = True) -> None:
    """The end of ``load`` and ``report merge``: the numbers, failed assertions, saturation,
    errors and the verdict."""
    report = judgement.report
    m, p, g, s = report.metrics, report.participants, report.generator, report.scenario
    assert m is not None and p is not None and g is not None and s is not None  # the builder sets them
    frames = m.frames.to_json() if m.frames is not None else {}
    freezes = m.freezes.to_json() if m.freezes is not None else {"count": 0, "total_ms": 0}
    refused = m.intruder_failures.total if m.intruder_failures is not None else 0
    rows: list[Sequence[Any]] = [
        ("participants", f"{p.joined}/{p.planned} joined, {p.failed} failed, {p.intruders} intruders"),
        *[
            (f"{kind} latency ms", _latency_text(summary) if summary is not None and summary.count
             else f"- ({no_latency_reason(report, kind)})")
            for kind, summary in (("video", m.latency_video_ms), ("audio", m.latency_audio_ms))
        ],
        ("bitrate kbit/s", _bitrate_text(m.bitrate)),
        ("frames", "  ".join(f"{k} {v}" for k, v in frames.items())),
        ("freezes", f"{freezes['count']} ({freezes['total_ms']} ms)"),
        ("decrypt failures", m.decrypt_failures.total if m.decrypt_failures is not None else 0),
        ("intruders", f"{m.intruder_decrypts} decrypted, {refused} refused"),
        *_key_rows(m),
        *load_rows(report),
        ("generator", f"{g.workers} worker(s), CPU {g.cpu_percent}% (busiest {g.cpu_percent_max}%), "
                      f"loop lag p99 {_p(g.loop_lag_ms, 'p99')} ms (all workers merged)"),
    ]  # fmt: skip
    # the causes first: with --quiet the failed assertions that follow are their consequences
    for reason in g.saturation_reasons:
        display.say(f"generator saturated: {reason} — its latencies are not trustworthy; use more workers or "
                    "fewer participants")  # fmt: skip
    hinted = False  # a server in another network namespace: said once, at its first error
    for line in grouped_errors(report.errors, failed=int(p.failed or 0)):
        hint = "" if hinted else namespace_hint(line)
        hinted = hinted or bool(hint)
        display.say(f"error: {line}{hint}")
    for r, outcome in zip(judgement.results, report.assertions, strict=True):
        marked = ", default" if outcome.default else ""
        rows.append((f"assert {r.expr}", f"{'ok' if r.ok else 'FAILED'} (value {_shown(r.value)}{marked})"))
        if not r.ok and display.quiet:
            display.say(f"assertion failed: {r.expr} ({r.reason or f'value {_shown(r.value)}'})")
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
    title = f"sealrtc {display.command} summary ({report.duration_s} s, {s.target}{mode}, media: {media_line(s)})"
    status = judgement.exit_status
    display.summary(title, ("", "value"), rows, verdicts[judgement.verdict], status == 0, status=status)


def stats_line(elapsed: float, line: str) -> str:
    """``-v`` in publish and subscribe: the run's numbers once a second, stamped with the time
    since the start (the live view shows only the latest)."""
    return f"[{elapsed:5.1f} s] {line}"


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
