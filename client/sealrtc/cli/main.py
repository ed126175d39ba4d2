"""``main(argv) -> exit status``: a plain function, testable; the commands are thin shells."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..errors import InvalidSecret, SealError
from .args import build_parser


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130


class CliError(Exception):
    """A one-line error for the user (never contains a secret)."""


def read_secret(args: argparse.Namespace, *, required: bool) -> str | None:
    path = getattr(args, "secret_file", None)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read --secret-file {path}: {exc.strerror}") from None
        secret = text.splitlines()[0] if text.splitlines() else ""
        if not secret:
            raise CliError(f"--secret-file {path} is empty")
        return secret
    from_env = os.environ.get("SEALRTC_SECRET")
    if from_env:
        return from_env
    if required:
        raise CliError("no E2EE secret: set SEALRTC_SECRET or pass --secret-file (or --no-e2ee for a plain run)")
    return None


def write_json(target: str | None, data: dict[str, Any]) -> None:
    if not target:
        return
    text = json.dumps(data, indent=2, default=str)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def keys_from(args: argparse.Namespace) -> Any:
    from ..keys import SharedSecret

    if getattr(args, "no_e2ee", False):
        return None
    secret = read_secret(args, required=True)
    assert secret is not None
    return SharedSecret(secret, context=args.context.encode())


async def wait_or_interrupt(seconds: float | None, failed: asyncio.Event | None = None) -> None:
    """Sleep for the run's duration, returning early on SIGINT/SIGTERM or when ``failed`` is set."""
    stop = failed or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def run_publish(args: argparse.Namespace) -> ExitStatus:
    from ..agents import PublisherAgent

    agent = PublisherAgent(keys_from(args))
    try:
        if args.janus:
            await agent.publish_janus(args.janus, _room(args))
        else:
            await agent.publish_whip(args.whip)
        await wait_or_interrupt(args.duration, agent.failed)
    finally:
        await agent.close()
    write_json(args.json, agent.summary())
    if agent.failure:
        raise CliError(agent.failure)
    return ExitStatus.OK


def _room(args: argparse.Namespace) -> int:
    if args.room is None:
        raise CliError("--janus needs --room ROOM (a VideoRoom id)")
    return int(args.room)


async def run_subscribe(args: argparse.Namespace) -> ExitStatus:
    from ..agents import SubscriberAgent

    agent = SubscriberAgent(keys_from(args))
    try:
        if args.janus:
            await agent.subscribe_janus(args.janus, _room(args), feed=args.feed)
        else:
            await agent.subscribe_whep(args.whep)
        await wait_or_interrupt(args.duration, agent.failed)
    finally:
        await agent.close()
    summary = agent.summary()
    write_json(args.json, summary)
    if agent.failure:
        raise CliError(agent.failure)
    return ExitStatus.OK if summary["frames_decoded"] > 0 else ExitStatus.FAILURE


async def run_relay(args: argparse.Namespace) -> ExitStatus:
    from ..relay.server import start_relay

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise CliError(f"--listen must be HOST:PORT, got {args.listen!r}")
    try:
        relay, runner, bound = await start_relay(host, int(port))
    except OSError as exc:
        raise CliError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    print(f"sealrtc relay on http://{host}:{bound}  (WHIP /whip/ROOM, WHEP /whep/ROOM)", file=sys.stderr)
    try:
        await wait_or_interrupt(args.duration)
    finally:
        await runner.cleanup()
    print(json.dumps(relay.stats.as_dict()), file=sys.stderr)
    return ExitStatus.OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING)
    if getattr(args, "duration", None) is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    try:
        if args.command == "demo":
            from .demo import run_demo_command

            return int(run_demo_command(args, sys.argv if argv is None else ["sealrtc", *argv]))
        runner = {"publish": run_publish, "subscribe": run_subscribe, "relay": run_relay}[args.command]
        return int(asyncio.run(runner(args)))
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except (CliError, InvalidSecret, SealError) as exc:
        print(f"sealrtc {args.command}: error: {exc}", file=sys.stderr)
        return ExitStatus.FAILURE


def random_demo_secret() -> str:
    return secrets.token_urlsafe(24)
