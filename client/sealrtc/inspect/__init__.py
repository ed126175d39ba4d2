"""What a server stored: Janus ``.mjr`` recordings read back and judged frame by frame.

``sealrtc inspect`` is the shell; this package is the engine, pure apart from the keyless
decoders (PyAV): bytes in, a :class:`RecordingReport` out. Memory stays bounded by the file: the
buffer may be a read-only ``mmap``, packets are reordered in a fixed window, and one frame is
reassembled at a time.
"""

from .frames import FrameAssembler, RecordedFrame, SequenceOrder
from .inspector import RecordedTrack, UnsupportedRecording, inspect_recording
from .judge import MAX_CTR_STEP, MIN_RUN, SHORTEST_TAG, FrameJudge, Label, v1_header
from .mjr import MjrHeader, NotARecording, read_header
from .report import KidSummary, RecordingReport
from .rtp import RtpPacket, Vp8Descriptor, parse_rtp, parse_vp8_descriptor

__all__ = [
    "MAX_CTR_STEP",
    "MIN_RUN",
    "SHORTEST_TAG",
    "FrameAssembler",
    "FrameJudge",
    "KidSummary",
    "Label",
    "MjrHeader",
    "NotARecording",
    "RecordedFrame",
    "RecordedTrack",
    "RecordingReport",
    "RtpPacket",
    "SequenceOrder",
    "UnsupportedRecording",
    "Vp8Descriptor",
    "inspect_recording",
    "parse_rtp",
    "parse_vp8_descriptor",
    "read_header",
    "v1_header",
]
