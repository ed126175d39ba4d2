"""The embedded relay: WHIP/WHEP system tests in the private namespace, bad requests, the demo."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.relay.server import Relay, start_relay

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    require_namespace()
    server, runner, port = await start_relay("127.0.0.1", 0, Relay(record_digests=True))
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.unit
def test_relay_never_imports_keys() -> None:
    for path in (ROOT / "client/sealrtc/relay").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any("keys" in n.split(".") or n == "SharedSecret" for n in names), path


async def test_publish_and_subscribe_with_and_without_secret(relay: tuple[Relay, str]) -> None:
    server, base = relay
    pub = PublisherAgent(SharedSecret("relay test", context=b"r1"), record_plaintext=True)
    good = SubscriberAgent(SharedSecret("relay test", context=b"r1"))
    bad = SubscriberAgent(SharedSecret("not the secret", context=b"r1"))
    try:
        await good.subscribe_whep(f"{base}/whep/room1")  # before the publisher
        await pub.publish_whip(f"{base}/whip/room1")
        await bad.subscribe_whep(f"{base}/whep/room1")
        await eventually(
            lambda: good.decoded["video"] >= 20 and good.decoded["audio"] >= 20 and len(bad.events) >= 2,
            timeout=15,
            what="20 decoded video and audio frames with the secret, two mismatch events without",
            event=(good.changed, bad.changed),
        )
        assert bad.decoded == {"video": 0, "audio": 0}
        assert {e["type"] for e in bad.events} == {"secret_mismatch"}
        assert server.stats.frames_forwarded > 0
        assert pub.plaintext_digests and not (pub.plaintext_digests & server.forwarded_digests)
    finally:
        for agent in (pub, good, bad):
            await agent.close()


async def test_h264_is_forwarded_byte_exact(relay: tuple[Relay, str]) -> None:
    """H.264 under E2EE through the relay: every frame forwarded (none lost as a "slow
    subscriber"), decoded with the secret, nothing decrypted without it."""
    server, base = relay
    pub = PublisherAgent(SharedSecret("relay h264", context=b"r2"), record_plaintext=True, video_codec="h264")
    good = SubscriberAgent(SharedSecret("relay h264", context=b"r2"))
    bad = SubscriberAgent(SharedSecret("not the secret", context=b"r2"))
    try:
        await pub.publish_whip(f"{base}/whip/h264")
        await good.subscribe_whep(f"{base}/whep/h264")
        await bad.subscribe_whep(f"{base}/whep/h264")
        await eventually(
            lambda: good.decoded["video"] >= 30 and good.decoded["audio"] >= 20 and len(bad.events) >= 2,
            timeout=20,
            what="30 decoded H.264 frames with the secret, two mismatch events without",
            event=(good.changed, bad.changed),
        )
        assert bad.decoded == {"video": 0, "audio": 0}
        assert server.stats.frames_dropped_slow_subscriber == 0
        assert good.session is not None
        video = next(t for t in good.session.stats()["tracks"] if t["kind"] == "video")
        assert video["codec"] == "video/H264" and sum(video["decrypt_failures"].values()) == 0
        assert pub.plaintext_digests and not (pub.plaintext_digests & server.forwarded_digests)
    finally:
        for agent in (pub, good, bad):
            await agent.close()


async def test_rooms_are_isolated(relay: tuple[Relay, str]) -> None:
    _, base = relay
    pub_a = PublisherAgent(SharedSecret("room a"))
    sub_a = SubscriberAgent(SharedSecret("room a"))
    sub_b = SubscriberAgent(SharedSecret("room a"))  # right secret, wrong room
    try:
        await pub_a.publish_whip(f"{base}/whip/a")
        await sub_a.subscribe_whep(f"{base}/whep/a")
        await sub_b.subscribe_whep(f"{base}/whep/b")
        await eventually(
            lambda: sub_a.decoded["video"] >= 20, timeout=15, what="20 decoded frames in room a", event=sub_a.changed
        )
        assert sub_b.session is not None
        assert all(t["frames_received"] == 0 for t in sub_b.session.stats()["tracks"])
        assert sub_b.decoded == {"video": 0, "audio": 0}
    finally:
        for agent in (pub_a, sub_a, sub_b):
            await agent.close()


async def test_abrupt_subscriber_disconnect_does_not_hurt_others(relay: tuple[Relay, str]) -> None:
    _, base = relay
    pub = PublisherAgent(SharedSecret("abrupt"))
    stays = SubscriberAgent(SharedSecret("abrupt"))
    leaves = SubscriberAgent(SharedSecret("abrupt"))
    try:
        await pub.publish_whip(f"{base}/whip/x")
        await stays.subscribe_whep(f"{base}/whep/x")
        await leaves.subscribe_whep(f"{base}/whep/x")
        await eventually(
            lambda: leaves.decoded["video"] >= 5,
            timeout=15,
            what="frames for the leaving subscriber",
            event=leaves.changed,
        )
        leaves.resource = None  # no DELETE: the peer just vanishes
        await leaves.pc.close()
        before = stays.decoded["video"]
        await eventually(
            lambda: stays.decoded["video"] >= before + 30,
            timeout=15,
            what="30 more frames for the subscriber that stays",
            event=stays.changed,
        )
        async with aiohttp.ClientSession() as http, http.get(f"{base}/stats") as response:
            assert response.status == 200
            assert (await response.json())["frames_forwarded"] > 0
    finally:
        for agent in (pub, stays, leaves):
            await agent.close()


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/whip/r", {"Content-Type": "text/plain"}, "v=0", 415),
        ("POST", "/whep/r", {"Content-Type": "application/json"}, "{}", 415),
        ("POST", "/whip/r", {"Content-Type": "application/sdp"}, "hello", 400),
        ("POST", "/whip/r", {"Content-Type": "application/sdp"}, "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", 400),
        ("POST", "/whip/bad%20room!", {"Content-Type": "application/sdp"}, "v=0", 404),
        ("DELETE", "/resource/nope", {}, "", 404),
        ("GET", "/whip/r", {}, "", 405),
        ("POST", "/whip/r", {"Content-Type": "application/sdp"}, "v=0 m=" + "x" * 70_000, 413),
    ],
)
async def test_malformed_requests(
    relay: tuple[Relay, str], method: str, path: str, headers: dict[str, str], body: str, status: int
) -> None:
    _, base = relay
    async with aiohttp.ClientSession() as http:
        async with http.request(method, base + path, headers=headers, data=body) as response:
            assert response.status == status
            assert len(await response.text()) < 500  # a short reason, no traceback
        async with http.get(base + "/stats") as response:  # and the server still works
            assert response.status == 200


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_demo_end_to_end(tmp_path: Path, codec: str) -> None:
    require_namespace()
    out = tmp_path / "demo.json"
    demo = ["demo", "--duration", "4", "--json", str(out), "--quiet", "--video-codec", codec]
    result = subprocess.run(
        [sys.executable, "-m", "sealrtc", *demo],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())
    keyed, keyless = summary["subscribers"]
    assert keyed["secret"] is True and keyed["frames_decrypted"] > 0 and keyed["frames_decoded"] > 0
    assert keyless["secret"] is False and keyless["frames_decrypted"] == 0 and keyless["frames_decoded"] == 0
    assert summary["relay"]["frames_forwarded"] > 0
    assert summary["relay"]["plaintext_frames"] == 0
    assert summary["publisher"]["plaintext_frames_recorded"] > 0


@pytest.mark.parametrize(("codec", "mime"), [("vp8", "video/VP8"), ("h264", "video/H264")])
async def test_cli_relay_publish_subscribe(tmp_path: Path, codec: str, mime: str) -> None:
    """The three commands as a user runs them, as separate processes (the subscriber after the
    publisher sends: a WHEP subscriber is answered in the codec of the room's publisher)."""
    require_namespace()
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SEALRTC_SECRET="cli relay secret")
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "sealrtc"]
    relay = subprocess.Popen(
        [*cmd, "relay", "--listen", f"127.0.0.1:{port}", "--duration", "60"], env=env, stderr=subprocess.PIPE, text=True
    )
    publisher = None
    try:
        assert relay.stderr is not None
        assert "sealrtc relay on" in relay.stderr.readline()  # printed once it listens
        publisher = subprocess.Popen(
            [*cmd, "publish", "--whip", f"{base}/whip/cli", "--duration", "30", "--video-codec", codec],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )

        async def publisher_sends() -> bool:  # another process: poll its /stats
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{base}/stats") as response:
                    return int((await response.json())["frames_received"]) > 0
            except aiohttp.ClientError:
                return False

        await eventually(publisher_sends, timeout=30, what="the publisher sending through the relay")
        out = tmp_path / "sub.json"
        result = subprocess.run(
            [*cmd, "subscribe", "--whep", f"{base}/whep/cli", "--duration", "3", "--json", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads(out.read_text())
        assert summary["frames_decrypted"] > 0 and summary["frames_decoded"] > 0
        assert {t["kind"] for t in summary["tracks"]} == {"audio", "video"}
        assert next(t for t in summary["tracks"] if t["kind"] == "video")["codec"] == mime
        assert "cli relay secret" not in result.stderr + result.stdout
    finally:
        for process in (publisher, relay):
            if process is not None:
                process.terminate()
                process.wait(15)


async def test_a_receive_only_offer_cannot_take_a_room_over(relay: tuple[Relay, str]) -> None:
    """A subscriber pointed at /whip/ by mistake must not become the room's (silent) publisher."""
    from sealrtc.signaling.whip import SignalingError, whip_publish

    from .rtc_helpers import new_pc

    server, base = relay
    pc = new_pc()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    try:
        with pytest.raises(SignalingError, match="sends no media: to receive, POST it to /whep/ROOM"):
            await whip_publish(pc, f"{base}/whip/quiet")
    finally:
        await pc.close()
    assert server.stats.publishers == 0
