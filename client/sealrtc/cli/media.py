"""What publishers send, from the command line: the shape flags, and ``--media`` clips made with
progress shown and a clip cache that is checked before a transcode.

A transcode takes seconds (a minute of HD, tens of seconds): on a terminal a progress bar shows
it, anywhere else one line says it started (a log stays readable). A cache that cannot be used
(a file in its place, no write permission) is said in one line and the run goes on with a
temporary cache that lives as long as the command: one transcode per run (a load run's workers
find the clip there), said once, rather than a log line per process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..media.shape import ShapeError
from ..text import clean
from .common import CliError

if TYPE_CHECKING:  # the rest of the media package loads PyAV and aiortc: not for parsing arguments
    from ..media import Clip, MediaShape

REFRESH = 0.1
"""Seconds between redraws of the progress bar."""


def _checked(check: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type: ``check``'s one-line :class:`ShapeError` becomes argparse's usage error
    (shown without the usage: :data:`SHAPE_OPTIONS`)."""

    def parse(text: str) -> object:
        try:
            return check(text)
        except ShapeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _resolution(text: str) -> str:
    from ..media.shape import parse_resolution

    width, height = parse_resolution(text)
    return f"{width}x{height}"


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ShapeError(f"{what} must be a whole number (got {text!r})") from None


def _fps(text: str) -> int:
    from ..media.shape import check_fps

    return check_fps(_integer(text, "fps"))


def _kbps(text: str) -> int:
    from ..media.shape import check_kbps

    return check_kbps(_integer(text, "video bitrate"))


SHAPE_OPTIONS = ("--video-bitrate", "--resolution", "--fps", "--no-audio", "--no-video")
"""The options of :func:`add_shape_options`: a bad value of one is refused in one line (exit 2),
without the command's usage, which would bury it."""

resolution_type = _checked(_resolution)
fps_type = _checked(_fps)
kbps_type = _checked(_kbps)


def add_shape_options(p: argparse.ArgumentParser, *, media: bool = True) -> None:
    """``--video-bitrate``, ``--resolution``, ``--fps`` and ``--no-audio`` / ``--no-video``
    (never both: exit 2). All default to None: the source's own (or a scenario's) setting."""
    applies = "the test pattern (live-encoded)" + (" and --media transcodes" if media else "")
    p.add_argument(
        "--video-bitrate",
        type=kbps_type,
        metavar="KBPS",
        help=f"video bitrate in kbit/s, 50..20000, for {applies} (default: aiortc's rate control, ~500 for VP8)",
    )
    p.add_argument(
        "--resolution",
        type=resolution_type,
        metavar="WxH",
        help=f"video size, even numbers, e.g. 640x360, for {applies} (default: 320x240"
        + (", a file's own size up to 1280x720)" if media else ")"),
    )
    p.add_argument(
        "--fps",
        type=fps_type,
        metavar="N",
        help=f"video frames per second, 1..60, for {applies} (default 30" + (", a file's own)" if media else ")"),
    )
    kinds = p.add_mutually_exclusive_group()
    kinds.add_argument("--no-audio", action="store_true", help="send video only")
    kinds.add_argument("--no-video", action="store_true", help="send audio only")


def shape_from(args: argparse.Namespace) -> MediaShape:
    """The shape the flags of :func:`add_shape_options` give (already checked by argparse)."""
    from ..media import MediaShape

    return MediaShape.of(
        resolution=args.resolution,
        fps=args.fps,
        video_kbps=args.video_bitrate,
        audio=not args.no_audio,
        video=not args.no_video,
    )


_TEMPORARY: list[tempfile.TemporaryDirectory[str]] = []
"""Stand-in caches of this process: removed when it exits (by their finalizers)."""


def usable_cache_dir(cache_dir: str | None, command: str, stream: TextIO | None = None) -> Path:
    """The clip cache to use: ``cache_dir`` (or the default), or, when it cannot be used, a
    temporary directory that lasts as long as this process (said in one line)."""
    from ..media import cache_dir_problem, default_cache_dir

    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    problem = cache_dir_problem(directory)
    if problem is None:
        return directory
    name = "--cache-dir" if cache_dir else "the clip cache"
    print(
        f"sealrtc {command}: {name} {clean(directory)} cannot be used ({clean(problem)}): clips are made in a "
        "temporary directory for this run only",
        file=stream or sys.stderr,
        flush=True,
    )
    temporary = tempfile.TemporaryDirectory(prefix="sealrtc-clips-")
    _TEMPORARY.append(temporary)
    return Path(temporary.name)


async def prepare_clips(
    media: str, shapes: Iterable[MediaShape], *, cache_dir: str | None, video_codec: str, command: str
) -> str:
    """Make (or find) the clip of ``media`` for each distinct transcode of ``shapes``, progress
    shown, before a load run's workers look for them; returns the cache directory they use."""
    from ..media import MediaError, clip_key

    directory = usable_cache_dir(cache_dir, command)
    distinct = {clip_key(shape): shape for shape in shapes}
    try:
        for shape in distinct.values():
            await load_media(media, cache_dir=directory, video_codec=video_codec, shape=shape, command=command)
    except MediaError as exc:
        raise CliError(f"--media {media}: {exc}") from None
    return str(directory)


class _Shown:
    """How a transcode is shown: a rich progress bar on a terminal, else one line."""

    def __init__(self, command: str, what: str, *, live: bool, stream: TextIO) -> None:
        self.command, self.what, self.live, self.stream = command, what, live, stream
        self._bar: object | None = None
        self._task: object | None = None
        self._started = False

    def update(self, share: float) -> None:
        if not self._started:
            self._started = True
            if not self.live:
                print(f"sealrtc {self.command}: transcoding {self.what} (once: the clip is cached)",
                      file=self.stream, flush=True)  # fmt: skip
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn("transcoding {task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            bar.start()
            self._bar, self._task = bar, bar.add_task(self.what, total=1.0)
        if self._bar is not None:
            self._bar.update(self._task, completed=share)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()  # type: ignore[attr-defined]


async def load_media(
    path: str,
    *,
    cache_dir: Path,
    video_codec: str,
    shape: MediaShape,
    command: str,
    stream: TextIO | None = None,
) -> Clip:
    """:func:`~sealrtc.media.load_clip` in a thread, its progress shown (nothing on a cache hit)."""
    from ..media import load_clip

    out = stream or sys.stderr
    what = clean(Path(path).name) + _shape_words(video_codec, shape)
    shown = _Shown(command, what, live=out.isatty(), stream=out)
    share: list[float] = []
    job = asyncio.ensure_future(
        asyncio.to_thread(
            load_clip, path, cache_dir=cache_dir, video_codec=video_codec, shape=shape, progress=share.append
        )
    )
    try:
        while not job.done():
            await asyncio.wait({job}, timeout=REFRESH)  # the progress bar's redraw cadence
            if share:
                shown.update(share[-1])
    finally:
        shown.close()
    return job.result()


def _shape_words(video_codec: str, shape: MediaShape) -> str:
    words = [video_codec.upper()]
    if shape.resolution:
        words.append(shape.resolution)
    if shape.fps:
        words.append(f"{shape.fps} fps")
    if shape.video_kbps:
        words.append(f"{shape.video_kbps} kbit/s")
    return f" to {' '.join(words)}"
