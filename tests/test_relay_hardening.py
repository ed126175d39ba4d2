"""Attacks on the embedded relay (issue 11, items 1-4), each reproduced against the real relay.

Real aiortc peers and real HTTP in the private namespace. Deadlines are short (2 s) and waited
for on the relay's ``changed`` event with a bounded wait, never with a fixed sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.relay import BearerTokens, TokenError, load_tokens
from sealrtc.relay.guard import RateLimitFilter, install_log_limits
from sealrtc.relay.server import Relay, start_relay
from sealrtc.signaling.whip import SignalingError, delete_resource, whep_subscribe, whip_publish

from .conftest import FakeClock
from .rtc_helpers import new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parent.parent


async def serve(**options: object) -> tuple[Relay, aiohttp.web.AppRunner, str]:
    require_namespace()
    relay, runner, port = await start_relay("127.0.0.1", 0, **options)  # type: ignore[arg-type]
    return relay, runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def fast_relay() -> AsyncIterator[tuple[Relay, str]]:
    relay, runner, base = await serve(negotiation_timeout=2.0)
    yield relay, base
    await runner.cleanup()


@pytest.fixture
async def newest_relay() -> AsyncIterator[tuple[Relay, str]]:
    """The ``newest`` policy, asked for explicitly (the default is ``first``)."""
    relay, runner, base = await serve(negotiation_timeout=2.0, publisher_policy="newest")
    yield relay, base
    await runner.cleanup()


async def video_at_least(sub: SubscriberAgent, frames: int) -> None:
    await eventually(
        lambda: sub.decoded["video"] >= frames, timeout=20, what=f"{frames} decoded video frames", event=sub.changed
    )


async def relay_until(relay: Relay, predicate: Callable[[], bool], what: str) -> None:
    """Wait on the relay's own change event until ``predicate()`` holds."""
    await eventually(predicate, timeout=20, what=what, event=relay.changed)


async def silent_offer() -> str:
    """A real aiortc offer with every ICE candidate removed: it can never connect."""
    pc = new_pc()
    pc.addTransceiver("video", direction="sendonly")
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    lines = [line for line in sdp.splitlines() if not line.startswith(("a=candidate", "a=end-of-candidates"))]
    return "\r\n".join(lines) + "\r\n"


async def post(url: str, body: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers={"Content-Type": "application/sdp", **(headers or {})}) as r:
            return r.status, await r.text(), dict(r.headers)


# -- 1. room hijack ----------------------------------------------------------------------------


async def test_unconnected_publisher_cannot_silence_a_room(newest_relay: tuple[Relay, str]) -> None:
    """One candidate-free WHIP POST used to take the room over for good (newest wins)."""
    relay, base = newest_relay
    keys = SharedSecret("hijack")
    pub, sub = PublisherAgent(keys), SubscriberAgent(keys)
    try:
        await pub.publish_whip(f"{base}/whip/h")
        await sub.subscribe_whep(f"{base}/whep/h")
        await video_at_least(sub, 10)
        status, _, _ = await post(f"{base}/whip/h", await silent_offer())
        assert status == 201  # open relay: accepted, but it must not take over
        await video_at_least(sub, sub.decoded["video"] + 30)
        await relay_until(relay, lambda: relay.stats.sessions_timed_out == 1, "the silent publisher to time out")
        room = relay.rooms["h"]
        assert len(room.publishers) == 1 and room.active is not None and room.active.connected
        await video_at_least(sub, sub.decoded["video"] + 10)
    finally:
        for agent in (pub, sub):
            await agent.close()


async def test_newest_connected_publisher_takes_over(newest_relay: tuple[Relay, str]) -> None:
    relay, base = newest_relay
    keys = SharedSecret("takeover")
    first, second = PublisherAgent(keys), PublisherAgent(keys)
    try:
        await first.publish_whip(f"{base}/whip/t")
        await relay_until(relay, lambda: relay.rooms["t"].active is not None, "the first publisher to connect")
        first_id = relay.rooms["t"].active.id  # type: ignore[union-attr]
        await second.publish_whip(f"{base}/whip/t")
        await relay_until(
            relay,
            lambda: relay.rooms["t"].active.id != first_id,  # type: ignore[union-attr]
            "the second publisher to take over",
        )
        assert second.resource is not None and second.resource.endswith(relay.rooms["t"].active.id)  # type: ignore[union-attr]
        await second.close()  # the room falls back to the publisher still connected
        await relay_until(
            relay,
            lambda: relay.rooms["t"].active.id == first_id,  # type: ignore[union-attr]
            "the room to fall back to the first publisher",
        )
    finally:
        for agent in (first, second):
            await agent.close()


async def test_first_policy_keeps_the_rooms_publisher() -> None:
    relay, runner, base = await serve(negotiation_timeout=2.0, publisher_policy="first")
    keys = SharedSecret("first")
    owner = PublisherAgent(keys)
    try:
        await owner.publish_whip(f"{base}/whip/f")
        await relay_until(relay, lambda: relay.rooms["f"].active is not None, "the room's publisher to connect")
        status, text, _ = await post(f"{base}/whip/f", await silent_offer())
        assert status == 409 and "publisher" in text
        assert relay.stats.publishers_refused == 1
    finally:
        await owner.close()
        await runner.cleanup()


# -- 1. bearer tokens --------------------------------------------------------------------------


async def test_bearer_tokens_guard_publish_subscribe_and_delete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "pub").write_text("# publishers\npub-token-1\n\npub-token-2\n")
    relay, runner, base = await serve(
        negotiation_timeout=5.0, publish_tokens=load_tokens(tmp_path / "pub"), subscribe_tokens=["sub-token"]
    )
    offer = await silent_offer()
    try:
        for url, headers in [
            (f"{base}/whip/a", {}),
            (f"{base}/whip/a", {"Authorization": "Bearer wrong"}),
            (f"{base}/whip/a", {"Authorization": "Basic cHViLXRva2VuLTE="}),
            (f"{base}/whip/a", {"Authorization": "Bearer sub-token"}),  # a viewer cannot publish
            (f"{base}/whep/a", {"Authorization": "Bearer pub-token-1"}),  # nor a publisher view
            (f"{base}/whip/a", {"Authorization": "Bearer pub-token-1x"}),
        ]:
            status, text, response_headers = await post(url, offer, headers)
            assert status == 401, (url, headers)
            assert response_headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in text and "pub-token" not in text and "sub-token" not in text
        assert relay.rooms == {} and relay.stats.requests_unauthorized == 6

        pc = new_pc()
        pc.addTransceiver("video", direction="sendonly")
        with pytest.raises(SignalingError, match="401"):
            await whip_publish(pc, f"{base}/whip/a", token="nope")
        await pc.close()
        pc = new_pc()
        pc.addTransceiver("video", direction="sendonly")
        resource = await whip_publish(pc, f"{base}/whip/a", token="pub-token-2")
        viewer = new_pc()
        viewer_resource = await whep_subscribe(viewer, f"{base}/whep/a", token="sub-token")
        assert len(relay.rooms["a"].publishers) == 1 and len(relay.rooms["a"].subscribers) == 1
        async with aiohttp.ClientSession() as http:
            async with http.delete(resource) as response:
                assert response.status == 401
            async with http.delete(resource, headers={"Authorization": "Bearer sub-token"}) as response:
                assert response.status == 401  # the subscribe token cannot end a publisher
            async with http.delete(f"{base}/resource/nope") as response:
                assert response.status == 401  # no probing of resource ids without a token
        await delete_resource(resource, token="pub-token-1")
        await delete_resource(viewer_resource, token="sub-token")
        assert relay.rooms == {}
        await pc.close()
        await viewer.close()
        assert "pub-token" not in caplog.text and "sub-token" not in caplog.text  # never logged
        assert "pub-token" not in repr(vars(relay)) and "sub-token" not in repr(vars(relay))
    finally:
        await runner.cleanup()


@pytest.mark.unit
def test_token_loading(tmp_path: Path) -> None:
    assert load_tokens() is None
    assert load_tokens(env="X_TOKEN", environ={}) is None
    tokens = load_tokens(env="X_TOKEN", environ={"X_TOKEN": "alpha beta"})
    assert tokens is not None and tokens.accepts("Bearer beta") and tokens.accepts("bearer alpha")
    assert not tokens.accepts("Bearer gamma") and not tokens.accepts(None) and not tokens.accepts("Bearer")
    assert "alpha" not in repr(tokens)
    (tmp_path / "empty").write_text("# nothing\n\n")
    with pytest.raises(TokenError, match="no bearer token"):
        load_tokens(tmp_path / "empty")
    (tmp_path / "bad").write_text("has space\n")
    with pytest.raises(TokenError) as info:
        load_tokens(env="X_TOKEN", environ={"X_TOKEN": "ok bad\x01token"})
    assert "bad\x01token" not in str(info.value)
    with pytest.raises(TokenError, match="cannot read"):
        load_tokens(tmp_path / "missing")
    with pytest.raises(TokenError):
        BearerTokens([])
    with pytest.raises(TokenError):
        Relay(publish_tokens="a-single-string")


# -- 2. resource exhaustion --------------------------------------------------------------------


async def test_session_limits_and_negotiation_deadline() -> None:
    """Never-connecting sessions used to hold their descriptors forever, without limit."""
    relay, runner, base = await serve(negotiation_timeout=2.0, max_sessions=3, max_sessions_per_room=2)
    offer = await silent_offer()
    fds_before = open_fds()
    try:
        assert (await post(f"{base}/whip/a", offer))[0] == 201
        assert (await post(f"{base}/whep/a", offer.replace("sendonly", "recvonly")))[0] == 201
        status, text, headers = await post(f"{base}/whip/a", offer)
        assert status == 503 and "room is full" in text and "Retry-After" in headers
        assert (await post(f"{base}/whip/b", offer))[0] == 201
        status, text, _ = await post(f"{base}/whip/c", offer)
        assert status == 503 and "relay is full" in text
        assert relay.sessions == 3 and set(relay.rooms) == {"a", "b"}
        assert open_fds() > fds_before  # each pending session holds descriptors...
        await relay_until(relay, lambda: relay.sessions == 0, "the deadline to close all three sessions")
        assert relay.stats.sessions_timed_out == 3 and relay.rooms == {}
        assert open_fds() <= fds_before  # ...and gives them back
        assert (await post(f"{base}/whip/c", offer))[0] == 201  # room for real users again
    finally:
        await runner.cleanup()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def open_raw(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_slow_and_idle_connections_are_dropped() -> None:
    relay, runner, base = await serve(idle_timeout=1.0, header_timeout=1.0, body_timeout=1.0)
    try:
        idle = await open_raw(base)  # sends nothing
        half = await open_raw(base)  # half a request line, then nothing
        half[1].write(b"POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Ty")
        body = await open_raw(base)  # headers, then a body that never completes
        body[1].write(
            b"POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100\r\n\r\nv=0"
        )
        for reader, _ in (idle, half):
            assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the relay
        answer = await asyncio.wait_for(body[0].read(), 30)
        assert answer.startswith(b"HTTP/1.1 408")
        assert relay.stats.connections_timed_out >= 2 and relay.rooms == {}  # the guard closed them
        for _, writer in (idle, half, body):
            writer.close()
        async with aiohttp.ClientSession() as http, http.get(base + "/stats") as response:
            assert response.status == 200  # still serving
    finally:
        await runner.cleanup()


async def test_connection_cap() -> None:
    relay, runner, base = await serve(max_connections=2)
    held = [await open_raw(base) for _ in range(2)]
    try:
        reader, writer = await open_raw(base)
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        assert relay.stats.connections_refused == 1
    finally:
        for _, w in held:
            w.close()
        await runner.cleanup()


@pytest.mark.unit
def test_error_logs_are_rate_limited(clock: FakeClock) -> None:
    limiter = RateLimitFilter(interval=10.0, clock=clock)
    message = "socket.accept() out of system resource"
    record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message + "\nsocket: <fd=6>", (), None)
    passed = [limiter.filter(record) for _ in range(10_000)]
    assert passed.count(True) == 1
    clock.advance(10)
    later = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, (), None)
    assert limiter.filter(later) and "9999 similar messages suppressed" in later.getMessage()
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", (), None)
    assert limiter.filter(other)
    install_log_limits()
    install_log_limits()
    assert sum(isinstance(f, RateLimitFilter) for f in logging.getLogger("asyncio").filters) == 1


# -- 3. leftovers and crashes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/sdp; charset=bogus", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", 415),
        ("application/sdp; charset=latin-1", "v=0\r\nm=", 415),
        ("application/sdp", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", 400),
        ("application/sdp; charset=UTF-8", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 400),
    ],
)
async def test_refused_offers_leave_no_room_and_no_traceback(
    fast_relay: tuple[Relay, str], content_type: str, body: str, status: int
) -> None:
    relay, base = fast_relay
    for path in ("/whip/left", "/whep/left"):
        got, text, _ = await post(base + path, body, {"Content-Type": content_type})
        assert got == status and "Traceback" not in text and len(text) < 500
    assert relay.rooms == {} and relay.sessions == 0


# -- 4. the relay never loads keys -------------------------------------------------------------


@pytest.mark.unit
def test_importing_the_relay_loads_no_key_material_module() -> None:
    """A fresh interpreter: the relay's whole import graph must leave sealrtc.keys unloaded."""
    code = textwrap.dedent(
        """
        import sys
        import sealrtc.relay
        from sealrtc.relay.server import Relay, start_relay
        Relay()
        loaded = sorted(m for m in sys.modules if m.startswith("sealrtc."))
        assert "sealrtc.keys" not in sys.modules, loaded
        assert "sealrtc.transform" not in sys.modules, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.unit
def test_importing_sealrtc_itself_loads_no_key_module() -> None:
    """The package ``__init__`` used to import keys and transform eagerly (and with them every
    subpackage import, the relay's included); its names are now loaded on first use."""
    code = textwrap.dedent(
        """
        import sys
        import sealrtc
        import sealrtc.errors
        assert not {"sealrtc.keys", "sealrtc.transform", "sealrtc.sframe"} & set(sys.modules), sorted(sys.modules)
        assert sealrtc.SharedSecret.__module__ == "sealrtc.keys" and sealrtc.sframe.decode_header
        from sealrtc import FrameDecryptor, InvalidSecret, attach
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
