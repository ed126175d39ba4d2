"""A Janus WebSocket API client (subprotocol ``janus-protocol``) and the VideoRoom plugin.

* :class:`JanusSession` — one Janus session over one WebSocket: transactions registered before
  sending (events may beat their ``ack``), asynchronous events routed to plugin handles,
  keepalives every 25 s, clean detach/destroy, timeouts.
* :class:`JanusError` — Janus' numeric code and reason (e.g. 426 no such room, 433 room
  requires end-to-end encrypted media).
* :class:`VideoRoomPublisher` / :class:`VideoRoomSubscriber` — join, publish with
  ``"e2ee": true`` in the **jsep** (where Janus looks for it), subscribe to every publisher and
  follow publishers who join and leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ..errors import SealError

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
KEEPALIVE_INTERVAL = 25.0
DEFAULT_TIMEOUT = 10.0


class JanusError(SealError):
    """Janus (or its plugin) refused a request, or the connection failed."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason if code == CONNECTION_FAILED else f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


CONNECTION_FAILED = 0
"""Pseudo-code for transport failures (unreachable, closed, timed out)."""


class JanusHandle:
    """A plugin handle: send messages, read asynchronous plugin events from :attr:`events`."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)

    def _deliver(self, message: dict[str, Any]) -> None:
        if self.events.full():
            self.events.get_nowait()  # bounded: the oldest unread event is dropped
        self.events.put_nowait(message)

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin message; return the plugin's data and jsep (raising plugin errors)."""
        request: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.session.request(request, timeout=timeout)
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data or "error" in data:
            raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "plugin error")))
        return data, reply.get("jsep")

    async def detach(self) -> None:
        with contextlib.suppress(JanusError):
            await self.session.request({"janus": "detach", "handle_id": self.id}, timeout=3)
        self.session._handles.pop(self.id, None)


class JanusSession:
    """A Janus session on its own WebSocket. Use :meth:`connect`, then :meth:`close`."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._http = http
        self._ws = ws
        self.id = 0
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._closed = asyncio.Event()
        self.closed_reason: str | None = None
        self._reader = asyncio.ensure_future(self._read())
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> JanusSession:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(
                url, protocols=("janus-protocol",), timeout=aiohttp.ClientWSTimeout(ws_close=timeout), heartbeat=None
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await http.close()
            raise JanusError(CONNECTION_FAILED, f"cannot reach Janus at {url}: {exc.__class__.__name__}") from None
        session = cls(http, ws)
        try:
            reply = await session.request({"janus": "create"}, timeout=timeout, in_session=False)
        except BaseException:
            await session.close()
            raise
        session.id = int(reply["data"]["id"])
        session._keepalive = asyncio.ensure_future(session._keep_alive())
        return session

    @property
    def closed(self) -> asyncio.Event:
        """Set when the WebSocket closed (Janus stopped, network failure, or :meth:`close`)."""
        return self._closed

    async def lost(self) -> str:
        """Wait until the connection closes; return a one-line reason for the user."""
        await self._closed.wait()
        return f"lost the connection to Janus ({self.closed_reason})"

    async def request(
        self, message: dict[str, Any], *, timeout: float = DEFAULT_TIMEOUT, in_session: bool = True
    ) -> dict[str, Any]:
        if self._closed.is_set():
            raise JanusError(CONNECTION_FAILED, f"connection to Janus closed ({self.closed_reason})")
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future  # registered before sending: events can beat the ack
        payload = dict(message, transaction=transaction)
        if in_session:
            payload["session_id"] = self.id
        try:
            await self._ws.send_json(payload)
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            what = message.get("janus")
            raise JanusError(CONNECTION_FAILED, f"Janus did not answer {what} within {timeout:.0f} s") from None
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise JanusError(CONNECTION_FAILED, f"connection to Janus failed: {exc.__class__.__name__}") from None
        finally:
            self._pending.pop(transaction, None)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown error")))
        return reply

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]))
        self._handles[handle.id] = handle
        return handle

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = msg.json()
                except ValueError:
                    continue
                self._dispatch(message)
            self.closed_reason = "closed by Janus"
        except Exception as exc:  # the reader must end cleanly whatever happens
            self.closed_reason = f"{exc.__class__.__name__}"
        finally:
            self._closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(JanusError(CONNECTION_FAILED, "connection to Janus closed"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        if kind == "ack":
            return
        future = self._pending.get(str(message.get("transaction", "")))
        if future is not None and not future.done() and kind in ("success", "error", "event"):
            future.set_result(message)
            return
        handle = self._handles.get(int(message.get("sender", 0) or 0))
        if handle is not None:
            handle._deliver(message)

    async def _keep_alive(self) -> None:
        while not self._closed.is_set():
            await asyncio.sleep(KEEPALIVE_INTERVAL)  # Janus' session_timeout is 60 s
            try:
                await self.request({"janus": "keepalive"}, timeout=5)
            except JanusError:
                return

    async def close(self) -> None:
        """Detach handles, destroy the session, close the socket (never raises)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        if not self._closed.is_set() and self.id:
            for handle in list(self._handles.values()):
                await handle.detach()
            with contextlib.suppress(JanusError):
                await self.request({"janus": "destroy"}, timeout=3)
        await self._ws.close()
        await self._http.close()
        self._reader.cancel()


def _answer_jsep(pc: RTCPeerConnection) -> dict[str, Any]:
    return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}


class VideoRoomPublisher:
    """Join ``room`` as a publisher and publish ``pc``'s tracks (``e2ee`` goes in the jsep)."""

    def __init__(self, session: JanusSession, room: int) -> None:
        self.session = session
        self.room = room
        self.handle: JanusHandle | None = None
        self.publisher_id: int | None = None

    async def publish(self, pc: RTCPeerConnection, *, e2ee: bool, display: str = "sealrtc") -> None:
        self.handle = await self.session.attach()
        data, _ = await self.handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": display}
        )
        self.publisher_id = int(data["id"])
        await pc.setLocalDescription(await pc.createOffer())
        jsep: dict[str, Any] = {"type": "offer", "sdp": pc.localDescription.sdp}
        if e2ee:
            jsep["e2ee"] = True
        _, answer = await self.handle.message({"request": "publish"}, jsep)
        if answer is None:
            raise JanusError(0, "Janus sent no SDP answer to the publish request")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def leave(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(JanusError):
                await self.handle.message({"request": "unpublish"}, timeout=3)
            with contextlib.suppress(JanusError):
                await self.handle.message({"request": "leave"}, timeout=3)
            await self.handle.detach()
            self.handle = None


class VideoRoomSubscriber:
    """Subscribe to every publisher of ``room``, following those who join and leave.

    A listener handle joins the room (as a publisher that never publishes) to receive the
    ``publishers`` / ``unpublished`` / ``leaving`` events; each feed gets its own subscriber
    handle and peer connection, made by ``make_pc`` (so the caller can attach E2EE to it).
    """

    def __init__(
        self,
        session: JanusSession,
        room: int,
        make_pc: Callable[[], RTCPeerConnection] | None = None,
        on_feed: Callable[[int, RTCPeerConnection], Awaitable[None] | None] | None = None,
        *,
        feed: int | None = None,
    ) -> None:
        self.session = session
        self.room = room
        self.only_feed = feed
        """Subscribe to this one publisher id only (None: every publisher)."""
        self.make_pc = make_pc or (lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
        self.on_feed = on_feed
        self.feeds: dict[int, tuple[JanusHandle, RTCPeerConnection]] = {}
        self.errors: list[JanusError] = []
        self._listener: JanusHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._own_ids: set[int] = set()

    async def start(self) -> None:
        self._listener = await self.session.attach()
        data, _ = await self._listener.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": "sealrtc-subscriber"}
        )
        self._own_ids.add(int(data["id"]))
        for publisher in data.get("publishers", []):
            if self._wanted(int(publisher["id"])):
                await self._subscribe(int(publisher["id"]))
        self._task = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        assert self._listener is not None
        while True:
            event = await self._listener.events.get()
            data = event.get("plugindata", {}).get("data", {})
            for publisher in data.get("publishers", []) or []:
                feed = int(publisher["id"])
                if feed not in self.feeds and feed not in self._own_ids and self._wanted(feed):
                    try:
                        await self._subscribe(feed)
                    except JanusError as exc:
                        self.errors.append(exc)
            for key in ("unpublished", "leaving"):
                gone = data.get(key)
                if isinstance(gone, int) and gone in self.feeds:
                    await self._drop(gone)

    def _wanted(self, feed: int) -> bool:
        return self.only_feed is None or feed == self.only_feed

    async def _subscribe(self, feed: int) -> None:
        handle = await self.session.attach()
        pc = self.make_pc()
        self.feeds[feed] = (handle, pc)
        _, offer = await handle.message(
            {"request": "join", "ptype": "subscriber", "room": self.room, "streams": [{"feed": feed}]}
        )
        if offer is None:
            raise JanusError(0, "Janus sent no SDP offer for the subscription")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.message({"request": "start"}, _answer_jsep(pc))
        if self.on_feed is not None:
            result = self.on_feed(feed, pc)
            if result is not None:
                await result

    async def _drop(self, feed: int) -> None:
        handle, pc = self.feeds.pop(feed)
        await handle.detach()
        await pc.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for feed in list(self.feeds):
            await self._drop(feed)
        if self._listener is not None:
            with contextlib.suppress(JanusError):
                await self._listener.message({"request": "leave"}, timeout=3)
            await self._listener.detach()
