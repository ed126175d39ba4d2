"""Media sources and measurements for agents and tests (av + numpy; no signaling)."""

from .analysis import dominant_frequency, psnr
from .errors import MediaError
from .recorder import TrackRecorder
from .sources import PreEncodedVideoTrack, TestPatternVideoTrack, ToneAudioTrack, pattern_image

__all__ = [
    "MediaError",
    "PreEncodedVideoTrack",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "TrackRecorder",
    "dominant_frequency",
    "pattern_image",
    "psnr",
]
