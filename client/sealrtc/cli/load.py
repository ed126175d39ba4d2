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
    check_url,
    random_demo_secret,
    read_secret,
    read_token,
    warn,
)
from .display import Column, LiveView, choose_display
from .output import check_report_targets, load_summary, report_targets, write_outputs

if TYPE_CHECKING:
    from ..load.runner import LoadRun
    from ..report.assertions import Assertion

MAX_START_AHEAD = 7 * 86400
"""``--start-at`` further ahead than this is a mistake (a shard would wait for days)."""


def _scenario(args: argparse.Namespace, epoch_suite: int | None = None) -> Any:
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
        "video_bitrate": args.video_bitrate,
        "resolution": args.resolution,
        "fps": args.fps,
        "audio": False if args.no_audio else None,
        "video": False if args.no_video else None,
        "recover_within": args.recover_within,
        "impair_up": args.impair_up or args.impair,
        "impair_down": args.impair_down or args.impair,
        "impair_seed": args.impair_seed,
    }
    if epoch_suite is not None:  # an epoch file is keying v2 in its suite: no other flag needed
        flags["keying"], flags["suite"] = 2, epoch_suite
    try:
        return build(load_file(args.scenario) if args.scenario else {}, flags)
    except ScenarioError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None


class LoadProgress:
    """The live view of a run: the last second and the whole run so far, over all workers (the
    runner keeps both up to date as snapshots arrive). Video latency leads; audio is apart.

    On a narrow terminal the table first shortens its headers, then drops columns in this order
    until it fits (no number is ever cut): 1 loop lag, 2 CPU %, 3 audio p50, 4 intruders,
    5 received kbit/s, 6 freezes, 7 fps, 8 video p50, 9 lost, 10 audio p95, 11 decrypt failures.
    The row label, joined, video p95 and intruder decrypts always stay. Received kbit/s is the
    total over every subscriber (the last second, or the mean rate of the run so far)."""

    COLUMNS = (
        Column(""),
        Column("joined", "join"),
        Column("intruders", "intr", drop=4),
        Column("fps", drop=7),
        Column("video p50 ms", "v p50", drop=8),
        Column("video p95 ms", "v p95"),
        Column("audio p50 ms", "a p50", drop=3),
        Column("audio p95 ms", "a p95", drop=10),
        Column("recv kbit/s", "kbps", drop=5),
        Column("lost", drop=9),
        Column("freezes", "frz", drop=6),
        Column("decrypt fail", "dfail", drop=11),
        Column("intruder decrypts", "intr dec"),
        Column("CPU %", "CPU", drop=2),
        Column("loop lag ms", "lag", drop=1),
    )
    HEADER = tuple(c.name for c in COLUMNS)

    def __init__(self, planned: int) -> None:
        self.planned = planned
        self.run: LoadRun | None = None

    def rows(self) -> tuple[Sequence[str], list[Sequence[Any]]]:
        rows: list[Sequence[Any]] = []
        last = self.run.live.last_second() if self.run is not None else None
        whole = self.run.live.whole_run() if self.run is not None else None
        if last is not None:
            g = last.get
            rows.append(("last second", f"{g('joined')}/{self.planned}", g("intruders"), g("fps"),
                         g("latency_video_p50"), g("latency_video_p95"), g("latency_audio_p50"),
                         g("latency_audio_p95"), g("received_kbps"), g("lost"), g("freezes"), g("decrypt_failures"),
                         g("intruder_decrypts"), g("cpu_percent"), g("loop_lag_ms")))  # fmt: skip
        if whole is not None:
            g = whole.get
            rows.append(("whole run", "", "", None, g("latency_video_p50"), g("latency_video_p95"),
                         g("latency_audio_p50"), g("latency_audio_p95"), g("received_kbps"), g("lost"), g("freezes"),
                         g("decrypt_failures"), g("intruder_decrypts"), None, g("loop_lag_ms")))  # fmt: skip
        return self.HEADER, rows

    def line(self) -> str:
        _, rows = self.rows()
        if not rows:
            return "starting"
        r = rows[0]

        def n(value: Any, unit: str = "") -> str:
            return "-" if value is None else f"{value:.1f}{unit}"

        return (f"joined {r[1]}, {n(r[3])} fps, video p50 {n(r[4], ' ms')} p95 {n(r[5], ' ms')}, "
                f"audio p95 {n(r[7], ' ms')}, received {n(r[8], ' kbit/s')}, lost {r[9]}, freezes {r[10]}, "
                f"decrypt failures {r[11]}, intruder decrypts {r[12]}, CPU {n(r[13], '%')}")  # fmt: skip


async def run_load_command(args: argparse.Namespace) -> int:
    from ..load.runner import LoadError, run_load
    from ..report.judge import judge

    start = _epoch_start(args)
    scenario = _scenario(args, int(start.suite) if start is not None else None)
    assertions, defaults = _assertions(args, scenario)
    check_report_targets(report_targets(args))
    check_url(args.server, "--server", ("http", "https"))
    check_url(args.janus, "--janus", ("ws", "wss"))
    if args.janus and args.server:
        raise CliError("give one target: --janus or --server (or neither for the embedded relay)", ExitStatus.USAGE)
    from ..load.runner import worker_count

    try:
        workers = worker_count(args.workers)
    except LoadError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None
    shard = _shard(args.shard)
    kind = "janus" if args.janus else "whip" if args.server else "relay"
    _check_intent(args, scenario, kind)
    _say_workers(args.workers, workers, scenario, shard)
    if shard[1] > 1 and not (args.janus or args.server):
        raise CliError("--shard needs a shared target: --janus URL or --server URL", ExitStatus.USAGE)
    if shard[1] > 1 and not args.run_id and not scenario.room_ids:
        raise CliError("--shard needs --run-id ID (every shard derives the same rooms from it)", ExitStatus.USAGE)
    start_at = _start_at(args.start_at, scenario.duration)
    metrics = _metrics_address(args.metrics_port, args.metrics_listen)
    secret: Any = None
    if start is not None:
        secret = start.current  # every participant starts from the file's epoch, without the secret
    elif scenario.e2ee:
        secret = read_secret(args, required=shard[1] > 1)
        if secret is None:
            secret = random_demo_secret()
    cache_dir = args.cache_dir
    if scenario.media:
        from .media import prepare_clips

        cache_dir = await prepare_clips(scenario.media, scenario.room_shape_list(), cache_dir=args.cache_dir,
                                        video_codec=scenario.video_codec, command="load")  # fmt: skip
    faults = _faults(args.fault or [], scenario.duration, kind)
    progress = LoadProgress(scenario.planned)
    display = choose_display(
        "load",
        quiet=args.quiet,
        view=LiveView(progress.rows, progress.line, progress.COLUMNS),
        duration=scenario.duration,
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
                cache_dir=cache_dir,
                on_tick=tick,
                shard=shard,
                run_id=args.run_id,
                start_at=start_at,
                metrics_listen=metrics,
                token=read_token(args) if args.server else None,
                faults=faults,
            )
    except LoadError as exc:
        from .isolation import namespace_hint

        raise CliError(f"{exc}{namespace_hint(str(exc))}") from None
    judgement = judge(report, assertions, default_checks=defaults, interrupted=run.interrupted)
    write_outputs(judgement, args)
    load_summary(display, judgement, wrote=bool(args.json or args.csv or args.html or args.csv_participants))
    return judgement.exit_status


def _epoch_start(args: argparse.Namespace) -> Any:
    """``--epoch-file``: the run's first epoch (an :class:`~sealrtc.epochs.EpochKeys`), or None."""
    if not args.epoch_file:
        return None
    from .keys import read_epoch_file

    if args.no_e2ee:
        raise CliError("--epoch-file and --no-e2ee exclude each other", ExitStatus.USAGE)
    if args.keying == 1:
        raise CliError("an --epoch-file is keying v2: drop --keying 1", ExitStatus.USAGE)
    if args.secret_file:
        raise CliError("give one key source: --epoch-file or --secret-file", ExitStatus.USAGE)
    return read_epoch_file(args.epoch_file, suite=args.suite)


def _assertions(args: argparse.Namespace, scenario: Any) -> tuple[list[Assertion], list[Assertion]]:
    """The run's assertions, parsed before it starts: the scenario file's list plus ``--assert``
    (they add up), and the default E2EE checks unless ``--no-default-asserts``."""
    from ..report.assertions import AssertionSyntaxError, check_all
    from ..report.judge import default_assertions

    asked: list[Assertion] = []
    for where, texts in ((f"assert in {args.scenario}", scenario.assertions), ("--assert", args.assertion or ())):
        try:
            asked += check_all(texts)
        except AssertionSyntaxError as exc:
            raise CliError(f"{where}: {exc}", ExitStatus.USAGE) from None
    if args.no_default_asserts:
        return asked, []
    texts = default_assertions((a.text for a in asked), subscribers=bool(scenario.subscribers))
    return asked, check_all(texts)


def _check_intent(args: argparse.Namespace, scenario: Any, kind: str) -> None:
    """Refuse what runs but cannot be what was meant; warn where it may be (a usage error, or
    one line on stderr).

    ``--room 5`` names an existing room: the embedded relay starts empty, so there it can only be
    a typo of ``--rooms 5``; on Janus or a WHIP server it may be meant, and is said once. A run
    without subscribers measures nothing on the embedded relay (nobody receives, and the server
    is the run's own); on a real server a publishers-only run loads its ingest, so it runs, with a
    word on what is not measured."""
    if args.room and kind == "relay":
        word = args.room[0]
        hint = f" (did you mean --rooms {word}?)" if len(args.room) == 1 and word.isdigit() else ""
        raise CliError(f"--room names an existing room, and the embedded relay starts with none: give --rooms N for "
                       f"N rooms, or --janus/--server URL to use existing rooms{hint}", ExitStatus.USAGE)  # fmt: skip
    if args.room and len(args.room) == 1 and args.room[0].isdigit() and args.rooms is None:
        warn(f"--room {args.room[0]}: one existing room, {args.room[0]} (for {args.room[0]} rooms: --rooms "
             f"{args.room[0]})")  # fmt: skip
    if scenario.subscribers == 0 and scenario.intruders == 0:
        if kind == "relay":
            raise CliError("no subscribers: against the embedded relay nothing would be measured (nobody receives: "
                           "no latency, loss or decryption to check); give --subscribers N, or --janus/--server URL "
                           "for a publishers-only load of a real server", ExitStatus.USAGE)  # fmt: skip
        warn("no subscribers: a publishers-only run measures joins and frames sent, not latency, loss or decryption")
    elif scenario.subscribers == 0:
        warn("no subscribers: only the intruders receive, so latency, loss and frames decrypted are not measured")


def _say_workers(requested: str, workers: int, scenario: Any, shard: tuple[int, int]) -> None:
    """One line when the run will not use the workers asked for (more than its participants),
    or asks for more worker processes than this machine has CPUs (they then share cores, and
    the saturation check measures the sharing)."""
    from ..load.plan import plan
    from ..load.plan import shard as shard_of
    from ..load.runner import available_cpus

    if requested == "auto":
        return
    participants = len(shard_of(plan(scenario), *shard) if shard[1] > 1 else plan(scenario))
    cpus = available_cpus()
    if workers > max(1, participants):
        warn(f"--workers {workers}: {participants} participants, so {max(1, participants)} workers "
             "(a worker runs at least one participant)")  # fmt: skip
    elif workers > cpus:
        warn(f"--workers {workers} on {cpus} CPUs: workers share cores (--workers auto: one per CPU)")


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
        command = [sys.executable, "-m", "sealrtc", *argv[1:]]
        metrics = _metrics_address(args.metrics_port, args.metrics_listen)
        if metrics is None:
            return run_isolated(command)
        return _isolated_with_metrics(command, metrics)
    return asyncio.run(run_load_command(args))


def _isolated_with_metrics(command: list[str], address: tuple[str, int]) -> int:
    """``/metrics`` where the user is: the listener is opened here, before the run goes into its
    private namespace, and handed down (a socket stays in the namespace it was made in)."""
    from ..shell.listeners import ENV, hand_down
    from .isolation import run_isolated

    try:
        listener = hand_down(address)
    except OSError as exc:
        raise CliError(f"cannot serve metrics on {address[0]}:{address[1]}: {exc.strerror or exc}") from None
    with listener:
        return run_isolated(command, pass_fds=(listener.fileno(),), env={ENV: str(listener.fileno())})
