"""WHIP (RFC 9725) publish and WHEP subscribe, per room, forwarding encoded frames untouched.

* ``POST /whip/{room}`` (``application/sdp`` offer) -> ``201`` with the answer and a
  ``Location: /resource/{id}``; ``POST /whep/{room}`` the same for subscribers (they may arrive
  before any publisher); ``DELETE /resource/{id}`` leaves.
* Each publisher's frames reach every subscriber of its room through a bounded
  :class:`ForwardingTrack` (slow subscribers lose backlog, memory stays bounded); key-frame
  requests from subscribers go upstream as PLIs, throttled.
* It counts what it forwards and keeps SHA-256 digests of forwarded frames (bounded) so a demo
  can prove none of them equals a plaintext frame.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..rtc.frames import EncodedFrame
from ..rtc.passthrough import ForwardingTrack, PassthroughSession
from .cors import cors_middleware
from .trickle import etag_for, handle_patch

logger = logging.getLogger(__name__)

ROOM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DIGESTS = 200_000
MAX_SDP_BYTES = 64 * 1024
KINDS = ("audio", "video")


@dataclass
class RelayStats:
    frames_forwarded: int = 0
    bytes_forwarded: int = 0
    frames_received: int = 0
    frames_dropped_slow_subscriber: int = 0
    keyframe_requests_upstream: int = 0
    publishers: int = 0
    subscribers: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class _Publisher:
    id: str
    pc: RTCPeerConnection
    passthrough: PassthroughSession
    receivers: dict[str, Any] = field(default_factory=dict)  # kind -> RTCRtpReceiver
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class _Subscriber:
    id: str
    pc: RTCPeerConnection
    tracks: dict[str, ForwardingTrack] = field(default_factory=dict)


@dataclass
class _Room:
    name: str
    publishers: dict[str, _Publisher] = field(default_factory=dict)
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)

    def current_publisher(self) -> _Publisher | None:
        return next(reversed(self.publishers.values()), None) if self.publishers else None


class Relay:
    """The relay's state and its aiohttp application (``relay.app``)."""

    def __init__(self, *, subscriber_queue: int = 64, record_digests: bool = False, cors_origin: str = "*") -> None:
        self.stats = RelayStats()
        self.record_digests = record_digests
        """Keep SHA-256 digests of forwarded frames (the demo's proof); off by default."""
        self.forwarded_digests: set[bytes] = set()
        self._rooms: dict[str, _Room] = {}
        self._resources: dict[str, tuple[_Room, _Publisher | _Subscriber]] = {}
        self._queue = subscriber_queue
        self.app = web.Application(client_max_size=MAX_SDP_BYTES, middlewares=[cors_middleware(cors_origin)])
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

    # -- HTTP ---------------------------------------------------------------------------------

    async def _read_offer(self, request: web.Request) -> tuple[_Room, RTCSessionDescription]:
        room_name = request.match_info["room"]
        if not ROOM_NAME.match(room_name):
            raise web.HTTPNotFound(text="unknown room: names are 1-64 of [A-Za-z0-9_.-]\n")
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/sdp\n")
        try:
            sdp = await request.text()
        except web.HTTPRequestEntityTooLarge:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_SDP_BYTES, actual_size=request.content_length or 0, text="SDP offer too large\n"
            ) from None
        except UnicodeDecodeError:
            raise web.HTTPBadRequest(text="SDP offer is not UTF-8\n") from None
        if not sdp.startswith("v=0") or "m=" not in sdp:
            raise web.HTTPBadRequest(text="body is not an SDP offer\n")
        room = self._rooms.setdefault(room_name, _Room(room_name))
        return room, RTCSessionDescription(sdp=sdp, type="offer")

    async def _answer(self, pc: RTCPeerConnection, offer: RTCSessionDescription, prepare: Any) -> str:
        try:
            await pc.setRemoteDescription(offer)
            prepare()
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            await pc.close()
            raise web.HTTPBadRequest(text=f"cannot negotiate this offer: {exc}\n") from None
        return str(pc.localDescription.sdp)

    def _created(self, resource_id: str, sdp: str) -> web.Response:
        return web.Response(
            status=201,
            body=sdp.encode("utf-8"),  # bytes: application/sdp defines no charset parameter
            content_type="application/sdp",
            headers={"Location": f"/resource/{resource_id}", "ETag": etag_for(resource_id)},
        )

    async def _whip(self, request: web.Request) -> web.Response:
        room, offer = await self._read_offer(request)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        publisher = _Publisher(uuid.uuid4().hex, pc, PassthroughSession(pc))

        def on_track(track: MediaStreamTrack) -> None:
            if track.kind in KINDS:
                publisher.tasks.append(asyncio.ensure_future(self._pump(room, publisher, track)))

        pc.on("track", on_track)

        def prepare() -> None:
            for transceiver in pc.getTransceivers():
                publisher.receivers[transceiver.kind] = transceiver.receiver

        sdp = await self._answer(pc, offer, prepare)
        room.publishers[publisher.id] = publisher
        self._resources[publisher.id] = (room, publisher)
        self.stats.publishers += 1
        self._watch(pc, publisher.id)
        self.request_keyframes(room)
        return self._created(publisher.id, sdp)

    async def _whep(self, request: web.Request) -> web.Response:
        room, offer = await self._read_offer(request)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        PassthroughSession(pc)
        subscriber = _Subscriber(uuid.uuid4().hex, pc)

        def prepare() -> None:
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
        self._resources[subscriber.id] = (room, subscriber)
        self.stats.subscribers += 1
        self._watch(pc, subscriber.id)
        self.request_keyframes(room)
        return self._created(subscriber.id, sdp)

    async def _delete(self, request: web.Request) -> web.Response:
        if not await self.remove(request.match_info["id"]):
            raise web.HTTPNotFound(text="unknown resource\n")
        return web.Response(status=200, text="")

    async def _patch(self, request: web.Request) -> web.Response:
        resource_id = request.match_info["id"]
        entry = self._resources.get(resource_id)
        if entry is None:
            raise web.HTTPNotFound(text="unknown resource\n")
        return await handle_patch(request, resource_id, entry[1].pc)

    async def _stats(self, request: web.Request) -> web.Response:
        # Totals since start, plus the sessions live now, per room.
        rooms = {
            name: {"publishers": len(room.publishers), "subscribers": len(room.subscribers)}
            for name, room in self._rooms.items()
        }
        live = {kind: sum(r[kind] for r in rooms.values()) for kind in ("publishers", "subscribers")}
        return web.json_response({**self.stats.as_dict(), "live": live, "rooms": rooms})

    # -- media --------------------------------------------------------------------------------

    async def _pump(self, room: _Room, publisher: _Publisher, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, EncodedFrame):
                    continue
                self.stats.frames_received += 1
                if room.current_publisher() is not publisher:
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

    def _keyframe_upstream(self, room: _Room, kind: str) -> None:
        publisher = room.current_publisher()
        if publisher is not None and kind in publisher.receivers:
            self.stats.keyframe_requests_upstream += 1
            PassthroughSession.request_keyframe(publisher.receivers[kind])

    def request_keyframes(self, room: _Room) -> None:
        """A subscriber joined or the publisher changed: ask for a fresh key frame."""
        self._keyframe_upstream(room, "video")

    def _watch(self, pc: RTCPeerConnection, resource_id: str) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.remove(resource_id)

    async def remove(self, resource_id: str) -> bool:
        entry = self._resources.pop(resource_id, None)
        if entry is None:
            return False
        room, resource = entry
        if isinstance(resource, _Publisher):
            room.publishers.pop(resource_id, None)
            for task in resource.tasks:
                task.cancel()
            self.request_keyframes(room)
        else:
            room.subscribers.pop(resource_id, None)
            for track in resource.tracks.values():
                track.end()
        await resource.pc.close()
        if not room.publishers and not room.subscribers:
            self._rooms.pop(room.name, None)
        return True

    async def close(self) -> None:
        for resource_id in list(self._resources):
            await self.remove(resource_id)

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()


async def start_relay(host: str, port: int, relay: Relay | None = None) -> tuple[Relay, web.AppRunner, int]:
    """Start a relay; return it, its runner (``await runner.cleanup()`` to stop) and its port."""
    relay = relay or Relay()
    runner = web.AppRunner(relay.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return relay, runner, int(bound)
