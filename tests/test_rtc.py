"""E2EE on real aiortc peer connections (in the private network namespace)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

import sealrtc
from sealrtc import SharedSecret
from sealrtc.media import PreEncodedVideoTrack, TestPatternVideoTrack, ToneAudioTrack
from sealrtc.media.sources import encode_h264_clip, encode_vp8_clip
from sealrtc.rtc.frames import EncodedFrame
from sealrtc.rtc.passthrough import ForwardingTrack, PassthroughSession
from sealrtc.rtc.policy import prefer_video_codec
from sealrtc.rtc.session import TrackSecretEvent
from sealrtc.testing.analysis import psnr

from .media_helpers import Collector, band_energy_ratio
from .rtc_helpers import connect, new_pc, require_namespace, wait_until

pytestmark = pytest.mark.network

TONE = 440.0


def pair(pcs: list[RTCPeerConnection]) -> tuple[RTCPeerConnection, RTCPeerConnection]:
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    return pub, sub


def recv_stats(session: sealrtc.E2EESession, kind: str) -> dict[str, object]:
    empty = {"frames_received": 0, "frames_decrypted": 0, "decrypt_failures": {}}  # before the first frame
    return next((t for t in session.stats()["tracks"] if t["direction"] == "recv" and t["kind"] == kind), empty)


def send_stats(session: sealrtc.E2EESession, kind: str) -> dict[str, object]:
    return next(t for t in session.stats()["tracks"] if t["direction"] == "send" and t["kind"] == kind)


async def test_same_secret_delivers_source_media(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    pub_session = sealrtc.attach(pub, SharedSecret("same secret", context=b"t1"))
    sub_session = sealrtc.attach(sub, SharedSecret("same secret", context=b"t1"))
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 40 and got.audio_samples >= 48_000, got.changed, 20)
    assert got.last_video is not None
    assert psnr(got.last_video, video.pattern(0)) > 30
    assert band_energy_ratio(got.audio(), got.audio_rate, TONE) > 0.9
    v_in, a_in = recv_stats(sub_session, "video"), recv_stats(sub_session, "audio")
    assert v_in["frames_decrypted"] >= 40 and a_in["frames_decrypted"] >= 50
    assert sum(v_in["decrypt_failures"].values()) == 0  # type: ignore[union-attr]
    assert send_stats(pub_session, "video")["frames_encrypted"] >= 40
    assert v_in["codec"] == "video/VP8" and a_in["codec"] == "audio/opus"
    typed = sub_session.receive_tracks()
    assert {t.kind for t in typed} == {"video", "audio"}
    for t in typed:  # the typed view and its JSON agree; under E2EE accepted means decrypted
        assert t.frames_decrypted is not None and t.frames_accepted == t.frames_decrypted > 0
        assert t.metrics is not None and t.metrics.frames == t.frames_accepted
        assert t.as_dict()["frames_accepted"] == t.frames_accepted
    got.stop()


async def test_plain_session_counts_accepted_frames_and_decrypts_nothing(pcs: list[RTCPeerConnection]) -> None:
    """Without keys every received frame is accepted; nothing reports "0 decrypted" beside it."""
    pub, sub = pair(pcs)
    pub_session = sealrtc.attach(pub, None, probe=True)
    sub_session = sealrtc.attach(sub, None)
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.audio_samples >= 48_000, got.changed, 20)
    audio = recv_stats(sub_session, "audio")
    assert audio["frames_accepted"] == audio["frames_received"] and audio["frames_received"] >= 40  # type: ignore[operator]
    assert audio["frames_decrypted"] is None and audio["bytes_in"] is None
    assert audio["looks_encrypted"] is False
    sent = send_stats(pub_session, "audio")
    assert audio["probe_streams"] == [sent["probe_stream"]]  # probes were split off and measured
    assert sent["frames_sent"] >= 40 and sent["frames_encrypted"] is None and sent["kid_switches"] is None  # type: ignore[operator]
    (track,) = sub_session.receive_tracks()
    assert track.frames_decrypted is None and track.decrypt_failures.total == 0
    got.stop()


async def test_wrong_secret_reaches_nothing_and_reports_mismatch(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("publisher secret"))
    sub_session = sealrtc.attach(sub, SharedSecret("another secret"))
    source = PreEncodedVideoTrack(encode_vp8_clip(60))
    pub.addTrack(source)
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)
    mismatches: list[TrackSecretEvent] = []
    seen = asyncio.Event()

    def on_mismatch(event: TrackSecretEvent) -> None:
        mismatches.append(event)
        seen.set()

    sub_session.on("secret_mismatch", on_mismatch)
    await connect(pub, sub)
    await wait_until(lambda: {e.kind for e in mismatches} == {"audio", "video"}, seen, 15)
    for kind in ("audio", "video"):
        first = recv_stats(sub_session, kind)["first_received_at"]
        event = next(e for e in mismatches if e.kind == kind)
        assert isinstance(first, float) and event.at - first < 1.0
    # Keep receiving for a while: still nothing reaches the application.
    frames_before = recv_stats(sub_session, "video")["frames_received"]
    await wait_until(
        lambda: recv_stats(sub_session, "video")["frames_received"] >= frames_before + 30,  # type: ignore[operator]
        got_changed_or_tick(sub_session),
        10,
    )
    assert got.video_count == 0 and got.audio_count == 0
    assert recv_stats(sub_session, "video")["frames_decrypted"] == 0
    assert len(mismatches) == 2  # one per track, no flapping
    assert source.keyframe_requests <= 2  # the publisher is not flooded with PLIs
    got.stop()


def got_changed_or_tick(session: sealrtc.E2EESession) -> asyncio.Event:
    """An event set whenever the session's receivers see a frame (wraps the stats counter)."""
    event = asyncio.Event()
    for state in session._receivers.values():
        original = state.receiver._RTCRtpReceiver__decoder_queue.put  # type: ignore[attr-defined]

        def put(item: object, *args: object, original: object = original) -> None:
            original(item, *args)  # type: ignore[operator]
            event.set()

        state.receiver._RTCRtpReceiver__decoder_queue.put = put  # type: ignore[attr-defined]
    return event


async def test_receiver_without_e2ee_gets_no_clean_media(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("secret"))
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)  # plain aiortc: no attach
    await connect(pub, sub)
    await wait_until(lambda: got.audio_samples >= 48_000, got.changed, 20)
    assert band_energy_ratio(got.audio(), got.audio_rate, TONE) < 0.5
    if got.last_video is not None:  # VP8 may decode garbage or nothing at all
        assert psnr(got.last_video, video.pattern(0)) < 20
    got.stop()


async def test_rotation_mid_stream_keeps_media_flowing(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    tx, rx = SharedSecret("first", context=b"rot"), SharedSecret("first", context=b"rot")
    pub_session = sealrtc.attach(pub, tx)
    sub_session = sealrtc.attach(sub, rx)
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 20 and got.audio_count >= 20, got.changed, 20)
    v0, a0 = got.video_count, got.audio_count
    tx.set_secret("second")
    rx.set_secret("second")
    await wait_until(lambda: got.video_count >= v0 + 40 and got.audio_count >= a0 + 50, got.changed, 20)
    assert send_stats(pub_session, "video")["kid_switches"] == 1
    assert send_stats(pub_session, "audio")["kid_switches"] == 1
    assert psnr(got.last_video, video.pattern(0)) > 30  # type: ignore[arg-type]
    failures = recv_stats(sub_session, "video")["decrypt_failures"]
    assert sum(failures.values()) <= 5  # type: ignore[union-attr]
    got.stop()


async def test_tampering_forwarder_is_detected_without_crash(pcs: list[RTCPeerConnection]) -> None:
    require_namespace()
    pub, mid_in, mid_out, sub = new_pc(), new_pc(), new_pc(), new_pc()
    pcs.extend([pub, mid_in, mid_out, sub])
    sealrtc.attach(pub, SharedSecret("mitm"))
    sub_session = sealrtc.attach(sub, SharedSecret("mitm"))
    PassthroughSession(mid_in)
    PassthroughSession(mid_out)
    pub.addTrack(TestPatternVideoTrack())
    pub.addTrack(ToneAudioTrack(TONE))
    forwarded: list[int] = []

    async def tamper(track: MediaStreamTrack, out: ForwardingTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, EncodedFrame)
                data = bytearray(frame.data)
                data[-1] ^= 0x01  # flip one bit of the tag
                out.feed(EncodedFrame(bytes(data), frame.timestamp, frame.codec, frame.clock_rate, frame.keyframe))
                forwarded.append(1)
        except MediaStreamError:
            out.end()

    tasks: list[asyncio.Task[None]] = []

    def on_track(track: MediaStreamTrack) -> None:
        out = ForwardingTrack(track.kind)
        mid_out.addTrack(out)
        tasks.append(asyncio.ensure_future(tamper(track, out)))

    mid_in.on("track", on_track)
    got = Collector(sub)
    await connect(pub, mid_in)
    await connect(mid_out, sub)
    tick = got_changed_or_tick(sub_session)
    await wait_until(
        lambda: (
            all(
                sum(recv_stats(sub_session, k)["decrypt_failures"].values()) >= 20  # type: ignore[union-attr]
                for k in ("audio", "video")
                if any(t["kind"] == k and t["direction"] == "recv" for t in sub_session.stats()["tracks"])
            )
            and len(sub_session.stats()["tracks"]) == 2
        ),
        tick,
        20,
    )
    for kind in ("audio", "video"):
        stats = recv_stats(sub_session, kind)
        assert stats["frames_decrypted"] == 0
        assert stats["decrypt_failures"]["authentication_failed"] >= 20  # type: ignore[index]
    assert got.video_count == 0 and got.audio_count == 0
    assert sub.connectionState == "connected"
    assert all(r.track.readyState == "live" for r in sub.getReceivers())
    for task in tasks:
        task.cancel()
    got.stop()


async def test_h264_same_secret_delivers_the_test_pattern(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    pub_session = sealrtc.attach(pub, SharedSecret("same secret", context=b"h264"))
    sub_session = sealrtc.attach(sub, SharedSecret("same secret", context=b"h264"))
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    prefer_video_codec(pub, "h264")
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 40, got.changed, 30)
    assert got.last_video is not None
    assert psnr(got.last_video, video.pattern(0)) > 30
    v_in, v_out = recv_stats(sub_session, "video"), send_stats(pub_session, "video")
    assert v_in["codec"] == v_out["codec"] == "video/H264"
    assert v_in["frames_decrypted"] >= 40 and sum(v_in["decrypt_failures"].values()) == 0  # type: ignore[union-attr]
    assert v_out["frames_encrypted"] >= 40 and v_out["frames_dropped"] == 0
    got.stop()


async def test_pre_encoded_h264_is_sealed_and_decoded(pcs: list[RTCPeerConnection]) -> None:
    """The pack() path (a --media clip): libx264 access units normalised, sealed, decoded."""
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("clip", context=b"h264"))
    sub_session = sealrtc.attach(sub, SharedSecret("clip", context=b"h264"))
    pub.addTrack(PreEncodedVideoTrack(encode_h264_clip(60)))
    prefer_video_codec(pub, "h264")
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 40, got.changed, 30)
    v_in = recv_stats(sub_session, "video")
    assert v_in["codec"] == "video/H264" and sum(v_in["decrypt_failures"].values()) == 0  # type: ignore[union-attr]
    got.stop()


async def test_h264_wrong_secret_decrypts_nothing_and_reports_mismatch(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("publisher secret"))
    sub_session = sealrtc.attach(sub, SharedSecret("another secret"))
    pub.addTrack(TestPatternVideoTrack())
    prefer_video_codec(pub, "h264")
    got = Collector(sub)
    mismatches: list[TrackSecretEvent] = []
    seen = asyncio.Event()

    def on_mismatch(event: TrackSecretEvent) -> None:
        mismatches.append(event)
        seen.set()

    sub_session.on("secret_mismatch", on_mismatch)
    await connect(pub, sub)
    await wait_until(lambda: len(mismatches) == 1, seen, 20)
    frames_before = recv_stats(sub_session, "video")["frames_received"]
    await wait_until(
        lambda: recv_stats(sub_session, "video")["frames_received"] >= frames_before + 20,  # type: ignore[operator]
        got_changed_or_tick(sub_session),
        15,
    )
    v_in = recv_stats(sub_session, "video")
    assert v_in["codec"] == "video/H264" and v_in["frames_decrypted"] == 0 and got.video_count == 0
    assert v_in["decrypt_failures"]["authentication_failed"] + v_in["decrypt_failures"]["unknown_key"] > 20  # type: ignore[index]
    assert mismatches[0].kind == "video" and len(mismatches) == 1
    got.stop()


async def test_plain_receiver_of_h264_e2ee_gets_no_picture(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("secret"))
    video = TestPatternVideoTrack(moving=False)
    pub.addTrack(video)
    prefer_video_codec(pub, "h264")
    sub_session = sealrtc.attach(sub, None)  # plain: frames are accepted as they come
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(
        lambda: recv_stats(sub_session, "video")["frames_received"] >= 30, got_changed_or_tick(sub_session), 20
    )  # type: ignore[operator]
    if got.last_video is not None:  # the decoder sees slice headers and ciphertext
        assert psnr(got.last_video, video.pattern(0)) < 20
    got.stop()


async def test_attach_after_tracks_were_added(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = pair(pcs)
    pub.addTrack(ToneAudioTrack(TONE))
    pub_session = sealrtc.attach(pub, SharedSecret("late"))
    sealrtc.attach(sub, SharedSecret("late"), decode=False)
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: len(got.other) >= 10, got.changed, 20)
    frame = got.other[-1]
    assert isinstance(frame, EncodedFrame)
    assert frame.codec == "audio/opus" and frame.kid is not None and frame.ctr is not None
    assert frame.kid & 0xFF == pub_session.keys.current.fingerprint
    assert send_stats(pub_session, "audio")["frames_encrypted"] >= 10
    got.stop()


async def test_keyframe_requests_reach_pre_encoded_sources(pcs: list[RTCPeerConnection]) -> None:
    """PLI -> source hook; set_secret -> forced key frame; recovery -> one throttled request."""
    pub, sub = pair(pcs)
    tx, rx = SharedSecret("kf-one"), SharedSecret("kf-wrong")
    sealrtc.attach(pub, tx)
    sub_session = sealrtc.attach(sub, rx)
    source = PreEncodedVideoTrack(encode_vp8_clip(90, gop=90))
    pub.addTrack(source)
    got = Collector(sub)
    matched = asyncio.Event()
    sub_session.on("secret_match", lambda event: matched.set())
    await connect(pub, sub)
    tick = got_changed_or_tick(sub_session)
    await wait_until(lambda: recv_stats(sub_session, "video")["frames_received"] >= 10, tick, 20)  # type: ignore[operator]
    assert got.video_count == 0
    before = source.keyframe_requests
    tx.set_secret("kf-two")  # the sender must force a key frame on the pack() path
    assert source.keyframe_requests == before + 1
    rx.set_secret("kf-two")  # decryption recovers: secret_match, then one PLI upstream
    await asyncio.wait_for(matched.wait(), 10)
    await wait_until(lambda: got.video_count >= 10, got.changed, 20)
    stats = recv_stats(sub_session, "video")
    assert stats["keyframe_requests"] == 1
    assert source.keyframe_requests >= before + 2  # the rotation's and the recovery PLI's
    got.stop()


@pytest.mark.parametrize("e2ee", [True, False])
async def test_audio_level_extension_only_without_e2ee(pcs: list[RTCPeerConnection], e2ee: bool) -> None:
    """Under E2EE the sender leaves out the audio-level header extension (voice activity in
    clear); a plain session keeps aiortc's behaviour."""
    pub, sub = pair(pcs)
    sealrtc.attach(pub, SharedSecret("secret") if e2ee else None)
    sealrtc.attach(sub, SharedSecret("secret") if e2ee else None)
    pub.addTrack(ToneAudioTrack(TONE))
    levels: list[object] = []
    arrived = asyncio.Event()
    got = Collector(sub)
    await connect(pub, sub)
    receiver = sub.getReceivers()[0]
    handle = receiver._handle_rtp_packet

    async def spy(packet: object, arrival_time_ms: int) -> None:
        levels.append(packet.extensions.audio_level)  # type: ignore[attr-defined]
        arrived.set()
        await handle(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = spy  # type: ignore[method-assign]
    await wait_until(lambda: len(levels) >= 20, arrived, 20)
    if e2ee:
        assert all(level is None for level in levels)
    else:
        assert all(level is not None for level in levels)
    got.stop()


async def test_live_encoded_frames_are_sealed_whole_before_packetization(pcs: list[RTCPeerConnection]) -> None:
    """The encode() path (a decoded source, encoded by aiortc in its thread): each frame the
    observer sees is one whole VP8 frame, and what the receiver decrypts is exactly that frame."""
    pub, sub = pair(pcs)
    pub_session = sealrtc.attach(pub, SharedSecret("whole"))
    sub_session = sealrtc.attach(sub, SharedSecret("whole"), decode=False)
    sent: list[bytes] = []
    pub_session.plaintext_observer = sent.append
    pub.addTrack(TestPatternVideoTrack(moving=True))
    received: list[EncodedFrame] = []
    changed = asyncio.Event()

    def on_frame(track: object, frame: EncodedFrame) -> None:
        received.append(frame)
        changed.set()

    sub_session.received_frame_observer = on_frame
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: len(received) >= 10, changed, 20)
    assert sent[0][0] & 0x01 == 0 and bytes(sent[0][3:6]) == b"\x9d\x01\x2a"  # a whole VP8 key frame
    assert all(frame.data in sent for frame in received)
    assert received[0].keyframe and received[0].kid is not None
    stats = send_stats(pub_session, "video")
    assert stats["keyframes_sent"] >= 1 and stats["frames_sent"] == stats["frames_encrypted"] >= 10
    got.stop()


async def test_attach_to_a_connected_pair_encrypts_from_then_on(pcs: list[RTCPeerConnection]) -> None:
    """Attached after media already flows: the running senders' encoders are hooked in place
    (VP8 encoded live, audio too) and the subscriber decrypts; nothing after is sent in clear."""
    pub, sub = pair(pcs)
    pub.addTrack(TestPatternVideoTrack(moving=True))
    pub.addTrack(ToneAudioTrack(TONE))
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 5 and got.audio_count >= 5, got.changed, 20)
    pub_session = sealrtc.attach(pub, SharedSecret("late", context=b"t-late"))
    sub_session = sealrtc.attach(sub, SharedSecret("late", context=b"t-late"))
    await wait_until(
        lambda: (
            recv_stats(sub_session, "video")["frames_decrypted"] >= 20  # type: ignore[operator]
            and recv_stats(sub_session, "audio")["frames_decrypted"] >= 20
        ),  # type: ignore[operator]
        got.changed,
        20,
    )
    for kind in ("video", "audio"):
        sent = send_stats(pub_session, kind)
        assert sent["frames_sent"] == sent["frames_encrypted"] > 0
    got.stop()
