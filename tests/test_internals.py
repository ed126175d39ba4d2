"""The VP8 (de)packetization around the frame transform round-trips aiortc's own payloads."""

from __future__ import annotations

import os

from aiortc.codecs import vpx
from hypothesis import given
from hypothesis import strategies as st

from sealrtc.rtc import internals


@given(size=st.integers(min_value=1, max_value=5000), picture_id=st.integers(min_value=0, max_value=(1 << 15) - 1))
def test_vp8_round_trip(size: int, picture_id: int) -> None:
    frame = os.urandom(size)
    payloads = vpx.Vp8Encoder._packetize(frame, picture_id)
    assert internals.vp8_depacketize(payloads) == (frame, picture_id)
    assert internals.vp8_packetize(frame, picture_id) == payloads


def test_vp8_depacketize_other_descriptors() -> None:
    """Short picture ids and no extension: the slow, general path."""
    frame = b"\x10\x02\x00\x9d\x01\x2a" + bytes(50)
    short_pid = bytes([0x90, 0x80, 0x05]) + frame[:30]
    no_ext = bytes([0x00]) + frame[30:]
    assert internals.vp8_depacketize([short_pid, no_ext]) == (frame, 5)
