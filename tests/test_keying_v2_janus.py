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
from sealrtc.epochs import EpochKeys
from sealrtc.testing.janus_server import JanusServer, RoomConfig, cleanup, start_janus

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = [pytest.mark.network, pytest.mark.janus]

ROOM = 1901
SECRET = "janus epochs"


@pytest.fixture
async def janus() -> AsyncIterator[JanusServer]:
    require_namespace()
    server = await start_janus([RoomConfig(ROOM, require_e2ee=True, record=True)])
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
        assert recording["epochs"][:5] == [0, 1, 2, 3, 4], recording["epochs"]
