"""System tests through a real Janus (Debian's package), started privately for each test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.cli.main import main
from sealrtc.inspect import RecordedTrack
from sealrtc.media import pattern_image
from sealrtc.signaling.janus import JanusError, JanusSession
from sealrtc.testing.analysis import psnr
from sealrtc.testing.janus_server import JanusServer, RoomConfig, cleanup, start_janus

from .media_helpers import band_energy_ratio
from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = [pytest.mark.network, pytest.mark.janus]

E2EE_ROOM, PLAIN_ROOM, OPEN_ROOM = 1001, 1002, 1003


@pytest.fixture
async def janus() -> AsyncIterator[JanusServer]:
    require_namespace()
    server = await start_janus(
        [
            RoomConfig(E2EE_ROOM, require_e2ee=True, record=True),
            RoomConfig(PLAIN_ROOM, record=True),
            RoomConfig(OPEN_ROOM),
        ]
    )
    yield server
    cleanup(server)


async def until(agents: list[SubscriberAgent], predicate: Callable[[], bool], timeout: float = 20) -> None:
    """Wait on the agents' change events until ``predicate()`` holds (fails naming the source line)."""
    what = f"the condition of line {sys._getframe(1).f_lineno}"
    await eventually(predicate, timeout=timeout, what=what, event=tuple(a.changed for a in agents))


async def close_all(*agents: PublisherAgent | SubscriberAgent) -> None:
    for agent in agents:
        await agent.close()


async def test_one_publisher_two_subscribers(janus: JanusServer) -> None:
    pub = PublisherAgent(SharedSecret("janus secret", context=b"1001"))
    good = SubscriberAgent(SharedSecret("janus secret", context=b"1001"))
    bad = SubscriberAgent(SharedSecret("wrong secret", context=b"1001"))
    try:
        await pub.publish_janus(janus.url, E2EE_ROOM)
        await good.subscribe_janus(janus.url, E2EE_ROOM)
        await bad.subscribe_janus(janus.url, E2EE_ROOM)
        await until(
            [good, bad],
            lambda: (
                good.decoded["video"] >= 30
                and good.decoded["audio"] >= 30
                and {e["kind"] for e in bad.events if e["type"] == "secret_mismatch"} == {"audio", "video"}
            ),
        )
        assert bad.decoded == {"video": 0, "audio": 0}
        assert all(t["frames_decrypted"] == 0 for t in bad.summary()["tracks"])
        good_tracks = good.summary()["tracks"]
        assert {t["codec"] for t in good_tracks} == {"video/VP8", "audio/opus"}
        assert all(sum(t["decrypt_failures"].values()) == 0 for t in good_tracks)
    finally:
        await close_all(pub, good, bad)


def decode_video(frames: list[bytes]) -> tuple[list[np.ndarray], int]:
    ctx = av.CodecContext.create("vp8", "r")
    pictures, errors = [], 0
    for frame in frames:
        try:
            for picture in ctx.decode(av.Packet(frame)):
                pictures.append(picture.to_ndarray(format="rgb24"))
        except av.FFmpegError:
            errors += 1
    return pictures, errors


def decode_audio(frames: list[bytes]) -> np.ndarray:
    ctx = av.CodecContext.create("opus", "r")
    out: list[np.ndarray] = []
    for frame in frames:
        try:
            for pcm in ctx.decode(av.Packet(frame)):
                samples = pcm.to_ndarray().astype(np.float64)
                if pcm.format.is_planar:
                    out.append(samples.mean(axis=0))
                else:
                    out.append(samples.reshape(-1, len(pcm.layout.channels)).mean(axis=1))
        except av.FFmpegError:
            continue
    return np.concatenate(out) if out else np.zeros(0)


def recorded_frames(rec_dir: Path) -> dict[str, list[bytes]]:
    """The frames the server stored, per kind, read by the inspection engine."""
    out: dict[str, list[bytes]] = {"video": [], "audio": []}
    for path in sorted(rec_dir.glob("*.mjr")):
        track = RecordedTrack(path.read_bytes())
        out[track.header.kind] += [frame.data for frame in track.frames()]
    return out


def inspect_room(rec_dir: Path, report: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """``sealrtc inspect --json`` on a room's recordings: the exit status and the per-kind reports."""
    status = main(["inspect", "--json", str(report), *map(str, sorted(rec_dir.glob("*.mjr")))])
    files = json.loads(report.read_text())["files"]
    assert len(files) == 2
    return status, {f["kind"]: f for f in files}


async def test_server_recordings_hold_only_ciphertext(
    janus: JanusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed = PublisherAgent(SharedSecret("recorded"), moving=False)
    plain = PublisherAgent(None, moving=False)
    watcher = SubscriberAgent(SharedSecret("recorded"))
    try:
        await sealed.publish_janus(janus.url, E2EE_ROOM)
        await plain.publish_janus(janus.url, PLAIN_ROOM)
        await watcher.subscribe_janus(janus.url, E2EE_ROOM)
        await until([watcher], lambda: watcher.decoded["video"] >= 60 and watcher.decoded["audio"] >= 60)
    finally:
        await close_all(sealed, plain, watcher)  # unpublishing closes the recordings
    reference = pattern_image(320, 240, moving=False)

    status, sealed_report = inspect_room(janus.rec_dir / str(E2EE_ROOM), tmp_path / "e2ee.json")
    assert status == 0
    for kind in ("video", "audio"):
        counts = sealed_report[kind]
        assert counts["frames"] >= 30 and counts["ciphertext_frames"] == counts["frames"], counts
        assert len(counts["kids"]) == 1 and not counts["truncated"]
    e2ee = recorded_frames(janus.rec_dir / str(E2EE_ROOM))
    assert len(e2ee["video"]) == sealed_report["video"]["frames"]
    pictures, _ = decode_video(e2ee["video"])
    assert all(psnr(p, reference) < 20 for p in pictures if p.shape == reference.shape)
    assert band_energy_ratio(decode_audio(e2ee["audio"]), 48_000, 440.0) < 0.5

    status, plain_report = inspect_room(janus.rec_dir / str(PLAIN_ROOM), tmp_path / "plain.json")
    assert status == 1
    for kind in ("video", "audio"):
        counts = plain_report[kind]
        assert counts["frames"] >= 30 and counts["plain_frames"] == counts["frames"], counts
        assert counts["ciphertext_frames"] == 0 and counts["kids"] == []
    text = tmp_path / "notes.txt"
    text.write_text("not a recording\n")
    capsys.readouterr()
    assert main(["inspect", str(text)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"sealrtc inspect: error: {text}: not a Janus recording (no MJR00002 header)\n"
    clear = recorded_frames(janus.rec_dir / str(PLAIN_ROOM))
    assert len(clear["video"]) == plain_report["video"]["frames"]
    pictures, _ = decode_video(clear["video"])
    assert pictures and psnr(pictures[-1], reference) > 30
    assert band_energy_ratio(decode_audio(clear["audio"]), 48_000, 440.0) > 0.9


async def test_h264_through_a_require_e2ee_room_is_all_ciphertext(janus: JanusServer, tmp_path: Path) -> None:
    pub = PublisherAgent(SharedSecret("janus h264", context=b"1001"), moving=False, video_codec="h264")
    good = SubscriberAgent(SharedSecret("janus h264", context=b"1001"))
    bad = SubscriberAgent(SharedSecret("wrong secret", context=b"1001"))
    try:
        await pub.publish_janus(janus.url, E2EE_ROOM)
        await good.subscribe_janus(janus.url, E2EE_ROOM)
        await bad.subscribe_janus(janus.url, E2EE_ROOM)
        await until(
            [good, bad],
            lambda: (
                good.decoded["video"] >= 40
                and any(e["kind"] == "video" and e["type"] == "secret_mismatch" for e in bad.events)
            ),
        )
        assert bad.decoded["video"] == 0
        video = next(t for t in good.summary()["tracks"] if t["kind"] == "video")
        assert video["codec"] == "video/H264" and sum(video["decrypt_failures"].values()) == 0
        assert next(t for t in bad.summary()["tracks"] if t["kind"] == "video")["frames_decrypted"] == 0
    finally:
        await close_all(pub, good, bad)
    status, report = inspect_room(janus.rec_dir / str(E2EE_ROOM), tmp_path / "h264.json")
    assert status == 0 and report["video"]["codec"] == "h264"
    assert report["video"]["frames"] >= 30 and report["video"]["ciphertext_frames"] == report["video"]["frames"]


async def test_recordings_of_a_killed_janus_are_read_up_to_the_cut(
    janus: JanusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Janus killed mid-write leaves its recordings cut inside a record (its stdio buffer)."""
    keys = SharedSecret("killed while recording")
    pub, sub = PublisherAgent(keys), SubscriberAgent(keys)
    try:
        await pub.publish_janus(janus.url, E2EE_ROOM)
        await sub.subscribe_janus(janus.url, E2EE_ROOM)
        await until([sub], lambda: sub.decoded["video"] >= 30 and sub.decoded["audio"] >= 30)
        janus.kill()
    finally:
        await asyncio.wait_for(close_all(pub, sub), 15)
    status, report = inspect_room(janus.rec_dir / str(E2EE_ROOM), tmp_path / "killed.json")
    assert status == 0
    assert all(r["frames"] >= 10 and r["ciphertext_frames"] == r["frames"] for r in report.values()), report
    assert any(r["truncated"] for r in report.values())
    assert "truncated: read up to the cut" in capsys.readouterr().out


async def test_subscriber_before_publishers_follows_them(janus: JanusServer) -> None:
    keys = SharedSecret("follow")
    sub = SubscriberAgent(keys)
    first, second = PublisherAgent(keys), PublisherAgent(keys)
    try:
        await sub.subscribe_janus(janus.url, OPEN_ROOM)
        await first.publish_janus(janus.url, OPEN_ROOM)
        await until([sub], lambda: sub.decoded["video"] >= 10)
        await second.publish_janus(janus.url, OPEN_ROOM)  # joins late
        assert sub.room is not None
        await until(
            [sub],
            lambda: (
                len(sub.room.feeds) == 2
                and sum(  # type: ignore[union-attr]
                    1 for t in sub.track_stats() if t["kind"] == "video" and t["frames_decrypted"] >= 10
                )
                == 2
            ),
        )
        await second.close()
        await until([sub], lambda: len(sub.room.feeds) == 1)  # type: ignore[union-attr]
    finally:
        await close_all(sub, first, second)


async def test_room_errors_are_typed(janus: JanusServer) -> None:
    plain = PublisherAgent(None)
    with pytest.raises(JanusError) as info:
        await plain.publish_janus(janus.url, E2EE_ROOM)
    assert info.value.code == 433
    await plain.close()
    missing = PublisherAgent(SharedSecret("x"))
    with pytest.raises(JanusError) as info:
        await missing.publish_janus(janus.url, 999_999)
    assert info.value.code == 426
    await missing.close()


@pytest.mark.network
async def test_unreachable_janus_is_a_clear_error() -> None:
    require_namespace()
    with pytest.raises(JanusError, match="cannot reach Janus"):
        await JanusSession.connect("ws://127.0.0.1:9", timeout=3)


async def restart(server: JanusServer) -> None:
    """Start Janus again from its configuration: the same ports, the same (static) rooms."""
    binary = shutil.which("janus")
    assert binary is not None
    server.process = subprocess.Popen(
        [binary, "-F", str(server.directory), "-o", "-N", "-L", str(server.log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    async def answering() -> bool:
        try:
            session = await JanusSession.connect(server.url, timeout=2)
        except JanusError:
            return False
        await session.close()
        return True

    await eventually(answering, timeout=20, what="Janus answering again after its restart")


async def test_janus_killed_mid_run_and_restarted_agents_recover(janus: JanusServer) -> None:
    keys = SharedSecret("killed")
    pub = PublisherAgent(keys, probe=True, recover_within=30)
    sub = SubscriberAgent(keys, decode=False, recover_within=30)
    try:
        await pub.publish_janus(janus.url, OPEN_ROOM)
        await sub.subscribe_janus(janus.url, OPEN_ROOM)
        await until([sub], lambda: sub.totals()["frames_decrypted"] >= 30)
        janus.kill()
        await eventually(
            lambda: pub.recovery.lost_at is not None and sub.recovery.lost_at is not None,
            timeout=15,
            what="both agents noticing that Janus is gone",
        )
        assert "Janus" in (pub.recovery.reason or "")
        before = sub.totals()["frames_decrypted"]
        await restart(janus)

        def recovered() -> bool:
            sub.refresh()
            return sub.recovery.time_to_recover.count == 1 and sub.totals()["frames_decrypted"] > before + 30

        await until([sub], recovered, timeout=40)
        assert not pub.failed.is_set() and not sub.failed.is_set(), (pub.failure, sub.failure)
        assert pub.recovery.reconnects == 1 and sub.recovery.reconnects == 1
        for track in sub.track_stats():  # a new session, new receivers: nothing accepted twice
            assert sum(track["decrypt_failures"].values()) == 0
    finally:
        await asyncio.wait_for(close_all(pub, sub), 20)  # no hang


async def test_janus_killed_for_good_fails_after_recover_within(janus: JanusServer) -> None:
    keys = SharedSecret("killed")
    pub, sub = PublisherAgent(keys, recover_within=3), SubscriberAgent(keys, recover_within=3)
    try:
        await pub.publish_janus(janus.url, OPEN_ROOM)
        await sub.subscribe_janus(janus.url, OPEN_ROOM)
        await until([sub], lambda: sub.decoded["video"] >= 5)
        janus.kill()
        await asyncio.wait_for(asyncio.gather(pub.failed.wait(), sub.failed.wait()), 20)
        for agent in (pub, sub):
            assert agent.failure and "Janus" in agent.failure and "not recovered within 3 s" in agent.failure
    finally:
        await asyncio.wait_for(close_all(pub, sub), 15)  # no hang


async def test_cli_agents_against_janus(janus: JanusServer, tmp_path: Path) -> None:
    env = dict(os.environ, SEALRTC_SECRET="cli janus secret")
    out = tmp_path / "sub.json"
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealrtc",
            "publish",
            "--janus",
            janus.url,
            "--room",
            str(OPEN_ROOM),
            "--duration",
            "30",
            "--recover-within",
            "3",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        subscriber = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sealrtc",
            "subscribe",
            "--janus",
            janus.url,
            "--room",
            str(OPEN_ROOM),
            "--duration",
            "4",
            "--json",
            str(out),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(subscriber.communicate(), 60)
        assert subscriber.returncode == 0, err.decode()[-2000:]
        import json

        summary = json.loads(out.read_text())
        video = [t for t in summary["tracks"] if t["kind"] == "video"]
        assert video and video[0]["frames_decrypted"] > 0 and video[0]["frames_decoded"] > 0
        janus.kill()  # the publisher notices, fails to recover within 3 s, exits non-zero, no hang
        _, perr = await asyncio.wait_for(asyncio.to_thread(publisher.communicate), 20)
        assert publisher.returncode == 1
        assert "Janus" in perr and "not recovered within 3 s" in perr
        assert "Traceback" not in perr and "cli janus secret" not in perr
    finally:
        if publisher.poll() is None:
            publisher.kill()


async def test_subscribe_to_one_feed_only(janus: JanusServer) -> None:
    keys = SharedSecret("one feed")
    wanted, other = PublisherAgent(keys), PublisherAgent(keys)
    sub = SubscriberAgent(keys)
    try:
        await wanted.publish_janus(janus.url, OPEN_ROOM)
        await other.publish_janus(janus.url, OPEN_ROOM)
        assert wanted.room is not None and wanted.room.publisher_id is not None
        await sub.subscribe_janus(janus.url, OPEN_ROOM, feed=wanted.room.publisher_id)
        await until([sub], lambda: sub.decoded["video"] >= 10)
        assert sub.room is not None and list(sub.room.feeds) == [wanted.room.publisher_id]
    finally:
        await close_all(sub, wanted, other)


async def test_cli_subscriber_says_what_went_wrong(janus: JanusServer, tmp_path: Path) -> None:
    """Secret mismatch per feed (exit 3), an unknown --feed and an empty room (exit 1), in words."""
    pub = PublisherAgent(SharedSecret("the secret", context=b"1001"))
    await pub.publish_janus(janus.url, E2EE_ROOM)
    assert pub.room is not None
    feed = pub.room.publisher_id
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"} | {"SEALRTC_SECRET": "another secret"}

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sealrtc", "subscribe", "--janus", janus.url, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, err.decode()

    try:
        (wrong, wrong_err), (unknown, unknown_err), (empty, empty_err) = await asyncio.gather(
            cli("--room", str(E2EE_ROOM), "--context", "1001", "--duration", "5"),
            cli("--room", str(E2EE_ROOM), "--feed", "424242", "--duration", "3"),
            cli("--room", str(OPEN_ROOM), "--duration", "3"),
        )
    finally:
        await close_all(pub)
    assert wrong == 3, wrong_err
    assert f"frames from feed {feed} fail to decrypt: unknown key" in wrong_err
    assert unknown == 1, unknown_err
    assert f"feed 424242 is not publishing in room {E2EE_ROOM} (publishers now: {feed})" in unknown_err
    assert f"feed 424242 never published in room {E2EE_ROOM}" in unknown_err
    assert empty == 1, empty_err
    assert f"room {OPEN_ROOM} has no publishers yet" in empty_err and f"room {OPEN_ROOM} had no publishers" in empty_err
    for err in (wrong_err, unknown_err, empty_err):
        assert "Traceback" not in err and "another secret" not in err


async def test_keepalive_is_answered(janus: JanusServer) -> None:
    """Janus answers a keepalive with a bare ack: it must resolve, not time out (keepalives stopped)."""
    session = await JanusSession.connect(janus.url)
    try:
        reply = await session.request({"janus": "keepalive"}, timeout=5)
        assert reply["janus"] == "ack"
    finally:
        await session.close()
