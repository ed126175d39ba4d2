"""Media sources and measurements for agents and tests (av + numpy; no signaling)."""

from .analysis import dominant_frequency, psnr
from .sources import PreEncodedVideoTrack, TestPatternVideoTrack, ToneAudioTrack, pattern_image

__all__ = [
    "PreEncodedVideoTrack",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "dominant_frequency",
    "pattern_image",
    "psnr",
]
