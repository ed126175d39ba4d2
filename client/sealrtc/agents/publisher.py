"""A publisher bot: synthetic test pattern (VP8 or H.264) + Opus tone, or a media file sent
pre-encoded.

E2EE on unless ``keys`` is None. Publishes over WHIP or into a Janus VideoRoom; :attr:`failed` is
set when the server goes away. With ``probe=True`` every frame carries a probe trailer inside its
ciphertext, so sealrtc subscribers measure latency and loss.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from ..epochs import EpochKeys, FrameKeys
from ..media import MediaShape, synthetic_tracks
from ..metrics import ProbeStamper
from ..metrics.sendrate import SendRate
from ..rtc import E2EESession, attach
from ..rtc.closing import close_peer
from ..rtc.internals import encoder_target_bps, fix_video_bitrate
from ..rtc.policy import prefer_video_codec
from ..signaling.janus import JanusSession, VideoRoomPublisher
from ..signaling.whip import delete_resource, whip_publish
from .feeds import Feed
from .impairing import AgentImpairment, LinkShape
from .recovery import RecoveryLog, retry
from .watch import MediaActivity, connected, first_of, media_path_lost, server_gone

logger = logging.getLogger(__name__)

MAX_PLAINTEXT_DIGESTS = 200_000
KINDS = ("video", "audio")
SAMPLE_EVERY_S = 1.0  # how often the sent bytes are sampled for the bitrates


class PublisherAgent:
    def __init__(
        self,
        keys: FrameKeys | None,
        *,
        record_plaintext: bool = False,
        moving: bool = True,
        probe: bool = False,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        video_codec: str = "vp8",
        impairment: LinkShape | None = None,
        recover_within: float | None = None,
        shape: MediaShape | None = None,
    ) -> None:
        """``video``/``audio``: tracks to send instead of the test pattern and tone (e.g. the
        tracks of a media clip); pass only one of them to publish only that kind.
        ``shape``: the test pattern's size and rate, which kinds to send, and the live encoder's
        target video bitrate (a clip's tracks come already shaped: see ``tracks_for_clip``).
        ``video_codec``: ``"vp8"`` or ``"h264"``, the only video codec offered.
        ``impairment``: the shape of this participant's link (every connection it makes).
        ``recover_within``: on a lost server, reconnect for up to this many seconds (None: a
        lost server ends the agent at once, :attr:`failed`)."""
        self.keys = keys
        self.impairment = AgentImpairment(impairment) if impairment is not None else None
        self.probe = probe
        self.record_plaintext = record_plaintext
        self.plaintext_digests: set[bytes] = set()
        self.shape = shape or MediaShape()
        custom = video is not None or audio is not None
        if not custom:
            video, audio = synthetic_tracks(self.shape, moving=moving)
        self.video: Any = video
        self.audio: Any = audio
        self.video_codec = video_codec
        self.live_video = not custom and video is not None
        self.rates = SendRate()
        self._sampler: asyncio.Task[None] | None = None
        self._target_kbps: float | None = None  # as last sampled: a closed sender has no encoder
        self.recover_within = recover_within
        self.recovery = RecoveryLog()
        self._feeds: list[Feed] = []
        self._stampers = {kind: ProbeStamper() for kind in KINDS} if probe else {}
        """One probe stream per kind for the agent's life: a reconnect continues its numbering
        (the backlog skipped after an outage leaves its numbers unused), so the sequence counts
        the source's frames and a subscriber counts the frames its outage cost it exactly."""
        self._sent_before: dict[str, int] = {}
        """Bytes sent on the connections closed so far, by kind."""
        self._retired: list[E2EESession] = []
        self.pc, self.session = self._new_pc()
        self.resource: str | None = None
        self.janus: JanusSession | None = None
        self.room: VideoRoomPublisher | None = None
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._watch: asyncio.Task[None] | None = None
        self._token: str | None = None
        self._endpoint: str | None = None  # the URL the token is for
        self._janus_url = ""
        self._janus_room = 0

    def _record(self, frame: bytes) -> None:
        if len(self.plaintext_digests) < MAX_PLAINTEXT_DIGESTS:
            self.plaintext_digests.add(hashlib.sha256(frame).digest())

    def _new_pc(self) -> tuple[RTCPeerConnection, E2EESession]:
        """A peer connection sending this agent's tracks, E2EE attached: each one's senders take
        fresh KIDs, so a reconnect never reuses a (KID, CTR) nonce."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.impairment is not None:
            self.impairment.apply(pc)
        session = attach(pc, self.keys, probe=self.probe, stampers=self._stampers)
        if self.record_plaintext and self.keys is not None:
            session.plaintext_observer = self._record
        after_outage = self.recovery.lost_at is not None
        for track in (self.video, self.audio):
            if track is not None:
                stamper = self._stampers.get(track.kind)
                feed = Feed(track, skip_backlog=after_outage, on_skip=stamper.skip if stamper is not None else None)
                self._feeds.append(feed)
                sender = pc.addTrack(feed)
                if track is self.video and self.shape.video_bps is not None:
                    fix_video_bitrate(sender, self.shape.video_bps)
        prefer_video_codec(pc, self.video_codec)
        return pc, session

    async def publish_whip(self, url: str, *, token: str | None = None) -> None:
        """``token``: a bearer token for servers that require one (never logged)."""
        self._token = token
        self._endpoint = url
        await self._post_whip()
        self._start_sampling()
        self._watch = asyncio.ensure_future(self._supervise(self._whip_lost, self._reconnect_whip))

    async def _post_whip(self) -> None:
        assert self._endpoint is not None
        if self.resource is not None:  # a reconnect: the stale session would hold the room (409)
            await delete_resource(self.resource, token=self._token, endpoint=self._endpoint)
            self.resource = None
        self.resource = await whip_publish(self.pc, self._endpoint, token=self._token)

    async def _whip_lost(self) -> str:
        assert self._endpoint is not None
        activity = MediaActivity(lambda: [self.pc])
        return await first_of(server_gone(self._endpoint, media=activity.arrived), media_path_lost(self.pc))

    async def _reconnect_whip(self) -> None:
        await self._replace_pc()
        await self._post_whip()
        await connected(self.pc)

    async def publish_janus(self, url: str, room: int) -> None:
        self._janus_url, self._janus_room = url, room
        await self._join_janus()
        self._start_sampling()
        self._watch = asyncio.ensure_future(self._supervise(self._janus_lost, self._reconnect_janus))

    async def _join_janus(self) -> None:
        self.janus = await JanusSession.connect(self._janus_url)
        # Keying v2: someone joined, so the epoch moves on (debounced) and the joiner, given the
        # new epoch's file, cannot read what was sent before.
        on_join = self.keys.advance_on_join if isinstance(self.keys, EpochKeys) else None
        self.room = VideoRoomPublisher(self.janus, self._janus_room, on_join=on_join)
        await self.room.publish(self.pc, e2ee=self.keys is not None)

    async def _janus_lost(self) -> str:
        assert self.janus is not None
        return await first_of(self.janus.lost(), media_path_lost(self.pc))

    async def _reconnect_janus(self) -> None:
        if self.room is not None:
            self.room.stop_following_joins()
        if self.janus is not None:
            await self.janus.close()
        self.janus, self.room = None, None
        await self._replace_pc()
        await self._join_janus()
        await connected(self.pc)

    async def _replace_pc(self) -> None:
        old_pc, old_session = self.pc, self.session
        self._retired.append(old_session)  # still counted while it closes
        self.pc, self.session = self._new_pc()
        await close_peer(old_pc)
        for kind, n in _bytes_by_kind(old_session).items():
            self._sent_before[kind] = self._sent_before.get(kind, 0) + n
        self._retired.remove(old_session)

    def bytes_sent(self) -> dict[str, int]:
        """Bytes sent by kind over every connection of the agent's life (each connection's
        counters start at 0; a reconnect must not make the total go down)."""
        out = dict(self._sent_before)
        for session in (*self._retired, self.session):
            for kind, n in _bytes_by_kind(session).items():
                out[kind] = out.get(kind, 0) + n
        return out

    async def _supervise(self, lost: Callable[[], Awaitable[str]], reconnect: Callable[[], Awaitable[None]]) -> None:
        """Watch the connection; on a loss, reconnect (or fail, without ``recover_within``)."""
        while True:
            reason = await lost()
            if self.recover_within is None:
                self._fail(reason)
                return
            self.recovery.lost(reason)
            logger.info("publisher lost its server (%s): reconnecting", reason)
            if not await retry(reconnect, self.recovery, self.recover_within):
                self._fail(f"{reason}; not recovered within {self.recover_within:g} s")
                return
            self.recovery.reconnected()
            self.recovery.recovered()

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.failed.set()

    def _start_sampling(self) -> None:
        if self._sampler is None:
            self._sampler = asyncio.ensure_future(self._sample_rates())

    async def _sample_rates(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def _sample(self) -> None:
        sent = {t["kind"]: t["bytes_sent"] for t in self.session.stats()["tracks"] if t["direction"] == "send"}
        self.rates.sample(time.monotonic(), sent)
        if self.live_video:  # a clip's encoder only packetizes: its target means nothing
            for sender in self.pc.getSenders():
                bps = encoder_target_bps(sender) if sender.kind == "video" else None
                if bps is not None:
                    self._target_kbps = round(bps / 1000, 1)

    def frames_sent(self) -> dict[str, int]:
        """Frames the sources made, less the backlogs skipped after outages (never sent)."""
        return {
            kind: track.frames_sent - sum(f.skipped for f in self._feeds if f.source is track)
            if track is not None
            else 0
            for kind, track in (("video", self.video), ("audio", self.audio))
        }

    def summary(self) -> dict[str, Any]:
        tracks = [t for t in self.session.stats()["tracks"] if t["direction"] == "send"]
        if self._sampler is not None:
            self._sample()
        sent: dict[str, dict[str, Any]] = {}
        for t in tracks:
            kbps, recent = self.rates.kbps(t["kind"]), self.rates.recent_kbps(t["kind"])
            sent[t["kind"]] = {
                "codec": t["codec"],
                "frames": t["frames_sent"],
                "bytes": t["bytes_sent"],
                "keyframes": t["keyframes_sent"] if t["kind"] == "video" else None,
                "kid_switches": t["kid_switches"] if self.keys is not None else None,
                "keyframe_requests_received": t["keyframe_requests_received"],
                "frames_dropped": t["frames_dropped"],
                "probe_stream": t["probe_stream"],
                "bitrate_kbps": round(kbps, 1) if kbps is not None else None,
                "bitrate_recent_kbps": round(recent, 1) if recent is not None else None,
                "target_kbps": self._target_kbps if t["kind"] == "video" else None,
            }
        return {
            "e2ee": self.keys is not None,
            "shape": self.shape.describe(),
            "frames_sent": self.frames_sent(),
            "sent": sent,
            "tracks": tracks,
            "plaintext_frames_recorded": len(self.plaintext_digests),
            "failure": self.failure,
            "recovery": {k: v for k, v in self.recovery.as_dict().items() if not k.startswith("frames_missed")}
            | {"frames_not_sent": {kind: sum(f.skipped for f in self._feeds if f.kind == kind) for kind in KINDS}},
            "impairment": self.impairment.stats() if self.impairment is not None else None,
        }

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._sampler is not None:  # the bitrates end with the connection
            self._sample()
            self._sampler.cancel()
            self._sampler = None
        if self.resource is not None:
            await delete_resource(self.resource, token=self._token, endpoint=self._endpoint)
        if self.room is not None:
            self.room.stop_following_joins()
            if not self.failed.is_set():
                await self.room.leave()
        if self.janus is not None:
            await self.janus.close()
        await close_peer(self.pc)
        if self.impairment is not None:
            self.impairment.close()
        self.session.close()


def _bytes_by_kind(session: E2EESession) -> dict[str, int]:
    out: dict[str, int] = {}
    for track in session.send_tracks():
        out[track.kind] = out.get(track.kind, 0) + track.bytes_sent
    return out
