"""A subscriber test agent: receives, decrypts, decodes and counts; records secret events.

Over WHEP (one peer connection) or a Janus VideoRoom (one peer connection per publisher,
following publishers who join and leave). :attr:`failed` is set when Janus goes away.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..keys import SharedSecret
from ..rtc import E2EESession, attach
from ..rtc.session import TrackSecretEvent
from ..signaling.janus import JanusSession, VideoRoomSubscriber
from ..signaling.whip import delete_resource, whep_subscribe


class SubscriberAgent:
    def __init__(self, keys: SharedSecret | None, *, name: str = "subscriber") -> None:
        self.name = name
        self.keys = keys
        self.pcs: list[RTCPeerConnection] = []
        self.sessions: list[E2EESession] = []
        self.decoded: dict[str, int] = {"video": 0, "audio": 0}
        self.events: list[dict[str, Any]] = []
        self.first_decoded_at: float | None = None
        self.started = time.monotonic()
        self.resource: str | None = None
        self.janus: JanusSession | None = None
        self.room: VideoRoomSubscriber | None = None
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self.changed = asyncio.Event()
        """Set on every decoded frame and every secret event (tests await it)."""
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def session(self) -> E2EESession | None:
        return self.sessions[0] if self.sessions else None

    @property
    def pc(self) -> RTCPeerConnection:
        return self.pcs[0] if self.pcs else self.new_pc()

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.on("track", self._on_track)
        if self.keys is not None:
            session = attach(pc, self.keys)
            self.sessions.append(session)
            for event_name in ("secret_mismatch", "secret_match"):
                session.on(event_name, self._on_event)
        return pc

    def _on_event(self, event: TrackSecretEvent) -> None:
        self.events.append({"type": event.type, "kind": event.kind, "t": round(time.monotonic() - self.started, 3)})
        self.changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.decoded[track.kind] = self.decoded.get(track.kind, 0) + 1
                if self.first_decoded_at is None:
                    self.first_decoded_at = time.monotonic()
                self.changed.set()
        except MediaStreamError:
            pass

    async def subscribe_whep(self, url: str) -> None:
        self.resource = await whep_subscribe(self.new_pc(), url)

    async def subscribe_janus(self, url: str, room: int, *, feed: int | None = None) -> None:
        """Subscribe to every publisher of ``room`` (or only to publisher id ``feed``)."""
        self.janus = await JanusSession.connect(url)
        self.room = VideoRoomSubscriber(self.janus, room, make_pc=self.new_pc, feed=feed)
        await self.room.start()
        self._tasks.append(asyncio.ensure_future(self._watch_janus(self.janus)))

    async def _watch_janus(self, janus: JanusSession) -> None:
        self.failure = await janus.lost()
        self.failed.set()

    def track_stats(self) -> list[dict[str, Any]]:
        return [t for s in self.sessions for t in s.stats()["tracks"] if t["direction"] == "recv"]

    def summary(self) -> dict[str, Any]:
        tracks: list[dict[str, Any]] = []
        if self.keys is not None:
            for t in self.track_stats():
                tracks.append(
                    {
                        "kind": t["kind"],
                        "codec": t["codec"],
                        "frames_received": t["frames_received"],
                        "frames_decrypted": t["frames_decrypted"],
                        "frames_decoded": self.decoded.get(t["kind"], 0),
                        "decrypt_failures": t["decrypt_failures"],
                    }
                )
        else:
            tracks = [{"kind": k, "frames_decoded": n} for k, n in self.decoded.items()]
        return {
            "name": self.name,
            "e2ee": self.keys is not None,
            "frames_decrypted": sum(t.get("frames_decrypted", 0) for t in tracks),
            "frames_decoded": sum(self.decoded.values()),
            "tracks": tracks,
            "events": self.events,
            "failure": self.failure,
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.resource is not None:
            await delete_resource(self.resource)
        if self.room is not None and not self.failed.is_set():
            await self.room.close()
        if self.janus is not None:
            await self.janus.close()
        for pc in self.pcs:
            await pc.close()
