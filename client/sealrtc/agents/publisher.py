"""A publisher bot: synthetic VP8 test pattern + Opus tone, E2EE on (unless keys is None)."""

from __future__ import annotations

import hashlib
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection

from ..keys import SharedSecret
from ..media import TestPatternVideoTrack, ToneAudioTrack
from ..rtc import E2EESession, attach
from ..signaling.whip import delete_resource, whip_publish

MAX_PLAINTEXT_DIGESTS = 200_000


class PublisherAgent:
    def __init__(self, keys: SharedSecret | None, *, record_plaintext: bool = False) -> None:
        self.keys = keys
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.session: E2EESession | None = attach(self.pc, keys) if keys is not None else None
        self.plaintext_digests: set[bytes] = set()
        if record_plaintext and self.session is not None:
            self.session.plaintext_observer = self._record
        self.video = TestPatternVideoTrack()
        self.audio = ToneAudioTrack()
        self.pc.addTrack(self.video)
        self.pc.addTrack(self.audio)
        self.resource: str | None = None

    def _record(self, frame: bytes) -> None:
        if len(self.plaintext_digests) < MAX_PLAINTEXT_DIGESTS:
            self.plaintext_digests.add(hashlib.sha256(frame).digest())

    async def publish_whip(self, url: str) -> None:
        self.resource = await whip_publish(self.pc, url)

    def summary(self) -> dict[str, Any]:
        tracks = self.session.stats()["tracks"] if self.session is not None else []
        return {
            "e2ee": self.session is not None,
            "frames_sent": {"video": self.video.frames_sent, "audio": self.audio.frames_sent},
            "tracks": tracks,
            "plaintext_frames_recorded": len(self.plaintext_digests),
        }

    async def close(self) -> None:
        if self.resource is not None:
            await delete_resource(self.resource)
        await self.pc.close()
