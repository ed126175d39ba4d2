"""``main(argv) -> exit status``: a plain function, testable; the commands are thin shells."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from ..errors import InvalidSecret, SealError
from ..shell import eventloop
from ..text import clean
from .args import build_parser
from .common import CliError, ExitStatus, RunLoop, random_demo_secret, read_secret, write_json

__all__ = ["CliError", "ExitStatus", "main", "random_demo_secret", "read_secret", "write_json"]


def _listen_address(listen: str) -> tuple[str, str]:
    """``HOST:PORT`` -> (host, port), or a usage error that says which half is missing."""
    if "://" in listen:
        raise CliError(f"--listen takes HOST:PORT, not a URL: e.g. 127.0.0.1:8080 (got {listen!r})", ExitStatus.USAGE)
    host, colon, port = listen.rpartition(":")
    bare = port if colon else listen  # "8080" and ":8080" both lack only the host
    if not host and bare.isascii() and bare.isdigit():
        raise CliError(f"--listen {listen!r} has no host: use 127.0.0.1:{bare} (this machine only) or "
                       f"0.0.0.0:{bare} (all interfaces)", ExitStatus.USAGE)  # fmt: skip
    if not colon or not host:
        example = listen.rstrip(":") or "127.0.0.1"
        raise CliError(f"--listen {listen!r} has no port: use HOST:PORT, e.g. {example}:8080",
                       ExitStatus.USAGE)  # fmt: skip
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise CliError(f"--listen needs a port 0-65535 after the last ':', got {listen!r}", ExitStatus.USAGE)
    return host, port


async def run_relay(args: argparse.Namespace) -> ExitStatus:
    from ..relay.server import start_relay

    host, port = _listen_address(args.listen)
    from ..relay import PUBLISH_TOKEN_ENV, SUBSCRIBE_TOKEN_ENV, TokenError, load_tokens
    from ..relay.auth import TOKEN_HOWTO, exposed_without_tokens
    from ..relay.cors import check_origin

    try:
        publish_tokens = load_tokens(args.publish_token_file, PUBLISH_TOKEN_ENV)
        subscribe_tokens = load_tokens(args.subscribe_token_file, SUBSCRIBE_TOKEN_ENV)
    except (TokenError, OSError) as exc:
        raise CliError(str(exc)) from None
    limits = (
        args.max_sessions,
        args.max_sessions_per_room,
        args.max_pending_per_client,
        args.max_connections_per_client,
    )
    if min(limits) < 1:
        raise CliError("--max-sessions, --max-sessions-per-room, --max-pending-per-client and "
                       "--max-connections-per-client must be >= 1", ExitStatus.USAGE)  # fmt: skip
    try:
        check_origin(args.cors_origin)
    except ValueError as exc:
        raise CliError(f"--cors-origin: {exc}", ExitStatus.USAGE) from None
    if exposed_without_tokens(host, publish_tokens) and not args.open:
        raise CliError(f"refusing to listen on {host} without publish tokens (anyone could publish): {TOKEN_HOWTO}; "
                       "or add --open to run it open on purpose", ExitStatus.USAGE)  # fmt: skip
    try:
        relay, runner, bound = await start_relay(
            host.strip("[]"),
            int(port),
            max_sessions=args.max_sessions,
            max_sessions_per_room=args.max_sessions_per_room,
            publisher_policy=args.publisher_policy,
            max_pending_per_client=args.max_pending_per_client,
            max_connections_per_client=args.max_connections_per_client,
            cors_origin=args.cors_origin,
            publish_tokens=publish_tokens,
            subscribe_tokens=subscribe_tokens,
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    if publish_tokens and subscribe_tokens:
        guarded = " (bearer tokens required)"
    elif publish_tokens:
        guarded = " (bearer tokens required to publish; subscribing is open)"
    elif subscribe_tokens:
        guarded = " (bearer tokens required to subscribe; publishing is open)"
    else:
        guarded = " (open: no tokens)" if args.open else ""
    print(
        f"sealrtc relay on http://{host}:{bound}  (WHIP /whip/ROOM, WHEP /whep/ROOM, GET /stats){guarded}",
        file=sys.stderr,
        flush=True,
    )
    run = RunLoop(args.duration)
    try:
        await run.run()
    finally:
        await runner.cleanup()
    print(f"sealrtc relay: stopped; totals {json.dumps(relay.stats.as_dict())}", file=sys.stderr)
    return ExitStatus.OK  # Ctrl-C / SIGTERM is how a relay is meant to stop


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(getattr(args, "verbose", 0) or 0)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    # aiortc warns about every undecodable frame (e.g. joining before a key frame) and aioice logs
    # every candidate pair: not the user's business unless asked (-vv); sealrtc counts and reports
    # what matters.
    for name in ("aiortc", "aioice"):
        logging.getLogger(name).setLevel({0: logging.ERROR, 1: logging.WARNING}.get(verbose, logging.NOTSET))
    # the receiver's "failed to decode" warning comes with every frame before a key frame: -vv only
    logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR if verbose < 2 else logging.NOTSET)
    try:
        if args.command == "demo":
            from .demo import run_demo_command

            return int(run_demo_command(args, sys.argv if argv is None else ["sealrtc", *argv]))
        if args.command == "report":
            from .report import run_report

            return run_report(args)
        if args.command == "inspect":
            from .inspect import run_inspect

            return run_inspect(args)
        if args.command == "keys":
            from .keys import run_keys

            return run_keys(args)
        if args.command == "load":
            from .load import run_load_entry

            return run_load_entry(args, sys.argv if argv is None else ["sealrtc", *argv])
        if args.command == "publish":
            from .publish import run_publish as runner
        elif args.command == "subscribe":
            from .subscribe import run_subscribe as runner
        else:
            # The relay's connection guard wraps aiohttp's protocol, and uvloop's TCP transports
            # reset such connections: the relay stays on asyncio's own loop.
            return int(asyncio.run(run_relay(args)))
        return int(eventloop.run(runner(args)))
    except KeyboardInterrupt:
        print(f"sealrtc {args.command}: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except CliError as exc:
        print(f"sealrtc {args.command}: error: {clean(exc)}", file=sys.stderr)
        return exc.status
    except (InvalidSecret, SealError) as exc:
        from .isolation import namespace_hint

        print(f"sealrtc {args.command}: error: {clean(exc)}{namespace_hint(str(exc))}", file=sys.stderr)
        return ExitStatus.FAILURE
    except Exception as exc:
        # The last resort: a bug. One line by default (the exception's type only: its text may
        # quote data or a secret); -v shows the traceback for a bug report.
        if verbose:
            raise
        print(
            f"sealrtc {args.command}: internal error ({exc.__class__.__name__}): this is a bug; run again with -v "
            "for the traceback and report it",
            file=sys.stderr,
        )
        return ExitStatus.FAILURE
