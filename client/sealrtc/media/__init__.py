"""Media sources, clips and recording for agents (av + numpy; no signaling)."""

from .clips import Clip, ClipFrame, cache_dir_problem, default_cache_dir, load_clip
from .errors import MediaError
from .recorder import TrackRecorder
from .shape import MediaShape, ShapeError
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
    "default_cache_dir",
    "load_clip",
    "pattern_image",
    "synthetic_tracks",
    "tracks_for_clip",
]
