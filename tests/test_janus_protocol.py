"""The Janus client against a scripted fake server: malformed replies and stalled handshakes.

Each case is a reply (or event) a hostile or broken server can send. The client must turn it into
a one-line :class:`JanusError` — never an AttributeError/KeyError/ValueError — and a malformed
asynchronous event must neither close the session nor end the subscriber's follower task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sealrtc.signaling import janus as janus_module
from sealrtc.signaling.janus import JanusError, JanusSession, VideoRoomPublisher, VideoRoomSubscriber

from .rtc_helpers import new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

Reply = Callable[[dict[str, Any]], list[Any]]
LISTENER_HANDLE, SESSION_ID = 20, 10


def standard(message: dict[str, Any]) -> list[Any]:
    """A minimal well-behaved Janus: create, attach, listener join, keepalive, detach, destroy."""
    t = message.get("transaction")
    kind = message.get("janus")
    if kind == "create":
        return [{"janus": "success", "transaction": t, "data": {"id": SESSION_ID}}]
    if kind == "attach":
        return [{"janus": "success", "transaction": t, "data": {"id": LISTENER_HANDLE}}]
    if kind == "message":
        body = message.get("body", {})
        if body.get("request") == "join" and body.get("ptype") == "publisher":
            data = {"videoroom": "joined", "id": 555, "publishers": []}
            return [{"janus": "ack", "transaction": t}, event(t, data)]
        return [event(t, {"videoroom": "event", "error_code": 428, "error": "No such feed"})]
    return [{"janus": "success" if kind in ("detach", "destroy") else "ack", "transaction": t}]


def event(transaction: str | None, data: Any, sender: Any = LISTENER_HANDLE) -> dict[str, Any]:
    message = {"janus": "event", "sender": sender, "plugindata": {"plugin": "janus.plugin.videoroom", "data": data}}
    if transaction is not None:
        message["transaction"] = transaction
    return message


class FakeJanus:
    def __init__(self) -> None:
        self.reply: Reply = standard
        self.sockets: list[web.WebSocketResponse] = []
        self.received: list[dict[str, Any]] = []

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("janus-protocol",))
        await ws.prepare(request)
        self.sockets.append(ws)
        async for msg in ws:
            message = json.loads(msg.data)
            self.received.append(message)
            for out in self.reply(message):
                await ws.send_str(out if isinstance(out, str) else json.dumps(out))
        return ws

    async def push(self, *messages: Any) -> None:
        """Send unsolicited messages (events) to every connected client."""
        for ws in self.sockets:
            for out in messages:
                await ws.send_str(out if isinstance(out, str) else json.dumps(out))


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeJanus, str]]:
    require_namespace()
    server = FakeJanus()
    app = web.Application()
    app.add_routes([web.get("/", server.handler)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"ws://127.0.0.1:{port}/"
    for ws in server.sockets:
        await ws.close()
    await runner.cleanup()


def replacing(kind: str, replacement: Callable[[str], list[Any]]) -> Reply:
    def reply(message: dict[str, Any]) -> list[Any]:
        if message.get("janus") == kind:
            return replacement(message["transaction"])
        return standard(message)

    return reply


def assert_clean(error: JanusError) -> None:
    text = str(error)
    assert text and "\n" not in text and len(text) < 300
    assert error.__cause__ is None


@pytest.mark.parametrize(
    "create_reply",
    [
        lambda t: [{"janus": "success", "transaction": t}],  # no data
        lambda t: [{"janus": "success", "transaction": t, "data": {}}],  # no data.id
        lambda t: [{"janus": "success", "transaction": t, "data": {"id": "abc"}}],
        lambda t: [{"janus": "success", "transaction": t, "data": []}],
        lambda t: [{"janus": "error", "transaction": t, "error": "boom"}],
        lambda t: [{"janus": "error", "transaction": t, "error": {"code": "x"}}],
        lambda t: [{"janus": "error", "transaction": t, "error": {"code": 0, "reason": ["a\nb"]}}],
        lambda t: [{"janus": "error", "transaction": t}],
    ],
)
async def test_malformed_create_replies_are_janus_errors(
    fake: tuple[FakeJanus, str], create_reply: Callable[[str], list[Any]]
) -> None:
    server, url = fake
    server.reply = replacing("create", create_reply)
    with pytest.raises(JanusError) as info:
        await JanusSession.connect(url, timeout=5)
    assert_clean(info.value)


async def test_well_formed_error_keeps_code(fake: tuple[FakeJanus, str]) -> None:
    server, url = fake
    server.reply = replacing(
        "attach", lambda t: [{"janus": "error", "transaction": t, "error": {"code": 460, "reason": "No such plugin"}}]
    )
    session = await JanusSession.connect(url, timeout=5)
    try:
        with pytest.raises(JanusError) as info:
            await session.attach()
        assert info.value.code == 460 and str(info.value) == "Janus error 460: No such plugin"
    finally:
        await session.close()


@pytest.mark.parametrize(
    "join_reply",
    [
        lambda t: [{"janus": "event", "transaction": t, "plugindata": []}],
        lambda t: [{"janus": "event", "transaction": t, "plugindata": {"data": "x"}}],
        lambda t: [event(t, {"videoroom": "joined"})],  # join reply without id
        lambda t: [event(t, {"videoroom": "joined", "id": "7"})],
        lambda t: [event(t, {"error_code": "x", "error": {"nested": True}})],
    ],
)
async def test_malformed_join_replies_are_janus_errors(
    fake: tuple[FakeJanus, str], join_reply: Callable[[str], list[Any]]
) -> None:
    server, url = fake
    server.reply = replacing("message", join_reply)
    session = await JanusSession.connect(url, timeout=5)
    try:
        with pytest.raises(JanusError) as info:
            await VideoRoomPublisher(session, 1).publish(new_pc(), e2ee=True)
        assert_clean(info.value)
        with pytest.raises(JanusError) as info:
            await VideoRoomSubscriber(session, 1).start()
        assert_clean(info.value)
        assert not session.closed.is_set()
    finally:
        await session.close()


async def test_publish_answer_without_sdp_is_a_janus_error(fake: tuple[FakeJanus, str]) -> None:
    server, url = fake

    def reply(message: dict[str, Any]) -> list[Any]:
        if message.get("body", {}).get("request") == "publish":
            return [{**event(message["transaction"], {"configured": "ok"}), "jsep": {"type": "answer"}}]
        return standard(message)

    server.reply = reply
    session = await JanusSession.connect(url, timeout=5)
    pc = new_pc()
    pc.addTransceiver("audio", direction="sendonly")
    try:
        with pytest.raises(JanusError, match="SDP answer"):
            await VideoRoomPublisher(session, 1).publish(pc, e2ee=True)
    finally:
        await pc.close()
        await session.close()


async def test_malformed_events_do_not_end_the_session_or_the_follower(fake: tuple[FakeJanus, str]) -> None:
    server, url = fake
    session = await JanusSession.connect(url, timeout=5)
    room = VideoRoomSubscriber(session, 1)
    try:
        await room.start()
        assert room._task is not None
        await server.push(
            "[1, 2, 3]",  # JSON, but not an object
            '"just a string"',
            "42",
            "not json at all",
            event(None, {"publishers": "nope"}),
            event(None, {"publishers": [{"id": "abc"}, {"id": 1.5}, "x", {"id": True}]}),
            event(None, {"publishers": []}, sender="20"),  # sender that is not an int
            event(None, {"publishers": []}, sender=[20]),
            {"janus": "event", "sender": LISTENER_HANDLE, "plugindata": []},
            event(None, {"publishers": [{"id": 9001}]}),  # a valid one: Janus refuses it (428)
        )

        # The valid announcement makes the follower try to subscribe: its error shows it got there.
        await eventually(
            lambda: any(e.code == 428 for e in room.errors), timeout=10, what="the follower to try feed 9001"
        )
        assert not room._task.done()
        assert not session.closed.is_set()
        assert 9001 not in room.feeds  # the failed subscription was cleaned up
        kinds = [e.code for e in room.errors]
        assert kinds.count(janus_module.PROTOCOL_ERROR) == 3  # "nope", the bad entries, plugindata []
        assert all("\n" not in str(e) for e in room.errors)
        await session.request({"janus": "keepalive"}, timeout=5)  # the session still works
    finally:
        await room.close()
        await session.close()


class ClosedTracker:
    """Records every aiohttp.ClientSession the client creates, to check it is always closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sessions: list[aiohttp.ClientSession] = []
        real = aiohttp.ClientSession

        def make(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
            session = real(*args, **kwargs)
            self.sessions.append(session)
            return session

        monkeypatch.setattr(janus_module.aiohttp, "ClientSession", make)


async def test_stalled_websocket_handshake_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11.8: a server that accepts TCP and never answers blocked connect for 301 s."""
    require_namespace()
    tracker = ClosedTracker(monkeypatch)
    held: list[asyncio.StreamWriter] = []
    accepted = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing
        accepted.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(JanusError, match="did not complete the WebSocket handshake") as info:
            await asyncio.wait_for(JanusSession.connect(f"ws://127.0.0.1:{port}/", timeout=1), 60)
        assert_clean(info.value)
        assert accepted.is_set()
        assert tracker.sessions and all(s.closed for s in tracker.sessions)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_silent_janus_after_upgrade_times_out_and_closes(
    fake: tuple[FakeJanus, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = fake
    tracker = ClosedTracker(monkeypatch)
    server.reply = lambda message: []  # upgrades, then never answers
    with pytest.raises(JanusError, match="did not answer create"):
        await asyncio.wait_for(JanusSession.connect(url, timeout=1), 60)
    assert tracker.sessions and all(s.closed for s in tracker.sessions)


@pytest.mark.unit
def test_default_deadline_is_seconds() -> None:
    assert 1 <= janus_module.DEFAULT_TIMEOUT <= 30


async def test_error_reasons_reach_the_terminal_as_one_clean_line(fake: tuple[FakeJanus, str]) -> None:
    server, url = fake
    reason = "\x1b[2J\x1b]0;owned\x07No such [blink]plugin[/blink]\nsealrtc publish: OK: fake" + "x" * 10_000
    server.reply = replacing(
        "attach", lambda t: [{"janus": "error", "transaction": t, "error": {"code": 460, "reason": reason}}]
    )
    session = await JanusSession.connect(url, timeout=5)
    try:
        with pytest.raises(JanusError) as info:
            await session.attach()
    finally:
        await session.close()
    text = str(info.value)
    assert_clean(info.value)
    assert "\x1b" not in text and "\x07" not in text and text.startswith("Janus error 460: \\x1b[2J\\x1b]0;owned")


async def test_a_message_over_the_bound_closes_the_session_with_a_reason(fake: tuple[FakeJanus, str]) -> None:
    server, url = fake
    session = await JanusSession.connect(url, timeout=5)
    try:
        huge = json.dumps({"janus": "event", "session_id": SESSION_ID, "pad": "x" * (janus_module.MAX_MESSAGE + 1)})
        await server.push(huge)
        await asyncio.wait_for(session.closed.wait(), 10)
        reason = await session.lost()
        assert "unusable message" in reason and "\n" not in reason and len(reason) < 300
    finally:
        await session.close()
