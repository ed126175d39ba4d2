"""Link impairment on real aiortc peers: what the impaired link does shows in what agents measure.

A publisher (E2EE, probes) sends straight to a verify-only subscriber whose ICE datagrams go
through :func:`sealrtc.rtc.impair.impair`. Every layer above the datagrams (DTLS, SRTP, RTCP,
NACK/RTX, PLI, E2EE) sees the impaired link.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCPeerConnection

import sealrtc
from sealrtc import SharedSecret
from sealrtc.impairment import Impairment
from sealrtc.media import PreEncodedVideoTrack, ToneAudioTrack
from sealrtc.media.sources import encode_vp8_clip
from sealrtc.rtc.impair import LinkImpairment, impair

from .media_helpers import Collector
from .rtc_helpers import connect, new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

CLIP = encode_vp8_clip(90, gop=30)


def recv(session: sealrtc.E2EESession, kind: str) -> dict[str, Any]:
    tracks = [t for t in session.stats()["tracks"] if t["direction"] == "recv" and t["kind"] == kind]
    return tracks[0] if tracks else {"frames_received": 0, "frames_decrypted": 0, "latency_ms": None}


async def pair(
    pcs: list[RTCPeerConnection], keys: SharedSecret, *, up: Impairment | None = None, down: Impairment | None = None
) -> tuple[sealrtc.E2EESession, LinkImpairment, LinkImpairment]:
    """pub -> sub, the publisher's link impaired by ``up``, the subscriber's by ``down``."""
    require_namespace()
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    pub_link = impair(pub, up=up, seed=11)
    sub_link = impair(sub, down=down, seed=12)
    sealrtc.attach(pub, keys, probe=True)
    session = sealrtc.attach(sub, keys, decode=False)
    pub.addTrack(PreEncodedVideoTrack(CLIP))
    pub.addTrack(ToneAudioTrack())
    Collector(sub)  # drains the verify-only tracks
    await connect(pub, sub)
    return session, pub_link, sub_link


async def until(predicate: Callable[[], bool], timeout: float = 30) -> None:
    await eventually(predicate, timeout=timeout, what=f"the condition of line {sys._getframe(1).f_lineno}")


def video_latency_count(session: sealrtc.E2EESession) -> int:
    return int((recv(session, "video")["latency_ms"] or {}).get("count", 0))


async def test_a_delayed_down_link_adds_its_delay_to_video_latency(pcs: list[RTCPeerConnection]) -> None:
    keys = SharedSecret("impaired delay")
    direct, _, _ = await pair(pcs, keys)
    slow, _, slow_link = await pair(pcs, keys, down=Impairment(delay=0.1))
    await until(lambda: video_latency_count(direct) >= 90 and video_latency_count(slow) >= 90)
    base, late = recv(direct, "video")["latency_ms"], recv(slow, "video")["latency_ms"]
    assert 75 <= late["p50"] - base["p50"] <= 125, (base, late)
    counters = slow_link.stats()["down"]
    assert isinstance(counters, dict)
    assert counters["lost"] == 0 and counters["delivered"] == counters["offered"] > 100
    assert counters["mean_delay_ms"] == pytest.approx(100.0, abs=1.0)
    assert slow_link.stats()["up"] == {"impairment": "none", **slow_link.up.counters.as_dict()}
    assert slow_link.up.counters.offered == 0  # the identity is never hooked: nothing counted


async def test_loss_on_the_link_is_repaired_by_nack_through_e2ee(pcs: list[RTCPeerConnection]) -> None:
    keys = SharedSecret("impaired loss")
    session, _, link = await pair(pcs, keys, down=Impairment(loss=0.05))
    await until(lambda: recv(session, "video")["frames_decrypted"] >= 150)
    counters = link.down.counters
    assert 0.02 <= counters.lost / counters.offered <= 0.09, counters
    video = recv(session, "video")
    assert sum(video["decrypt_failures"].values()) == 0  # retransmitted packets carry the same ciphertext
    # Without repair, 5% of packets lost would lose at least 5% of frames (a frame is >= 1 packet).
    assert video["frames_lost"] < 0.05 * (video["frames_decrypted"] + video["frames_lost"]), video


async def test_the_up_link_impairs_what_the_publisher_sends(pcs: list[RTCPeerConnection]) -> None:
    keys = SharedSecret("impaired up")
    session, link, _ = await pair(pcs, keys, up=Impairment(loss=0.2))
    await until(lambda: recv(session, "video")["frames_decrypted"] >= 60)
    assert link.up.counters.lost > 0
    assert link.down.counters.offered == 0  # only the direction asked for is impaired
    assert 0.1 <= link.up.counters.lost / link.up.counters.offered <= 0.3


async def test_a_burst_loss_recovers_through_rate_limited_key_frame_requests(pcs: list[RTCPeerConnection]) -> None:
    require_namespace()
    keys = SharedSecret("impaired burst")
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    link = impair(sub, down=Impairment(delay=0.001), seed=5)
    sender = sealrtc.attach(pub, keys, probe=True)
    session = sealrtc.attach(sub, keys, decode=False)
    pub.addTrack(PreEncodedVideoTrack(CLIP))
    Collector(sub)
    # One burst: every datagram down for 5 s (several key frames, more packets than the jitter
    # buffer holds, so NACK cannot repair it): the receiver must ask for a key frame.
    loop = asyncio.get_running_loop()
    burst_until = [0.0]
    decide = link.down.decide

    def bursty(now: float, size: int) -> tuple[float, ...]:
        if now < burst_until[0]:
            link.down.counters.offered += 1
            link.down.counters.lost += 1
            return ()
        return decide(now, size)

    link.down.decide = bursty  # type: ignore[method-assign]
    await connect(pub, sub)
    await until(lambda: recv(session, "video")["frames_decrypted"] >= 60)
    burst_from = loop.time()
    burst_until[0] = burst_from + 5.0
    before = recv(session, "video")["frames_decrypted"]
    await until(lambda: loop.time() > burst_until[0] and recv(session, "video")["frames_decrypted"] >= before + 90)
    elapsed = loop.time() - burst_from
    sent = next(t for t in sender.stats()["tracks"] if t["direction"] == "send" and t["kind"] == "video")
    assert link.down.counters.lost >= 100, link.down.counters  # the burst happened
    assert sum(recv(session, "video")["decrypt_failures"].values()) == 0
    # Recovered through key-frame requests (PLI), but not a storm: one per second at most.
    assert 1 <= sent["keyframe_requests_received"] <= elapsed + 1, (sent["keyframe_requests_received"], elapsed)
