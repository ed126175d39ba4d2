"""A load worker: one process, one asyncio loop, its share of the participants.

Joins each participant at its planned time, measures every second (deltas, interval latency
histograms, its own CPU and event-loop lag) and sends snapshots to the parent through a queue;
stops by itself at the run's end (or when the parent says stop), closes everything, and sends a
final with per-room totals. Never raises into the parent: failures are counted and described.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..epochs import EpochKey
from ..failures import FailureCounts
from ..media.shape import clip_key
from ..metrics import Histogram
from ..report.measures import ParticipantRow
from ..report.records import (
    BYTE_COUNTERS,
    MAX_PARTICIPANT_ROWS,
    FaultTotals,
    GeneratorFinal,
    KeyTotals,
    LinkTotals,
    MediaBytes,
    ProfileTotals,
    RoomSnapshot,
    RoomTotals,
    WorkerCrash,
    WorkerFinal,
    WorkerSnapshot,
    pack,
)
from ..shell import eventloop
from .faults import SAMPLE, Fault, GapWatch, may_close, windows
from .keying import (
    PREINSTALL,
    WINDOW,
    EpochStep,
    GapMeter,
    NearChange,
    change_times,
    epoch_at,
    forward,
    joiner_epoch,
    rotation_secret,
)
from .plan import INTRUDER, PUBLISHER, SUBSCRIBER, Churn, Participant
from .profiles import LinkPlan
from .shares import NO_PROFILE

logger = logging.getLogger(__name__)

TICK = 1.0
LAG_PROBE = 0.05
CLOSE_TIMEOUT = 15.0
MAX_ERRORS = 20
GAP_SAMPLE = 0.02
"""Seconds between samples of the changed rooms' subscribers' decrypted video frames after a key change."""
END_MARGIN = 0.25
"""Seconds before the run's end at which a key change's measurement is taken, at the latest."""


@dataclass
class WorkerConfig:
    worker: int
    participants: list[Participant]
    room_names: list[str]
    target: dict[str, Any]
    """{"kind": "whip", "base": URL} or {"kind": "janus", "url": URL, "rooms": {name: id}}."""
    start_at: float
    """Wall-clock (time.time()) start of the run: every worker's ramp starts together."""
    duration: float
    e2ee: bool = True
    suite: int = 6
    probe: bool = True
    media: str | None = None
    video_codec: str = "vp8"
    cache_dir: str | None = None
    keying: int = 1
    rotate_every: float = 0.0
    ratchet_every: float = 0.0
    churn: list[Churn] = field(default_factory=list)
    """The planned churn this worker carries out (:func:`sealrtc.load.plan.churn_for`)."""
    epoch_steps: list[EpochStep] = field(default_factory=list)
    """Keying v2: the planned epoch changes (timer and joins, all workers' joins) of this worker's rooms."""
    room_shapes: tuple[Any, ...] = ()
    """What each room's publishers send (a ``MediaShape`` per room index; empty: the defaults)."""
    recover_within: float | None = 30.0
    """Participants who lose their server reconnect for up to this many seconds (None: they fail)."""
    faults: tuple[Fault, ...] = ()
    """The run's faults in time order: around each, the worker watches what subscribers see."""
    links: dict[int, LinkPlan] = field(default_factory=dict)
    """Impaired participants' links, by participant index (see :mod:`sealrtc.load.profiles`)."""
    profiles: bool = False
    """The run impairs links: the final reports totals per link profile."""


@dataclass
class _Joined:
    participant: Participant
    agent: Any
    started: float
    join_ms: float | None = None
    failed: bool = False
    reported_join: bool = False
    churned: bool = False
    """Joined during the run in place of a subscriber who left."""
    left: bool = False
    """Left during the run (churn): its frames still count, it no longer counts as joined."""
    video_seen: int = 0
    """Decrypted video frames at the last tick (watching starts with the first)."""
    watched_s: float = 0.0


@dataclass
class _RoomSecond:
    """One room's numbers while a snapshot is taken (cumulative counters, this second's joins)."""

    joined: int = 0
    failed: int = 0
    intruders: int = 0
    joins: list[float] = field(default_factory=list)
    decrypted: int = 0
    lost: int = 0
    intruder_decrypts: int = 0
    failures: FailureCounts = field(default_factory=FailureCounts)
    latency: Histogram = field(default_factory=Histogram)
    churn_joins: int = 0


@dataclass
class _Received:
    """What one subscriber received, by kind (its tracks' metrics, as they stand)."""

    bytes: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    latency: dict[str, Histogram] = field(default_factory=lambda: {"video": Histogram(), "audio": Histogram()})
    fps: list[float] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None

    @property
    def seconds(self) -> float:
        """From its first frame to its last (0: fewer than two frames)."""
        return self.last_at - self.first_at if self.first_at is not None and self.last_at is not None else 0.0


def _received(agent: Any) -> _Received:
    out = _Received()
    for session in agent.sessions:
        for track in session.receive_tracks():
            m = track.metrics
            if m is None or track.kind not in out.bytes:
                continue
            out.bytes[track.kind] += m.bytes
            out.latency[track.kind].merge(m.latency)
            fps = m.fps() if track.kind == "video" else None
            if fps is not None:
                out.fps.append(fps)
            if m.first_at is not None:
                out.first_at = m.first_at if out.first_at is None else min(out.first_at, m.first_at)
            if m.last_at is not None:
                out.last_at = m.last_at if out.last_at is None else max(out.last_at, m.last_at)
    return out


def _sent_bytes(agent: Any) -> dict[str, int]:
    """A publisher's bytes sent by kind, over all its connections (reconnects included)."""
    sent = agent.bytes_sent()
    return {kind: sent.get(kind, 0) for kind in ("video", "audio")}


def _kbps(nbytes: int, seconds: float) -> float | None:
    return round(nbytes * 8 / seconds / 1000, 1) if seconds > 0 else None


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@dataclass
class _Previous:
    values: dict[str, int] = field(default_factory=dict)

    def delta(self, key: str, value: int) -> int:
        before = self.values.get(key, 0)
        self.values[key] = value
        return value - before


class Worker:
    def __init__(self, config: WorkerConfig, secret: str | EpochKey | None, send: Any, stop: Any) -> None:
        """``secret``: the rooms' secret, or (keying v2 from an epoch file) the first epoch's key."""
        self.config = config
        self.secret = secret
        self.send = send
        self.stop = stop
        self.joined: list[_Joined] = []
        self.failed_joins: dict[int, int] = {}
        self.errors: list[str] = []
        self.loop_lag = Histogram()
        self.interval_lag = Histogram()
        self.clips: dict[Any, Any] = {}
        """--media clips by their transcode settings (one per distinct room shape)."""
        self.cpu_intervals: list[float] = []
        self._previous = _Previous()
        self._keys: dict[str, Any] = {}
        self.rotations = 0
        self._next_secret: str | None = None
        """Keying v1: the next rotation's secret between its preinstall and its switch."""
        self.near: dict[str, NearChange] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._start = time.monotonic()
        """The run's start on this process's clock (set by :meth:`run`)."""
        self._window_until: dict[int, float] = {}
        """The end of each room's open key-change window, by room index (a change of the room
        inside it extends it; other rooms' changes never touch it)."""
        self._rooms = sorted({p.room for p in config.participants})
        """The rooms this worker has participants in (its churn joiners stay in them)."""
        self._last_tick: float | None = None
        self.fault_totals = [FaultTotals() for _ in config.faults]
        self.failed_links: dict[str, int] = {}
        """Participants whose join failed before they had an agent, per link profile."""

    # -- participants -------------------------------------------------------------------------

    def _keys_for(self, room: str, intruder: bool) -> Any:
        from ..epochs import EpochKeys
        from ..keys import SharedSecret

        if not self.config.e2ee:
            return None
        if intruder:
            return SharedSecret(secrets.token_urlsafe(16), context=room.encode(), suite=self.config.suite)
        if room not in self._keys:
            if self.config.keying == 2:
                # the room's planned epoch now: a participant joining late starts where the room is
                index = self.config.room_names.index(room)
                epoch = epoch_at(self.config.epoch_steps, index, self._elapsed(), start=self._first_epoch)
                self._keys[room] = EpochKeys(self._epoch_key(room, epoch), suite=self.config.suite)
            else:
                # the room's secret now: the room's participants on other workers rotated already
                assert isinstance(self.secret, str)
                current = rotation_secret(self.secret, self.rotations)
                keys = SharedSecret(current, context=room.encode(), suite=self.config.suite)
                if self._next_secret is not None:
                    keys.add_decryption_secret(self._next_secret)
                self._keys[room] = keys
        return self._keys[room]

    @property
    def _first_epoch(self) -> int:
        return self.secret.epoch if isinstance(self.secret, EpochKey) else 0

    def _epoch_key(self, room: str, epoch: int) -> EpochKey:
        """``E_epoch`` of ``room``: ratcheted from the epoch file's key (every room starts from
        it), or from the secret's cached root (no PBKDF2 after the first)."""
        from ..epochs import epoch_key_at

        if isinstance(self.secret, EpochKey):
            return forward(self.secret, epoch, self.config.suite)
        assert self.secret is not None
        return forward(epoch_key_at(self.secret, 0, context=room.encode(), suite=self.config.suite), epoch,
                       self.config.suite)  # fmt: skip

    def _joiner_keys(self, joiner: Participant) -> Any:
        """A churn joiner's keys: keying v2 joiners get the epoch file of the epoch their room
        moves to for their join (never the secret: they cannot read earlier epochs); keying v1
        joiners get the secret, as everyone."""
        from ..epochs import EpochKeys

        room = self.config.room_names[joiner.room]
        if self.config.keying != 2 or not self.config.e2ee:
            return self._keys_for(room, False)
        epoch = joiner_epoch(self.config.epoch_steps, joiner.room, joiner.join_at, start=self._first_epoch)
        return EpochKeys(self._epoch_key(room, epoch), suite=self.config.suite)

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _shape_of(self, room: int) -> Any:
        from ..media import MediaShape

        return self.config.room_shapes[room] if self.config.room_shapes else MediaShape()

    @property
    def epochs(self) -> int:
        return max((getattr(k, "epoch", 0) for k in self._keys.values()), default=0)

    async def _join(self, p: Participant, keys: Any = None, churned: bool = False) -> None:
        from ..agents import PublisherAgent, SubscriberAgent

        room = self.config.room_names[p.room]
        target = self.config.target
        started = time.monotonic()
        entry: _Joined | None = None
        try:
            if p.role == PUBLISHER:
                shape = self._shape_of(p.room)
                tracks: dict[str, Any] = {}
                if self.config.media:
                    from ..media import tracks_for_clip

                    video, audio = tracks_for_clip(self.clips[clip_key(shape)], shape=shape)
                    if video is None and audio is None:
                        raise RuntimeError(f"--media {self.config.media} has nothing this room's shape sends")
                    tracks = {"video": video, "audio": audio}
                agent: Any = PublisherAgent(
                    self._keys_for(room, False),
                    probe=self.config.probe,
                    video_codec=self.config.video_codec,
                    shape=shape,
                    recover_within=self.config.recover_within,
                    impairment=self._link_shape(p),
                    **tracks,
                )
                entry = _Joined(p, agent, started)
                self._watch_connected(entry, agent.pc)
                self.joined.append(entry)
                if target["kind"] == "janus":
                    await agent.publish_janus(target["url"], int(target["rooms"][room]))
                    if agent.room is not None:
                        # the plan moves epochs on joins (every worker knows them); Janus' join
                        # events would step this publisher again, past the joiners' epoch files
                        agent.room.stop_following_joins()
                else:
                    await agent.publish_whip(f"{target['base']}/whip/{room}", token=target.get("token"))
            else:
                agent = SubscriberAgent(
                    keys if keys is not None else self._keys_for(room, p.role == INTRUDER),
                    decode=p.decode,
                    name=f"{p.role}-{p.index}",
                    recover_within=self.config.recover_within,
                    impairment=self._link_shape(p),
                )
                entry = _Joined(p, agent, started, churned=churned)
                self.joined.append(entry)
                if target["kind"] == "janus":
                    await agent.subscribe_janus(target["url"], int(target["rooms"][room]))
                else:
                    await agent.subscribe_whep(f"{target['base']}/whep/{room}", token=target.get("token"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is counted and described, never raised
            if entry is not None:
                entry.failed = True
            else:
                self.failed_joins[p.room] = self.failed_joins.get(p.room, 0) + 1
                self.failed_links[self._profile(p)] = self.failed_links.get(self._profile(p), 0) + p.legitimate
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(f"{p.role} {p.index} in {room}: {exc}")

    @staticmethod
    def _watch_connected(entry: _Joined, pc: Any) -> None:
        @pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        def changed() -> None:
            if pc.connectionState == "connected" and entry.join_ms is None:
                entry.join_ms = (time.monotonic() - entry.started) * 1000

    # -- measuring ----------------------------------------------------------------------------

    def _subscriber_numbers(self, entry: _Joined) -> dict[str, Any]:
        agent = entry.agent
        tracks = [vars(t) | {"frames_decrypted": t.frames_accepted} for s in agent.sessions for t in s.receive_tracks()]
        failures: dict[str, int] = {}
        for t in tracks:
            for reason, n in t["decrypt_failures"].items():
                failures[reason] = failures.get(reason, 0) + n
        metrics = [t["metrics"] for t in tracks if t["metrics"] is not None]
        video = [t for t in tracks if t["kind"] == "video"]
        # a reconnected agent keeps its old sessions (their counts are cumulative), but only the
        # tracks of live connections receive: the per-track frame rate divides by those
        live_video = sum(
            t.kind == "video"
            for s in agent.sessions
            if s.pc.connectionState not in ("closed", "failed")
            for t in s.receive_tracks()
        )
        return {
            # a plain (--no-e2ee) run has nothing to decrypt: its frames count as accepted
            "decrypted": sum(t["frames_decrypted"] for t in tracks),
            "received": sum(t["frames_received"] for t in tracks),
            "video": sum(t["frames_decrypted"] for t in video),
            "video_tracks": live_video,
            "lost": sum(m.frames_lost for m in metrics),
            "missed": sum(m.frames_missed for m in metrics if m.video),
            "freezes": sum(m.freezes.count for m in metrics if m.video),
            "freezes_ms": sum(m.freezes.total_ms for m in metrics if m.video),
            "failures": failures,
            "decoded": sum(agent.decoded.values()),
        }

    def _is_failed(self, entry: _Joined) -> bool:
        return entry.failed or bool(entry.agent.failed.is_set())

    @staticmethod
    def _sample_availability(entry: _Joined, video: int, elapsed: float) -> None:
        """Count the last tick's ``elapsed`` seconds as watched once this subscriber had video
        (how much of it was not available, :meth:`_add_recovery` says)."""
        if entry.video_seen:
            entry.watched_s += elapsed
        entry.video_seen = max(entry.video_seen, video)

    def snapshot(self, t: float, cpu_percent: float | None) -> WorkerSnapshot:
        """Deltas since the last snapshot, for the whole worker and per room (the per-room part
        feeds the live Prometheus metrics; reports keep only the totals)."""
        totals = dict.fromkeys(("decrypted", "video", "lost", "freezes", "failures", "intruder"), 0)
        video_tracks = joined = failed = intruders = 0
        latency = Histogram()
        by_kind = {"video": Histogram(), "audio": Histogram()}
        media = dict.fromkeys(BYTE_COUNTERS, 0)
        rooms: dict[str, _RoomSecond] = {}
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick if self._last_tick is not None else 0.0, now
        for entry in self.joined:
            p = entry.participant
            name = self.config.room_names[p.room]
            room = rooms.setdefault(name, _RoomSecond())
            room.churn_joins += entry.churned
            if entry.join_ms is not None and not entry.reported_join:
                entry.reported_join = True
                room.joins.append(round(entry.join_ms, 3))
            if self._is_failed(entry) and not entry.left:
                failed += p.legitimate
                room.failed += p.legitimate
                if p.role == SUBSCRIBER and entry.video_seen:
                    entry.watched_s += elapsed  # a subscriber that gave up sees nothing
                continue
            if p.role == PUBLISHER:
                joined += 1
                room.joined += 1
                for kind, n in _sent_bytes(entry.agent).items():
                    media[f"sent_{kind}"] += n
                continue
            numbers = self._subscriber_numbers(entry)
            if p.role == INTRUDER:
                intruders += 1
                room.intruders += 1
                totals["intruder"] += numbers["decrypted"]
                room.intruder_decrypts += numbers["decrypted"]
                continue
            joined += not entry.left
            room.joined += not entry.left
            if not entry.left:
                if entry.agent.recovery.lost_at is not None:
                    entry.agent.refresh()  # notes a recovery now: a later outage is another one
                self._sample_availability(entry, numbers["video"], elapsed)
            if entry.join_ms is None:
                dtls = entry.agent.connect.get("dtls")
                if dtls is not None:
                    entry.join_ms = (dtls - entry.agent.started) * 1000
            video_tracks += numbers["video_tracks"]
            for key in ("decrypted", "video", "lost", "freezes"):
                totals[key] += numbers[key]
            room.decrypted += numbers["decrypted"]
            room.lost += numbers["lost"]
            failures = FailureCounts(numbers["failures"])
            room.failures.add(failures)
            totals["failures"] += failures.total
            interval = Histogram()
            for session in entry.agent.sessions:
                for track, metrics in [(t, t.metrics) for t in session.receive_tracks() if t.metrics is not None]:
                    taken = metrics.take_interval()
                    interval.merge(taken)
                    if track.kind in by_kind:
                        by_kind[track.kind].merge(taken)
                        media[f"received_{track.kind}"] += metrics.bytes
            latency.merge(interval)
            room.latency.merge(interval)
        failed += sum(self.failed_joins.values())
        previous = self._previous
        lag, self.interval_lag = self.interval_lag, Histogram()
        per_room = {
            name: RoomSnapshot(
                joined=room.joined,
                failed=room.failed,
                intruders=room.intruders,
                joins=tuple(room.joins),
                frames_decrypted=previous.delta(f"{name}:decrypted", room.decrypted),
                lost=previous.delta(f"{name}:lost", room.lost),
                intruder_decrypts=previous.delta(f"{name}:intruder", room.intruder_decrypts),
                decrypt_failures=FailureCounts(
                    {reason: previous.delta(f"{name}:fail:{reason}", n) for reason, n in room.failures.items()}
                ),
                latency=pack(room.latency),
                **self._key_levels(name),
                churn_joins=room.churn_joins,
            )
            for name, room in rooms.items()
        }
        return WorkerSnapshot(
            worker=self.config.worker,
            t=round(t),
            joined=joined,
            failed=failed,
            intruders=intruders,
            video_tracks=video_tracks,
            frames_decrypted=previous.delta("decrypted", totals["decrypted"]),
            video_frames=previous.delta("video", totals["video"]),
            lost=previous.delta("lost", totals["lost"]),
            freezes=previous.delta("freezes", totals["freezes"]),
            decrypt_failures=previous.delta("failures", totals["failures"]),
            intruder_decrypts=previous.delta("intruder", totals["intruder"]),
            cpu_percent=cpu_percent,
            latency=pack(latency),
            latency_video=pack(by_kind["video"]),
            latency_audio=pack(by_kind["audio"]),
            loop_lag=pack(lag),
            # a publisher's reconnect starts its counters again: never a negative second
            media_bytes={k: max(0, previous.delta(f"bytes:{k}", n)) for k, n in media.items()},
            rooms=per_room,
        )

    def final(self, cpu_percent: float | None) -> WorkerFinal:
        now = time.monotonic()
        rooms: dict[str, RoomTotals] = {}
        for p in self.config.participants:
            totals = rooms.setdefault(self.config.room_names[p.room], RoomTotals())
            totals.planned += p.legitimate
        for room_index, count in self.failed_joins.items():
            rooms[self.config.room_names[room_index]].failed += count
        rows = [self._add_entry(rooms[self.config.room_names[e.participant.room]], e, now) for e in self.joined]
        for name, totals in rooms.items():
            totals.keys.add(self._key_totals(name))
        generator = GeneratorFinal(cpu_percent, tuple(self.cpu_intervals), pack(self.loop_lag), eventloop.loop_name())
        rows.sort(key=ParticipantRow.worst_first)
        profiles = self._profile_totals() if self.config.profiles else {}
        return WorkerFinal(self.config.worker, rooms, generator, tuple(self.errors),
                           participants=tuple(rows[:MAX_PARTICIPANT_ROWS]), faults=tuple(self.fault_totals),
                           profiles=profiles)  # fmt: skip

    def _add_entry(self, totals: RoomTotals, entry: _Joined, now: float) -> ParticipantRow:
        """Add what one participant measured to ``totals`` (its room's, or its link profile's: one
        rule for both) and return its row."""
        p, agent = entry.participant, entry.agent
        row = self._participant_row(entry)
        if entry.left:
            pass  # replaced by a churn joiner, who counts instead
        elif self._is_failed(entry):
            totals.failed += p.legitimate
        elif p.legitimate:
            totals.joined += 1
        else:
            totals.intruders += 1
        if p.legitimate:
            totals.recovery.reconnects += agent.recovery.reconnects
        if p.role == PUBLISHER:
            if entry.join_ms is not None:
                totals.histograms["join_ms"].record(entry.join_ms)
            totals.frames["sent"] += sum(agent.frames_sent().values())
            sent = _sent_bytes(agent)
            seconds = now - entry.started - entry.join_ms / 1000 if entry.join_ms is not None else 0.0
            media = MediaBytes({f"sent_{kind}": n for kind, n in sent.items()}, sending_s=max(0.0, seconds))
            totals.media.add(media)
            return dataclasses.replace(row, sent_kbps=_kbps(sum(sent.values()), media.sending_s))
        numbers = self._subscriber_numbers(entry)
        if p.role == INTRUDER:
            totals.intruder_decrypts += numbers["decrypted"]
            totals.intruder_failures.add(numbers["failures"])
            dtls = agent.connect.as_dict()["dtls_ms"]
            return dataclasses.replace(row, join_ms=_ms(dtls), decrypt_failures=FailureCounts(numbers["failures"]))
        agent.refresh()
        self._add_recovery(totals, entry, numbers["freezes_ms"], numbers["missed"])
        connect = agent.connect.as_dict()
        first = connect["first_decrypted_ms"] if agent.keys is not None else connect["first_rtp_ms"]
        joins = totals.histograms["join_ms"], totals.histograms["first_frame_ms"]
        if entry.churned:
            totals.keys.churn_joins += 1
            joins = totals.keys.churn_join_ms, totals.keys.churn_first_frame_ms
        if connect["dtls_ms"] is not None:
            joins[0].record(connect["dtls_ms"])
        if first is not None:
            joins[1].record(first)
        received = _received(agent)
        totals.media.add(
            MediaBytes({f"received_{kind}": n for kind, n in received.bytes.items()}, receiving_s=received.seconds)
        )
        video, audio = received.latency["video"], received.latency["audio"]
        row = dataclasses.replace(
            row,
            join_ms=_ms(connect["dtls_ms"] if connect["dtls_ms"] is not None else entry.join_ms),
            first_frame_ms=_ms(first),
            latency_video_p50=_ms(video.percentile(50)),
            latency_video_p95=_ms(video.percentile(95)),
            latency_audio_p50=_ms(audio.percentile(50)),
            latency_audio_p95=_ms(audio.percentile(95)),
            fps=round(sum(received.fps) / len(received.fps), 1) if received.fps else None,
            received_kbps=_kbps(sum(received.bytes.values()), received.seconds),
            lost=numbers["lost"],
            freezes=numbers["freezes"],
            decrypt_failures=FailureCounts(numbers["failures"]),
        )
        for session in agent.sessions:
            for track, metrics in [(t, t.metrics) for t in session.receive_tracks() if t.metrics is not None]:
                totals.histograms["latency_ms"].merge(metrics.latency)
                if track.kind in ("video", "audio"):
                    totals.histograms[f"latency_{track.kind}_ms"].merge(metrics.latency)
        totals.frames["received"] += numbers["received"]
        totals.frames["decrypted"] += numbers["decrypted"]
        totals.frames["decoded"] += numbers["decoded"]
        totals.frames["lost"] += numbers["lost"]
        totals.freezes_count += numbers["freezes"]
        totals.freezes_ms += numbers["freezes_ms"]
        totals.decrypt_failures.add(numbers["failures"])
        return row

    def _participant_row(self, entry: _Joined) -> ParticipantRow:
        """Who the participant is and how its join went (the final adds what it measured)."""
        p = entry.participant
        recovery = getattr(entry.agent, "recovery", None)
        reconnects = getattr(recovery, "reconnects", None)
        return ParticipantRow(
            id=f"{p.role}-{p.index}",
            role=p.role,
            room=self.config.room_names[p.room],
            worker=self.config.worker,
            failed=self._is_failed(entry) and not entry.left,
            join_ms=_ms(entry.join_ms),
            reconnects=reconnects if isinstance(reconnects, int) and reconnects else None,
        )

    # -- impaired links -----------------------------------------------------------------------

    def _profile(self, p: Participant) -> str:
        link = self.config.links.get(p.index)
        return link.profile if link is not None else NO_PROFILE

    def _link_shape(self, p: Participant) -> Any:
        """The participant's :class:`~sealrtc.agents.impairing.LinkShape` (None: a plain link)."""
        from ..agents.impairing import LinkShape
        from ..impairment import parse_impairment

        link = self.config.links.get(p.index)
        if link is None:
            return None
        up = parse_impairment(link.up) if link.up else None
        down = parse_impairment(link.down) if link.down else None
        return LinkShape(up=up, down=down, seed=link.seed)

    def _profile_totals(self) -> dict[str, ProfileTotals]:
        """What each link profile's participants measured (:meth:`_add_entry`, as for rooms,
        grouped by profile instead of room) and what their impaired links did."""
        now = time.monotonic()
        profiles: dict[str, ProfileTotals] = {}
        for p in self.config.participants:
            profiles.setdefault(self._profile(p), ProfileTotals()).totals.planned += p.legitimate
        for name, count in self.failed_links.items():
            profiles[name].totals.failed += count
        for entry in self.joined:
            p, agent = entry.participant, entry.agent
            profile = profiles.setdefault(self._profile(p), ProfileTotals())
            totals = profile.totals
            if agent.impairment is not None:
                for link in agent.impairment.links:
                    for direction, into in ((link.up, profile.up), (link.down, profile.down)):
                        c = direction.counters
                        into.add(LinkTotals(c.offered, c.delivered, c.dropped, c.queue_dropped, c.duplicated,
                                            c.delay_total))  # fmt: skip
            self._add_entry(totals, entry, now)
        return profiles

    @staticmethod
    def _add_recovery(totals: RoomTotals, entry: _Joined, freezes_ms: float, stall_missed: int = 0) -> None:
        """A legitimate subscriber's outages (``refresh()`` first: it notes recoveries) and the
        video frames they cost it (``stall_missed``: those of outages its connections survived),
        and its
        watched seconds less the time without video: its outages (last frame before a lost
        connection to the first decrypted on the next) and its video freezes (on a connection)."""
        recovery = entry.agent.recovery
        totals.histograms["time_to_recover_ms"].merge(recovery.time_to_recover)
        ongoing = [recovery.outage_seconds() * 1000] if recovery.lost_at is not None else []
        outage_ms = sum(recovery.outages_ms) + sum(ongoing)
        totals.recovery.outage_ms += outage_ms
        totals.recovery.frames_missed += recovery.missed_frames()[0] + stall_missed
        totals.recovery.watched_s += entry.watched_s
        totals.recovery.available_s += max(0.0, entry.watched_s - (outage_ms + freezes_ms) / 1000)

    # -- key lifecycle ------------------------------------------------------------------------

    def _key_levels(self, room: str) -> dict[str, Any]:
        """A room's key changes so far (live metrics): levels, not deltas."""
        keys = self._keys.get(room)
        near = self.near.get(room)
        return {
            "rotations": self.rotations,
            "epoch": keys.epoch if self.config.keying == 2 and keys is not None else 0,
            "near_failures": FailureCounts(near.failures) if near is not None else FailureCounts(),
        }

    def _key_totals(self, room: str) -> KeyTotals:
        near = self.near.get(room, NearChange())
        return KeyTotals(
            rotations=self.rotations,
            epochs=self.epochs if self.config.keying == 2 else 0,
            near_failures=FailureCounts(near.failures),
            near_lost=near.lost,
            near_freezes=near.freezes,
            longest_gap_ms=near.longest_gap_ms * 1000,
        )

    def _listening(self) -> list[_Joined]:
        return [
            e
            for e in self.joined
            if e.participant.role == SUBSCRIBER and not e.left and not self._is_failed(e) and e.agent.sessions
        ]

    @staticmethod
    def _video_frames(entry: _Joined) -> int:
        return sum(t.frames_accepted for s in entry.agent.sessions for t in s.receive_tracks() if t.kind == "video")

    def _near_numbers(self, room: int) -> dict[int, tuple[FailureCounts, int, int]]:
        """Room ``room``'s legitimate subscribers' cumulative failures, losses and freezes, by
        entry: joiners and leavers included (a leaver's counters stay readable once it is closed)."""
        out: dict[int, tuple[FailureCounts, int, int]] = {}
        for entry in self.joined:
            if entry.participant.room != room or entry.participant.role != SUBSCRIBER or not entry.agent.sessions:
                continue
            numbers = self._subscriber_numbers(entry)
            # a stall's gap (missed, not lost) is frames the user did not see all the same
            out[id(entry)] = (
                FailureCounts(numbers["failures"]),
                numbers["lost"] + numbers["missed"],
                numbers["freezes"],
            )
        return out

    async def _count_near_changes(
        self, room: int, before: dict[int, tuple[FailureCounts, int, int]], end: float
    ) -> None:
        """Failures, losses and freezes of room ``room``'s legitimate subscribers while its
        key-change window is open: from ``before`` (taken at the change) until :data:`WINDOW`
        after the room's last change that extended it (a room's changes a second apart make one
        window: nothing is counted twice). Cut short by the run's ``end``: the numbers are taken
        before everything closes."""
        while (now := time.monotonic()) < (until := min(self._window_until[room], end - END_MARGIN)):
            await asyncio.sleep(until - now)  # the window's end (a change of the room meanwhile moves it)
        near = self.near.setdefault(self.config.room_names[room], NearChange())
        for key, (failures, lost, freezes) in self._near_numbers(room).items():
            old_failures, old_lost, old_freezes = before.get(key, (FailureCounts(), 0, 0))
            near.add(
                NearChange(
                    FailureCounts({r: max(0, n - old_failures.get(r, 0)) for r, n in failures.items()}),
                    max(0, lost - old_lost),
                    max(0, freezes - old_freezes),
                )
            )

    async def _measure_gaps(self, meters: list[tuple[_Joined, GapMeter]], at: float, end: float) -> None:
        """The longest time without a decrypted video frame in the :data:`WINDOW` after a change,
        for the subscribers ``meters`` watch (those of the rooms that changed), each gap
        attributed to the subscriber's own room. One that leaves in the window is dropped."""
        until = min(at + WINDOW, end - END_MARGIN)
        now = time.monotonic()
        while now < until:
            await asyncio.sleep(GAP_SAMPLE)  # the sampling cadence of the gap meter
            now = time.monotonic()
            for entry, meter in meters:
                meter.sample(now, self._video_frames(entry))
        for entry, meter in meters:
            if entry.left or self._is_failed(entry):
                continue
            name = self.config.room_names[entry.participant.room]
            near = self.near.setdefault(name, NearChange())
            near.longest_gap_ms = max(near.longest_gap_ms, meter.finish(now))

    def _changed(self, rooms: Collection[int], end: float) -> None:
        """The keys of ``rooms`` (room indices) changed now: count what each room's legitimate
        subscribers lose in its window (opened now, or extended), and measure the gaps after
        this change with one sampler for all of ``rooms`` (a timer step or a rotation changes
        every room at once: one pass over their subscribers per sample, not one per room).

        The counters' starting numbers and the gap meters are taken here, at the change. Only
        subscribers already receiving video get a gap meter: a joiner's wait for its first frame
        is not a gap (``first_frame_ms`` measures it)."""
        now = time.monotonic()
        changed = frozenset(rooms)
        for room in sorted(changed):
            if self._window_until.get(room, 0.0) <= now:
                self._spawn(self._count_near_changes(room, self._near_numbers(room), end))
            self._window_until[room] = now + WINDOW
        meters = [
            (e, GapMeter(now, count))
            for e in self._listening()
            if e.participant.room in changed and (count := self._video_frames(e))
        ]
        if meters:
            self._spawn(self._measure_gaps(meters, now, end))

    async def _key_changes(self, start: float) -> None:
        """Rotate the rooms' secrets (keying v1) on the run's schedule."""
        from ..keys import derive_base_key

        config = self.config
        for n, offset in enumerate(change_times(config.duration, config.rotate_every), 1):
            at = start + offset
            assert isinstance(self.secret, str)
            following = rotation_secret(self.secret, n)
            await asyncio.sleep(max(0.0, at - PREINSTALL - time.monotonic()))  # the preinstall time
            self._next_secret = following  # rooms keyed from now on accept it too
            for room, keys in list(self._keys.items()):
                # PBKDF2 off the loop: add_decryption_secret then hits the cache
                await asyncio.to_thread(derive_base_key, following, room.encode())
                keys.add_decryption_secret(following)
            await asyncio.sleep(max(0.0, at - time.monotonic()))  # the change time
            for keys in list(self._keys.values()):
                keys.set_secret(following)
            self.rotations += 1
            self._next_secret = None
            self._changed(self._rooms, start + config.duration)  # every room's secret changed

    async def _epoch_changes(self, start: float) -> None:
        """Move the rooms' epochs (keying v2) to the planned ones at the planned times. "To", not
        "one step": a subscriber of this worker may have followed another worker's publisher
        there already (its keys are the room's, shared with this worker's publishers)."""
        names = self.config.room_names
        for at, steps in itertools.groupby(self.config.epoch_steps, key=lambda s: s.at):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))  # the epoch schedule
            moved = []
            for step in steps:  # the steps due together (a timer step: every room): one change
                keys = self._keys.get(names[step.room])
                if keys is None:
                    continue
                while keys.epoch < step.epoch:
                    keys.advance()
                moved.append(step.room)
            if moved:
                self._changed(moved, start + self.config.duration)

    async def _churn(self, start: float) -> None:
        """The planned churn: at each event's time its leaver closes and its joiner joins the
        room (keying v2: from the epoch file of its join's epoch, not the secret)."""
        for event in self.config.churn:
            await asyncio.sleep(max(0.0, start + event.at - time.monotonic()))  # the churn schedule
            for entry in self.joined:
                if entry.participant.index == event.leaves and not entry.left:
                    entry.left = True
                    self._spawn(self._close_quietly(entry.agent))
            self._spawn(self._join(event.joiner, self._joiner_keys(event.joiner), churned=True))

    async def _watch_fault(self, index: int, start: float, window: tuple[float, float]) -> None:
        """What legitimate subscribers with video see around fault ``index`` (see
        :mod:`sealrtc.load.faults`), sampled until everyone has video again or the window ends."""
        fault = self.config.faults[index]
        await asyncio.sleep(max(0.0, start + window[0] - time.monotonic()))  # the watch's start
        now = time.monotonic()
        watches = [(e, GapWatch(now, count)) for e in self._listening() if (count := self._video_frames(e))]
        over_at = start + fault.at_s + fault.length_s
        while now < start + window[1]:
            await asyncio.sleep(SAMPLE)  # the sampling cadence of the watch
            now = time.monotonic()
            for entry, watch in watches:
                watch.sample(now, self._video_frames(entry))
            if may_close([w for _, w in watches], now, over_at):
                break
        totals = self.fault_totals[index]
        for entry, watch in watches:
            if entry.left:
                continue
            lost, seconds = watch.outcome(now)
            totals.watched += 1
            totals.lost_media += lost
            if seconds is not None:
                totals.recovered += 1
                totals.recovery_ms.record(seconds * 1000)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _close_quietly(agent: Any) -> None:
        with contextlib.suppress(Exception):
            await agent.close()

    # -- the run ------------------------------------------------------------------------------

    async def _watch_loop_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_PROBE)  # the lag probe: how late does a timer fire?
            lag_ms = max(0.0, (time.monotonic() - before - LAG_PROBE) * 1000)
            self.loop_lag.record(lag_ms)
            self.interval_lag.record(lag_ms)

    async def run(self) -> None:
        config = self.config
        if config.media:
            from pathlib import Path

            from ..media import load_clip

            for room in sorted({p.room for p in config.participants if p.role == PUBLISHER}):
                shape = self._shape_of(room)
                if clip_key(shape) not in self.clips:
                    self.clips[clip_key(shape)] = await asyncio.to_thread(
                        load_clip,
                        config.media,
                        cache_dir=Path(config.cache_dir) if config.cache_dir else None,
                        video_codec=config.video_codec,
                        shape=shape,
                    )
        now_wall, now = time.time(), time.monotonic()
        start = now + max(0.0, config.start_at - now_wall)
        self._start = start
        end = start + config.duration
        lag_task = asyncio.ensure_future(self._watch_loop_lag())
        joins: list[asyncio.Task[None]] = []

        async def join_later(p: Participant) -> None:
            await asyncio.sleep(max(0.0, start + p.join_at - time.monotonic()))  # the ramp schedule
            await self._join(p)

        for p in config.participants:
            if p.join_at < config.duration:
                joins.append(asyncio.ensure_future(join_later(p)))
        if config.e2ee and config.keying == 1 and config.rotate_every:
            joins.append(asyncio.ensure_future(self._key_changes(start)))
        # Faults strike at the run's wall-clock times, even when this worker started late.
        faults_start = now + config.start_at - now_wall
        for index, window in enumerate(windows(config.faults, config.duration)):
            joins.append(asyncio.ensure_future(self._watch_fault(index, faults_start, window)))
        if config.e2ee and config.keying == 2 and config.epoch_steps:
            joins.append(asyncio.ensure_future(self._epoch_changes(start)))
        if config.churn:
            joins.append(asyncio.ensure_future(self._churn(start)))
        cpu_start = cpu_last = time.process_time()
        wall_start = wall_last = time.monotonic()
        next_tick = max(start, time.monotonic()) + TICK
        ticks = 0
        try:
            while time.monotonic() < end and not self.stop.is_set():
                await asyncio.sleep(max(0.0, min(next_tick, end) - time.monotonic()))  # the tick cadence
                cpu_now, wall_now = time.process_time(), time.monotonic()
                cpu = (cpu_now - cpu_last) / max(wall_now - wall_last, 1e-6) * 100
                cpu_last, wall_last = cpu_now, wall_now
                self.cpu_intervals.append(round(cpu, 1))
                # One snapshot per tick, numbered by the time it covers (not the late wall clock):
                # after a stall the next tick is the next whole one ahead, never a burst of
                # catch-up ticks measuring CPU over microseconds.
                ticks = max(ticks + 1, round((wall_now - start) / TICK))
                self.send(self.snapshot(ticks * TICK, round(cpu, 1)).to_json())
                next_tick = max(next_tick + TICK, start + (ticks + 1) * TICK)
        finally:
            for task in [*joins, *self._background]:
                task.cancel()
            cpu_total = (time.process_time() - cpu_start) / max(time.monotonic() - wall_start, 1e-6) * 100
            final = self.final(round(cpu_total, 1))
            lag_task.cancel()
            await self._close_all()
            self.send(final.to_json())

    async def _close_all(self) -> None:
        async def close(agent: Any) -> None:
            with contextlib.suppress(Exception):
                await agent.close()

        if self.joined:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(close(e.agent) for e in self.joined)), CLOSE_TIMEOUT)


def worker_main(config: WorkerConfig, secret: str | EpochKey | None, queue: Any, stop: Any) -> None:
    """Process entry point (multiprocessing, spawn): the parent handles Ctrl-C and tells us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.ERROR)
    from .. import agents, epochs, keys  # imported before the start: not on the event loop mid-ramp

    del agents, epochs, keys
    worker = Worker(config, secret, queue.put, stop)
    try:
        eventloop.run(worker.run())  # uvloop unless SEALRTC_LOOP=asyncio, as every command
    except Exception as exc:  # a worker crash is reported, not silent
        queue.put(WorkerCrash(config.worker, f"{exc.__class__.__name__}: {exc}").to_json())
