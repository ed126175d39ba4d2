"""The send hook: frames are transformed whole before aiortc packetizes them, never sent when
the transform drops or fails."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs import get_encoder, vpx
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sealrtc.rtc import internals

from .vp8_payloads import vp8_depacketize

pytestmark = pytest.mark.unit


def _hooked_encoder(codec: RTCRtpCodecParameters, hook: internals.FrameHook) -> Encoder:
    """aiortc's encoder for ``codec`` with ``hook`` installed, as the sender hook installs it."""
    return internals.hook_encoder(get_encoder(codec), hook)


def _codec(mime: str, clock_rate: int) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType=mime, clockRate=clock_rate, payloadType=96)


def _packet(data: bytes, clock_rate: int) -> av.Packet:
    packet = av.Packet(data)
    packet.pts, packet.time_base = 0, Fraction(1, clock_rate)
    return packet


def test_vp8_pack_path_transforms_whole_frames_before_packetization() -> None:
    seen: list[bytes] = []

    def hook(frame: bytes) -> bytes:
        seen.append(frame)
        return frame[::-1]

    encoder = _hooked_encoder(_codec("video/VP8", 90_000), hook)
    assert isinstance(encoder, vpx.Vp8Encoder)
    frame = os.urandom(3000)
    picture_id = encoder.picture_id
    payloads, _ = encoder.pack(_packet(frame, 90_000))
    assert seen == [frame]
    assert payloads == vpx.Vp8Encoder._packetize(frame[::-1], picture_id)


def test_vp8_encode_path_transforms_the_encoded_frame() -> None:
    seen: list[bytes] = []
    encoder = _hooked_encoder(_codec("video/VP8", 90_000), lambda f: seen.append(f) or b"\x00" + f)
    image = av.VideoFrame.from_ndarray(np.zeros((96, 128, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    image.pts, image.time_base = 0, Fraction(1, 30)
    payloads, _ = encoder.encode(image, force_keyframe=True)
    assert len(seen) == 1 and seen[0][0] & 0x01 == 0  # one whole key frame
    assert vp8_depacketize(payloads)[0] == b"\x00" + seen[0]


def test_dropped_or_failing_frames_are_never_sent(caplog: pytest.LogCaptureFixture) -> None:
    def boom(frame: bytes) -> bytes:
        raise RuntimeError("broken transform")

    for hook in (lambda frame: None, boom):
        for mime, rate in (("video/VP8", 90_000), ("audio/opus", 48_000), ("video/H264", 90_000)):
            encoder = _hooked_encoder(_codec(mime, rate), hook)
            payloads, _ = encoder.pack(_packet(b"\x00\x00\x00\x01\x65" + os.urandom(100), rate))
            assert payloads == []
    assert "frame dropped" in caplog.text


def test_opus_payloads_and_h264_annex_b() -> None:
    opus = _hooked_encoder(_codec("audio/opus", 48_000), lambda f: f + b"!")
    assert opus.pack(_packet(b"\x78abc", 48_000))[0] == [b"\x78abc!"]
    frames: list[bytes] = []
    h264_frame = b"\x00\x00\x00\x01\x67" + bytes(range(1, 20)) + b"\x00\x00\x00\x01\x65" + os.urandom(2000)
    hooked = _hooked_encoder(_codec("video/H264", 90_000), lambda f: frames.append(f) or f)
    assert hooked.pack(_packet(h264_frame, 90_000))[0] == H264Encoder().pack(_packet(h264_frame, 90_000))[0]
    assert frames == [h264_frame]


def test_only_the_adapter_touches_aiortc_privates() -> None:
    """Every aiortc private sealrtc relies on is reached through rtc/internals.py (checked at import)."""
    import re
    from pathlib import Path

    import sealrtc

    pattern = re.compile(
        r"_RTCRtp|_next_encoded_frame|_send_keyframe|_send_rtcp_pli|_packetize|_split_bitstream|\._codecs\b"
        r"|receiver\._track|__encoder|__decoder_queue"
        r"|from aiortc\.(jitterbuffer|codecs|rtcrtpsender|rtcrtpreceiver|rtp)\b"
    )
    root = Path(sealrtc.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py")
        if path != root / "rtc" / "internals.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
