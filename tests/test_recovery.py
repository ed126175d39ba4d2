"""Agents that recover: the relay stopped and started again on the same port mid-run.

The publisher and the subscriber notice the loss, reconnect with backoff (DELETE the stale
resource, POST again), and the subscriber decrypts again on a new connection with a new replay
window: its report counts one reconnect, a time to recover and the outage; no frame is accepted
twice. (Without a server to come back to, the run fails once ``--recover-within`` has passed:
test_agents_cli's dead-server test.)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.relay.server import Relay, start_relay

from .rtc_helpers import require_namespace
from .test_agents_cli import relay_stats, sealrtc
from .waiting import eventually

pytestmark = pytest.mark.network


def decrypted(sub: SubscriberAgent) -> int:
    return sub.totals()["frames_decrypted"]


async def test_agents_recover_when_the_relay_restarts_on_the_same_port() -> None:
    require_namespace()
    _, runner, port = await start_relay("127.0.0.1", 0, Relay())
    base = f"http://127.0.0.1:{port}"
    keys = SharedSecret("recovering")
    pub = PublisherAgent(keys, probe=True, recover_within=30)
    sub = SubscriberAgent(keys, decode=False, recover_within=30)
    try:
        await pub.publish_whip(f"{base}/whip/r")
        await sub.subscribe_whep(f"{base}/whep/r")
        await eventually(lambda: decrypted(sub) >= 30, timeout=30, what="30 frames decrypted", event=sub.changed)
        await runner.cleanup()
        await eventually(
            lambda: pub.recovery.lost_at is not None and sub.recovery.lost_at is not None,
            timeout=30,
            what="both agents noticing the relay is gone",
        )
        before = decrypted(sub)
        _, runner, _ = await start_relay("127.0.0.1", port, Relay())

        def recovered() -> bool:
            sub.refresh()
            return sub.recovery.time_to_recover.count == 1 and decrypted(sub) > before + 30

        await eventually(recovered, timeout=40, what="the subscriber decrypting again after the restart")
        assert not pub.failed.is_set() and not sub.failed.is_set(), (pub.failure, sub.failure)
        assert pub.recovery.reconnects == 1 and sub.recovery.reconnects == 1
        report = sub.summary()["recovery"]
        assert report["reconnects"] == 1 and report["time_to_recover_ms"]["count"] == 1
        assert report["outage_ms"]["total"] > 0 and not report["recovering"]
        assert len(sub.sessions) == 2  # a new connection, a new receiver, a new replay window
        for track in sub.track_stats():  # before and after the outage: nothing accepted twice
            assert track["decrypt_failures"]["replayed"] == 0 and sum(track["decrypt_failures"].values()) == 0
        # The frames the outage cost, counted apart: the publisher's video stream kept its id and
        # numbering across both reconnects, so the count is exact (probes matched) and about the
        # outage at the pattern's 30 fps; the loss on the working links stays near nothing.
        await eventually(lambda: not sub.recovery.awaiting_probes, timeout=10, what="video on the new connection")
        report = sub.summary()["recovery"]
        outage_s = report["outage_ms"]["total"] / 1000
        assert report["frames_missed_estimated"] is False
        assert 0.3 * outage_s * 30 <= report["frames_missed"] <= 3 * outage_s * 30, (report, outage_s)
        video = [t for t in sub.track_stats() if t["kind"] == "video"]
        assert len(video) == 2 and video[0]["probe_streams"] == video[1]["probe_streams"]
        assert sum(t["frames_lost"] for t in sub.track_stats()) <= 5, sub.track_stats()
        published = pub.summary()["recovery"]
        assert published["reconnects"] == 1 and "frames_missed" not in published
        # The outage's frames were skipped, not sent in a burst on the new connection.
        assert published["frames_not_sent"]["video"] > 0 and published["frames_not_sent"]["audio"] > 0
    finally:
        await asyncio.wait_for(asyncio.gather(pub.close(), sub.close()), 20)
        await runner.cleanup()


async def start_relay_process(port: int) -> asyncio.subprocess.Process:
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "relay", "--listen", f"127.0.0.1:{port}", stderr=asyncio.subprocess.PIPE
    )
    assert relay.stderr is not None
    line = await asyncio.wait_for(relay.stderr.readline(), 30)  # "sealrtc relay on ...": listening
    assert b"sealrtc relay on" in line
    return relay


async def test_cli_agents_recover_from_a_killed_and_restarted_relay(tmp_path: Path) -> None:
    require_namespace()
    port = 18473
    relay = await start_relay_process(port)
    base = f"http://127.0.0.1:{port}"
    pub = await sealrtc("publish", "--whip", f"{base}/whip/x", "--probe", "--duration", "30",
                        json_path=tmp_path / "p.json")  # fmt: skip
    sub = await sealrtc("subscribe", "--whep", f"{base}/whep/x", "--no-decode", "--duration", "26",
                        json_path=tmp_path / "s.json")  # fmt: skip

    async def forwarded(count: int) -> bool:
        try:
            return int((await relay_stats(base))["frames_forwarded"]) >= count
        except OSError:
            return False

    try:
        await eventually(lambda: forwarded(30), timeout=30, what="30 frames forwarded to the subscriber")
        relay.kill()
        await relay.wait()
        # Down for longer than the agents' check (two refused looks, ~4 s): both notice.
        await asyncio.sleep(6)  # the outage itself: the thing under test is its length
        relay = await start_relay_process(port)
        await eventually(lambda: forwarded(30), timeout=30, what="30 frames forwarded after the restart")
        await sub.wait(timeout=60)
        await pub.wait(timeout=60)
    finally:
        relay.kill()
        await relay.wait()
    for run in (sub, pub):
        assert run.returncode == 0, run.stderr
        assert run.report["recovery"]["reconnects"] == 1, run.report["recovery"]
        assert "lost the server 1 time(s): 1 reconnect(s)" in run.stderr
    ttr = sub.report["recovery"]["time_to_recover_ms"]
    assert ttr["count"] == 1 and ttr["max"] > 1000, ttr
    assert sub.report["histograms"]["time_to_recover_ms"]
    assert sum(sum(t["decrypt_failures"].values()) for t in sub.report["tracks"]) == 0
    recovery = sub.report["recovery"]  # the frames the outage cost, told apart from loss on a link
    outage_s = recovery["outage_ms"]["total"] / 1000
    assert 0.3 * outage_s * 30 <= recovery["frames_missed"] <= 3 * outage_s * 30, recovery
    assert recovery["frames_missed_estimated"] is False
    assert f"{recovery['frames_missed']} video frame(s) missed during outages" in sub.stderr
