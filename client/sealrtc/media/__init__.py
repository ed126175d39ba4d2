"""Media sources, clips and recording for agents (av + numpy; no signaling).

Every public name is loaded lazily, on first use (PEP 562), as in :mod:`sealrtc`: the command
line checks its shape flags with :mod:`sealrtc.media.shape` while parsing arguments, and that
must not load PyAV and aiortc (``sealrtc --help`` and a bad value stay fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clips import Clip, ClipFrame, cache_dir_problem, default_cache_dir, load_clip
    from .errors import MediaError
    from .recorder import TrackRecorder
    from .shape import MediaShape, ShapeError, clip_key
    from .sources import (
        PreEncodedAudioTrack,
        PreEncodedVideoTrack,
        TestPatternVideoTrack,
        ToneAudioTrack,
        pattern_image,
        synthetic_tracks,
        tracks_for_clip,
    )

__all__ = [
    "Clip",
    "ClipFrame",
    "MediaError",
    "MediaShape",
    "PreEncodedAudioTrack",
    "PreEncodedVideoTrack",
    "ShapeError",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "TrackRecorder",
    "cache_dir_problem",
    "clip_key",
    "default_cache_dir",
    "load_clip",
    "pattern_image",
    "synthetic_tracks",
    "tracks_for_clip",
]

_LAZY: dict[str, str] = {
    **dict.fromkeys(("Clip", "ClipFrame", "cache_dir_problem", "default_cache_dir", "load_clip"), ".clips"),
    "MediaError": ".errors",
    "TrackRecorder": ".recorder",
    **dict.fromkeys(("MediaShape", "ShapeError", "clip_key"), ".shape"),
    **dict.fromkeys(
        (
            "PreEncodedAudioTrack",
            "PreEncodedVideoTrack",
            "TestPatternVideoTrack",
            "ToneAudioTrack",
            "pattern_image",
            "synthetic_tracks",
            "tracks_for_clip",
        ),
        ".sources",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
