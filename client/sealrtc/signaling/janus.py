"""A Janus WebSocket API client (subprotocol ``janus-protocol``) and the VideoRoom plugin.

* :class:`JanusSession` — one Janus session over one WebSocket: transactions registered before
  sending (events may beat their ``ack``), asynchronous events routed to plugin handles,
  keepalives every 25 s, clean detach/destroy, and a deadline on every connect and request (a
  server that accepts TCP but never upgrades to WebSocket costs seconds, not minutes), and a
  bound on every message read (:data:`MAX_MESSAGE`).
* :class:`JanusError` — Janus' numeric code and reason (e.g. 426 no such room, 433 room
  requires end-to-end encrypted media); malformed replies are JanusErrors too (see
  :mod:`.janus_protocol`), and malformed asynchronous events are skipped, never fatal.
* :class:`VideoRoomPublisher` / :class:`VideoRoomSubscriber` — join, publish with
  ``"e2ee": true`` in the **jsep** (where Janus looks for it), subscribe to every publisher and
  follow publishers who join and leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ..rtc.closing import close_peer
from ..text import first_line
from .janus_protocol import (
    CONNECTION_FAILED,
    PROTOCOL_ERROR,
    JanusError,
    as_int,
    error_from,
    jsep_of,
    malformed,
    plugin_data,
    plugin_error,
    publisher_ids,
    require_int,
    sdp_of,
)

__all__ = [
    "CONNECTION_FAILED",
    "PROTOCOL_ERROR",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "VideoRoomPublisher",
    "VideoRoomSubscriber",
]

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
KEEPALIVE_INTERVAL = 25.0
DEFAULT_TIMEOUT = 10.0
"""Seconds for the WebSocket handshake and for each request's answer."""
ACK_ANSWERED = frozenset({"keepalive"})
"""Requests Janus answers with a bare ``ack`` (for the others an ack only means "received")."""
MAX_MESSAGE = 1024 * 1024
"""Largest Janus message read (aiohttp closes the WebSocket past it); real ones are a few KiB,
an SDP with many feeds some tens."""
MAX_ERRORS = 32
"""Errors a :class:`VideoRoomSubscriber` keeps (the newest)."""


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
        data = plugin_data(reply)
        error = plugin_error(data)
        if error is not None:
            raise error
        return data, jsep_of(reply)

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
        self._ack_answers: set[str] = set()  # transactions whose "ack" is the answer (keepalive)
        self._handles: dict[int, JanusHandle] = {}
        self._closed = asyncio.Event()
        self.closed_reason: str | None = None
        self._reader = asyncio.ensure_future(self._read())
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> JanusSession:
        """Open the WebSocket and create a Janus session, each step within ``timeout`` seconds.

        aiohttp's own default would wait 300 s for a server that accepts TCP but never answers
        the upgrade; here every failure is a :class:`JanusError` and the HTTP client is closed.
        """
        http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout):
                ws = await http.ws_connect(
                    url,
                    protocols=("janus-protocol",),
                    timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
                    heartbeat=None,
                    max_msg_size=MAX_MESSAGE,
                )
        except TimeoutError:
            await http.close()
            raise JanusError(
                CONNECTION_FAILED, f"Janus at {url} did not complete the WebSocket handshake within {timeout:g} s"
            ) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            await http.close()
            # "Connection refused" says more than "ClientConnectorError" (and never quotes data)
            errno = exc.errno if isinstance(exc, OSError) else None
            why = os.strerror(errno) if errno else exc.__class__.__name__
            raise JanusError(CONNECTION_FAILED, f"cannot reach Janus at {url}: {why}") from None
        except BaseException:
            await http.close()
            raise
        session = cls(http, ws)
        try:
            reply = await session.request({"janus": "create"}, timeout=timeout, in_session=False)
            session.id = require_int(_data(reply).get("id"), "the session id (data.id)")
        except BaseException:
            await session.close()
            raise
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
        if message.get("janus") in ACK_ANSWERED:
            self._ack_answers.add(transaction)
        payload = dict(message, transaction=transaction)
        if in_session:
            payload["session_id"] = self.id
        try:
            async with asyncio.timeout(timeout):  # sending can block too (a full socket buffer)
                await self._ws.send_json(payload)
                reply = await future
        except TimeoutError:
            what = message.get("janus")
            raise JanusError(CONNECTION_FAILED, f"Janus did not answer {what} within {timeout:g} s") from None
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise JanusError(CONNECTION_FAILED, f"connection to Janus failed: {exc.__class__.__name__}") from None
        finally:
            self._pending.pop(transaction, None)
            self._ack_answers.discard(transaction)
        if reply.get("janus") == "error":
            raise error_from(reply.get("error"))
        return reply

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, require_int(_data(reply).get("id"), "the handle id (data.id)"))
        self._handles[handle.id] = handle
        return handle

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.ERROR:  # e.g. a message over MAX_MESSAGE: aiohttp closes
                    self.closed_reason = f"unusable message: {first_line(msg.data)}"
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = msg.json()
                except ValueError:
                    continue
                if isinstance(message, dict):  # anything else is not a Janus message: ignored
                    self._dispatch(message)
            self.closed_reason = self.closed_reason or "closed by Janus"
        except Exception as exc:  # the reader must end cleanly whatever happens
            self.closed_reason = f"{exc.__class__.__name__}"
        finally:
            self._closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(JanusError(CONNECTION_FAILED, "connection to Janus closed"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        transaction = str(message.get("transaction", ""))
        if kind == "ack" and transaction not in self._ack_answers:
            return
        future = self._pending.get(transaction)
        if future is not None and not future.done() and kind in ("ack", "success", "error", "event"):
            future.set_result(message)
            return
        sender = message.get("sender")
        if isinstance(sender, int) and not isinstance(sender, bool):
            handle = self._handles.get(sender)
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
        """Detach handles, destroy the session, close the socket and the HTTP client.

        Never raises a JanusError; whatever happens (even cancellation) the aiohttp session is
        closed. Each step has its own short deadline.
        """
        if self._keepalive is not None:
            self._keepalive.cancel()
        try:
            if not self._closed.is_set() and self.id:
                for handle in list(self._handles.values()):
                    await handle.detach()
                with contextlib.suppress(JanusError):
                    await self.request({"janus": "destroy"}, timeout=3)
        finally:
            try:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    await self._ws.close()  # bounded by ClientWSTimeout(ws_close=...)
            finally:
                await self._http.close()
                self._reader.cancel()


def _data(reply: dict[str, Any]) -> dict[str, Any]:
    data = reply.get("data")
    if not isinstance(data, dict):
        raise malformed("data is missing or not an object")
    return data


def _first_line(exc: Exception) -> str:
    return first_line(exc) or exc.__class__.__name__


def _answer_jsep(pc: RTCPeerConnection) -> dict[str, Any]:
    return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}


def announces_join(data: dict[str, Any], own_id: int | None) -> bool:
    """Whether a VideoRoom event says someone else joined: a ``publishers`` list naming another
    id, or a ``joining`` participant (rooms with ``notify_joining``). Malformed entries say no."""
    feeds, _ = publisher_ids(data)
    if any(feed != own_id for feed in feeds):
        return True
    joining = data.get("joining")
    return isinstance(joining, dict) and as_int(joining.get("id")) not in (None, own_id)


class VideoRoomPublisher:
    """Join ``room`` as a publisher and publish ``pc``'s tracks (``e2ee`` goes in the jsep).

    ``on_join``: called for every event saying someone else joined the room (keying v2 advances
    the epoch on join; the callee debounces)."""

    def __init__(self, session: JanusSession, room: int, *, on_join: Callable[[], object] | None = None) -> None:
        self.session = session
        self.room = room
        self.handle: JanusHandle | None = None
        self.publisher_id: int | None = None
        self.on_join = on_join
        self._joins: asyncio.Task[None] | None = None

    async def publish(self, pc: RTCPeerConnection, *, e2ee: bool, display: str = "sealrtc") -> None:
        self.handle = await self.session.attach()
        data, _ = await self.handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": display}
        )
        self.publisher_id = require_int(data.get("id"), "the join reply's publisher id")
        await pc.setLocalDescription(await pc.createOffer())
        jsep: dict[str, Any] = {"type": "offer", "sdp": pc.localDescription.sdp}
        if e2ee:
            jsep["e2ee"] = True
        _, answer = await self.handle.message({"request": "publish"}, jsep)
        sdp = sdp_of(answer, "answer to the publish request")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except ValueError as exc:  # aiortc's complaint about the SDP, not about us
            raise JanusError(PROTOCOL_ERROR, f"cannot use Janus' SDP answer: {_first_line(exc)}") from None
        if self.on_join is not None:
            self._joins = asyncio.ensure_future(self._follow_joins(self.handle, self.on_join))

    async def _follow_joins(self, handle: JanusHandle, on_join: Callable[[], object]) -> None:
        """Tell ``on_join`` of joins until cancelled; a malformed event is skipped, never fatal."""
        while True:
            event = await handle.events.get()
            try:
                data = plugin_data(event)
            except JanusError:
                continue
            if announces_join(data, self.publisher_id):
                on_join()

    def stop_following_joins(self) -> None:
        """Stop calling ``on_join`` (also when the session is gone and there is nothing to leave)."""
        if self._joins is not None:
            self._joins.cancel()
            self._joins = None

    async def leave(self) -> None:
        self.stop_following_joins()
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
        self._own_ids.add(require_int(data.get("id"), "the join reply's id"))
        feeds, bad = publisher_ids(data)
        self._note_bad_entries(bad)
        for feed in feeds:
            if self._wanted(feed):
                await self._subscribe(feed)
        self._task = asyncio.ensure_future(self._follow())

    def _record(self, error: JanusError) -> None:
        """Keep a following error for the caller to inspect (bounded: the newest)."""
        self.errors.append(error)
        del self.errors[:-MAX_ERRORS]

    def _note_bad_entries(self, bad: int) -> None:
        if bad:
            self._record(malformed(f"skipped {bad} publishers entries without an integer id"))

    async def _follow(self) -> None:
        """Follow publishers until cancelled; a malformed event is skipped, never fatal."""
        assert self._listener is not None
        while True:
            event = await self._listener.events.get()
            try:
                data = plugin_data(event)
            except JanusError as exc:
                self._record(exc)
                continue
            feeds, bad = publisher_ids(data)
            self._note_bad_entries(bad)
            for feed in feeds:
                if feed not in self.feeds and feed not in self._own_ids and self._wanted(feed):
                    try:
                        await self._subscribe(feed)
                    except JanusError as exc:
                        self._record(exc)
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
        try:
            await self._negotiate(feed, handle, pc)
        except JanusError:
            if self.feeds.get(feed) == (handle, pc):
                await self._drop(feed)  # a later announcement of this feed may retry
            raise
        if self.on_feed is not None:
            result = self.on_feed(feed, pc)
            if result is not None:
                await result

    async def _negotiate(self, feed: int, handle: JanusHandle, pc: RTCPeerConnection) -> None:
        _, offer = await handle.message(
            {"request": "join", "ptype": "subscriber", "room": self.room, "streams": [{"feed": feed}]}
        )
        sdp = sdp_of(offer, f"offer for feed {feed}")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except ValueError as exc:  # aiortc's complaint about the SDP, not about us
            reason = f"cannot use Janus' SDP offer for feed {feed}: {_first_line(exc)}"
            raise JanusError(PROTOCOL_ERROR, reason) from None
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.message({"request": "start"}, _answer_jsep(pc))

    async def _drop(self, feed: int) -> None:
        handle, pc = self.feeds.pop(feed)
        try:
            await handle.detach()
        finally:  # even if cancelled while detaching: close_peer outlives its caller's cancellation
            await close_peer(pc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for feed in list(self.feeds):
            await self._drop(feed)
        if self._listener is not None:
            with contextlib.suppress(JanusError):
                await self._listener.message({"request": "leave"}, timeout=3)
            await self._listener.detach()
