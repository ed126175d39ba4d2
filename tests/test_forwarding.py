"""The relay's forwarding track is bounded: a slow consumer loses backlog, memory stays flat."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest

from sealrtc.rtc.frames import EncodedFrame
from sealrtc.rtc.keyframes import forward_keyframe_request
from sealrtc.rtc.passthrough import ForwardingTrack

pytestmark = pytest.mark.unit


def frame(i: int) -> EncodedFrame:
    return EncodedFrame(bytes([i % 256]) * 10, i * 3000, "video/VP8", 90_000, keyframe=i == 0)


async def test_slow_consumer_loses_oldest_frames() -> None:
    track = ForwardingTrack("video", maxsize=16)
    for i in range(200):
        track.feed(frame(i))
    assert track.frames_in == 200 and track.frames_dropped == 184
    first = await track.recv()
    assert first.timestamp == 184 * 3000  # the newest 16 frames survive, in order
    assert first.time_base == Fraction(1, 90_000) and bytes(first) == first.data


async def test_keyframe_requests_upstream_are_throttled() -> None:
    calls: list[int] = []
    track = ForwardingTrack("video", on_keyframe_request=lambda: calls.append(1), keyframe_interval=3600)
    for _ in range(50):
        track.request_keyframe()
    assert calls == [1]


def test_keyframe_requests_reach_a_source_that_can_make_key_frames() -> None:
    """One rule for sessions and forwarders: a sender's track with ``request_keyframe()`` gets
    the PLI/FIR; other tracks (and no track) are left alone."""
    calls: list[int] = []
    track = ForwardingTrack("video", on_keyframe_request=lambda: calls.append(1), keyframe_interval=0)
    forward_keyframe_request(SimpleNamespace(track=track))  # type: ignore[arg-type]
    forward_keyframe_request(SimpleNamespace(track=track))  # type: ignore[arg-type]
    assert calls == [1, 1]
    forward_keyframe_request(SimpleNamespace(track=None))  # type: ignore[arg-type]
    forward_keyframe_request(SimpleNamespace(track=SimpleNamespace(request_keyframe="not callable")))  # type: ignore[arg-type]
    assert calls == [1, 1]
