"""Media sources, clips and recording for agents (av + numpy; no signaling)."""

from .clips import Clip, ClipFrame, default_cache_dir, load_clip
from .errors import MediaError
from .recorder import TrackRecorder
from .sources import (
    PreEncodedAudioTrack,
    PreEncodedVideoTrack,
    TestPatternVideoTrack,
    ToneAudioTrack,
    pattern_image,
    tracks_for_clip,
)

__all__ = [
    "Clip",
    "ClipFrame",
    "MediaError",
    "PreEncodedAudioTrack",
    "PreEncodedVideoTrack",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "TrackRecorder",
    "default_cache_dir",
    "load_clip",
    "pattern_image",
    "tracks_for_clip",
]
