"""What every command shares: exit statuses, one-line errors, secrets, output targets, the run loop."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import signal
import stat
import sys
import time
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..text import clean


class ExitStatus(IntEnum):
    """Documented exit codes (README "Exit codes")."""

    OK = 0
    FAILURE = 1
    """The run failed: nothing decrypted/decoded, the server was lost, a bad target..."""
    USAGE = 2
    """Refused before the run: a bad option or value, a missing or unreadable secret, a report
    path that cannot be written (a directory, a missing directory)."""
    SECRET_MISMATCH = 3
    """Frames arrived but none decrypted, for key reasons (unknown key / bad tag)."""
    SATURATED = 4
    """``load``: the generator saturated, so its numbers cannot be trusted (whatever they say)."""
    INTERRUPTED = 130


class CliError(Exception):
    """A one-line error for the user (never contains a secret)."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.FAILURE) -> None:
        super().__init__(message)
        self.status = status


def _positive(text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number {unit}: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number {unit}, got {text!r}")
    return value


def positive_rate(text: str) -> float:
    """argparse type: a finite rate > 0 (joins per second)."""
    return _positive(text, "per second")


def port_number(text: str) -> int:
    """argparse type: a TCP port 1..65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {text!r}")
    return int(text)


def check_url(url: str | None, flag: str, schemes: tuple[str, ...]) -> None:
    """Refuse, before the run, a URL of the wrong kind or with credentials in it (a usage error).

    A ``user:pass@`` in the URL would be copied wherever the URL goes (reports, logs, errors):
    it is refused, and the error shows the URL without it."""
    if url is None:
        return
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if sep and "@" in authority:
        shown = f"{scheme}://{rest[rest.index('@') + 1 :]}"
        raise CliError(
            f"{flag} {clean(shown)}: the URL holds a user name or password (user:pass@): remove it; a server that "
            "wants credentials takes a bearer token with --token-file",
            ExitStatus.USAGE,
        )
    if not url.lower().startswith(tuple(f"{s}://" for s in schemes)):
        raise CliError(f"{flag} {url}: must start with {' or '.join(f'{s}://' for s in schemes)}", ExitStatus.USAGE)


def check_target(args: argparse.Namespace, url: str | None, flag: str, protocol: str) -> None:
    """The checks publish and subscribe share before a run: the outputs, the URL kinds, and
    ``--room`` exactly when ``--janus`` is given."""
    check_json_target(args.json)
    check_url(url, flag, ("http", "https"))
    check_url(args.janus, "--janus", ("ws", "wss"))
    if args.janus and args.room is None:
        raise CliError("--janus needs --room ROOM (a VideoRoom id)", ExitStatus.USAGE)
    if args.room is not None and not args.janus:
        raise CliError(f"--room only applies with --janus (with {protocol} the room is in the URL)", ExitStatus.USAGE)


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (``nan``, ``inf``, ``0`` refused)."""
    return _positive(text, "of seconds")


def read_secret(args: argparse.Namespace, *, required: bool) -> str | None:
    """The secret from ``--secret-file`` or ``SEALRTC_SECRET``; errors never show its bytes.

    Every refusal here (no secret, an unreadable or blank file, bytes that are not UTF-8) is a
    usage error: it is decided before the run, like a bad flag."""
    path = getattr(args, "secret_file", None)
    if path:
        try:
            raw = Path(path).read_bytes()
            mode = Path(path).stat().st_mode
        except OSError as exc:
            # The path is not repeated: a secret typed where the path belongs must not be echoed.
            raise CliError(
                f"cannot read --secret-file: {exc.strerror} (the path is not shown, in case it is a secret given "
                "by mistake)",
                ExitStatus.USAGE,
            ) from None
        warn_if_shared(mode, "--secret-file", path)
        secret = _decode_secret(raw.splitlines()[0] if raw.splitlines() else b"", f"--secret-file {path}")
        if not secret.strip():
            raise CliError(f"--secret-file {path} holds no secret on its first line", ExitStatus.USAGE)
        if secret != secret.strip():
            warn(f"the secret in --secret-file {path} starts or ends with whitespace, which is part of the secret")
        return secret
    raw_env = os.environb.get(b"SEALRTC_SECRET") if os.name == "posix" else None
    from_env = _decode_secret(raw_env, "SEALRTC_SECRET") if raw_env is not None else os.environ.get("SEALRTC_SECRET")
    if from_env is not None and from_env.strip():
        return from_env
    if from_env is not None and from_env != "":
        raise CliError("SEALRTC_SECRET holds only whitespace: set a real secret", ExitStatus.USAGE)
    if required:
        plain = " (or --no-e2ee for a plain run)" if hasattr(args, "no_e2ee") else ""
        raise CliError(f"no E2EE secret: set SEALRTC_SECRET or pass --secret-file{plain}", ExitStatus.USAGE)
    return None


def _decode_secret(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{where} is not valid UTF-8 text: save the secret as UTF-8", ExitStatus.USAGE) from None


def warn_if_shared(mode: int, flag: str, path: str) -> None:
    """A file of secrets (E2EE secret, bearer token) that other users can read deserves a warning."""
    if stat.S_ISREG(mode) and mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"{flag} {path} is readable by other users: chmod 600 {path}")


def read_token(args: argparse.Namespace) -> str | None:
    """A WHIP/WHEP bearer token from ``--token-file`` or ``SEALRTC_TOKEN`` (None: send none);
    a token file other users can read gets the secret file's warning."""
    path = getattr(args, "token_file", None)
    if path:
        try:
            lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
            mode = Path(path).stat().st_mode
        except OSError as exc:
            raise CliError(f"cannot read --token-file {path}: {exc.strerror}", ExitStatus.USAGE) from None
        except UnicodeDecodeError:
            raise CliError(f"--token-file {path} is not UTF-8 text", ExitStatus.USAGE) from None
        warn_if_shared(mode, "--token-file", path)
        token = next((line for line in lines if line and not line.startswith("#")), "")
        if not token:
            raise CliError(f"--token-file {path} holds no token", ExitStatus.USAGE)
        return token
    value = os.environ.get("SEALRTC_TOKEN", "").strip()
    return value or None


def warn(text: str) -> None:
    print(f"sealrtc: warning: {clean(text)}", file=sys.stderr, flush=True)


def check_json_target(target: str | None) -> None:
    """Refuse, before the run, a ``--json`` path that could not be written at the end."""
    if not target or target == "-":
        return
    path = Path(target)
    if path.is_dir():
        raise CliError(f"--json {target} is a directory: give a file name", ExitStatus.USAGE)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"--json {target}: directory {parent} does not exist", ExitStatus.USAGE)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"--json {target}: not writable", ExitStatus.USAGE)
    _try_open(path, target)


def _try_open(path: Path, target: str) -> None:
    """Open a regular (or missing) file for appending, as the end of the run will: ``os.access``
    says yes to root for places where writing still fails (``/sys``, read-only file systems).
    A file created by the probe is removed again; FIFOs and devices are left alone (opening
    one could block)."""
    existed = path.exists()
    if existed and not path.is_file():
        return
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise CliError(f"--json {target}: not writable ({exc.strerror})", ExitStatus.USAGE) from None
    if not existed:
        path.unlink(missing_ok=True)


def check_record_dir(target: str | None) -> Path | None:
    """Create (or check) the ``--record`` directory before the run."""
    if not target:
        return None
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise CliError(f"--record {target}: is a file; give a directory (created if missing)", ExitStatus.USAGE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--record {target}: cannot create the directory: {exc.strerror}", ExitStatus.USAGE) from None
    if not os.access(path, os.W_OK):
        raise CliError(f"--record {target}: not writable", ExitStatus.USAGE)
    return path


def write_json(target: str | None, data: dict[str, Any]) -> None:
    if not target:
        return
    text = json.dumps(data, indent=2, default=str)
    if target == "-":
        print(text, flush=True)
        return
    try:
        Path(target).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write --json {target}: {exc.strerror}") from None


def random_demo_secret() -> str:
    return secrets.token_urlsafe(24)


class RunLoop:
    """Runs for ``duration`` seconds, ticking once a second; stops early on failure or signal.

    SIGINT/SIGTERM end the run the same way as its end would (results are kept and written);
    :attr:`interrupted` says it happened, so the command exits 130 after reporting.
    """

    def __init__(self, duration: float | None, failed: asyncio.Event | None = None) -> None:
        self.duration = duration
        self.failed = failed
        self.interrupted = False
        self.started = time.monotonic()
        self._stop = asyncio.Event()

    def _interrupt(self) -> None:
        self.interrupted = True
        self._stop.set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def run(self, tick: Callable[[float], None] | None = None, interval: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._interrupt)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        failed = self.failed
        try:
            while not self._stop.is_set() and not (failed is not None and failed.is_set()):
                remaining = None if self.duration is None else self.duration - self.elapsed
                if remaining is not None and remaining <= 0:
                    break
                waits = [asyncio.ensure_future(self._stop.wait())]
                if failed is not None:
                    waits.append(asyncio.ensure_future(failed.wait()))
                timeout = interval if remaining is None else min(interval, remaining)
                _, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if tick is not None:
                    tick(self.elapsed)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
