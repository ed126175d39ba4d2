"""Media sources and measurements for agents and tests (av + numpy; no signaling)."""

from .analysis import dominant_frequency, psnr
from .sources import PreEncodedVideoTrack, TestPatternVideoTrack, ToneAudioTrack, test_pattern

__all__ = [
    "PreEncodedVideoTrack",
    "TestPatternVideoTrack",
    "ToneAudioTrack",
    "dominant_frequency",
    "psnr",
    "test_pattern",
]
