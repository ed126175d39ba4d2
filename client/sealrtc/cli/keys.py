"""``sealrtc keys export``: hand a joiner an epoch file instead of the secret; and reading one.

An epoch file (keying v2, :meth:`sealrtc.epochs.EpochKeys.export_epoch` as JSON) lets its holder
read that epoch and every later one, never an earlier one. It is a secret: it is never printed
except by ``export`` itself (to stdout, for a redirect), and one that other users can read gets
the secret file's warning.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CliError, ExitStatus, read_secret, warn, warn_if_shared

if TYPE_CHECKING:
    from ..epochs import EpochKeys

MAX_EPOCH = 1 << 24
"""Far beyond any run (one step a second for half a year); bounds the derivation loop."""


def run_keys(args: argparse.Namespace) -> int:
    """``keys export``: the epoch file of ``--epoch N`` on stdout (the secret from the usual places)."""
    from ..epochs import EpochKeys

    if not 0 <= args.epoch <= MAX_EPOCH:
        raise CliError(f"--epoch must be 0..{MAX_EPOCH}", ExitStatus.USAGE)
    secret = read_secret(args, required=True)
    assert secret is not None
    kwargs: dict[str, Any] = {"context": args.context.encode(), "epoch": args.epoch}
    if args.suite is not None:
        kwargs["suite"] = args.suite
    keys = EpochKeys.from_secret(secret, **kwargs)
    if sys.stdout.isatty():
        warn("the epoch file is a secret: redirect it to a file (sealrtc keys export ... > epoch.json)")
    print(json.dumps(keys.export_epoch()), flush=True)
    return ExitStatus.OK


def read_epoch_file(path: str, *, suite: int | None = None) -> EpochKeys:
    """An :class:`~sealrtc.epochs.EpochKeys` from ``--epoch-file``.

    Every refusal is a usage error (decided before the run, like ``--secret-file``'s), and none
    shows the file's content or its path: a secret typed where the path belongs must not be
    echoed, any more than the key inside the file."""
    from ..epochs import EpochKeys
    from ..errors import InvalidSecret

    hidden = "(the path is not shown, in case it is a secret given by mistake)"
    try:
        raw = Path(path).read_bytes()
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise CliError(f"cannot read --epoch-file: {exc.strerror} {hidden}", ExitStatus.USAGE) from None
    warn_if_shared(mode, "--epoch-file", path)
    data: object = None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None  # the parser's message may quote the key: replaced below, never chained
    if not isinstance(data, dict):
        raise CliError("--epoch-file is not an epoch file (JSON from sealrtc keys export)", ExitStatus.USAGE)
    try:
        keys = EpochKeys.from_export(data)
    except InvalidSecret as exc:
        raise CliError(f"--epoch-file: {exc}", ExitStatus.USAGE) from None
    if suite is not None and suite != keys.suite:
        raise CliError(f"--suite {suite} differs from the epoch file's suite {int(keys.suite)}", ExitStatus.USAGE)
    return keys


def epoch_keys_from_secret(args: argparse.Namespace) -> EpochKeys:
    """``--keying 2``: epochs ratcheted from the secret (from the usual places), from epoch 0."""
    from ..epochs import EpochKeys

    secret = read_secret(args, required=True)
    assert secret is not None
    kwargs: dict[str, Any] = {"context": args.context.encode()}
    if getattr(args, "suite", None) is not None:
        kwargs["suite"] = args.suite
    return EpochKeys.from_secret(secret, **kwargs)


def keys_from(args: argparse.Namespace) -> Any:
    """A SharedSecret for the run, keying v2 epochs from ``--epoch-file``, or None with ``--no-e2ee``."""
    from ..keys import SharedSecret

    if getattr(args, "epoch_file", None) or getattr(args, "keying", None) == 2:
        return _epoch_keys_from(args)
    if getattr(args, "no_e2ee", False):
        if getattr(args, "rotate_every", None) is not None:
            raise CliError("--rotate-every needs E2EE", ExitStatus.USAGE)
        return None
    if getattr(args, "ratchet_every", None) is not None:
        raise CliError("--ratchet-every needs keying v2 (--keying 2 or --epoch-file)", ExitStatus.USAGE)
    secret = read_secret(args, required=True)
    assert secret is not None
    kwargs: dict[str, Any] = {"context": args.context.encode()}
    if getattr(args, "suite", None) is not None:
        kwargs["suite"] = args.suite
    return SharedSecret(secret, **kwargs)


def _epoch_keys_from(args: argparse.Namespace) -> Any:
    """Keying v2: from ``--epoch-file`` alone (no secret, no other flag needed), or ratcheted
    from the secret with ``--keying 2``."""
    if getattr(args, "no_e2ee", False):
        raise CliError("--epoch-file/--keying 2 and --no-e2ee exclude each other", ExitStatus.USAGE)
    if getattr(args, "keying", None) == 1:
        raise CliError("an --epoch-file is keying v2: drop --keying 1", ExitStatus.USAGE)
    if getattr(args, "rotate_every", None) is not None:
        raise CliError("--rotate-every changes keying v1's secret: use --ratchet-every with keying v2",
                       ExitStatus.USAGE)  # fmt: skip
    if args.epoch_file:
        return read_epoch_file(args.epoch_file, suite=getattr(args, "suite", None))
    return epoch_keys_from_secret(args)


async def _ratchet(keys: EpochKeys, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        keys.advance()


@contextlib.asynccontextmanager
async def ratcheting(keys: object, every: float | None) -> AsyncIterator[None]:
    """``--ratchet-every S``: advance ``keys`` (keying v2) every S seconds while the block runs."""
    from ..epochs import EpochKeys

    if every is None or not isinstance(keys, EpochKeys):
        yield
        return
    task = asyncio.ensure_future(_ratchet(keys, every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def rotation_sequence(args: argparse.Namespace, first: str) -> list[str] | None:
    """``publish --rotate-every``'s secrets after the first: the secret file's further non-empty
    lines when it has some (the rotation stops after the last), else None (derive them with the
    load runner's rule, :func:`sealrtc.load.keying.rotation_secret`)."""
    path = getattr(args, "secret_file", None)
    if not path:
        return None
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return None  # read_secret already read it: a file gone since then falls back to the rule
    following = []
    for raw in lines[1:]:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CliError(f"--secret-file {path}: a line after the first is not UTF-8 text") from None
        if line.strip():
            following.append(line)
    return following or None


async def _rotate(keys: Any, every: float, first: str, following: list[str] | None) -> None:
    from ..load.keying import rotation_secret

    n = 1
    while following is None or n <= len(following):
        await asyncio.sleep(every)
        secret = rotation_secret(first, n) if following is None else following[n - 1]
        await asyncio.to_thread(keys.add_decryption_secret, secret)  # PBKDF2 off the event loop
        keys.set_secret(secret)
        n += 1


@contextlib.asynccontextmanager
async def rotating(args: argparse.Namespace, keys: object) -> AsyncIterator[None]:
    """``publish --rotate-every S``: switch to the next secret every S seconds while the block runs."""
    from ..keys import SharedSecret

    every = getattr(args, "rotate_every", None)
    if every is None:
        yield
        return
    if not isinstance(keys, SharedSecret):
        raise CliError("--rotate-every changes keying v1's secret: use --ratchet-every with keying v2",
                       ExitStatus.USAGE)  # fmt: skip
    first = read_secret(args, required=True)
    assert first is not None
    task = asyncio.ensure_future(_rotate(keys, every, first, rotation_sequence(args, first)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
