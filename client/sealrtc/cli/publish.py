"""``sealrtc publish``: a test pattern + tone, or a media file, in VP8 or H.264, E2EE on,
optionally probed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .common import CliError, ExitStatus, RunLoop, check_target, read_token
from .display import LiveView, choose_display
from .impair import link_shape, tell_impairment, tell_recovery
from .keys import keys_from, ratcheting, rotating
from .media import load_media, shape_from, usable_cache_dir
from .output import finish, stats_line


def _rows(agent: Any) -> tuple[Sequence[str], list[Sequence[Any]]]:
    header = (
        "track", "frames", "kbytes", "kbit/s", "kbit/s last 5 s", "target kbit/s", "key frames", "KID switches",
        "key frame requests", "dropped",
    )  # fmt: skip
    rows: list[Sequence[Any]] = []
    for kind, t in agent.summary()["sent"].items():
        rows.append(
            (
                f"{kind} ({t['codec'] or 'negotiating'})",
                t["frames"],
                round(t["bytes"] / 1000, 1),
                t["bitrate_kbps"],
                t["bitrate_recent_kbps"],
                t["target_kbps"],
                t["keyframes"],
                t["kid_switches"],
                t["keyframe_requests_received"],
                t["frames_dropped"],
            )
        )
    return header, rows


def _line(agent: Any) -> str:
    sent = agent.summary()["sent"]
    if not sent:
        return "connecting"
    return " | ".join(f"{kind}: {t['frames']} frames, {t['bytes'] / 1000:.0f} kB{_rate(t)}" for kind, t in sent.items())


def _rate(track: dict[str, Any]) -> str:
    recent, target = track["bitrate_recent_kbps"], track["target_kbps"]
    text = f", {recent:.0f} kbit/s" if recent is not None else ""
    return text + (f" (target {target:.0f})" if target is not None else "")


async def _media_tracks(args: argparse.Namespace) -> dict[str, Any]:
    if not args.media:
        return {}
    from ..media import MediaError, tracks_for_clip

    shape = shape_from(args)
    try:
        cache_dir = usable_cache_dir(args.cache_dir, "publish")
        clip = await load_media(
            args.media, cache_dir=cache_dir, video_codec=args.video_codec, shape=shape, command="publish"
        )
    except MediaError as exc:
        raise CliError(f"--media {args.media}: {exc}") from None
    video, audio = tracks_for_clip(clip, shape=shape)
    if video is None and audio is None:
        kind = "video" if args.no_audio else "audio"
        raise CliError(f"--media {args.media} has no {kind} to send", ExitStatus.USAGE)
    return {"video": video, "audio": audio}


async def run_publish(args: argparse.Namespace) -> ExitStatus:
    from ..agents import PublisherAgent

    check_target(args, args.whip, "--whip", "WHIP")
    keys = keys_from(args)
    tracks = await _media_tracks(args)
    agent = PublisherAgent(
        keys,
        probe=args.probe,
        video_codec=args.video_codec,
        impairment=link_shape(args),
        recover_within=args.recover_within,
        shape=shape_from(args),
        **tracks,
    )
    display = choose_display(
        "publish",
        quiet=args.quiet,
        duration=args.duration,
        verbose=bool(args.verbose),
        view=LiveView(lambda: _rows(agent), lambda: _line(agent)),
    )
    run = RunLoop(args.duration, agent.failed)
    try:
        if args.janus:
            await agent.publish_janus(args.janus, int(args.room))
        else:
            await agent.publish_whip(args.whip, token=read_token(args))

        def tick(elapsed: float) -> None:
            display.tick(elapsed)
            if args.verbose:
                display.say(stats_line(elapsed, _line(agent)))

        with display:
            async with ratcheting(keys, args.ratchet_every), rotating(args, keys):
                await run.run(tick)
    finally:
        await agent.close()
    summary = agent.summary()
    tell_impairment(display.say, summary)
    tell_recovery(display.say, summary)
    frames = sum(t["frames"] for t in summary["sent"].values())
    if agent.failure:
        status, verdict = ExitStatus.FAILURE, agent.failure
    elif frames == 0:
        status, verdict = ExitStatus.FAILURE, "nothing was sent: the media connection never came up"
    else:
        status, verdict = ExitStatus.OK, f"{frames} frames sent" + (" (E2EE)" if keys is not None else " (plain)")
    return ExitStatus(
        finish(display, summary, elapsed=run.elapsed, interrupted=run.interrupted, status=status, verdict=verdict,
               json_target=args.json, table=_rows(agent))
    )  # fmt: skip
