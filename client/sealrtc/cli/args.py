"""Argument parsing for ``sealrtc`` (alone in its module, as httpie does)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from .common import port_number, positive_rate, positive_seconds
from .media import SHAPE_OPTIONS, add_shape_options

SECRET_HELP = (
    "The E2EE secret is read from --secret-file or, without it, from the SEALRTC_SECRET environment "
    "variable, never from the command line, and is never printed."
)
VERBOSE_HELP = "-v: sealrtc's debug log; -vv: also aiortc's and aioice's (never secrets)"
AGENT_VERBOSE_HELP = "-v: a stats line every second and sealrtc's debug log; -vv: also aiortc's and aioice's"
SECRET_FILE_HELP = "read the E2EE secret from PATH (its first line); wins over $SEALRTC_SECRET"
EXIT_CODES = (
    "exit codes: 0 success; 1 the run failed (nothing decrypted/decoded, server lost, bad target...); "
    "2 usage error (also: no secret, a --json path that cannot be written); "
    "3 secret mismatch (frames arrived, none decrypted for key reasons); "
    "130 interrupted (the report is written first)"
)
TOP_EPILOG = EXIT_CODES + "; load and report merge also: 4 the load generator saturated"


VIDEO_CODECS = ("vp8", "h264")
VIDEO_CODEC_HELP = "video codec to send: vp8 or h264 (constrained baseline, packetization-mode 1); default vp8"


def _option_name(token: str) -> str:
    """``--secret=VALUE`` -> ``--secret``; ``-sVALUE`` -> ``-s``: never show a value."""
    if token.startswith("--"):
        return token.split("=", 1)[0]
    return token[:2]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that never echoes unrecognised values (one might be a secret), that
    reports a mistyped option as such (not as a missing required one), and that refuses a bad
    shape value in one line."""

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            options = [_option_name(t) for t in message[len(prefix) :].split() if t.startswith("-")]
            message = prefix + (" ".join(options) if options else "(values not shown)")
        if message.startswith(tuple(f"argument {option}:" for option in SHAPE_OPTIONS)):
            self.exit(2, f"{self.prog}: error: {message}\n")  # the message says it all: no usage
        super().error(message)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        tokens = list(sys.argv[1:] if args is None else args)
        self._check_unknown_options(tokens)
        return super().parse_args(tokens, namespace)

    def _own_options(self) -> set[str]:
        return {o for action in self._actions for o in action.option_strings}

    def _subcommands(self) -> list[str]:
        return [name for a in self._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices]

    def _subcommand(self, token: str) -> _Parser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action.choices.get(token)
                return sub if isinstance(sub, _Parser) else None
        return None

    def _check_unknown_options(self, tokens: list[str]) -> None:
        """Refuse an unknown option before argparse reads its value (which may be a secret),
        naming the subcommand whose options were expected and showing that subcommand's usage."""
        parser, known = self, self._own_options()
        for token in tokens:
            if token == "--":
                break
            if not token.startswith("-"):
                sub = parser._subcommand(token)
                if sub is not None:
                    parser, known = sub, known | sub._own_options()
                elif parser is self and (commands := self._subcommands()):
                    close = difflib.get_close_matches(token, commands, n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]}?)" if close else f" (commands: {', '.join(commands)})"
                    self.print_usage(sys.stderr)
                    # the word is not repeated: it might be a secret typed in the wrong place
                    self.exit(2, f"{self.prog}: error: unknown command{hint}\n")
                continue
            if token == "-" or _is_number(token):
                continue
            name = _option_name(token)
            if name in known or (not token.startswith("--") and token[:2] in known):
                continue
            hint = _OPTION_HINTS.get((parser.prog, name), "")
            if not hint:  # never steer anyone towards turning E2EE off by a near miss
                candidates = sorted(k for k in known if k.startswith("--") and k != "--no-e2ee")
                close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
                hint = f" (did you mean {close[0]}?)" if close else ""
            parser.print_usage(sys.stderr)
            parser.exit(2, f"{parser.prog}: error: unrecognized arguments: {name}{hint}\n")


_OPTION_HINTS = {
    ("sealrtc load", "--no-decode"): " (load subscribers verify without decoding by default; "
    "--decode-every N makes one in N decode)",
}
"""Options people bring from another subcommand, with what to use instead."""


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


TOKEN_HELP = "WHIP/WHEP bearer token from PATH (first line; default: $SEALRTC_TOKEN if set)"


def _common(p: argparse.ArgumentParser, *, e2ee: bool = True) -> None:
    p.add_argument(
        "--duration", type=positive_seconds, default=10.0, metavar="S", help="run for S seconds, then stop (default 10)"
    )
    p.add_argument(
        "--json", metavar="FILE", help="write a JSON report to FILE ('-' for stdout); checked before the run starts"
    )
    p.add_argument("--quiet", action="store_true", help="no live progress (notices and the verdict are still shown)")
    p.add_argument("-v", "--verbose", action="count", default=0, help=AGENT_VERBOSE_HELP)
    if e2ee:
        p.add_argument("--secret-file", metavar="PATH", help=SECRET_FILE_HELP)
        p.add_argument(
            "--context", default="", help="key-derivation context shared by all participants, e.g. a room id"
        )
        p.add_argument("--no-e2ee", action="store_true", help="run without end-to-end encryption (plain baseline)")


EPOCH_FILE_HELP = (
    "keying v2 from an epoch file (sealrtc keys export): reads that epoch and later ones, no secret needed; "
    "the file is a secret (chmod 600)"
)


def keying_version(text: str) -> int:
    """argparse type: keying ``1``/``v1`` or ``2``/``v2``."""
    value = text.lower().removeprefix("v")
    if value not in ("1", "2"):
        raise argparse.ArgumentTypeError(f"keying must be 1 or 2 (v1 or v2), got {text!r}")
    return int(value)


def _key_change_options(load: argparse.ArgumentParser) -> None:
    """``load``'s key lifecycle: rotation (v1), epochs (v2), churn."""
    load.add_argument(
        "--rotate-every",
        type=positive_seconds,
        metavar="S",
        help="keying v1: every room's secret changes every S seconds (each participant gets the next one "
        "decrypt-only 1 s before the switch)",
    )
    load.add_argument(
        "--keying",
        type=keying_version,
        metavar="{1,2}",
        help="1: a secret (default); 2: key epochs ratcheted from it (joiners get an epoch file, not the secret)",
    )
    load.add_argument(
        "--ratchet-every", type=positive_seconds, metavar="S", help="keying v2: advance every room's epoch every S s"
    )
    load.add_argument(
        "--churn",
        type=positive_rate,
        metavar="R",
        help="R subscribers per second leave and are replaced by new joiners (default 0)",
    )


def _rotation_option(p: argparse.ArgumentParser) -> None:
    """``publish --rotate-every``: keying v1 rotation by a single bot."""
    p.add_argument(
        "--rotate-every",
        type=positive_seconds,
        metavar="S",
        help="keying v1: switch to the next secret every S seconds: the --secret-file's next lines (the rotation "
        "stops after the last), else secrets derived from the first as sealrtc load does",
    )


def _epoch_options(p: argparse.ArgumentParser) -> None:
    """Key-epoch options publish and subscribe share (keying v2)."""
    p.add_argument("--epoch-file", metavar="PATH", help=EPOCH_FILE_HELP)
    p.add_argument(
        "--keying",
        type=keying_version,
        metavar="{1,2}",
        default=None,
        help="1: the secret's keys (default); 2: key epochs ratcheted from the secret (implied by --epoch-file)",
    )
    p.add_argument(
        "--ratchet-every",
        type=positive_seconds,
        metavar="S",
        help="keying v2: advance to the next key epoch every S seconds (receivers follow by themselves)",
    )


def _keys_command(sub: Any) -> None:
    keys = sub.add_parser(
        "keys",
        help="key epochs (keying v2): export an epoch file for a joiner",
        description="sealrtc keys export --epoch N > epoch.json: the keying v2 epoch N of the secret, as a file "
        "a joiner uses with --epoch-file instead of the secret (it reads epoch N and later, never earlier). "
        + SECRET_HELP,
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION", parser_class=_Parser)
    export = keys_sub.add_parser(
        "export",
        help="print the epoch file of --epoch N (a secret: redirect it to a file)",
        allow_abbrev=False,
        description='Prints {"v": 2, "suite", "fp2", "epoch", "key"} as JSON on stdout. ' + SECRET_HELP,
        epilog="exit codes: 0 printed; 2 usage (also: no secret, a bad secret file)",
    )
    export.add_argument("--epoch", type=int, required=True, metavar="N", help="the first epoch the joiner reads")
    export.add_argument("--suite", type=_suite, metavar="N", help="SFrame cipher suite 1..8 (default 6)")
    export.add_argument(
        "--context", default="", help="key-derivation context shared by all participants, e.g. a room id"
    )
    export.add_argument("--secret-file", metavar="PATH", help=SECRET_FILE_HELP)
    export.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)


def _suite(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a cipher suite number: {text!r}") from None
    if not 1 <= value <= 8:
        raise argparse.ArgumentTypeError("cipher suite must be 1..8 (RFC 9605 0x0001-0x0005, sealrtc 0x0006-0x0008)")
    return value


def _impairment(text: str) -> Any:
    from ..impairment import ImpairmentError, parse_impairment

    try:
        return parse_impairment(text)
    except ImpairmentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


IMPAIR_SPEC = "a profile (good, wifi, 4g, 3g, lossy, satellite) and/or settings, e.g. 'loss=5%%,burst=4,delay=100ms'"


def _impair_options(p: argparse.ArgumentParser) -> None:
    """The in-process link impairment of an agent's peer connections (no root, no netem)."""
    p.add_argument("--impair", type=_impairment, metavar="SPEC", help="impair both directions: " + IMPAIR_SPEC)
    p.add_argument(
        "--impair-up", type=_impairment, metavar="SPEC", help="impair what this agent sends (wins over --impair)"
    )
    p.add_argument(
        "--impair-down", type=_impairment, metavar="SPEC", help="impair what this agent receives (wins over --impair)"
    )
    p.add_argument(
        "--impair-seed", type=int, default=0, metavar="N", help="seed of the impairment's randomness (default 0)"
    )


def _recover_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--recover-within",
        type=positive_seconds,
        default=30.0,
        metavar="S",
        help="when the server or the media path is lost, reconnect (capped exponential backoff with jitter) for "
        "up to S seconds before the run fails (default 30)",
    )


def _compare_command(report_sub: Any) -> None:
    """``sealrtc report compare BASE.json NEW.json``."""
    compare = report_sub.add_parser(
        "compare",
        help="two load reports side by side, with regression thresholds (--fail-if)",
        allow_abbrev=False,
        description="Compare two --json reports of sealrtc load (or report merge) metric by metric: BASE, NEW, "
        "the change and the change in percent of BASE. Typical use: the same scenario once with --no-e2ee (BASE) "
        "and once with E2EE (NEW) shows what E2EE costs on your SFU. The table's first column names each metric "
        "as --fail-if takes it.",
        epilog="exit codes: 0 no threshold tripped; 1 a --fail-if tripped (or names a value a report lacks); "
        "2 usage, a bad --fail-if, or a file that is not a valid report (refused in one line)",
    )
    compare.add_argument("base", metavar="BASE.json", help="the baseline report (e.g. the --no-e2ee run)")
    compare.add_argument("new", metavar="NEW.json", help="the report compared with it")
    compare.add_argument(
        "--fail-if",
        dest="fail_if",
        action="append",
        metavar="EXPR",
        help="exit 1 when EXPR holds; repeatable. 'METRIC OP LIMIT' with OP < <= > >=; LIMIT +10%% or -5%%: the "
        "change relative to BASE; +5 or -5: the change in the metric's unit; 200: NEW's own value. "
        "E.g. 'p95(latency_video_ms) > +10%%', 'fps < -2', 'cpu_percent > 80'",
    )
    compare.add_argument(
        "--json", metavar="FILE", help="the comparison as JSON ('-' for stdout; the table goes to stderr)"
    )
    compare.add_argument(
        "--html", metavar="FILE", help="the comparison as one self-contained HTML page ('-' for stdout)"
    )
    compare.add_argument("--quiet", action="store_true", help="print only tripped thresholds and the verdict")
    compare.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)


def _load_fault_options(load: argparse.ArgumentParser) -> None:
    """``load``'s recovery (and, later, its faults and impaired shares)."""
    load.add_argument(
        "--recover-within",
        type=positive_seconds,
        metavar="S",
        help="participants who lose the server or their media path reconnect (capped exponential backoff with "
        "jitter) for up to S seconds before they count as failed (default 30)",
    )
    load.add_argument(
        "--fault",
        action="append",
        metavar="SPEC",
        help="cause a fault during the run (repeatable): 'relay-restart@10s' stops the embedded relay 10 s after "
        "the start and starts it again on the same address; 'relay-pause@10s+3s' freezes it for 3 s "
        "(SIGSTOP/SIGCONT). The report's faults section says who lost media and how fast they recovered",
    )
    # The specs stay text (checked here): the scenario keeps them as written, the report names
    # its link profiles after them, and the workers parse them again.
    load.add_argument("--impair", type=_impairment_text, metavar="SPEC", help="impair every participant's link "
                      "both ways (a scenario's impair shares aside): " + IMPAIR_SPEC)  # fmt: skip
    load.add_argument("--impair-up", type=_impairment_text, metavar="SPEC",
                      help="impair what every participant sends (wins over --impair)")  # fmt: skip
    load.add_argument("--impair-down", type=_impairment_text, metavar="SPEC",
                      help="impair what every participant receives (wins over --impair)")  # fmt: skip
    load.add_argument("--impair-seed", type=int, metavar="N",
                      help="seed of the impairments' randomness, each participant's from it (default 0)")  # fmt: skip


def _impairment_text(text: str) -> str:
    _impairment(text)
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    # No prefix abbreviations: "--secret VALUE" must never be taken for "--secret-file VALUE".
    parser = _Parser(
        prog="sealrtc",
        allow_abbrev=False,
        description="End-to-end encrypted WebRTC agents (SFrame, RFC 9605) on aiortc. " + SECRET_HELP,
        epilog=TOP_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"sealrtc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    sub_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("epilog", EXIT_CODES)
        parser: argparse.ArgumentParser = sub_add(name, allow_abbrev=False, **kwargs)
        return parser

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]

    relay = sub.add_parser(
        "relay",
        help="run the embedded WHIP/WHEP relay (forwards ciphertext, holds no keys)",
        description="A small SFU for tests: WHIP publishers (POST /whip/ROOM) and WHEP subscribers (POST "
        "/whep/ROOM) per room; it forwards encoded frames without decrypting or decoding (it never loads key "
        "material), throttles key-frame requests, and drops a slow subscriber's backlog. GET /stats shows totals "
        "and live sessions per room (it needs a token when tokens are configured). On an address other than "
        "loopback it needs --publish-token-file (or $SEALRTC_PUBLISH_TOKEN), or --open to run it open on purpose. "
        "Stops on Ctrl-C/SIGTERM (exit 0) or after --duration.",
        epilog="exit codes: 0 stopped (Ctrl-C, SIGTERM or --duration); 1 cannot listen or bad token file; 2 usage "
        "(also: no tokens on a non-loopback address without --open, a bad --cors-origin)",
    )
    relay.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="HTTP address, e.g. 0.0.0.0:8080 or 10.0.0.5:8080 (default 127.0.0.1:8080)",
    )
    relay.add_argument(
        "--duration",
        type=positive_seconds,
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    relay.add_argument(
        "--publish-token-file",
        metavar="PATH",
        help="require a bearer token to publish: tokens one per line (also $SEALRTC_PUBLISH_TOKEN)",
    )
    relay.add_argument(
        "--subscribe-token-file",
        metavar="PATH",
        help="require a bearer token to subscribe: tokens one per line (also $SEALRTC_SUBSCRIBE_TOKEN)",
    )
    relay.add_argument(
        "--open",
        action="store_true",
        help="allow listening on a non-loopback address without publish tokens: anyone who reaches the relay "
        "can then publish and subscribe",
    )
    relay.add_argument("--max-sessions", type=int, default=256, metavar="N", help="sessions in total (default 256)")
    relay.add_argument(
        "--max-sessions-per-room", type=int, default=128, metavar="N", help="sessions per room (default 128)"
    )
    relay.add_argument(
        "--max-pending-per-client",
        type=int,
        default=32,
        metavar="N",
        help="sessions one client address may have still connecting; more get 429 (default 32; loopback "
        "clients are limited only by --max-sessions)",
    )
    relay.add_argument(
        "--max-connections-per-client",
        type=int,
        default=32,
        metavar="N",
        help="HTTP connections one client address may hold open; more get 429 (default 32; not for loopback)",
    )
    relay.add_argument(
        "--publisher-policy",
        choices=("first", "newest"),
        default="first",
        help="who publishes when a room gets a second publisher: the first (default; later ones get 409 while it "
        "is connected) or the newest connected one (it takes the room over)",
    )
    relay.add_argument(
        "--cors-origin",
        default="*",
        metavar="ORIGIN",
        help="Access-Control-Allow-Origin for browsers: * or scheme://host[:port] (default *)",
    )
    relay.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)

    publish = sub.add_parser(
        "publish",
        help="publish a test pattern (VP8 or H.264) and an Opus tone (or a media file), E2EE on",
        description="Publish over WHIP or into a Janus VideoRoom. " + SECRET_HELP,
        epilog="exit codes: 0 success; 1 the run failed (server refused or lost, nothing sent, bad target...); "
        "2 usage error (also: no secret); 130 interrupted (the report is written first)",
    )
    target = publish.add_mutually_exclusive_group(required=True)
    target.add_argument("--whip", metavar="URL", help="WHIP endpoint, e.g. http://HOST:PORT/whip/ROOM")
    target.add_argument("--janus", metavar="URL", help="Janus WebSocket API, e.g. ws://HOST:8188 (needs --room)")
    publish.add_argument("--room", type=int, metavar="ROOM", help="Janus VideoRoom id (with --janus)")
    publish.add_argument(
        "--media",
        metavar="FILE",
        help="publish this file (anything PyAV opens: mp4, webm, mkv, wav, ogg...): transcoded once to the video "
        "codec (VP8 or H.264) + Opus "
        "into a cache, then sent pre-encoded and looped (default: test pattern + 440 Hz tone)",
    )
    publish.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="clip cache for --media (default $SEALRTC_CACHE_DIR or ~/.cache/sealrtc/clips)",
    )
    publish.add_argument(
        "--probe",
        action="store_true",
        help="append an authenticated probe (sequence + capture time) inside each frame's ciphertext, so sealrtc "
        "subscribers measure latency and loss (browsers would decode the probe: sealrtc receivers only)",
    )
    publish.add_argument("--video-codec", choices=VIDEO_CODECS, default="vp8", help=VIDEO_CODEC_HELP)
    add_shape_options(publish)
    publish.add_argument("--suite", type=_suite, metavar="N", help="SFrame cipher suite 1..8 (default 6)")
    publish.add_argument("--token-file", metavar="PATH", help=TOKEN_HELP)
    _common(publish)
    _epoch_options(publish)
    _rotation_option(publish)
    _impair_options(publish)
    _recover_option(publish)

    subscribe = sub.add_parser(
        "subscribe",
        help="subscribe, decrypt, verify, decode and report",
        description="Subscribe over WHEP or to a Janus VideoRoom, decrypt, check probes, decode (unless "
        "--no-decode) and report latency, loss, freezes, fps and bitrate per track. " + SECRET_HELP,
    )
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
    subscribe.add_argument(
        "--no-decode",
        action="store_true",
        help="verify only: decrypt and check probes without decoding (a load bot's mode, ~3x cheaper)",
    )
    subscribe.add_argument(
        "--record",
        metavar="DIR",
        help="remux each track's decrypted frames, without re-encoding, into DIR "
        "(VP8 -> .webm, H.264 -> .ts, Opus -> .ogg)",
    )
    subscribe.add_argument("--suite", type=_suite, metavar="N", help="SFrame cipher suite 1..8 (default 6)")
    subscribe.add_argument("--token-file", metavar="PATH", help=TOKEN_HELP)
    _common(subscribe)
    _epoch_options(subscribe)
    _impair_options(subscribe)
    _recover_option(subscribe)

    load = sub.add_parser(
        "load",
        help="load simulation with E2EE on: many rooms, a ramp, intruders, percentiles, assertions, reports",
        description="Runs publishers and subscribers (and intruders holding another secret) per room against "
        "the embedded relay in a private network namespace (default), a Janus (--janus) or a WHIP/WHEP server "
        "(--server), measures latency/loss/freezes through authenticated probes, and ends in a verdict. "
        "Flags override the settings of a --scenario file. " + SECRET_HELP + " Without one, a random secret is "
        "used (every participant of the run shares it) — except with --shard, where every shard needs the same "
        "secret.",
        epilog="exit codes: 0 every assertion holds; 1 an assertion failed or the run could not happen; 2 usage "
        "(bad expression or setting, refused before the run); 4 the generator saturated (numbers not "
        "trustworthy); 130 interrupted (reports written first). Every run checks the E2EE defaults "
        "'joined == planned', 'decrypt_failures == 0', 'intruder_decrypts == 0' and, with subscribers, "
        "'frames.decrypted > 0' (--no-default-asserts: not these); --assert and the --scenario file's "
        "assert = [...] add to them.",
    )
    load.add_argument(
        "--scenario",
        metavar="FILE",
        help="TOML or YAML file with the settings below, by name, and its pass criteria as "
        "assert = [EXPR, ...] (flags win; --assert adds to the file's list)",
    )
    load.add_argument("--rooms", type=int, metavar="R", help="rooms (default 1)")
    load.add_argument("--publishers", type=int, metavar="P", help="publishers per room (default 1)")
    load.add_argument(
        "--subscribers",
        type=int,
        metavar="S",
        help="subscribers per room, with the secret (default 2; 0, a publishers-only load, needs --janus or --server)",
    )
    load.add_argument(
        "--intruders", type=int, metavar="K", help="subscribers per room holding another secret (default 0)"
    )
    load.add_argument("--duration", type=positive_seconds, metavar="S", help="seconds from the start (default 30)")
    load.add_argument("--ramp", type=positive_rate, metavar="N", help="joins per second (default 10)")
    load.add_argument(
        "--decode-every",
        type=int,
        metavar="N",
        help="one subscriber in N decodes, the rest verify only (default 0: none)",
    )
    load.add_argument("--media", metavar="FILE", help="publish this media file (default: test pattern + tone)")
    load.add_argument("--cache-dir", metavar="DIR", help="clip cache for --media")
    load.add_argument("--video-codec", choices=VIDEO_CODECS, help=VIDEO_CODEC_HELP)
    add_shape_options(load)
    load.add_argument("--suite", type=_suite, metavar="N", help="SFrame cipher suite 1..8 (default 6)")
    load.add_argument("--no-e2ee", action="store_true", help="plain baseline: the same scenario without E2EE")
    load.add_argument("--no-probe", action="store_true", help="publishers send no probes (no latency/loss)")
    _key_change_options(load)
    _load_fault_options(load)
    target = load.add_mutually_exclusive_group()
    target.add_argument("--janus", metavar="URL", help="Janus WebSocket API, e.g. ws://HOST:8188")
    target.add_argument("--server", metavar="URL", help="WHIP/WHEP base URL: rooms at URL/whip/ROOM, URL/whep/ROOM")
    load.add_argument("--token-file", metavar="PATH", help="with --server: " + TOKEN_HELP)
    load.add_argument(
        "--room",
        action="append",
        metavar="ID",
        help="with --janus or --server: use this existing room (repeat per room; not created/destroyed); "
        "for N new rooms use --rooms N",
    )
    load.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="worker processes (default 'auto': one per available core, cgroup CPU limits included)",
    )
    load.add_argument(
        "--shard",
        metavar="I/N",
        help="run only shard I (0-based) of N of the scenario; 'N' alone takes I from $JOB_COMPLETION_INDEX "
        "(needs --janus or --server, and --run-id)",
    )
    load.add_argument("--run-id", metavar="ID", help="names the run's rooms: every shard of a run derives the same")
    load.add_argument(
        "--start-at", metavar="TIME", help="common start of every shard's ramp: ISO 8601 UTC or Unix seconds"
    )
    load.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="P",
        help="serve Prometheus /metrics on 127.0.0.1:P during the run (this machine only)",
    )
    load.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics on HOST:PORT, e.g. 0.0.0.0:9100 for a scraper on another machine",
    )
    load.add_argument(
        "--assert",
        dest="assertion",
        action="append",
        metavar="EXPR",
        help="e.g. 'p95(latency_video_ms) < 250', 'video_bitrate_kbps > 400', 'availability_percent > 99' "
        "(repeatable; adds to the E2EE defaults)",
    )
    load.add_argument(
        "--no-default-asserts",
        action="store_true",
        help="do not check the E2EE defaults (joined == planned, decrypt_failures == 0, intruder_decrypts == 0, "
        "frames.decrypted > 0): only the assertions asked for",
    )
    load.add_argument("--json", metavar="FILE", help="JSON report ('-' for stdout)")
    load.add_argument("--csv", metavar="FILE", help="one row per second")
    load.add_argument(
        "--csv-participants", metavar="FILE", help="one row per participant, worst first ('-' for stdout)"
    )
    load.add_argument("--html", metavar="FILE", help="one self-contained HTML report with plots")
    load.add_argument("--secret-file", metavar="PATH", help=SECRET_FILE_HELP)
    load.add_argument(
        "--epoch-file",
        metavar="PATH",
        help="keying v2 from an epoch file (sealrtc keys export) instead of the secret: every participant starts "
        "at its epoch, churn joiners get later ones; the file is a secret (chmod 600)",
    )
    load.add_argument("--quiet", action="store_true", help="no live table")
    load.add_argument(
        "--no-isolate", action="store_true", help="embedded relay without a private network namespace (not recommended)"
    )
    load.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)

    report = sub.add_parser(
        "report",
        help="merge shard reports of one load run (exact histogram merge, assertions recomputed); compare two runs",
        description="sealrtc report merge shard-*.json --json all.json --html all.html --assert EXPR",
        epilog="exit codes as in load: 0 pass; 1 an assertion failed or a shard is missing; 2 usage or a refused file; "
        "4 a shard's generator saturated",
    )
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="ACTION", parser_class=_Parser)
    merge = report_sub.add_parser(
        "merge",
        help="merge shard reports",
        allow_abbrev=False,
        description="Merge the --json reports of the shards of one sharded load run (sealrtc load --shard I/N "
        "--run-id ID): histograms merged exactly, counters summed, assertions recomputed.",
        epilog="exit codes: 0 every assertion holds; 1 an assertion failed or a shard is missing; 2 usage or a file "
        "that is not a valid report (refused in one line); 4 a shard's generator saturated",
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="the shards' --json reports")
    merge.add_argument("--json", metavar="FILE", help="merged JSON report ('-' for stdout)")
    merge.add_argument("--csv", metavar="FILE", help="merged intervals, one row per second")
    merge.add_argument("--html", metavar="FILE", help="merged self-contained HTML report")
    merge.add_argument(
        "--csv-participants", metavar="FILE", help="one row per participant, worst first ('-' for stdout)"
    )
    merge.add_argument(
        "--assert",
        dest="assertion",
        action="append",
        metavar="EXPR",
        help="checked in addition to the shards' own assertions (their E2EE defaults included)",
    )
    merge.add_argument("--quiet", action="store_true", help="print only the verdict")
    merge.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    _compare_command(report_sub)

    _keys_command(sub)

    demo = sub.add_parser(
        "demo",
        help="zero-setup demo: relay + publisher + a subscriber with the secret and one without",
        description="Starts the relay on an ephemeral port, one publisher, a subscriber with the secret and one "
        "without, inside a private network namespace, then proves the relay only saw ciphertext. "
        "Uses SEALRTC_SECRET / --secret-file if given, else a random secret. Exit 0 only if the keyed "
        "subscriber decoded media, the keyless one none, and the relay saw no plaintext frame.",
    )
    demo.add_argument(
        "--duration", type=positive_seconds, default=10.0, metavar="S", help="seconds of media (default 10)"
    )
    demo.add_argument("--video-codec", choices=VIDEO_CODECS, default="vp8", help=VIDEO_CODEC_HELP)
    add_shape_options(demo, media=False)
    demo.add_argument("--json", metavar="FILE", help="write the summary as JSON to FILE ('-' for stdout)")
    demo.add_argument("--secret-file", metavar="PATH", help=SECRET_FILE_HELP)
    demo.add_argument(
        "--no-isolate", action="store_true", help="do not create a private network namespace (not recommended)"
    )
    demo.add_argument("--quiet", action="store_true", help="no live progress or table")
    demo.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    _impair_options(demo)

    inspect = sub.add_parser(
        "inspect",
        help="check that Janus recordings (.mjr) hold only ciphertext: what the server stored",
        description="Reads Janus VideoRoom recordings (.mjr, VP8 video and Opus audio) and labels every frame. "
        "'Ciphertext' here means: the frame is SFrame frame format v1 (a plausible clear prefix for its codec, a "
        "valid SFrame header after it, room for the tag) and it belongs to a run of at least 8 such frames, each "
        "with the KID of the one before and a CTR 1 to 16 higher (a sender's CTR goes up by one per frame; "
        "random or plain bytes do not make such runs). 'Plain': not ciphertext, and a decoder without any key "
        "gets media out of it (a VP8 picture, Opus audio). 'Not v1': neither. No key is needed or read. Memory "
        "stays bounded by the file: recordings are memory-mapped.",
        epilog="exit codes: 0 every frame of every file is ciphertext; 1 some frame is plain or not frame format "
        "v1 (wins over 2); 2 a file is unreadable or not a VP8/Opus recording (one line per file; the others "
        "are still read)",
    )
    inspect.add_argument("files", nargs="+", metavar="FILE", help="Janus .mjr recordings")
    inspect.add_argument(
        "--json", metavar="FILE", help="write the report as JSON to FILE ('-' for stdout; the table goes to stderr)"
    )
    inspect.add_argument(
        "--suite",
        type=_suite,
        metavar="N",
        help="the SFrame cipher suite 1..8 the senders used: frames must hold its tag (default: any suite, so the "
        "shortest tag, 4 bytes)",
    )
    inspect.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    return parser
