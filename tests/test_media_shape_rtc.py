"""The shape flags through real peers (embedded relay, private namespace): the video bitrate
moves the bytes sent, the resolution reaches the subscriber's decoder, --no-audio sends no
audio track."""

from __future__ import annotations

import asyncio
import json
import os
import sys
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
from sealrtc.report import first_problem

from .rtc_helpers import require_namespace
from .test_media_files import make_media
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


async def test_load_rooms_send_their_own_shape_from_one_clip_cache(tmp_path: Path) -> None:
    """A scenario whose two rooms send a --media file differently (room 0 video only, room 1 at
    160x90 and 100 kbit/s), with a --cache-dir that is a file: one line says so, one line per
    clip made, the run passes and the report's scenario records the shapes."""
    require_namespace()
    media = make_media(tmp_path / "clip.mp4", "libx264", "aac", seconds=2.0, fps=10)
    scenario = tmp_path / "rooms.toml"
    scenario.write_text(
        f'rooms = 2\nsubscribers = 1\nduration = 5\nmedia = "{media}"\n'
        '[[room]]\nno-audio = true\n[[room]]\nresolution = "160x90"\nvideo-bitrate = 100\n'
    )
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("a file")
    report_path = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "load", "--scenario", str(scenario), "--workers", "1", "--quiet",
        "--cache-dir", str(not_a_dir), "--json", str(report_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert stderr.count("cannot be used (it is not a directory)") == 1, stderr
    assert stderr.count("transcoding clip.mp4") == 2, stderr  # the file's own shape, and 160x90
    report = json.loads(report_path.read_text())
    recorded = report["scenario"]
    assert recorded["room_shapes"] == [{"count": 1, "audio": False}, {"count": 1, "resolution": "160x90",
                                                                    "video_bitrate": 100}]  # fmt: skip
    assert first_problem(report) is None
    rooms = {room["room"]: room["metrics"] for room in report["rooms"]}
    video_only, shaped = (rooms[name] for name in sorted(rooms))  # names end in the room's index
    assert (video_only["latency_audio_ms"] or {}).get("count", 0) == 0  # no audio: none measured
    assert video_only["latency_video_ms"]["count"] > 10
    assert shaped["latency_audio_ms"]["count"] > 10 and shaped["latency_video_ms"]["count"] > 10
