"""WHIP (RFC 9725) publish and WHEP subscribe, per room, forwarding encoded frames untouched.

* ``POST /whip/{room}`` (``application/sdp`` offer) -> ``201`` with the answer and a
  ``Location: /resource/{id}``; ``POST /whep/{room}`` the same for subscribers (they may arrive
  before any publisher); ``DELETE /resource/{id}`` leaves.
* Each room forwards one publisher's frames to every subscriber through a bounded
  :class:`ForwardingTrack` (slow subscribers lose backlog, memory stays bounded); key-frame
  requests from subscribers go upstream as PLIs, throttled.
* Hardening (each knob is a keyword argument of :class:`Relay` and :func:`start_relay`): a
  session that does not connect within ``negotiation_timeout`` is closed and removed; a
  publisher only takes a room over once *connected*, by ``publisher_policy`` (default
  ``"first"``: a second publisher gets ``409``); optional bearer tokens (:mod:`.auth`), which
  also guard ``GET /stats``; ``503`` beyond ``max_sessions`` / ``max_sessions_per_room``, ``429``
  beyond a client's share of pending sessions (``max_pending_per_client``), ``503`` when fewer
  than ``fd_reserve`` descriptors are left (:mod:`.budget`); deadlines on idle connections,
  request headers and every request body, connection caps (global and per client) and
  rate-limited error logs (:mod:`.guard`); at most a few dozen ICE candidates per session
  (:mod:`.trickle`). Rooms disappear with their last session, including after a refused offer.
* It counts what it forwards and can keep SHA-256 digests of forwarded frames (bounded) so a demo
  can prove none of them equals a plaintext frame.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import re
import resource
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import TypedDict, Unpack

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..rtc.closing import close_peer
from ..rtc.frames import EncodedFrame
from ..rtc.passthrough import ForwardingTrack, PassthroughSession, follow_codecs
from .auth import BearerTokens, tokens_of
from .budget import FdReserve, Shares, client_of, session_fds
from .cors import cors_middleware
from .guard import RETRY_AFTER, ConnectionGuard, GuardedSite, install_log_limits
from .state import POLICIES, Publisher, PublisherPolicy, RelayStats, Room, Session, Subscriber
from .trickle import MAX_SESSION_CANDIDATES, etag_for, handle_patch, offer_candidates

__all__ = ["Relay", "RelayOptions", "RelayStats", "start_relay"]

logger = logging.getLogger(__name__)

ROOM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DIGESTS = 200_000
MAX_SDP_BYTES = 64 * 1024
KINDS = ("audio", "video")
MAX_MEDIA_SECTIONS = 4
"""Media sections an offer may have (WHIP/WHEP clients send two): each costs ICE sockets."""
SDP_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def sends_media(sdp: str) -> bool:
    """Whether an SDP offer has a media section that sends (sendrecv or sendonly, the default)."""
    sections = sdp.split("\nm=")[1:]
    for section in sections:
        lines = section.splitlines()
        if lines and lines[0].split(" ")[1:2] == ["0"]:
            continue  # a rejected (port 0) section
        directions = [line.strip() for line in lines if line.strip() in DIRECTIONS]
        if not directions or directions[-1] in ("a=sendrecv", "a=sendonly"):
            return True
    return False


DIRECTIONS = frozenset({"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"})


class RelayOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Relay`, also accepted by :func:`start_relay`."""

    subscriber_queue: int
    record_digests: bool
    negotiation_timeout: float
    publisher_policy: PublisherPolicy
    publish_tokens: BearerTokens | Iterable[str] | None
    subscribe_tokens: BearerTokens | Iterable[str] | None
    max_sessions: int
    max_sessions_per_room: int
    max_connections: int
    max_connections_per_client: int
    max_pending_per_client: int
    fd_reserve: int
    idle_timeout: float
    header_timeout: float
    body_timeout: float
    cors_origin: str


class Relay:
    """The relay's state and its aiohttp application (``relay.app``)."""

    def __init__(
        self,
        *,
        subscriber_queue: int = 64,
        record_digests: bool = False,
        negotiation_timeout: float = 20.0,
        publisher_policy: PublisherPolicy = "first",
        publish_tokens: BearerTokens | Iterable[str] | None = None,
        subscribe_tokens: BearerTokens | Iterable[str] | None = None,
        max_sessions: int = 256,
        max_sessions_per_room: int = 128,
        max_connections: int = 256,
        max_connections_per_client: int = 32,
        max_pending_per_client: int = 32,
        fd_reserve: int = 64,
        idle_timeout: float = 30.0,
        header_timeout: float = 10.0,
        body_timeout: float = 10.0,
        cors_origin: str = "*",
    ) -> None:
        if publisher_policy not in POLICIES:
            raise ValueError(f"publisher_policy must be one of {', '.join(POLICIES)}")
        if negotiation_timeout <= 0 or body_timeout <= 0:
            raise ValueError("negotiation_timeout and body_timeout must be > 0 seconds")
        if max_sessions < 1 or max_sessions_per_room < 1:
            raise ValueError("max_sessions and max_sessions_per_room must be >= 1")
        self.stats = RelayStats()
        self.record_digests = record_digests
        """Keep SHA-256 digests of forwarded frames (the demo's proof); off by default."""
        self.forwarded_digests: set[bytes] = set()
        self.negotiation_timeout = negotiation_timeout
        self.publisher_policy: PublisherPolicy = publisher_policy
        self.max_sessions = max_sessions
        self.max_sessions_per_room = max_sessions_per_room
        self._pending = Shares(max_pending_per_client)
        """Sessions each client holds that are not connected yet (offers being answered included)."""
        self._fds = FdReserve(fd_reserve)
        self._session_fds = session_fds()
        self._publish_tokens = tokens_of(publish_tokens)
        self._subscribe_tokens = tokens_of(subscribe_tokens)
        self._rooms: dict[str, Room] = {}
        self._resources: dict[str, tuple[Room, Publisher | Subscriber]] = {}
        self._queue = subscriber_queue
        self._expiring: set[asyncio.Task[None]] = set()  # strong references until they finish
        self.changed = asyncio.Event()
        """Set whenever a session is added, connects or is removed (tests and tools wait on it)."""
        self.guard = ConnectionGuard(
            self.stats,
            idle_timeout=idle_timeout,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
            fds=self._fds,
        )
        self.app = web.Application(
            client_max_size=MAX_SDP_BYTES,
            middlewares=[self.guard.middleware, cors_middleware(cors_origin), self.guard.read_body],
        )
        self.app.add_routes(
            [
                web.post("/whip/{room}", self._whip),
                web.post("/whep/{room}", self._whep),
                web.delete("/resource/{id}", self._delete),
                web.patch("/resource/{id}", self._patch),
                web.get("/stats", self._stats),
            ]
        )
        self.app.on_shutdown.append(self._on_shutdown)

    @property
    def sessions(self) -> int:
        """Sessions held now (publishers and subscribers, connected or still negotiating)."""
        return len(self._resources) + sum(room.negotiating for room in self._rooms.values())

    @property
    def rooms(self) -> dict[str, Room]:
        """The rooms that currently hold a session (read-only view for tools and tests)."""
        return dict(self._rooms)

    # -- HTTP ---------------------------------------------------------------------------------

    def _authorize(self, request: web.Request, tokens: BearerTokens | None) -> None:
        if tokens is None or tokens.accepts(request.headers.get("Authorization")):
            return
        self.stats.requests_unauthorized += 1
        raise web.HTTPUnauthorized(
            text="missing or invalid bearer token\n", headers={"WWW-Authenticate": 'Bearer realm="sealrtc-relay"'}
        )

    async def _read_offer(self, request: web.Request, tokens: BearerTokens | None) -> tuple[str, RTCSessionDescription]:
        self._authorize(request, tokens)
        room_name = request.match_info["room"]
        if not ROOM_NAME.match(room_name):
            raise web.HTTPNotFound(text="unknown room: names are 1-64 of [A-Za-z0-9_.-]\n")
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/sdp\n")
        charset = (request.charset or "utf-8").lower()
        if charset not in SDP_CHARSETS:
            raise web.HTTPUnsupportedMediaType(text="an SDP offer must be UTF-8 (charset=utf-8 or none)\n")
        body = await request.read()  # already read, within the body deadline, by guard.read_body
        try:
            sdp = body.decode("utf-8")
        except UnicodeDecodeError:
            raise web.HTTPBadRequest(text="SDP offer is not UTF-8\n") from None
        if not sdp.startswith("v=0") or "m=" not in sdp:
            raise web.HTTPBadRequest(text="body is not an SDP offer\n")
        if sum(line.startswith("m=") for line in sdp.splitlines()) > MAX_MEDIA_SECTIONS:
            raise web.HTTPBadRequest(text=f"offer has more than {MAX_MEDIA_SECTIONS} media sections\n")
        if len(offer_candidates(sdp)) > MAX_SESSION_CANDIDATES:
            raise web.HTTPBadRequest(text=f"offer has more than {MAX_SESSION_CANDIDATES} ICE candidates\n")
        return room_name, RTCSessionDescription(sdp=sdp, type="offer")

    def _reserve(self, room_name: str, client: str | None) -> Room:
        """Take a session slot in ``room_name`` (creating the room) and one of ``client``'s pending
        sessions, or raise 503 when full, 429 when the client holds its share."""
        if self._pending.full(client):
            self.stats.requests_refused_client += 1
            raise web.HTTPTooManyRequests(
                text=f"too many sessions of yours are still connecting (at most {self._pending.cap})\n",
                headers={"Retry-After": RETRY_AFTER},
            )
        negotiating = sum(room.negotiating for room in self._rooms.values())
        if self._fds.low(extra=negotiating * self._session_fds):
            self.stats.requests_refused_fds += 1
            raise web.HTTPServiceUnavailable(
                text="relay is short of file descriptors\n", headers={"Retry-After": RETRY_AFTER}
            )
        if self.sessions >= self.max_sessions:
            self.stats.requests_refused_full += 1
            raise web.HTTPServiceUnavailable(
                text=f"relay is full ({self.max_sessions} sessions)\n", headers={"Retry-After": RETRY_AFTER}
            )
        room = self._rooms.get(room_name)
        if room is not None and room.sessions >= self.max_sessions_per_room:
            self.stats.requests_refused_full += 1
            raise web.HTTPServiceUnavailable(
                text=f"room is full ({self.max_sessions_per_room} sessions)\n", headers={"Retry-After": RETRY_AFTER}
            )
        if room is None:
            room = self._rooms[room_name] = Room(room_name, self.publisher_policy)
        room.negotiating += 1
        self._pending.take(client)
        return room

    def _release(self, room: Room, client: str | None, registered: bool) -> None:
        """The offer was answered (the session stays pending until it connects) or refused."""
        room.negotiating -= 1
        if not registered:
            self._pending.give(client)
        self._forget_if_empty(room)

    def _forget_if_empty(self, room: Room) -> None:
        if room.empty and self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    async def _answer(self, pc: RTCPeerConnection, offer: RTCSessionDescription, prepare: Callable[[], None]) -> str:
        try:
            await pc.setRemoteDescription(offer)
            prepare()
            await pc.setLocalDescription(await pc.createAnswer())
        except OSError as exc:
            await close_peer(pc)
            if exc.errno in (errno.EMFILE, errno.ENFILE):  # out of descriptors: not the offer's fault
                self.stats.requests_refused_fds += 1
                raise web.HTTPServiceUnavailable(
                    text="relay is short of file descriptors\n", headers={"Retry-After": RETRY_AFTER}
                ) from None
            raise web.HTTPBadRequest(text=f"cannot negotiate this offer: {exc.__class__.__name__}\n") from None
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            await close_peer(pc)
            reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
            raise web.HTTPBadRequest(text=f"cannot negotiate this offer: {reason}\n") from None
        return str(pc.localDescription.sdp)

    def _created(self, resource_id: str, sdp: str) -> web.Response:
        return web.Response(
            status=201,
            body=sdp.encode("utf-8"),  # bytes: application/sdp defines no charset parameter
            content_type="application/sdp",
            headers={"Location": f"/resource/{resource_id}", "ETag": etag_for(resource_id)},
        )

    async def _whip(self, request: web.Request) -> web.Response:
        room_name, offer = await self._read_offer(request, self._publish_tokens)
        if not sends_media(offer.sdp):
            # A receive-only offer on /whip/ would take the room over and silence it.
            raise web.HTTPBadRequest(text="this offer sends no media: to receive, POST it to /whep/ROOM\n")
        client = _client(request)
        room = self._reserve(room_name, client)
        registered = False
        try:
            if self.publisher_policy == "first" and room.active is not None:
                self.stats.publishers_refused += 1
                raise web.HTTPConflict(
                    text="room already has a connected publisher\n", headers={"Retry-After": RETRY_AFTER}
                )
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            publisher = Publisher(
                uuid.uuid4().hex,
                pc,
                client=client,
                candidates=offer_candidates(offer.sdp),
                passthrough=PassthroughSession(pc),
            )

            def on_track(track: MediaStreamTrack) -> None:
                if track.kind in KINDS:
                    publisher.tasks.append(asyncio.ensure_future(self._pump(room, publisher, track)))

            pc.on("track", on_track)

            def prepare() -> None:
                for transceiver in pc.getTransceivers():
                    publisher.receivers[transceiver.kind] = transceiver.receiver

            sdp = await self._answer(pc, offer, prepare)
            room.publishers[publisher.id] = publisher
            registered = True
        finally:
            self._release(room, client, registered)
        self._register(room, publisher)
        self.stats.publishers += 1
        return self._created(publisher.id, sdp)

    async def _whep(self, request: web.Request) -> web.Response:
        room_name, offer = await self._read_offer(request, self._subscribe_tokens)
        client = _client(request)
        room = self._reserve(room_name, client)
        registered = False
        try:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            PassthroughSession(pc)
            subscriber = Subscriber(uuid.uuid4().hex, pc, client=client, candidates=offer_candidates(offer.sdp))

            def prepare() -> None:
                # Frames keep their codec: answer with the publisher's (still connecting or not).
                publishers = list(room.publishers.values())
                source = room.active or (publishers[0 if room.policy == "first" else -1] if publishers else None)
                if source is not None:
                    follow_codecs(pc, source.pc)
                for transceiver in pc.getTransceivers():
                    if transceiver.kind in KINDS and transceiver.kind not in subscriber.tracks:
                        track = ForwardingTrack(
                            transceiver.kind,
                            maxsize=self._queue,
                            on_keyframe_request=partial(self._keyframe_upstream, room, transceiver.kind),
                        )
                        subscriber.tracks[transceiver.kind] = track
                        pc.addTrack(track)

            sdp = await self._answer(pc, offer, prepare)
            room.subscribers[subscriber.id] = subscriber
            registered = True
        finally:
            self._release(room, client, registered)
        self._register(room, subscriber)
        self.stats.subscribers += 1
        return self._created(subscriber.id, sdp)

    async def _delete(self, request: web.Request) -> web.Response:
        entry = self._resources.get(request.match_info["id"])
        if entry is None:
            if self._publish_tokens is not None or self._subscribe_tokens is not None:
                self._authorize_any(request)
            raise web.HTTPNotFound(text="unknown resource\n")
        _, session = entry
        self._authorize(request, self._publish_tokens if isinstance(session, Publisher) else self._subscribe_tokens)
        await self.remove(session.id)
        return web.Response(status=200, text="")

    async def _patch(self, request: web.Request) -> web.Response:
        resource_id = request.match_info["id"]
        entry = self._resources.get(resource_id)
        if entry is None:
            if self._publish_tokens is not None or self._subscribe_tokens is not None:
                self._authorize_any(request)
            raise web.HTTPNotFound(text="unknown resource\n")
        session = entry[1]
        self._authorize(request, self._publish_tokens if isinstance(session, Publisher) else self._subscribe_tokens)
        return await handle_patch(request, resource_id, session.pc, session.candidates, self._candidates_refused)

    def _candidates_refused(self) -> None:
        self.stats.candidates_refused += 1

    def _authorize_any(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if any(t is not None and t.accepts(header) for t in (self._publish_tokens, self._subscribe_tokens)):
            return
        self._authorize(request, self._publish_tokens or self._subscribe_tokens)

    async def _stats(self, request: web.Request) -> web.Response:
        # Totals since start, plus the sessions live now, per room: room names and live counts
        # are for the relay's users only (any token) when it has tokens.
        if self._publish_tokens is not None or self._subscribe_tokens is not None:
            self._authorize_any(request)
        rooms = {
            name: {"publishers": len(room.publishers), "subscribers": len(room.subscribers)}
            for name, room in self._rooms.items()
        }
        live = {kind: sum(r[kind] for r in rooms.values()) for kind in ("publishers", "subscribers")}
        return web.json_response({**self.stats.as_dict(), "live": live, "rooms": rooms})

    # -- sessions -----------------------------------------------------------------------------

    def _register(self, room: Room, session: Publisher | Subscriber) -> None:
        """Track a negotiated session: its connection state and its negotiation deadline."""
        self._resources[session.id] = (room, session)
        pc = session.pc
        session.deadline = asyncio.get_running_loop().call_later(
            self.negotiation_timeout, self._start_expiry, session.id
        )

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not session.connected:
                await self._connected(room, session)
            elif pc.connectionState in ("failed", "closed"):
                await self.remove(session.id)

        self._changed()

    async def _connected(self, room: Room, session: Publisher | Subscriber) -> None:
        if self._resources.get(session.id, (None, None))[1] is not session:
            return  # removed (deadline, DELETE) just before it connected
        session.mark_connected()
        self._pending.give(session.client)
        if isinstance(session, Publisher):
            if self.publisher_policy == "first" and room.active is not None and room.active is not session:
                self.stats.publishers_refused += 1
                await self.remove(session.id)  # lost the race to the room's publisher
                return
            if room.elect():
                self.request_keyframes(room)
        else:
            self.request_keyframes(room)
        self._changed()

    def _start_expiry(self, resource_id: str) -> None:
        task = asyncio.ensure_future(self._expire(resource_id))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def _expire(self, resource_id: str) -> None:
        entry = self._resources.get(resource_id)
        if entry is not None and not entry[1].connected:
            self.stats.sessions_timed_out += 1
            await self.remove(resource_id)

    def _changed(self) -> None:
        self.changed.set()

    # -- media --------------------------------------------------------------------------------

    async def _pump(self, room: Room, publisher: Publisher, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, EncodedFrame):
                    continue
                self.stats.frames_received += 1
                if room.active is not publisher:
                    continue
                for subscriber in list(room.subscribers.values()):
                    out = subscriber.tracks.get(track.kind)
                    if out is None:
                        continue
                    before = out.frames_dropped
                    out.feed(frame)
                    self.stats.frames_dropped_slow_subscriber += out.frames_dropped - before
                    self.stats.frames_forwarded += 1
                    self.stats.bytes_forwarded += len(frame.data)
                if self.record_digests and len(self.forwarded_digests) < MAX_DIGESTS:
                    self.forwarded_digests.add(hashlib.sha256(frame.data).digest())
        except MediaStreamError:
            pass

    def _keyframe_upstream(self, room: Room, kind: str) -> None:
        publisher = room.active
        if publisher is not None and kind in publisher.receivers:
            self.stats.keyframe_requests_upstream += 1
            PassthroughSession.request_keyframe(publisher.receivers[kind])

    def request_keyframes(self, room: Room) -> None:
        """A subscriber joined or the publisher changed: ask for a fresh key frame."""
        self._keyframe_upstream(room, "video")

    async def remove(self, resource_id: str) -> bool:
        entry = self._resources.pop(resource_id, None)
        if entry is None:
            return False
        room, session = entry
        _cancel_deadline(session)
        if not session.connected:
            self._pending.give(session.client)
        if isinstance(session, Publisher):
            room.publishers.pop(resource_id, None)
            for task in session.tasks:
                task.cancel()
            if room.elect():
                self.request_keyframes(room)
        else:
            room.subscribers.pop(resource_id, None)
            for track in session.tracks.values():
                track.end()
        try:
            await close_peer(session.pc)  # runs to its end even if this handler is cancelled
        finally:
            self._forget_if_empty(room)
            self._changed()
        return True

    async def close(self) -> None:
        for resource_id in list(self._resources):
            await self.remove(resource_id)

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()


def _client(request: web.Request) -> str | None:
    transport = request.transport
    return client_of(transport.get_extra_info("peername")) if transport is not None else None


def _cancel_deadline(session: Session) -> None:
    if session.deadline is not None:
        session.deadline.cancel()
        session.deadline = None


def _check_fd_limit(relay: Relay) -> None:
    """Warn when the process may run out of descriptors before the relay's own limits apply."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 3 * relay.max_sessions + relay.guard.max_connections + relay.guard.fds.reserve
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "open-file limit %d is below the %d this relay's limits may need: it will refuse new sessions "
            "(503) when fewer than %d descriptors are left; raise the limit (ulimit -n) or lower "
            "max_sessions/max_connections",
            soft,
            needed,
            relay.guard.fds.reserve,
        )


async def start_relay(
    host: str, port: int, relay: Relay | None = None, **options: Unpack[RelayOptions]
) -> tuple[Relay, web.AppRunner, int]:
    """Start a relay; return it, its runner (``await runner.cleanup()`` to stop) and its port.

    ``options`` are :class:`Relay`'s keyword arguments, used when no ``relay`` is given.
    """
    if relay is None:
        relay = Relay(**options)
    elif options:
        raise TypeError("pass options to Relay(...) or to start_relay, not both")
    install_log_limits()
    _check_fd_limit(relay)
    guard = relay.guard  # aiohttp's own idle close is only a backstop here: the guard acts first
    # lingering_time=0: a request whose body was not read whole (408, 413) closes its connection
    # rather than draining the rest for aiohttp's default 10 s.
    runner = web.AppRunner(
        relay.app,
        access_log=None,
        keepalive_timeout=guard.idle_timeout + guard.header_timeout,
        lingering_time=0,
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, relay.guard)
    await site.start()
    return relay, runner, site.port
