"""``sealrtc demo``: relay + publisher + keyed and keyless subscribers, then the proof."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .common import ExitStatus, random_demo_secret, read_secret, write_json
from .impair import link_shape, tell_impairment
from .isolation import inside_namespace, run_isolated
from .media import shape_from


def run_demo_command(args: argparse.Namespace, argv: list[str]) -> ExitStatus:
    if not args.no_isolate and not inside_namespace():
        code = run_isolated([sys.executable, "-m", "sealrtc", *argv[1:]])
        return ExitStatus.OK if code == 0 else ExitStatus.INTERRUPTED if code == 130 else ExitStatus.FAILURE
    return asyncio.run(run_demo(args))  # hosts the relay: asyncio's own loop (see cli.main.run_relay)


def _progress(rows: dict[str, Any], elapsed: float, duration: float) -> Table:
    table = Table(title=f"sealrtc demo — {elapsed:4.1f} / {duration:.0f} s")
    for col in ("", "frames"):
        table.add_column(col, justify="right")
    for name, value in rows.items():
        table.add_row(name, str(value))
    return table


async def run_demo(args: argparse.Namespace) -> ExitStatus:
    from ..agents import PublisherAgent, SubscriberAgent
    from ..keys import SharedSecret
    from ..relay.server import Relay, start_relay

    secret = read_secret(args, required=False) or random_demo_secret()
    context = b"sealrtc-demo"
    token = secrets.token_urlsafe(32)  # this run's relay takes only its own agents (never shown)
    relay, runner, port = await start_relay(
        "127.0.0.1", 0, Relay(record_digests=True, publish_tokens=[token], subscribe_tokens=[token])
    )
    base = f"http://127.0.0.1:{port}"
    shape = link_shape(args)  # every participant of the demo gets the same link
    publisher = PublisherAgent(
        SharedSecret(secret, context=context),
        record_plaintext=True,
        video_codec=args.video_codec,
        impairment=shape,
        shape=shape_from(args),
    )
    keyed = SubscriberAgent(SharedSecret(secret, context=context), name="with-secret", impairment=shape)
    keyless = SubscriberAgent(
        SharedSecret(random_demo_secret(), context=context), name="without-secret", impairment=shape
    )
    console = Console(stderr=True)
    try:
        await publisher.publish_whip(f"{base}/whip/demo", token=token)
        await keyed.subscribe_whep(f"{base}/whep/demo", token=token)
        await keyless.subscribe_whep(f"{base}/whep/demo", token=token)
        start = time.monotonic()

        def rows() -> dict[str, Any]:
            return {
                "sent (video+audio)": sum(publisher.frames_sent().values()),
                "forwarded by relay": relay.stats.frames_forwarded,
                "decoded with secret": sum(keyed.decoded.values()),
                "decoded without secret": sum(keyless.decoded.values()),
            }

        if args.quiet or not console.is_terminal:  # no live table when piped: just the summary
            await asyncio.sleep(args.duration)  # media streams in real time for the demo's length
        else:
            with Live(_progress(rows(), 0, args.duration), console=console, refresh_per_second=4) as live:
                while (elapsed := time.monotonic() - start) < args.duration:
                    await asyncio.sleep(0.25)  # display refresh cadence
                    live.update(_progress(rows(), elapsed, args.duration))
    finally:
        await publisher.close()
        await keyed.close()
        await keyless.close()
        await runner.cleanup()

    plaintext_seen = len(publisher.plaintext_digests & relay.forwarded_digests)
    subs = [keyed.summary() | {"secret": True}, keyless.summary() | {"secret": False}]
    summary = {
        "duration": args.duration,
        "publisher": publisher.summary(),
        "subscribers": subs,
        "relay": relay.stats.as_dict()
        | {"plaintext_frames": plaintext_seen, "frames_hashed": len(relay.forwarded_digests)},
    }
    ok = subs[0]["frames_decoded"] > 0 and subs[1]["frames_decoded"] == 0 and plaintext_seen == 0
    summary["ok"] = ok
    if not args.quiet:
        table = Table(title="sealrtc demo summary")
        for col in ("", "with secret", "without secret"):
            table.add_column(col, justify="right")
        table.add_row("frames sent", str(sum(publisher.summary()["frames_sent"].values())), "")
        table.add_row("frames forwarded by relay", str(relay.stats.frames_forwarded), "")
        for key in ("frames_decrypted", "frames_decoded"):
            table.add_row(key.replace("_", " "), str(subs[0][key]), str(subs[1][key]))
        for reason in ("malformed", "unknown_key", "authentication_failed", "replayed"):
            counts = [sum(t.get("decrypt_failures", {}).get(reason, 0) for t in s["tracks"]) for s in subs]
            table.add_row(f"failures: {reason}", str(counts[0]), str(counts[1]))
        table.add_row("plaintext frames seen by relay", str(plaintext_seen), "")
        console.print(table)
        for who, part in (("publisher", summary["publisher"]), ("with-secret", subs[0])):
            tell_impairment(lambda line, who=who: console.print(f"{who}: {line}", highlight=False), part)
        console.print("[green]OK[/green]: only ciphertext crossed the relay" if ok else "[red]FAILED[/red]")
    write_json(args.json, summary)
    return ExitStatus.OK if ok else ExitStatus.FAILURE
