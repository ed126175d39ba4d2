"""The run's media shape as one line, for the HTML header and the terminal summary's title:
``synthetic VP8 640x360 15 fps 600 kbit/s, no audio``.

It reads the scenario as the report keeps it (``media``, ``video_codec``, ``resolution``, ``fps``,
``video_bitrate``, ``audio``, ``video``, ``room_shapes``); a report from before the shape
settings shows its ``media`` alone. A setting left to the source (0 or null) is not written:
the source's own applies. Rooms with their own ``[[room]]`` shape are not spelt out here (the
line would not fit): it says "per room (see scenario)".
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import ScenarioInfo

__all__ = ["media_line"]

SHAPE_KEYS = ("video_codec", "resolution", "fps", "video_bitrate", "audio", "video", "room_shapes")


def media_line(scenario: ScenarioInfo | None, *, unknown: str = "-") -> str:
    """``synthetic VP8 640x360 15 fps 600 kbit/s, no audio``; ``unknown`` for an unknown
    scenario or source."""
    if scenario is None:
        return unknown
    source = scenario.media or unknown
    extra = scenario.extra
    if not any(key in extra for key in SHAPE_KEYS):
        return source
    if extra.get("room_shapes"):
        return " ".join(w for w in (source, _codec(extra), "per room (see scenario)") if w)
    if extra.get("video") is False:
        return f"{source}, audio only"
    words = [source, _codec(extra)]
    resolution, fps, kbps = extra.get("resolution"), extra.get("fps"), extra.get("video_bitrate")
    if isinstance(resolution, str) and resolution:
        words.append(resolution)
    if _positive(fps):
        words.append(f"{fps} fps")
    if _positive(kbps):
        words.append(f"{kbps} kbit/s")
    line = " ".join(w for w in words if w)
    return line + ", no audio" if extra.get("audio") is False else line


def _codec(extra: Mapping[str, object]) -> str:
    codec = extra.get("video_codec")
    return codec.upper() if isinstance(codec, str) else ""


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
