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
from typing import TYPE_CHECKING, Any

from .common import (
    CliError,
    ExitStatus,
    check_json_target,
    check_url,
    random_demo_secret,
    read_secret,
    read_token,
)
from .display import LiveView, choose_display
from .output import check_output_target, load_summary, write_outputs

if TYPE_CHECKING:
    from ..load.runner import LoadRun

MAX_START_AHEAD = 7 * 86400
"""``--start-at`` further ahead than this is a mistake (a shard would wait for days)."""
DEFAULT_ASSERTIONS = ("joined == planned", "decrypt_failures == 0", "intruder_decrypts == 0")


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
        "video_codec": args.video_codec,
        "e2ee": False if args.no_e2ee else None,
        "probe": False if args.no_probe else None,
        "room_ids": tuple(args.room) if args.room else None,
        "rotate_every": args.rotate_every,
        "keying": args.keying,
        "ratchet_every": args.ratchet_every,
        "churn": args.churn,
        "recover_within": args.recover_within,
        "impair_up": args.impair_up or args.impair,
        "impair_down": args.impair_down or args.impair,
        "impair_seed": args.impair_seed,
    }
    try:
        return build(load_file(args.scenario) if args.scenario else {}, flags)
    except ScenarioError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None


class LoadProgress:
    """The live view of a run: the last second and the whole run so far, over all workers (the
    runner keeps both up to date as snapshots arrive)."""

    HEADER = ("", "joined", "intruders", "fps", "p50 ms", "p95 ms", "lost", "freezes", "decrypt fail",
              "intruder decrypts", "CPU %", "loop lag ms")  # fmt: skip

    def __init__(self, planned: int) -> None:
        self.planned = planned
        self.run: LoadRun | None = None

    def rows(self) -> tuple[Sequence[str], list[Sequence[Any]]]:
        rows: list[Sequence[Any]] = []
        last = self.run.live.last_second() if self.run is not None else None
        whole = self.run.live.whole_run() if self.run is not None else None
        if last is not None:
            g = last.get
            rows.append(("last second", f"{g('joined')}/{self.planned}", g("intruders"), g("fps"), g("latency_p50"),
                         g("latency_p95"), g("lost"), g("freezes"), g("decrypt_failures"), g("intruder_decrypts"),
                         g("cpu_percent"), g("loop_lag_ms")))  # fmt: skip
        if whole is not None:
            g = whole.get
            rows.append(("whole run", "", "", None, g("latency_p50"), g("latency_p95"), g("lost"), g("freezes"),
                         g("decrypt_failures"), g("intruder_decrypts"), None, g("loop_lag_ms")))  # fmt: skip
        return self.HEADER, rows

    def line(self) -> str:
        _, rows = self.rows()
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
    from ..report.judge import judge

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
    check_output_target(args.csv, "--csv")
    check_output_target(args.html, "--html")
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
    metrics = _metrics_address(args.metrics_port, args.metrics_listen)
    secret = None
    if scenario.e2ee:
        secret = read_secret(args, required=shard[1] > 1)
        if secret is None:
            secret = random_demo_secret()
    kind = "janus" if args.janus else "whip" if args.server else "relay"
    faults = _faults(args.fault or [], scenario.duration, kind)
    progress = LoadProgress(scenario.planned)
    display = choose_display(
        "load", quiet=args.quiet, view=LiveView(progress.rows, progress.line), duration=scenario.duration
    )

    def tick(run: LoadRun, elapsed: float) -> None:
        progress.run = run
        display.tick(elapsed)

    try:
        with display:
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
                metrics_listen=metrics,
                token=read_token(args) if args.server else None,
                faults=faults,
            )
    except LoadError as exc:
        raise CliError(str(exc)) from None
    judgement = judge(report, assertions, defaults=not given, interrupted=run.interrupted)
    write_outputs(judgement, args)
    load_summary(display, judgement, wrote=bool(args.json or args.csv or args.html))
    return judgement.exit_status


def _faults(texts: list[str], duration: float, target: str) -> list[Any]:
    """``--fault`` specs, checked against the run (its duration, its target) before it starts."""
    from ..load.faults import FaultError, check_faults, parse_fault

    try:
        return check_faults([parse_fault(t) for t in texts], duration=duration, target=target)
    except FaultError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None


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
    import math
    import time
    from datetime import datetime

    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            raise CliError(f"--start-at must be ISO 8601 (2026-11-26T08:30:00Z) or Unix seconds, got {text!r}",
                           ExitStatus.USAGE) from None  # fmt: skip
    if not math.isfinite(value):
        raise CliError(f"--start-at must be a time, got {text!r}", ExitStatus.USAGE)
    now = time.time()
    if value > now + MAX_START_AHEAD:
        raise CliError(f"--start-at {text} is more than {MAX_START_AHEAD // 86400} days ahead: give a nearer time "
                       "(ISO 8601 UTC or Unix seconds)", ExitStatus.USAGE)  # fmt: skip
    if value + duration < now:
        raise CliError(f"--start-at {text} is over: the whole run would be in the past", ExitStatus.USAGE)
    return value


def _metrics_address(port: int | None, listen: str | None) -> tuple[str, int] | None:
    """``--metrics-port P`` is loopback:P (this machine only); ``--metrics-listen HOST:PORT`` says
    where, e.g. ``0.0.0.0:9100`` for a scraper elsewhere (and wins over a ``--metrics-port`` of
    the same port)."""
    if listen is None:
        return None if port is None else ("127.0.0.1", port)
    host, colon, number = listen.rpartition(":")
    if (
        "://" in listen
        or not colon
        or not host
        or not (number.isascii() and number.isdigit())
        or not 1 <= int(number) <= 65535
    ):
        raise CliError(f"--metrics-listen takes HOST:PORT, e.g. 0.0.0.0:9100 or 127.0.0.1:9100 (got {listen!r})",
                       ExitStatus.USAGE)  # fmt: skip
    if port is not None and port != int(number):  # both may be given (a manifest), but agreeing
        raise CliError(f"--metrics-port {port} and --metrics-listen {listen} name two ports: give one",
                       ExitStatus.USAGE)  # fmt: skip
    return host.strip("[]"), int(number)


def run_load_entry(args: argparse.Namespace, argv: list[str]) -> int:
    """Re-executes inside a private network namespace for the embedded relay (like the demo)."""
    from .isolation import inside_namespace, run_isolated

    if not args.janus and not args.server and not args.no_isolate and not inside_namespace():
        return run_isolated([sys.executable, "-m", "sealrtc", *argv[1:]])
    return asyncio.run(run_load_command(args))
