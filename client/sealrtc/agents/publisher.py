"""A publisher bot: synthetic VP8 test pattern + Opus tone, E2EE on (unless keys is None).

Publishes over WHIP or into a Janus VideoRoom; :attr:`failed` is set when the server goes away.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection

from ..keys import SharedSecret
from ..media import TestPatternVideoTrack, ToneAudioTrack
from ..rtc import E2EESession, attach
from ..signaling.janus import JanusSession, VideoRoomPublisher
from ..signaling.whip import delete_resource, whip_publish

MAX_PLAINTEXT_DIGESTS = 200_000


class PublisherAgent:
    def __init__(self, keys: SharedSecret | None, *, record_plaintext: bool = False, moving: bool = True) -> None:
        self.keys = keys
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.session: E2EESession | None = attach(self.pc, keys) if keys is not None else None
        self.plaintext_digests: set[bytes] = set()
        if record_plaintext and self.session is not None:
            self.session.plaintext_observer = self._record
        self.video = TestPatternVideoTrack(moving=moving)
        self.audio = ToneAudioTrack()
        self.pc.addTrack(self.video)
        self.pc.addTrack(self.audio)
        self.resource: str | None = None
        self.janus: JanusSession | None = None
        self.room: VideoRoomPublisher | None = None
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._watch: asyncio.Task[None] | None = None

    def _record(self, frame: bytes) -> None:
        if len(self.plaintext_digests) < MAX_PLAINTEXT_DIGESTS:
            self.plaintext_digests.add(hashlib.sha256(frame).digest())

    async def publish_whip(self, url: str) -> None:
        self.resource = await whip_publish(self.pc, url)

    async def publish_janus(self, url: str, room: int) -> None:
        self.janus = await JanusSession.connect(url)
        self.room = VideoRoomPublisher(self.janus, room)
        await self.room.publish(self.pc, e2ee=self.session is not None)
        self._watch = asyncio.ensure_future(self._watch_janus(self.janus))

    async def _watch_janus(self, janus: JanusSession) -> None:
        self.failure = await janus.lost()
        self.failed.set()

    def summary(self) -> dict[str, Any]:
        tracks = self.session.stats()["tracks"] if self.session is not None else []
        return {
            "e2ee": self.session is not None,
            "frames_sent": {"video": self.video.frames_sent, "audio": self.audio.frames_sent},
            "tracks": tracks,
            "plaintext_frames_recorded": len(self.plaintext_digests),
            "failure": self.failure,
        }

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.resource is not None:
            await delete_resource(self.resource)
        if self.room is not None and not self.failed.is_set():
            await self.room.leave()
        if self.janus is not None:
            await self.janus.close()
        await self.pc.close()
