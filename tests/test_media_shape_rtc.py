"""The shape flags through real peers (embedded relay, private namespace): the video bitrate
moves the bytes sent, the resolution reaches the subscriber's decoder, --no-audio sends no
audio track."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.cli.args import build_parser
from sealrtc.cli.media import shape_from
from sealrtc.media import MediaShape
from sealrtc.relay.server import Relay, start_relay

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network


@pytest.fixture
async def relay() -> AsyncIterator[str]:
    require_namespace()
    _, runner, port = await start_relay("127.0.0.1", 0, Relay())
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def publish_shape(*flags: str) -> MediaShape:
    """The shape ``sealrtc publish`` makes of these flags."""
    return shape_from(build_parser().parse_args(["publish", "--whip", "http://relay/whip/x", *flags]))


def video_sent(agent: PublisherAgent) -> tuple[int, int]:
    sent: dict[str, Any] = agent.summary()["sent"].get("video") or {"frames": 0, "bytes": 0}
    return sent["frames"], sent["bytes"]


async def test_video_bitrate_moves_the_bytes_sent(relay: str) -> None:
    """Two publishers side by side, 150 and 1500 kbit/s: bytes per video frame (after the first
    second, so the first key frame does not count) differ several times over."""
    keys = SharedSecret("shape bitrate", context=b"shape")
    low = PublisherAgent(keys, shape=publish_shape("--video-bitrate", "150", "--no-audio"))
    high = PublisherAgent(keys, shape=publish_shape("--video-bitrate", "1500", "--no-audio"))
    try:
        await low.publish_whip(f"{relay}/whip/low")
        await high.publish_whip(f"{relay}/whip/high")
        await eventually(lambda: min(video_sent(low)[0], video_sent(high)[0]) >= 30, timeout=20,
                         what="a second of video from both publishers")  # fmt: skip
        start = {"low": video_sent(low), "high": video_sent(high)}
        await eventually(lambda: min(video_sent(low)[0], video_sent(high)[0]) >= 120, timeout=30,
                         what="three more seconds of video from both publishers")  # fmt: skip
        per_frame = {}
        for name, agent in (("low", low), ("high", high)):
            frames, sent = video_sent(agent)
            per_frame[name] = (sent - start[name][1]) / (frames - start[name][0])
        # 150 kbit/s at 30 fps is ~625 bytes a frame, 1500 kbit/s ~6250
        assert 150 < per_frame["low"] < 1500, per_frame
        assert 2500 < per_frame["high"] < 12_000, per_frame
        assert per_frame["high"] > 4 * per_frame["low"], per_frame
    finally:
        await low.close()
        await high.close()


async def test_resolution_reaches_the_decoder_and_no_audio_sends_no_audio_track(relay: str, tmp_path: Path) -> None:
    keys = SharedSecret("shape size", context=b"shape")
    publisher = PublisherAgent(keys, shape=publish_shape("--resolution", "320x180", "--fps", "15", "--no-audio"))
    subscriber = SubscriberAgent(keys, record_dir=tmp_path)
    try:
        assert [s.kind for s in publisher.pc.getSenders()] == ["video"]
        await publisher.publish_whip(f"{relay}/whip/size")
        await subscriber.subscribe_whep(f"{relay}/whep/size")
        await eventually(lambda: subscriber.decoded["video"] >= 20, timeout=20, what="20 decoded video frames",
                         event=subscriber.changed)  # fmt: skip
        assert publisher.summary()["frames_sent"]["audio"] == 0
        assert set(publisher.summary()["sent"]) == {"video"}
    finally:
        await publisher.close()
        await subscriber.close()
    assert subscriber.decoded["audio"] == 0
    assert not any(t["kind"] == "audio" and t["frames_received"] for t in subscriber.summary()["tracks"])
    recordings = sorted(tmp_path.iterdir())
    assert [p.suffix for p in recordings] == [".webm"], recordings
    with av.open(str(recordings[0])) as container:
        sizes = {(frame.width, frame.height) for frame in container.decode(video=0)}
    assert sizes == {(320, 180)}
