"""``sealrtc subscribe``: receive, decrypt, verify probes, decode (or not), record, measure, judge."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .common import (
    CliError,
    ExitStatus,
    RunLoop,
    check_record_dir,
    check_target,
    read_token,
)
from .display import LiveView, choose_display
from .impair import link_shape, tell_impairment, tell_recovery
from .keys import keys_from, ratcheting
from .output import finish, stats_line

NO_MEDIA_NOTICE_AFTER = 5.0


NO_PROBES = "no probes in the frames: the publisher runs without --probe (sealrtc publishers only)"


def _label(t: dict[str, Any]) -> str:
    """``video``, ``video (feed 7)``, ``video (stream 0x3f9815af)``: a WHEP room has one
    publisher, named only when its probes give it a stream id."""
    publisher = t["publisher"]
    return t["kind"] if publisher == "the publisher" else f"{t['kind']} ({publisher})"


def _no_latency(t: dict[str, Any]) -> str | None:
    """Why a track that delivers frames has no latency (nor loss: both come from the probes).
    None: it has some, or nothing was delivered (frames that do not decrypt, or that look
    encrypted to a plain run, have their own notices)."""
    decrypted = t.get("frames_decrypted")
    delivered = decrypted if decrypted is not None else t.get("frames_received")
    return NO_PROBES if delivered and not t.get("latency_ms") and not t.get("looks_encrypted") else None


def absent_metrics(tracks: Sequence[dict[str, Any]]) -> list[str]:
    """The reason a shown ``-`` has (latency and loss without probes), naming the tracks; audio's
    freezes, never counted (the W3C rule is a video one), show as ``n/a`` instead."""
    missing = [_label(t) for t in tracks if _no_latency(t)]
    return [f"latency and loss of {', '.join(missing)}: {NO_PROBES}"] if missing else []


def _freezes(t: dict[str, Any]) -> int | str | None:
    if t["kind"] == "audio":
        return "n/a"
    return t["freezes"]["count"] if t["freezes"] else None


def _rows(agent: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
    header = ("track", "received", "decrypted", "decoded", "fps", "p50 ms", "p95 ms", "lost", "freezes", "failures")
    rows: list[Sequence[Any]] = []
    for t in agent.track_stats():
        latency = t["latency_ms"] or {}
        rows.append(
            (
                _label(t),
                t["frames_received"],
                t["frames_decrypted"] if agent.keys is not None else None,
                agent.decoded.get(t["kind"], 0) if agent.decode else None,
                t["fps"],
                latency.get("p50"),
                latency.get("p95"),
                t["frames_lost"],
                _freezes(t),
                sum(t["decrypt_failures"].values()) if agent.keys is not None else None,
            )
        )
    return header, rows


def _line(agent: Any) -> str:
    parts = []
    for t in agent.track_stats():
        latency = t["latency_ms"] or {}
        part = f"{_label(t)}: {t['frames_received']} received"
        if agent.keys is not None:
            part += f", {t['frames_decrypted']} decrypted"
        if t["fps"] is not None:
            part += f", {t['fps']:.1f} fps"
        if latency:
            part += f", p50 {latency['p50']:.1f} ms"
        elif _no_latency(t):
            part += ", no latency (no probes)"
        if t["frames_lost"]:
            part += f", {t['frames_lost']} lost"
        parts.append(part)
    return " | ".join(parts) if parts else "no media yet"


def _where(args: argparse.Namespace) -> str:
    return f"room {args.room}" if args.janus else args.whep


async def run_subscribe(args: argparse.Namespace) -> ExitStatus:
    from ..agents import SubscriberAgent

    check_target(args, args.whep, "--whep", "WHEP")
    record_dir = check_record_dir(args.record)
    if args.feed is not None and not args.janus:
        raise CliError("--feed only applies with --janus", ExitStatus.USAGE)
    keys = keys_from(args)
    view = LiveView(lambda: _rows(agent), lambda: _line(agent))  # read once the run has started
    display = choose_display(
        "subscribe", quiet=args.quiet, duration=args.duration, verbose=bool(args.verbose), view=view
    )
    agent = SubscriberAgent(
        keys,
        decode=not args.no_decode,
        record_dir=record_dir,
        on_notice=display.say,
        impairment=link_shape(args),
        recover_within=args.recover_within,
    )
    run = RunLoop(args.duration, agent.failed)
    feed_seen = args.feed is None
    room_had_publishers = False
    try:
        if args.janus:
            await agent.subscribe_janus(args.janus, int(args.room), feed=args.feed)
            publishers = await agent.room_publishers() or []
            room_had_publishers = bool(publishers)
            if args.feed is not None and args.feed not in publishers:
                listed = ", ".join(map(str, publishers)) or "none"
                agent.notice(
                    f"feed {args.feed} is not publishing in room {args.room} (publishers now: {listed}); waiting"
                )
            elif not publishers:
                agent.notice(f"room {args.room} has no publishers yet; waiting")
        else:
            await agent.subscribe_whep(args.whep, token=read_token(args))

        def tick(elapsed: float) -> None:
            agent.refresh()
            if elapsed >= NO_MEDIA_NOTICE_AFTER and agent.connect.get("first_rtp") is None:
                agent.notice(f"no media yet from {_where(args)}: is anyone publishing there?", key="no-media")
            display.tick(elapsed)
            if args.verbose:
                display.say(stats_line(elapsed, _line(agent)))

        with display:
            async with ratcheting(keys, args.ratchet_every):
                await run.run(tick)
    finally:
        await agent.close()
    summary = agent.summary()
    tell_impairment(display.say, summary)
    tell_recovery(display.say, summary)
    if record_dir is not None:  # where the files went (the directory may have just been created)
        for recording in summary["recordings"]:
            display.say(f"recorded {recording['frames']} frames to {recording['path']}")
        if not summary["recordings"]:
            missing = "arrived" if agent.keys is None else "decrypted"
            display.say(f"nothing recorded in {record_dir}: no frame {missing}")
    if args.janus:
        feeds = [t["publisher"] for t in summary["tracks"]]
        feed_seen = feed_seen or f"feed {args.feed}" in feeds
        room_had_publishers = room_had_publishers or bool(feeds)
    for note in absent_metrics(summary["tracks"]):
        display.say(note)
    status, verdict = _judge(args, agent, summary, feed_seen=feed_seen, room_had_publishers=room_had_publishers)
    return ExitStatus(
        finish(display, summary, elapsed=run.elapsed, interrupted=run.interrupted, status=status, verdict=verdict,
               json_target=args.json, table=_rows_from_summary(summary))
    )  # fmt: skip


def _judge(
    args: argparse.Namespace, agent: Any, summary: dict[str, Any], *, feed_seen: bool, room_had_publishers: bool
) -> tuple[ExitStatus, str]:
    totals = agent.totals()
    if agent.failure:
        return ExitStatus.FAILURE, agent.failure
    if totals["frames_received"] == 0:
        if args.janus and not feed_seen:
            return ExitStatus.FAILURE, f"feed {args.feed} never published in room {args.room}"
        if args.janus and not room_had_publishers:
            return ExitStatus.FAILURE, f"room {args.room} had no publishers: nothing to receive"
        return ExitStatus.FAILURE, f"no media arrived from {_where(args)}: is anyone publishing there?"
    if agent.keys is None:
        if any(t["looks_encrypted"] for t in summary["tracks"]):
            return ExitStatus.FAILURE, (
                "media looks encrypted: this subscriber ran with --no-e2ee; drop --no-e2ee and set SEALRTC_SECRET "
                "to decrypt it"
            )
        if agent.decode and totals["frames_decoded"] == 0:
            return ExitStatus.FAILURE, "frames arrived but none decoded"
        return ExitStatus.OK, f"{totals['frames_received']} frames received (plain, no E2EE)"
    if totals["frames_decrypted"] == 0:
        if totals["key_failures"]:
            return ExitStatus.SECRET_MISMATCH, (
                f"{totals['frames_received']} frames arrived, none decrypted (wrong key): secret mismatch — "
                f"check {'--secret-file' if args.secret_file else 'SEALRTC_SECRET'} (the secret this run used), "
                "--context and --suite"
            )
        return ExitStatus.FAILURE, f"{totals['frames_received']} frames arrived, none decrypted"
    if agent.decode and totals["frames_decoded"] == 0:
        return ExitStatus.FAILURE, f"{totals['frames_decrypted']} frames decrypted but none decoded"
    for t in summary["tracks"]:
        lost, got = t.get("frames_lost") or 0, t.get("frames_decrypted") or 0
        if lost and lost / (lost + got) > 0.05:
            agent.notice(
                f"{lost / (lost + got):.0%} of {t['kind']} frames from {t['publisher']} were lost "
                f"({lost} of {lost + got}) — another publisher may have taken the room, or the network drops"
            )
    done = f"{totals['frames_decrypted']} frames decrypted"
    if agent.decode:
        done += f", {totals['frames_decoded']} decoded"
    else:
        done += " and verified (no decoding)"
    return ExitStatus.OK, done


def _rows_from_summary(summary: dict[str, Any]) -> tuple[Sequence[str], list[Sequence[Any]]]:
    header = ("track", "received", "decrypted", "decoded", "fps", "kbit/s", "p50 ms", "p95 ms", "lost", "freezes")
    rows: list[Sequence[Any]] = []
    for t in summary["tracks"]:
        latency = t["latency_ms"] or {}
        rows.append(
            (
                _label(t),
                t["frames_received"],
                t["frames_decrypted"],
                t["frames_decoded"],
                t["fps"],
                t["bitrate_kbps"],
                latency.get("p50"),
                latency.get("p95"),
                t["frames_lost"],
                _freezes(t),
            )
        )
    return header, rows
