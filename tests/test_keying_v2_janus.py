"""Keying v2 through a real Janus: a publisher ratcheting every 2 s, a joiner from an epoch-3 file,
and the epochs seen in the server's recordings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.cli.keys import ratcheting
from sealrtc.cli.main import main
from sealrtc.epochs import EpochKeys, kid_v2
from sealrtc.testing.janus_server import JanusServer, RoomConfig, cleanup, start_janus

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = [pytest.mark.network, pytest.mark.janus]

ROOM = 1901
JOIN_ROOM = 1902
SECRET = "janus epochs"


@pytest.fixture
async def janus() -> AsyncIterator[JanusServer]:
    require_namespace()
    server = await start_janus(
        [RoomConfig(ROOM, require_e2ee=True, record=True), RoomConfig(JOIN_ROOM, require_e2ee=True, record=True)]
    )
    yield server
    cleanup(server)


async def test_an_epoch_3_joiner_reads_epochs_3_on_and_inspect_shows_the_epochs(
    janus: JanusServer, tmp_path: Path
) -> None:
    keys = EpochKeys.from_secret(SECRET, context=b"room")
    joiner = EpochKeys.from_export(EpochKeys.from_secret(SECRET, context=b"room", epoch=3).export_epoch())
    pub = PublisherAgent(keys, moving=False)
    sub = SubscriberAgent(joiner)
    try:
        async with ratcheting(keys, 2.0):
            await pub.publish_janus(janus.url, ROOM)
            await sub.subscribe_janus(janus.url, ROOM)
            await eventually(
                lambda: joiner.epoch >= 4 and sub.decoded["video"] >= 30 and sub.decoded["audio"] >= 30,
                timeout=40,
                what="the joiner at epoch 4, media decoded from epoch 3 on",
                event=sub.changed,
            )
        # The ratchet has stopped: let the last epoch make runs long enough for inspect (8 frames).
        video, audio = sub.decoded["video"], sub.decoded["audio"]
        await eventually(
            lambda: sub.decoded["video"] >= video + 20 and sub.decoded["audio"] >= audio + 20,
            timeout=20,
            what="media in the last epoch",
            event=sub.changed,
        )
    finally:
        await pub.close()
        await sub.close()  # unpublishing closes the recordings
    assert joiner.floor == 3 and joiner.epoch >= 4
    for track in sub.summary()["tracks"]:
        failures = {reason: n for reason, n in dict(track["decrypt_failures"]).items() if n}
        assert set(failures) == {"unknown_key"}, failures  # epochs 0-2, and nothing else went wrong
        assert track["frames_decrypted"] > 0
    report = tmp_path / "inspect.json"
    assert main(["inspect", "--json", str(report), *map(str, sorted((janus.rec_dir / str(ROOM)).glob("*.mjr")))]) == 0
    for recording in json.loads(report.read_text())["files"]:
        epochs = recording["epochs"]
        # Consecutive epochs through 4; the subscriber's join advanced the publisher once, maybe
        # before its first frame (then the recording starts at epoch 1).
        assert epochs[0] in (0, 1) and epochs == list(range(epochs[0], epochs[0] + len(epochs))), epochs
        assert 4 in epochs, epochs


async def test_a_join_advances_the_publishers_epoch_and_the_joiner_cannot_read_before_it(
    janus: JanusServer, tmp_path: Path
) -> None:
    keys = EpochKeys.from_secret(SECRET, context=b"join")
    pub = PublisherAgent(keys, moving=False)
    joiner = EpochKeys.from_export(EpochKeys.from_secret(SECRET, context=b"join", epoch=1).export_epoch())
    sub = SubscriberAgent(joiner)
    try:
        await pub.publish_janus(janus.url, JOIN_ROOM)
        await eventually(lambda: pub.frames_sent()["video"] >= 30, timeout=20, what="epoch-0 media sent")
        assert keys.epoch == 0  # alone in the room: nobody joined yet
        await sub.subscribe_janus(janus.url, JOIN_ROOM)  # Janus tells the publisher: joining
        await eventually(
            lambda: keys.epoch >= 1 and sub.decoded["video"] >= 20 and sub.decoded["audio"] >= 20,
            timeout=30,
            what="the publisher at epoch 1 after the join, the joiner decoding",
            event=sub.changed,
        )
    finally:
        await pub.close()
        await sub.close()
    assert joiner.floor == 1
    # The joiner holds no key for any epoch-0 KID (the frames sent before it joined).
    assert joiner.candidates_for(kid_v2(1, 0, joiner.current.fingerprint)) == []
    for track in sub.summary()["tracks"]:
        assert track["frames_decrypted"] > 0
        assert {reason for reason, n in dict(track["decrypt_failures"]).items() if n} <= {"unknown_key"}
    report = tmp_path / "inspect.json"
    recordings = sorted((janus.rec_dir / str(JOIN_ROOM)).glob("*.mjr"))
    assert main(["inspect", "--json", str(report), *map(str, recordings)]) == 0
    for recording in json.loads(report.read_text())["files"]:
        assert recording["epochs"][:2] == [0, 1], recording["epochs"]  # epoch 0 was sent, then 1


async def test_cli_publisher_ratchets_and_a_cli_joiner_reads_from_its_epoch_file(
    janus: JanusServer, tmp_path: Path
) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    epoch_file = tmp_path / "epoch.json"
    epoch_file.write_text(json.dumps(EpochKeys.from_secret(SECRET, context=b"cli", epoch=2).export_epoch()))
    epoch_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"}
    publisher = subprocess.Popen(
        [sys.executable, "-m", "sealrtc", "publish", "--janus", janus.url, "--room", str(ROOM), "--keying", "2",
         "--ratchet-every", "1", "--context", "cli", "--secret-file", str(secret_file), "--duration", "30", "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    report = tmp_path / "sub.json"
    try:
        subscriber = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sealrtc", "subscribe", "--janus", janus.url, "--room", str(ROOM),
            "--epoch-file", str(epoch_file), "--duration", "6", "--quiet", "--json", str(report),
            env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(subscriber.communicate(), 60)
        assert subscriber.returncode == 0, err.decode()[-2000:]
        assert SECRET not in err.decode() and json.loads(epoch_file.read_text())["key"] not in err.decode()
    finally:
        publisher.terminate()
        publisher.communicate(timeout=20)
    video = [t for t in json.loads(report.read_text())["tracks"] if t["kind"] == "video"]
    assert video and video[0]["frames_decrypted"] > 0
    assert {reason for reason, n in video[0]["decrypt_failures"].items() if n} <= {"unknown_key"}
