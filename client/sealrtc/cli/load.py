"""``sealrtc load``: many rooms, a ramp, intruders, percentiles, assertions, reports.

Exit codes: 0 every assertion holds; 1 one fails (or the run could not happen); 2 usage (a bad
expression or setting, refused before the run); 4 the generator saturated (its numbers cannot be
trusted, whatever the assertions say); 130 interrupted (reports written first).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import (
    CliError,
    ExitStatus,
    check_json_target,
    check_url,
    random_demo_secret,
    read_secret,
    read_token,
    write_json,
)
from .console import Reporter

DEFAULT_ASSERTIONS = ("joined == planned", "decrypt_failures == 0", "intruder_decrypts == 0")
SATURATED = 4


def _check_target(path: str | None, flag: str) -> None:
    if path:
        try:
            check_json_target(path)
        except CliError as exc:
            raise CliError(str(exc).replace("--json", flag)) from None


def _scenario(args: argparse.Namespace) -> Any:
    from ..load.scenario import ScenarioError, build, load_file

    flags = {
        "rooms": args.rooms,
        "publishers": args.publishers,
        "subscribers": args.subscribers,
        "intruders": args.intruders,
        "duration": args.duration,
        "ramp": args.ramp,
        "decode_every": args.decode_every,
        "suite": args.suite,
        "media": args.media,
        "e2ee": False if args.no_e2ee else None,
        "probe": False if args.no_probe else None,
        "room_ids": tuple(args.room) if args.room else None,
    }
    try:
        return build(load_file(args.scenario) if args.scenario else {}, flags)
    except ScenarioError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None


def _interval_row(run: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
    from ..load.aggregate import merge_intervals

    header = ("", "joined", "intruders", "fps", "p50 ms", "p95 ms", "lost", "freezes", "decrypt fail",
              "intruder decrypts", "CPU %", "loop lag ms")  # fmt: skip
    planned = run.scenario.planned
    # each worker's latest snapshot, whatever its tick: workers a tick apart still make one row
    latest = merge_intervals([s | {"t": 0} for s in run.latest.values()]) if run.latest else []
    totals = merge_intervals([s | {"t": 0} for s in run.snapshots]) if run.snapshots else []
    rows: list[Sequence[Any]] = []
    if latest:
        r = latest[-1]
        rows.append(("last second", f"{r['joined']}/{planned}", r["intruders"], r["fps"], r["latency_p50"],
                     r["latency_p95"], r["lost"], r["freezes"], r["decrypt_failures"], r["intruder_decrypts"],
                     r["cpu_percent"], r["loop_lag_ms"]))  # fmt: skip
    if totals:
        r = totals[-1]
        rows.append(("whole run", "", "", None, r["latency_p50"], r["latency_p95"], r["lost"], r["freezes"],
                     r["decrypt_failures"], r["intruder_decrypts"], None, r["loop_lag_ms"]))  # fmt: skip
    return header, rows


def _line(run: Any) -> str:
    _, rows = _interval_row(run)
    if not rows:
        return "starting"
    r = rows[0]

    def n(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value:.1f}{unit}"

    return (f"joined {r[1]}, {n(r[3])} fps, p50 {n(r[4], ' ms')}, p95 {n(r[5], ' ms')}, lost {r[6]}, "
            f"freezes {r[7]}, decrypt failures {r[8]}, intruder decrypts {r[9]}, CPU {n(r[10], '%')}")  # fmt: skip


async def run_load_command(args: argparse.Namespace) -> int:
    from ..load.runner import LoadError, run_load
    from ..report.assertions import AssertionSyntaxError, check_all

    scenario = _scenario(args)
    given = args.assertion or list(scenario.assertions)  # --assert flags replace the file's
    texts = given or list(DEFAULT_ASSERTIONS) + (["frames.decrypted > 0"] if scenario.subscribers else [])
    try:
        assertions = check_all(texts)
    except AssertionSyntaxError as exc:
        where = "--assert" if args.assertion else f"assert in {args.scenario}"
        raise CliError(f"{where}: {exc}", ExitStatus.USAGE) from None
    check_json_target(args.json)
    check_url(args.server, "--server", ("http", "https"))
    check_url(args.janus, "--janus", ("ws", "wss"))
    _check_target(args.csv, "--csv")
    _check_target(args.html, "--html")
    if args.janus and args.server:
        raise CliError("give one target: --janus or --server (or neither for the embedded relay)", ExitStatus.USAGE)
    from ..load.runner import worker_count

    try:
        worker_count(args.workers)
    except LoadError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None
    shard = _shard(args.shard)
    if shard[1] > 1 and not (args.janus or args.server):
        raise CliError("--shard needs a shared target: --janus URL or --server URL", ExitStatus.USAGE)
    if shard[1] > 1 and not args.run_id and not scenario.room_ids:
        raise CliError("--shard needs --run-id ID (every shard derives the same rooms from it)", ExitStatus.USAGE)
    start_at = _start_at(args.start_at, scenario.duration)
    secret = None
    if scenario.e2ee:
        secret = read_secret(args, required=shard[1] > 1)
        if secret is None:
            secret = random_demo_secret()
    kind = "janus" if args.janus else "whip" if args.server else "relay"
    reporter = Reporter("load", quiet=args.quiet, duration=scenario.duration)
    holder: dict[str, Any] = {}
    reporter._rows = lambda: _interval_row(holder["run"]) if "run" in holder else (("",), [])
    reporter._line = lambda: _line(holder["run"]) if "run" in holder else "starting"

    def tick(run: Any, elapsed: float) -> None:
        holder["run"] = run
        reporter.tick(elapsed)

    try:
        with reporter:
            run, report, _ = await run_load(
                scenario,
                target_kind=kind,
                url=args.janus or args.server or "",
                workers=args.workers,
                secret=secret,
                cache_dir=args.cache_dir,
                on_tick=tick,
                shard=shard,
                run_id=args.run_id,
                start_at=start_at,
                metrics_port=args.metrics_port,
                token=read_token(args) if args.server else None,
            )
    except LoadError as exc:
        raise CliError(str(exc)) from None
    status, results = judge(report, assertions, defaults=not given, interrupted=run.interrupted)
    write_outputs(report, args)
    _summary(reporter, report, results, status, wrote=bool(args.json or args.csv or args.html))
    return status


def judge(report: dict[str, Any], assertions: list[Any], *, defaults: bool, interrupted: bool) -> tuple[int, list[Any]]:
    """Evaluate assertions into the report, set its verdict and exit status; return both."""
    from ..report.assertions import evaluate

    results = [evaluate(a, report) for a in assertions]
    report["assertions"] = [
        {"expr": r.expr, "value": r.value, "ok": r.ok, **({"reason": r.reason} if r.reason else {})}
        | ({"default": True} if defaults else {})
        for r in results
    ]
    status: int
    if interrupted:
        status, verdict = ExitStatus.INTERRUPTED, "interrupted"
    elif report["generator"]["saturated"]:
        status, verdict = SATURATED, "saturated"
    elif any(not r.ok for r in results):
        status, verdict = ExitStatus.FAILURE, "fail"
    else:
        status, verdict = ExitStatus.OK, "pass"
    report["verdict"] = verdict
    report["exit_status"] = int(status)
    return int(status), results


def write_outputs(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the reports asked for; ``-`` means stdout for each of them."""
    write_json(args.json, report)
    if args.csv:
        from ..report.csv import intervals_csv, write_intervals_csv

        if args.csv == "-":
            sys.stdout.write(intervals_csv(report))
        else:
            write_intervals_csv(report, Path(args.csv))
    if args.html:
        from ..report.html import render_html

        if args.html == "-":
            sys.stdout.write(render_html(report))
        else:
            Path(args.html).write_text(render_html(report), encoding="utf-8")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _latency_text(h: dict[str, Any] | None) -> str:
    h = h or {}
    return f"p50 {h.get('p50', '-')}  p95 {h.get('p95', '-')}  p99 {h.get('p99', '-')}  ({h.get('count', 0)} frames)"


def _summary(reporter: Reporter, report: dict[str, Any], results: list[Any], status: int, wrote: bool = True) -> None:
    m, p, g = report["metrics"], report["participants"], report["generator"]
    lat = m["latency_ms"] or {}
    rows: list[Sequence[Any]] = [
        ("participants", f"{p['joined']}/{p['planned']} joined, {p['failed']} failed, {p['intruders']} intruders"),
        ("latency ms", f"p50 {lat.get('p50', '-')}  p95 {lat.get('p95', '-')}  p99 {lat.get('p99', '-')}"
                       f"  max {lat.get('max', '-')}  ({lat.get('count', 0)} frames)"),
        *[
            (f"{kind} latency ms", _latency_text(m.get(f"latency_{kind}_ms")))
            for kind in ("video", "audio")
            if m.get(f"latency_{kind}_ms")
        ],
        ("frames", "  ".join(f"{k} {v}" for k, v in m["frames"].items())),
        ("freezes", f"{m['freezes']['count']} ({m['freezes']['total_ms']} ms)"),
        ("decrypt failures", sum(m["decrypt_failures"].values())),
        ("intruders", f"{m['intruder_decrypts']} decrypted, {sum(m['intruder_failures'].values())} refused"),
        ("generator", f"{g['workers']} worker(s), CPU {g['cpu_percent']}% (busiest {g['cpu_percent_max']}%), "
                      f"loop lag p99 {(g['loop_lag_ms'] or {}).get('p99', '-')} ms (all workers merged)"),
    ]  # fmt: skip
    for r in results:
        rows.append((f"assert {r.expr}", f"{'ok' if r.ok else 'FAILED'} (value {_number(r.value)})"))
        if not r.ok and reporter.quiet:
            reporter.say(f"assertion failed: {r.expr} ({r.reason or f'value {_number(r.value)}'})")
    for reason in g["saturation_reasons"]:
        reporter.say(f"generator saturated: {reason} — its latencies are not trustworthy; use more workers or "
                     "fewer participants")  # fmt: skip
    for error in report.get("errors", [])[:5]:
        reporter.say(f"error: {error}")
    failed = sum(not r.ok for r in results)
    missing = report.get("missing_shards") or []
    verdicts = {
        0: "every assertion holds",
        1: f"{failed} assertion(s) failed" if failed else f"shard(s) {', '.join(map(str, missing))} missing",
        SATURATED: "the generator saturated: numbers not trustworthy"
        + (f" (and {failed} assertion(s) failed)" if failed else ""),
        130: "partial reports written" if wrote else "the results so far are above",
    }
    mode = "" if report["scenario"].get("e2ee", True) else ", plain: no E2EE"
    title = f"sealrtc {reporter.command} summary ({report['duration_s']} s, {report['scenario']['target']}{mode})"
    reporter.summary(title, ("", "value"), rows, verdicts.get(status, "failed"), status == 0, status=status)


def _shard(text: str | None) -> tuple[int, int]:
    """``I/N`` (0-based I), or ``N`` with I from ``$JOB_COMPLETION_INDEX`` (Kubernetes Indexed Job)."""
    import os

    if not text:
        return 0, 1
    try:
        if "/" in text:
            index_text, count_text = text.split("/", 1)
            index, count = int(index_text), int(count_text)
        else:
            count = int(text)
            env = os.environ.get("JOB_COMPLETION_INDEX")
            if env is None:
                raise CliError(f"--shard {text}: say which shard (--shard I/{text}) or set JOB_COMPLETION_INDEX",
                               ExitStatus.USAGE)  # fmt: skip
            index = int(env)
    except ValueError:
        raise CliError(f"--shard must be I/N or N (e.g. 0/4), got {text!r}", ExitStatus.USAGE) from None
    if count < 1 or not 0 <= index < count:
        raise CliError(f"--shard {text}: the index must be in 0..{count - 1}", ExitStatus.USAGE)
    return index, count


def _start_at(text: str | None, duration: float) -> float | None:
    """``--start-at``: ISO 8601 (``2026-11-26T08:30:00Z``) or Unix seconds; the shards' common start."""
    import time
    from datetime import datetime

    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise CliError(f"--start-at must be ISO 8601 (2026-11-26T08:30:00Z) or Unix seconds, got {text!r}",
                           ExitStatus.USAGE) from None  # fmt: skip
    if value + duration < time.time():
        raise CliError(f"--start-at {text} is over: the whole run would be in the past", ExitStatus.USAGE)
    return value


def run_load_entry(args: argparse.Namespace, argv: list[str]) -> int:
    """Re-executes inside a private network namespace for the embedded relay (like the demo)."""
    from ..isolation import inside_namespace, run_isolated

    if not args.janus and not args.server and not args.no_isolate and not inside_namespace():
        return run_isolated([sys.executable, "-m", "sealrtc", *argv[1:]])
    return asyncio.run(run_load_command(args))
