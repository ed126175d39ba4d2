"""A publisher bot: synthetic test pattern (VP8 or H.264) + Opus tone, or a media file sent
pre-encoded.

E2EE on unless ``keys`` is None. Publishes over WHIP or into a Janus VideoRoom; :attr:`failed` is
set when the server goes away. With ``probe=True`` every frame carries a probe trailer inside its
ciphertext, so sealrtc subscribers measure latency and loss.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from ..keys import SharedSecret
from ..media import TestPatternVideoTrack, ToneAudioTrack
from ..rtc import E2EESession, attach
from ..rtc.closing import close_peer
from ..rtc.policy import prefer_video_codec
from ..signaling.janus import JanusSession, VideoRoomPublisher
from ..signaling.whip import delete_resource, whip_publish
from .impairing import AgentImpairment, LinkShape
from .watch import MediaActivity, server_gone

MAX_PLAINTEXT_DIGESTS = 200_000


class PublisherAgent:
    def __init__(
        self,
        keys: SharedSecret | None,
        *,
        record_plaintext: bool = False,
        moving: bool = True,
        probe: bool = False,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        video_codec: str = "vp8",
        impairment: LinkShape | None = None,
    ) -> None:
        """``video``/``audio``: tracks to send instead of the test pattern and tone (e.g. the
        tracks of a media clip); pass only one of them to publish only that kind.
        ``video_codec``: ``"vp8"`` or ``"h264"``, the only video codec offered.
        ``impairment``: the shape of this participant's link (every connection it makes)."""
        self.keys = keys
        self.impairment = AgentImpairment(impairment) if impairment is not None else None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.impairment is not None:
            self.impairment.apply(self.pc)
        self.session: E2EESession = attach(self.pc, keys, probe=probe)
        self.plaintext_digests: set[bytes] = set()
        if record_plaintext and keys is not None:
            self.session.plaintext_observer = self._record
        custom = video is not None or audio is not None
        self.video: Any = video if custom else TestPatternVideoTrack(moving=moving)
        self.audio: Any = audio if custom else ToneAudioTrack()
        for track in (self.video, self.audio):
            if track is not None:
                self.pc.addTrack(track)
        self.video_codec = video_codec
        prefer_video_codec(self.pc, video_codec)
        self.resource: str | None = None
        self.janus: JanusSession | None = None
        self.room: VideoRoomPublisher | None = None
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._watch: asyncio.Task[None] | None = None
        self._token: str | None = None
        self._endpoint: str | None = None  # the URL the token is for

    def _record(self, frame: bytes) -> None:
        if len(self.plaintext_digests) < MAX_PLAINTEXT_DIGESTS:
            self.plaintext_digests.add(hashlib.sha256(frame).digest())

    async def publish_whip(self, url: str, *, token: str | None = None) -> None:
        """``token``: a bearer token for servers that require one (never logged)."""
        self._token = token
        self._endpoint = url
        self.resource = await whip_publish(self.pc, url, token=token)
        activity = MediaActivity(lambda: [self.pc])
        self._watch = asyncio.ensure_future(self._watch_for(server_gone(url, media=activity.arrived)))

    async def publish_janus(self, url: str, room: int) -> None:
        self.janus = await JanusSession.connect(url)
        self.room = VideoRoomPublisher(self.janus, room)
        await self.room.publish(self.pc, e2ee=self.keys is not None)
        self._watch = asyncio.ensure_future(self._watch_for(self.janus.lost()))

    async def _watch_for(self, lost: Any) -> None:
        self.failure = await lost
        self.failed.set()

    def frames_sent(self) -> dict[str, int]:
        return {
            kind: track.frames_sent if track is not None else 0
            for kind, track in (("video", self.video), ("audio", self.audio))
        }

    def summary(self) -> dict[str, Any]:
        tracks = [t for t in self.session.stats()["tracks"] if t["direction"] == "send"]
        sent: dict[str, dict[str, Any]] = {}
        for t in tracks:
            sent[t["kind"]] = {
                "codec": t["codec"],
                "frames": t["frames_sent"],
                "bytes": t["bytes_sent"],
                "keyframes": t["keyframes_sent"] if t["kind"] == "video" else None,
                "kid_switches": t["kid_switches"] if self.keys is not None else None,
                "keyframe_requests_received": t["keyframe_requests_received"],
                "frames_dropped": t["frames_dropped"],
                "probe_stream": t["probe_stream"],
            }
        return {
            "e2ee": self.keys is not None,
            "frames_sent": self.frames_sent(),
            "sent": sent,
            "tracks": tracks,
            "plaintext_frames_recorded": len(self.plaintext_digests),
            "failure": self.failure,
            "impairment": self.impairment.stats() if self.impairment is not None else None,
        }

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.resource is not None:
            await delete_resource(self.resource, token=self._token, endpoint=self._endpoint)
        if self.room is not None and not self.failed.is_set():
            await self.room.leave()
        if self.janus is not None:
            await self.janus.close()
        await close_peer(self.pc)
        if self.impairment is not None:
            self.impairment.close()
        self.session.close()
