"""A subscriber test agent: receives, decrypts, verifies probes, decodes (or not), measures.

Over WHEP (one peer connection) or a Janus VideoRoom (one peer connection per publisher,
following publishers who join and leave). Per track it measures what :mod:`sealrtc.metrics`
defines (latency, loss, freezes, fps, bitrate) and, per subscription, the connect phases.
:attr:`failed` is set when the server goes away; :attr:`notices` collects what a person should
be told (secret mismatch per publisher, media that looks encrypted, an empty room...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..epochs import FrameKeys
from ..failures import FailureCounts
from ..metrics import Histogram, ReceiveMetrics
from ..metrics.connect import ConnectPhases
from ..rtc import E2EESession, EncodedFrame, attach
from ..rtc.closing import close_peer
from ..rtc.session import TrackSecretEvent
from ..signaling.janus import JanusSession, VideoRoomSubscriber
from ..signaling.whip import delete_resource, whep_subscribe
from .impairing import AgentImpairment, LinkShape
from .recovery import RecoveryLog, retry
from .watch import MediaActivity, connected, first_of, media_path_lost, server_gone

logger = logging.getLogger(__name__)

LIVE_BEFORE_LOSS = 2.0
"""A video track whose last frame came at most this long (seconds) before the last frame of
all was live when the media stopped (the frame rate and probes an outage is measured from)."""

REASON_WORDS = {"unknown_key": "unknown key", "authentication_failed": "authentication failed"}


class SubscriberAgent:
    def __init__(
        self,
        keys: FrameKeys | None,
        *,
        name: str = "subscriber",
        decode: bool = True,
        record_dir: Path | None = None,
        on_notice: Callable[[str], None] | None = None,
        impairment: LinkShape | None = None,
        recover_within: float | None = None,
    ) -> None:
        """``impairment``: the shape of this participant's link (every connection it makes).
        ``recover_within``: on a lost server, reconnect for up to this many seconds (None: a
        lost server ends the agent at once, :attr:`failed`)."""
        self.name = name
        self.impairment = AgentImpairment(impairment) if impairment is not None else None
        self.keys = keys
        self.decode = decode
        self.record_dir = record_dir
        self.on_notice = on_notice
        self.pcs: list[RTCPeerConnection] = []
        self.sessions: list[E2EESession] = []
        self.publisher_of: dict[int, str] = {}
        """id(session) -> "feed 7" (Janus) or "the publisher" (WHEP)."""
        self.decoded: dict[str, int] = {"video": 0, "audio": 0}
        self.events: list[dict[str, Any]] = []
        self.notices: list[str] = []
        self.first_decoded_at: float | None = None
        self.started = time.monotonic()
        self.connect = ConnectPhases(self.started)
        self.resource: str | None = None
        self.janus: JanusSession | None = None
        self.room: VideoRoomSubscriber | None = None
        self.room_id: int | None = None
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self.changed = asyncio.Event()
        """Set on every decoded frame and every secret event (tests await it)."""
        self.recorders: dict[str, Any] = {}
        self._told: set[str] = set()
        self._token: str | None = None
        self._endpoint: str | None = None  # the URL the token is for
        self.recover_within = recover_within
        self.recovery = RecoveryLog()
        self._sessions_before_loss = 0
        """Sessions made before the current outage: media from a later one means recovered."""
        self._feed: int | None = None
        self._last_frame_at: float | None = None
        """When the last frame came out of a track: where an outage begins."""
        self._tasks: list[asyncio.Task[Any]] = []

    # -- wiring -------------------------------------------------------------------------------

    @property
    def session(self) -> E2EESession | None:
        return self.sessions[0] if self.sessions else None

    @property
    def pc(self) -> RTCPeerConnection:
        return self.pcs[0] if self.pcs else self.new_pc()

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.impairment is not None:
            self.impairment.apply(pc)
        self.pcs.append(pc)
        pc.on("track", self._on_track)
        session = attach(pc, self.keys, decode=self.decode)
        self.sessions.append(session)
        self.publisher_of[id(session)] = "the publisher"
        for event_name in ("secret_mismatch", "secret_match"):
            session.on(event_name, lambda event, s=session: self._on_secret_event(s, event))
        if self.record_dir is not None:
            session.received_frame_observer = self._record

        @pc.on("iceconnectionstatechange")
        def on_ice() -> None:
            if pc.iceConnectionState in ("connected", "completed"):
                self.connect.mark("ice", time.monotonic())

        @pc.on("connectionstatechange")
        def on_connection() -> None:
            if pc.connectionState == "connected":
                self.connect.mark("dtls", time.monotonic())
            elif pc.connectionState == "failed" and len(self.pcs) == 1 and self.recover_within is None:
                self._fail("the media connection to the server failed (ICE/DTLS)")

        return pc

    def notice(self, text: str, *, key: str | None = None) -> None:
        """Tell the user once per ``key`` (default: the text itself)."""
        key = key or text
        if key in self._told:
            return
        self._told.add(key)
        self.notices.append(text)
        if self.on_notice is not None:
            self.on_notice(text)

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.failed.set()

    def _on_secret_event(self, session: E2EESession, event: TrackSecretEvent) -> None:
        publisher = self.publisher_of.get(id(session), "the publisher")
        self.events.append(
            {
                "type": event.type,
                "kind": event.kind,
                "publisher": publisher,
                "reason": event.reason,
                "t": round(time.monotonic() - self.started, 3),
            }
        )
        if event.type == "secret_mismatch":
            words = REASON_WORDS.get(event.reason or "", event.reason or "key failure")
            self.notice(
                f"frames from {publisher} fail to decrypt: {words} — does the publisher use the same secret, "
                "--context and --suite?",
                key=f"mismatch:{publisher}",
            )
        self.changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self._last_frame_at = time.monotonic()
                if isinstance(frame, EncodedFrame):
                    continue  # verify-only: decrypted and measured in the receive hook
                self.decoded[track.kind] = self.decoded.get(track.kind, 0) + 1
                if self.first_decoded_at is None:
                    self.first_decoded_at = time.monotonic()
                    self.connect.mark("first_decoded", self.first_decoded_at)
                self.changed.set()
        except MediaStreamError:
            pass

    def _record(self, track: Any, frame: EncodedFrame) -> None:
        from ..media.recorder import TrackRecorder

        recorder = self.recorders.get(track.id)
        if recorder is None:
            assert self.record_dir is not None
            recorder = self.recorders[track.id] = TrackRecorder.open(self._record_stem(track), frame.codec)
        recorder.write(frame.data, frame.timestamp, frame.keyframe)

    def _record_stem(self, track: Any) -> Path:
        """``DIR/video`` (WHEP) or ``DIR/feed-7-video`` (Janus); never an existing file's name."""
        assert self.record_dir is not None
        publisher = next(
            (self.publisher_of[id(s)] for s in self.sessions for r in s.pc.getReceivers() if r.track is track), ""
        )
        prefix = publisher.replace(" ", "-") + "-" if publisher.startswith("feed ") else ""
        base = f"{prefix}{track.kind}"
        taken = {p.stem for p in self.record_dir.iterdir()} | {Path(r.path).stem for r in self.recorders.values()}
        stem, n = base, 1
        while stem in taken:
            n += 1
            stem = f"{base}-{n}"
        return self.record_dir / stem

    # -- subscribing --------------------------------------------------------------------------

    async def subscribe_whep(self, url: str, *, token: str | None = None) -> None:
        """``token``: a bearer token for servers that require one (never logged)."""
        self._token = token
        self._endpoint = url
        await self._post_whep()
        self.connect.mark("signaling", time.monotonic())
        self._tasks.append(asyncio.ensure_future(self._supervise(self._whep_lost, self._reconnect_whep)))

    async def _post_whep(self) -> None:
        assert self._endpoint is not None
        if self.resource is not None:  # a reconnect: leave the stale session first
            await delete_resource(self.resource, token=self._token, endpoint=self._endpoint)
            self.resource = None
        self.resource = await whep_subscribe(self.new_pc(), self._endpoint, token=self._token)

    async def _whep_lost(self) -> str:
        assert self._endpoint is not None
        pc = self.pcs[-1]
        activity = MediaActivity(lambda: [pc])
        return await first_of(server_gone(self._endpoint, media=activity.arrived), media_path_lost(pc))

    async def _reconnect_whep(self) -> None:
        await self._close_pcs()
        try:
            await self._post_whep()
            await connected(self.pcs[-1])
        except BaseException:  # a failed attempt leaves no connection behind in the report
            await self._forget(self.pcs[-1])
            raise

    async def subscribe_janus(self, url: str, room: int, *, feed: int | None = None) -> None:
        """Subscribe to every publisher of ``room`` (or only to publisher id ``feed``)."""
        self._endpoint, self.room_id, self._feed = url, room, feed
        await self._join_janus()
        self._tasks.append(asyncio.ensure_future(self._supervise(self._janus_lost, self._reconnect_janus)))

    async def _join_janus(self) -> None:
        assert self._endpoint is not None and self.room_id is not None
        self.janus = await JanusSession.connect(self._endpoint)
        self.room = VideoRoomSubscriber(
            self.janus, self.room_id, make_pc=self.new_pc, on_feed=self._on_feed, feed=self._feed
        )
        await self.room.start()

    async def _janus_lost(self) -> str:
        assert self.janus is not None
        return await self.janus.lost()

    async def _reconnect_janus(self) -> None:
        """A new session that follows the room's publishers again (they may come back later)."""
        if self.room is not None:
            with contextlib.suppress(Exception):  # the old session is gone: nothing to leave
                await asyncio.wait_for(self.room.close(), 5)
        if self.janus is not None:
            await self.janus.close()
        self.janus, self.room = None, None
        await self._close_pcs()
        await self._join_janus()

    async def _forget(self, pc: RTCPeerConnection) -> None:
        await close_peer(pc)
        self.pcs.remove(pc)
        self.sessions = [s for s in self.sessions if s.pc is not pc]

    async def _close_pcs(self) -> None:
        """Close the connections of before the outage (kept: their tracks stay in the report)."""
        for pc in self.pcs:
            if pc.connectionState != "closed":
                await close_peer(pc)

    async def _supervise(self, lost: Callable[[], Awaitable[str]], reconnect: Callable[[], Awaitable[None]]) -> None:
        """Watch the connection; on a loss, reconnect (or fail, without ``recover_within``)."""
        while True:
            reason = await lost()
            if self.recover_within is None:
                self._fail(reason)
                return
            rate, last = self._video_before_loss()
            self.recovery.lost(reason, since=self._last_frame_at, frame_rate=rate, last_probes=last)
            self._sessions_before_loss = len(self.sessions)
            logger.info("%s lost its server (%s): reconnecting", self.name, reason)
            if not await retry(reconnect, self.recovery, self.recover_within):
                self._fail(f"{reason}; not recovered within {self.recover_within:g} s")
                return
            self.recovery.reconnected()
            self.changed.set()

    def _video_before_loss(self) -> tuple[float | None, dict[int, int]]:
        """The video frame rate and the highest probe sequence per stream, over the video tracks
        that were live when media stopped (a Janus subscriber has one per publisher)."""
        live: list[ReceiveMetrics] = []
        for session in self.sessions:
            for track in session.receive_tracks():
                m = track.metrics
                if track.kind == "video" and m is not None and m.last_at is not None:
                    if self._last_frame_at is None or m.last_at >= self._last_frame_at - LIVE_BEFORE_LOSS:
                        live.append(m)
        rates = [fps for fps in (m.fps() for m in live) if fps is not None]
        last = {stream: highest for m in live for stream, (_, highest) in m.sequence_span().items()}
        return (sum(rates) if rates else None), last

    def _check_recovered(self) -> None:
        """An outage ends with the first frame decrypted on a connection made after it began;
        its missed frames are counted once video arrives there (see :class:`RecoveryLog`)."""
        if self.recovery.lost_at is None and not self.recovery.awaiting_probes:
            return
        new = [t for s in self.sessions[self._sessions_before_loss :] for t in s.receive_tracks()]
        if self.recovery.lost_at is not None:
            at = _earliest(t.first_frame_at for t in new)
            if at is None:
                return
            self.recovery.recovered(at)
        if self.recovery.awaiting_probes:
            video = [t.metrics for t in new if t.kind == "video" and t.metrics is not None and t.metrics.frames]
            if video:
                self.recovery.first_probes(
                    {stream: first for m in video for stream, (first, _) in m.sequence_span().items()}
                )

    def frames_missed(self) -> tuple[int, bool]:
        """``(video frames missed during outages, estimated)``: those of the outages this agent
        reconnected from (:class:`RecoveryLog`) and those of outages its connections survived (a
        paused server, a publisher that reconnected: a sequence gap after a stall, counted by
        the track apart from its ``frames_lost``)."""
        missed, estimated = self.recovery.missed_frames()
        for session in self.sessions:
            for track in session.receive_tracks():
                if track.kind == "video" and track.metrics is not None:
                    missed += track.metrics.frames_missed
        return missed, estimated

    def _on_feed(self, feed: int, pc: RTCPeerConnection) -> None:
        self.connect.mark("signaling", time.monotonic())
        for session in self.sessions:
            if session.pc is pc:
                self.publisher_of[id(session)] = f"feed {feed}"

    async def room_publishers(self) -> list[int] | None:
        """Publisher ids now in the Janus room (None when not subscribed through Janus)."""
        if self.janus is None or self.room_id is None:
            return None
        handle = await self.janus.attach()
        try:
            data, _ = await handle.message({"request": "listparticipants", "room": self.room_id})
        finally:
            await handle.detach()
        participants = data.get("participants") or []
        return sorted(
            int(p["id"])
            for p in participants
            if isinstance(p, dict) and p.get("publisher") and isinstance(p.get("id"), int)
        )

    # -- reading ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Update connect phases and diagnoses from the sessions (cheap: call once a second)."""
        self._check_recovered()
        tracks = [t for s in self.sessions for t in s.receive_tracks()]
        self.connect.mark("first_rtp", _earliest(t.first_received_at for t in tracks))
        self.connect.mark("first_decrypted", _earliest(t.first_frame_at for t in tracks))
        if self.keys is None and any(t.looks_encrypted for t in tracks):
            self.notice(
                "media looks encrypted (SFrame): this subscriber runs with --no-e2ee; drop --no-e2ee and set "
                "SEALRTC_SECRET (or --secret-file) to decrypt it",
                key="looks-encrypted",
            )

    def track_stats(self) -> list[dict[str, Any]]:
        out = []
        for session in self.sessions:
            for t in session.stats()["tracks"]:
                if t["direction"] == "recv":
                    publisher = self.publisher_of.get(id(session), "the publisher")
                    if publisher == "the publisher" and t.get("probe_streams"):
                        publisher = f"stream {t['probe_streams'][0]:#010x}"
                    out.append(t | {"publisher": publisher})
        return out

    def histograms(self) -> dict[str, Histogram]:
        """Latency histograms merged per kind over every track (exact HdrHistogram merge)."""
        merged: dict[str, Histogram] = {}
        for session in self.sessions:
            for track in session.receive_tracks():
                if track.metrics is not None:
                    merged.setdefault(track.kind, Histogram()).merge(track.metrics.latency)
        return merged

    def totals(self) -> dict[str, int]:
        tracks = [t for s in self.sessions for t in s.receive_tracks()]
        failures = FailureCounts.sum(t.decrypt_failures for t in tracks)
        return {
            "frames_received": sum(t.frames_received for t in tracks),
            "frames_decrypted": sum(t.frames_accepted for t in tracks) if self.keys is not None else 0,
            "key_failures": failures.key_failures,
            "frames_decoded": sum(self.decoded.values()),
        }

    def summary(self) -> dict[str, Any]:
        self.refresh()
        tracks: list[dict[str, Any]] = []
        for t in self.track_stats():
            publisher = t["publisher"]
            tracks.append(
                {
                    "kind": t["kind"],
                    "codec": t["codec"],
                    "publisher": publisher,
                    "frames_received": t["frames_received"],
                    "frames_decrypted": t["frames_decrypted"] if self.keys is not None else None,
                    "frames_decoded": self.decoded.get(t["kind"], 0) if self.decode else None,
                    "decrypt_failures": t["decrypt_failures"],
                    "latency_ms": t["latency_ms"],
                    "frames_lost": t["frames_lost"],
                    "frames_missed": t["frames_missed"],
                    "frames_out_of_order": t["frames_out_of_order"],
                    "freezes": t["freezes"],
                    "fps": t["fps"],
                    "bitrate_kbps": t["bitrate_kbps"],
                    "first_frame_ms": t["first_frame_ms"],
                    "looks_encrypted": t["looks_encrypted"],
                }
            )
        totals = self.totals()
        missed, estimated = self.frames_missed()
        return {
            "name": self.name,
            "e2ee": self.keys is not None,
            "decode": self.decode,
            "frames_received": totals["frames_received"],
            "frames_decrypted": totals["frames_decrypted"],
            "frames_decoded": totals["frames_decoded"],
            "tracks": tracks,
            "connect": self.connect.as_dict(),
            "events": self.events,
            "notices": self.notices,
            "recordings": [
                {"path": str(r.path), "frames": r.frames_written} for r in self.recorders.values() if r.frames_written
            ],
            "histograms": {f"latency_ms.{kind}": h.encode() for kind, h in self.histograms().items() if h.count}
            | ({"time_to_recover_ms": self.recovery.time_to_recover.encode()} if self.recovery.reconnects else {}),
            "failure": self.failure,
            "recovery": self.recovery.as_dict() | {"frames_missed": missed, "frames_missed_estimated": estimated},
            "impairment": self.impairment.stats() if self.impairment is not None else None,
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.resource is not None:
            await delete_resource(self.resource, token=self._token, endpoint=self._endpoint)
        if self.room is not None and not self.failed.is_set():
            await self.room.close()
        if self.janus is not None:
            await self.janus.close()
        for pc in self.pcs:
            await close_peer(pc)
        if self.impairment is not None:
            self.impairment.close()
        for recorder in self.recorders.values():
            try:
                recorder.close()
            except Exception:  # a broken recording must not lose the report
                logger.exception("closing a recording failed")


def _earliest(times: Any) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None
