"""What a publisher sends: video size, frame rate and bitrate, and which kinds (audio, video).

One :class:`MediaShape` says it for the synthetic source (live-encoded: the encoder gets the
bitrate as its target) and for ``--media`` clips (transcoded to it, and cached under it). Every
setting is optional: ``None`` keeps the source's own default (the test pattern's 320x240 at 30
fps and aiortc's bitrate control; a clip's size and rate from its file). The checks are here, once,
for the command line and for scenario files alike; their messages are one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MediaError

MIN_SIDE, MAX_WIDTH, MAX_HEIGHT = 16, 3840, 2160
MIN_FPS, MAX_FPS = 1, 60
MIN_KBPS, MAX_KBPS = 50, 20_000
SYNTHETIC_SIZE = (320, 240)
SYNTHETIC_FPS = 30


class ShapeError(MediaError, ValueError):
    """A shape setting is out of range or malformed (the message names it and its bounds)."""


def parse_resolution(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``: even numbers, W in 16..3840, H in 16..2160."""
    width_text, sep, height_text = text.strip().lower().partition("x")
    if not sep or not width_text.isdigit() or not height_text.isdigit():
        raise ShapeError(f"resolution must be WxH, e.g. 640x360 (got {text!r})")
    width, height = int(width_text), int(height_text)
    if not (MIN_SIDE <= width <= MAX_WIDTH and MIN_SIDE <= height <= MAX_HEIGHT):
        raise ShapeError(f"resolution {width}x{height} is outside {MIN_SIDE}x{MIN_SIDE}..{MAX_WIDTH}x{MAX_HEIGHT}")
    if width % 2 or height % 2:
        raise ShapeError(f"resolution {width}x{height}: width and height must be even (4:2:0 video)")
    return width, height


def check_fps(value: int) -> int:
    if isinstance(value, bool) or not MIN_FPS <= value <= MAX_FPS:
        raise ShapeError(f"fps must be {MIN_FPS}..{MAX_FPS} (got {value!r})")
    return value


def check_kbps(value: int) -> int:
    if isinstance(value, bool) or not MIN_KBPS <= value <= MAX_KBPS:
        raise ShapeError(f"video bitrate must be {MIN_KBPS}..{MAX_KBPS} kbit/s (got {value!r})")
    return value


@dataclass(frozen=True)
class MediaShape:
    """The shape of what one publisher sends (``None``: the source's default)."""

    width: int | None = None
    height: int | None = None
    fps: int | None = None
    video_kbps: int | None = None
    """Video bitrate in kbit/s: the live encoder's fixed target (REMB does not move it), or the
    transcoder's bitrate for a clip."""
    audio: bool = True
    video: bool = True

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ShapeError("give both width and height (a resolution WxH), or neither")
        if self.width is not None and self.height is not None:
            parse_resolution(f"{self.width}x{self.height}")
        if self.fps is not None:
            check_fps(self.fps)
        if self.video_kbps is not None:
            check_kbps(self.video_kbps)
        if not self.audio and not self.video:
            raise ShapeError("no audio and no video leaves nothing to send: drop one of the two")

    @classmethod
    def of(
        cls,
        *,
        resolution: str | None = None,
        fps: int | None = None,
        video_kbps: int | None = None,
        audio: bool = True,
        video: bool = True,
    ) -> MediaShape:
        """From the command line's or a scenario's spelling (``resolution="WxH"``; 0 or None: default)."""
        size = parse_resolution(resolution) if resolution else (None, None)
        return cls(size[0], size[1], fps or None, video_kbps or None, audio, video)

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width is not None else None

    @property
    def video_bps(self) -> int | None:
        return self.video_kbps * 1000 if self.video_kbps is not None else None

    @property
    def transcode_params(self) -> dict[str, int]:
        """The settings a clip is transcoded with beyond the defaults (part of its cache key;
        empty for the default shape, so default clips keep their keys)."""
        out: dict[str, int] = {}
        if self.width is not None and self.height is not None:
            out.update(width=self.width, height=self.height)
        if self.fps is not None:
            out["fps"] = self.fps
        if self.video_kbps is not None:
            out["video_kbps"] = self.video_kbps
        return out

    def describe(self) -> dict[str, object]:
        """For reports: every setting, ``None`` where the source's default applies."""
        return {
            "resolution": self.resolution,
            "fps": self.fps,
            "video_bitrate_kbps": self.video_kbps,
            "audio": self.audio,
            "video": self.video,
        }


def clip_key(shape: MediaShape) -> tuple[tuple[str, int], ...]:
    """Which clip of a file ``shape`` sends: shapes that transcode alike share one (which kinds
    they send does not matter). The one key of the command line's, the runner's and the
    workers' clip tables."""
    return tuple(sorted(shape.transcode_params.items()))


DEFAULT_SHAPE = MediaShape()
