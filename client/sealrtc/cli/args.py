"""Argument parsing for ``sealrtc`` (alone in its module, as httpie does)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

SECRET_HELP = (
    "The E2EE secret is read from the SEALRTC_SECRET environment variable or from --secret-file, "
    "never from the command line, and is never printed."
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that never echoes unrecognised values (one might be a secret)."""

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            options = [t for t in message[len(prefix) :].split() if t.startswith("-")]
            message = prefix + (" ".join(options) if options else "(values not shown)")
        super().error(message)


def _common(p: argparse.ArgumentParser, *, e2ee: bool = True) -> None:
    p.add_argument(
        "--duration", type=float, default=10.0, metavar="S", help="run for S seconds, then stop (default 10)"
    )
    p.add_argument("--json", metavar="FILE", help="write a JSON summary to FILE ('-' for stdout)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug information (never secrets)")
    if e2ee:
        p.add_argument("--secret-file", metavar="PATH", help="read the E2EE secret from PATH (first line)")
        p.add_argument(
            "--context", default="", help="key-derivation context shared by all participants, e.g. a room id"
        )
        p.add_argument("--no-e2ee", action="store_true", help="run without end-to-end encryption (plain baseline)")


def build_parser() -> argparse.ArgumentParser:
    # No prefix abbreviations: "--secret VALUE" must never be taken for "--secret-file VALUE".
    parser = _Parser(
        prog="sealrtc",
        allow_abbrev=False,
        description="End-to-end encrypted WebRTC agents (SFrame, RFC 9605) on aiortc. " + SECRET_HELP,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    sub_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub_add(name, allow_abbrev=False, **kwargs)
        return parser

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]

    relay = sub.add_parser("relay", help="run the embedded WHIP/WHEP relay (forwards ciphertext, holds no keys)")
    relay.add_argument(
        "--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="HTTP address (default 127.0.0.1:8080)"
    )
    relay.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: run until Ctrl-C)"
    )
    relay.add_argument("-v", "--verbose", action="store_true", help="log debug information")

    publish = sub.add_parser(
        "publish", help="publish a VP8 test pattern and an Opus tone, E2EE on", description=SECRET_HELP
    )
    target = publish.add_mutually_exclusive_group(required=True)
    target.add_argument("--whip", metavar="URL", help="WHIP endpoint, e.g. http://HOST:PORT/whip/ROOM")
    target.add_argument("--janus", metavar="URL", help="Janus WebSocket API, e.g. ws://HOST:8188 (needs --room)")
    publish.add_argument("--room", type=int, metavar="ROOM", help="Janus VideoRoom id (with --janus)")
    _common(publish)

    subscribe = sub.add_parser("subscribe", help="subscribe, decrypt, decode and report", description=SECRET_HELP)
    source = subscribe.add_mutually_exclusive_group(required=True)
    source.add_argument("--whep", metavar="URL", help="WHEP endpoint, e.g. http://HOST:PORT/whep/ROOM")
    source.add_argument(
        "--janus",
        metavar="URL",
        help="Janus WebSocket API, e.g. ws://HOST:8188 (subscribes to every publisher of --room)",
    )
    subscribe.add_argument("--room", type=int, metavar="ROOM", help="Janus VideoRoom id (with --janus)")
    subscribe.add_argument(
        "--feed", type=int, metavar="ID", help="with --janus: subscribe to this publisher id only (default: all)"
    )
    _common(subscribe)

    demo = sub.add_parser(
        "demo",
        help="zero-setup demo: relay + publisher + a subscriber with the secret and one without",
        description="Starts the relay on an ephemeral port, one publisher, a subscriber with the secret and one "
        "without, inside a private network namespace, then proves the relay only saw ciphertext. "
        "Uses SEALRTC_SECRET / --secret-file if given, else a random secret. Exit 0 only if the keyed "
        "subscriber decoded media, the keyless one none, and the relay saw no plaintext frame.",
    )
    demo.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds of media (default 10)")
    demo.add_argument("--json", metavar="FILE", help="write the summary as JSON to FILE ('-' for stdout)")
    demo.add_argument("--secret-file", metavar="PATH", help="read the E2EE secret from PATH")
    demo.add_argument(
        "--no-isolate", action="store_true", help="do not create a private network namespace (not recommended)"
    )
    demo.add_argument("--quiet", action="store_true", help="no live progress or table")
    demo.add_argument("-v", "--verbose", action="store_true", help="log debug information")
    return parser
