"""Metrics measured on real aiortc peers: each caused on purpose (delay, loss, pause) and seen.

The chain pub -> forwarder -> sub is what an SFU does; the forwarder (key-less, like the relay)
delays or drops ciphertext frames. The subscriber's numbers must move as caused.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

import sealrtc
from sealrtc import SharedSecret
from sealrtc.media import PreEncodedVideoTrack, TestPatternVideoTrack, ToneAudioTrack
from sealrtc.media.sources import encode_vp8_clip
from sealrtc.rtc.frames import EncodedFrame
from sealrtc.rtc.passthrough import ForwardingTrack, PassthroughSession
from sealrtc.testing.analysis import psnr

from .media_helpers import Collector, band_energy_ratio
from .rtc_helpers import connect, new_pc
from .waiting import eventually

pytestmark = pytest.mark.network

CLIP = encode_vp8_clip(90, gop=30)


def recv(session: sealrtc.E2EESession, kind: str) -> dict[str, Any]:
    tracks = [t for t in session.stats()["tracks"] if t["direction"] == "recv" and t["kind"] == kind]
    return tracks[0] if tracks else {"frames_received": 0, "frames_decrypted": 0, "latency_ms": None}


async def poll(predicate: Callable[[], bool], timeout: float = 30) -> None:
    """Frames arrive every 20-33 ms and no single event spans the chain: poll at that cadence
    (fails naming the caller's line)."""
    await eventually(predicate, timeout=timeout, what=f"the condition of line {sys._getframe(1).f_lineno}")


Impair = Callable[[str, EncodedFrame, ForwardingTrack], None]


async def chain(
    pcs: list[RTCPeerConnection], keys: SharedSecret, impair: Impair, *, video: MediaStreamTrack | None = None
) -> sealrtc.E2EESession:
    """pub (E2EE, probes) -> key-less forwarder that calls ``impair`` per frame -> verify-only sub."""
    pub, mid_in, mid_out, sub = new_pc(), new_pc(), new_pc(), new_pc()
    pcs.extend([pub, mid_in, mid_out, sub])
    sealrtc.attach(pub, keys, probe=True)
    sub_session = sealrtc.attach(sub, keys, decode=False)
    PassthroughSession(mid_in)
    PassthroughSession(mid_out)
    pub.addTrack(video or PreEncodedVideoTrack(CLIP))
    pub.addTrack(ToneAudioTrack())
    Collector(sub)  # drains the verify-only tracks
    tasks: list[asyncio.Task[None]] = []

    async def pump(track: MediaStreamTrack, out: ForwardingTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, EncodedFrame)
                impair(track.kind, frame, out)
        except MediaStreamError:
            out.end()

    def on_track(track: MediaStreamTrack) -> None:
        out = ForwardingTrack(track.kind)
        mid_out.addTrack(out)
        tasks.append(asyncio.ensure_future(pump(track, out)))

    mid_in.on("track", on_track)
    await connect(pub, mid_in)
    await connect(mid_out, sub)
    sub_session.test_tasks = tasks  # type: ignore[attr-defined]  # kept alive with the session
    return sub_session


def forward(kind: str, frame: EncodedFrame, out: ForwardingTrack) -> None:
    out.feed(frame)


async def test_added_delay_shows_in_latency_for_video_and_audio(pcs: list[RTCPeerConnection]) -> None:
    delay = 0.3
    loop = asyncio.get_running_loop()

    def delayed(kind: str, frame: EncodedFrame, out: ForwardingTrack) -> None:
        loop.call_later(delay, out.feed, frame)  # what a slow network does: every frame 300 ms later

    keys = SharedSecret("latency")
    direct = await chain(pcs, keys, forward)
    slow = await chain(pcs, keys, delayed)

    def enough(session: sealrtc.E2EESession) -> bool:
        return all((recv(session, k)["latency_ms"] or {}).get("count", 0) >= 60 for k in ("video", "audio"))

    await poll(lambda: enough(direct) and enough(slow))
    for kind in ("video", "audio"):
        base, late = recv(direct, kind)["latency_ms"], recv(slow, kind)["latency_ms"]
        # one host: jitter buffers only (aiortc holds ~80 ms of audio per hop, a frame of video)
        assert base["p50"] < 250, kind
        assert late["p50"] >= delay * 1000, kind  # nothing can arrive before its delay
        assert late["p50"] - base["p50"] >= 250, kind
        assert late["max"] >= late["p95"] >= late["p50"]


async def test_dropped_frames_are_counted_lost_exactly(pcs: list[RTCPeerConnection]) -> None:
    keys = SharedSecret("loss")
    state = {"dropping": 0, "dropped": 0, "after": 0}

    def lossy(kind: str, frame: EncodedFrame, out: ForwardingTrack) -> None:
        if kind == "video" and state["dropping"] > 0:
            state["dropping"] -= 1
            state["dropped"] += 1
            return
        out.feed(frame)
        if kind == "video" and state["dropped"]:
            state["after"] += 1

    session = await chain(pcs, keys, lossy)
    await poll(lambda: recv(session, "video")["frames_decrypted"] >= 15)
    assert recv(session, "video")["frames_lost"] == 0
    state["dropping"] = 5  # five ciphertext frames vanish in the "SFU"
    await poll(lambda: state["after"] >= 10 and recv(session, "video")["frames_decrypted"] >= 35)
    video = recv(session, "video")
    assert state["dropped"] == 5
    assert video["frames_lost"] == 5
    assert video["frames_out_of_order"] == 0
    assert recv(session, "audio")["frames_lost"] == 0
    assert sum(video["decrypt_failures"].values()) == 0  # a gap is a loss, not a failure


class PausingTrack(MediaStreamTrack):
    """A pre-encoded source that stalls once for ``pause`` seconds after ``at`` frames."""

    kind = "video"

    def __init__(self, inner: PreEncodedVideoTrack, at: int, pause: float) -> None:
        super().__init__()
        self.inner, self.at, self.pause = inner, at, pause
        self.paused = asyncio.Event()

    def request_keyframe(self) -> None:
        self.inner.request_keyframe()

    async def recv(self) -> Any:
        if self.inner.frames_sent == self.at and not self.paused.is_set():
            self.paused.set()
            await asyncio.sleep(self.pause)  # the stall being measured, not a synchronisation
            if self.inner._start is not None:
                self.inner._start += self.pause  # resume at the normal pace, no catch-up burst
        return await self.inner.recv()


async def test_a_source_pause_is_one_freeze_and_no_loss(pcs: list[RTCPeerConnection]) -> None:
    source = PausingTrack(PreEncodedVideoTrack(CLIP), at=60, pause=1.0)
    session = await chain(pcs, SharedSecret("freeze"), forward, video=source)
    await poll(lambda: recv(session, "video")["frames_decrypted"] >= 40)
    assert recv(session, "video")["freezes"]["count"] == 0
    await poll(lambda: source.paused.is_set() and recv(session, "video")["frames_decrypted"] >= 90)
    video = recv(session, "video")
    assert video["freezes"]["count"] == 1
    assert 900 <= video["freezes"]["total_ms"] < 2000
    assert video["frames_lost"] == 0
    assert recv(session, "audio")["freezes"] is None  # freezes are a video metric


async def test_probes_never_reach_the_decoder(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    sealrtc.attach(pub, SharedSecret("probe"), probe=True)
    sub_session = sealrtc.attach(sub, SharedSecret("probe"))
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    pub.addTrack(ToneAudioTrack())
    got = Collector(sub)
    await connect(pub, sub)
    await poll(lambda: got.video_count >= 40 and got.audio_samples >= 48_000)
    assert got.last_video is not None and psnr(got.last_video, video.pattern(0)) > 30
    assert band_energy_ratio(got.audio(), got.audio_rate, 440.0) > 0.9
    for kind in ("video", "audio"):
        stats = recv(sub_session, kind)
        assert stats["latency_ms"]["count"] >= 30 and stats["frames_lost"] == 0
        assert len(stats["probe_streams"]) == 1
    got.stop()


async def test_without_probes_rates_are_still_measured(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    sealrtc.attach(pub, SharedSecret("no probe"))
    sub_session = sealrtc.attach(sub, SharedSecret("no probe"), decode=False)
    pub.addTrack(PreEncodedVideoTrack(CLIP))
    Collector(sub)
    await connect(pub, sub)
    await poll(lambda: recv(sub_session, "video")["frames_decrypted"] >= 45)
    video = recv(sub_session, "video")
    assert video["latency_ms"] is None and video["frames_lost"] is None
    assert 20 <= video["fps"] <= 40  # a 30 fps source
    assert video["bitrate_kbps"] > 10 and video["first_frame_ms"] > 0


async def test_plain_sessions_measure_and_notice_encrypted_media(pcs: list[RTCPeerConnection]) -> None:
    plain_pub, plain_sub, sealed_pub, blind_sub = new_pc(), new_pc(), new_pc(), new_pc()
    pcs.extend([plain_pub, plain_sub, sealed_pub, blind_sub])
    sealrtc.attach(plain_pub, None, probe=True)
    plain = sealrtc.attach(plain_sub, None, decode=False)
    sealrtc.attach(sealed_pub, SharedSecret("sealed"))
    blind = sealrtc.attach(blind_sub, None, decode=False)
    plain_pub.addTrack(PreEncodedVideoTrack(CLIP))
    sealed_pub.addTrack(PreEncodedVideoTrack(CLIP))
    Collector(plain_sub)
    Collector(blind_sub)
    await connect(plain_pub, plain_sub)
    await connect(sealed_pub, blind_sub)
    await poll(lambda: recv(plain, "video")["frames_received"] >= 30 and recv(blind, "video")["frames_received"] >= 30)
    assert recv(plain, "video")["latency_ms"]["count"] >= 20
    assert recv(plain, "video")["looks_encrypted"] is False
    assert recv(blind, "video")["looks_encrypted"] is True
