"""Combine what workers (or shards) measured into one report: exact histogram merges, summed
counters, intervals over time, saturation, and participants that never reported. Pure: typed
records in (:mod:`.records`), a typed :class:`~sealrtc.report.model.LoadReport` out.

:func:`build_report` is the one builder: ``sealrtc load`` calls it with its workers' data and
``sealrtc report merge`` with the pooled data of every shard, so a merged report is, room by room
and in total, the report one process would have built from the same workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from ..metrics import Histogram
from ..report.measures import (
    Bitrate,
    Frames,
    Freezes,
    KeyChanges,
    Metrics,
    ParticipantRow,
    Participants,
    RoomReport,
    Summary,
)
from ..report.model import FaultReport, Generator, Interval, LoadReport, ProfileReport, RawData, ScenarioInfo
from ..report.records import (
    BYTE_COUNTERS,
    MAX_PARTICIPANT_ROWS,
    RoomTotals,
    WorkerFinal,
    WorkerId,
    WorkerSnapshot,
    unpack,
)

SATURATION_CPU_PERCENT = 90.0
"""A worker that kept a core this busy has no headroom: its timings include its own queueing."""
SATURATION_LOOP_LAG_MS = 100.0
"""p99 event-loop lag at which a worker's timestamps are late by more than a video frame x3."""
SATURATION_MEDIAN_LAG_MS = 10.0
"""Median event-loop lag of a loop that is never idle (an idle-enough loop lags < 1 ms)."""
SATURATION_BUSY_SHARE = 0.25
"""Share of a worker's seconds at >= SATURATION_CPU_PERCENT that marks it saturated."""


def participants(totals: RoomTotals) -> Participants:
    return Participants(totals.planned, totals.joined, totals.failed, totals.intruders)


def metrics(totals: RoomTotals) -> Metrics:
    h = totals.histograms
    return Metrics(
        join_ms=Summary.of(h["join_ms"]),
        first_frame_ms=Summary.of(h["first_frame_ms"]),
        latency_ms=Summary.of(h["latency_ms"]),
        latency_video_ms=Summary.of(h["latency_video_ms"]),
        latency_audio_ms=Summary.of(h["latency_audio_ms"]),
        frames=Frames(*(totals.frames.get(name, 0) for name in Frames.NAMES)),
        decrypt_failures=totals.decrypt_failures,
        intruder_decrypts=totals.intruder_decrypts,
        intruder_failures=totals.intruder_failures,
        freezes=Freezes(totals.freezes_count, round(totals.freezes_ms, 1)),
        keys=key_changes(totals),
        bitrate=Bitrate(*(totals.media.kbps(name) for name in BYTE_COUNTERS)),
        reconnects=totals.recovery.reconnects,
        time_to_recover_ms=Summary.of(h["time_to_recover_ms"]),
        outage_ms=round(totals.recovery.outage_ms, 1),
        outage_frames_missed=totals.recovery.frames_missed,
        availability_percent=_round(totals.recovery.availability_percent),
    )


def key_changes(totals: RoomTotals) -> KeyChanges:
    k = totals.keys
    return KeyChanges(
        rotations=k.rotations,
        epochs=k.epochs,
        decrypt_failures=k.near_failures,
        frames_lost=k.near_lost,
        freezes=k.near_freezes,
        longest_gap_ms=round(k.longest_gap_ms, 1),
        joins=k.churn_joins,
        join_ms=Summary.of(k.churn_join_ms),
        first_frame_ms=Summary.of(k.churn_first_frame_ms),
    )


def merge_rooms(finals: Iterable[WorkerFinal], planned_per_room: Mapping[str, int]) -> dict[str, RoomTotals]:
    """Per-room totals over every worker's final (rooms keyed by name).

    The missing-worker rule lives here and only here: a room that planned more participants
    than its reporting workers account for counts the difference as failed (their worker
    crashed, hung or never started; a shard's planned participants travel in its report).
    """
    rooms: dict[str, RoomTotals] = {}
    for final in finals:
        for name, totals in final.rooms.items():
            rooms.setdefault(name, RoomTotals()).add(totals)
    for name, want in planned_per_room.items():
        room = rooms.setdefault(name, RoomTotals())
        if room.planned < want:
            room.failed += want - room.planned
            room.planned = want
    return rooms


INTERVAL_SUMS = ("frames_decrypted", "video_frames", "lost", "freezes", "decrypt_failures", "intruder_decrypts")
INTERVAL_LEVELS = ("joined", "failed", "intruders", "video_tracks")
SNAPSHOT_HISTOGRAMS = ("latency", "latency_video", "latency_audio", "loop_lag")


class _Histograms:
    """The interval histograms of some snapshots, merged (one per :data:`SNAPSHOT_HISTOGRAMS`)."""

    def __init__(self, snapshots: Iterable[WorkerSnapshot] = ()) -> None:
        self.by_name = {name: Histogram() for name in SNAPSHOT_HISTOGRAMS}
        for snapshot in snapshots:
            self.add(snapshot)

    def add(self, snapshot: WorkerSnapshot) -> None:
        for name, histogram in self.by_name.items():
            histogram.merge(unpack(getattr(snapshot, name)))

    def percentiles(self) -> dict[str, float | None]:
        latency = {
            f"{name}_p{p}": _round(self.by_name[name].percentile(p))
            for name in ("latency", "latency_video", "latency_audio")
            for p in (50, 95)
        }
        return latency | {"loop_lag_ms": _round(self.by_name["loop_lag"].percentile(99))}


INTERVAL_RATES = {
    "sent_kbps": ("sent_video", "sent_audio"),
    "received_kbps": ("received_video", "received_audio"),
    "received_video_kbps": ("received_video",),
    "received_audio_kbps": ("received_audio",),
}
"""An interval's bitrate fields and the byte counters each one sums."""


def _rates(sums: Mapping[str, int], seconds: float) -> dict[str, float | None]:
    """Bitrates in kbit/s of byte sums over ``seconds`` (None: no time yet)."""
    return {
        name: round(sum(sums.get(p, 0) for p in parts) * 8 / seconds / 1000, 1) if seconds > 0 else None
        for name, parts in INTERVAL_RATES.items()
    }


def _kbps(group: Sequence[WorkerSnapshot], tick: float) -> dict[str, float | None]:
    """The interval's bitrates, totals over every participant (kbit/s)."""
    return _rates({k: sum(s.media_bytes.get(k, 0) for s in group) for k in BYTE_COUNTERS}, tick)


def _row(t: float, group: Sequence[WorkerSnapshot], histograms: _Histograms, tick: float = 1.0) -> Interval:
    latest = list({snap.worker: snap for snap in group}.values())
    sums = {k: sum(int(getattr(s, k)) for s in group) for k in INTERVAL_SUMS}
    levels = {k: sum(int(getattr(s, k)) for s in latest) for k in INTERVAL_LEVELS}
    cpus = [s.cpu_percent for s in latest if s.cpu_percent is not None]
    fps = sums["video_frames"] / levels["video_tracks"] / tick if levels["video_tracks"] else None
    percentiles = histograms.percentiles()
    return Interval(
        {
            "t": round(t, 3),
            "joined": levels["joined"],
            "intruders": levels["intruders"],
            "failed": levels["failed"],
            "frames_decrypted": sums["frames_decrypted"],
            "fps": round(fps, 2) if fps is not None else None,
            "latency_p50": percentiles["latency_p50"],
            "latency_p95": percentiles["latency_p95"],
            "lost": sums["lost"],
            "freezes": sums["freezes"],
            "decrypt_failures": sums["decrypt_failures"],
            "intruder_decrypts": sums["intruder_decrypts"],
            "cpu_percent": round(sum(cpus) / len(cpus), 1) if cpus else None,
            "loop_lag_ms": percentiles["loop_lag_ms"],
            "workers": len(latest),
            "latency_video_p50": percentiles["latency_video_p50"],
            "latency_video_p95": percentiles["latency_video_p95"],
            "latency_audio_p50": percentiles["latency_audio_p50"],
            "latency_audio_p95": percentiles["latency_audio_p95"],
            **_kbps(group, tick),
        }
    )


def merge_intervals(snapshots: Iterable[WorkerSnapshot], tick: float = 1.0) -> list[Interval]:
    """One row per tick over all workers: sums of deltas, levels summed, percentiles from merged
    interval histograms, CPU as the mean over workers (each worker's % of one core), bitrates
    as totals over every participant.

    A worker can land two snapshots in one tick (a late loop): deltas and histograms add up,
    but levels such as "joined" come from each worker's latest snapshot only, or a participant
    would be counted twice."""
    by_t: dict[float, list[WorkerSnapshot]] = {}
    for snap in snapshots:
        by_t.setdefault(round(snap.t / tick) * tick, []).append(snap)
    return [_row(t, by_t[t], _Histograms(by_t[t]), tick) for t in sorted(by_t)]


class LiveTotals:
    """The live view's numbers, kept up to date as snapshots arrive (a running merge: nothing is
    merged again at each redraw)."""

    def __init__(self) -> None:
        self.latest: dict[WorkerId, WorkerSnapshot] = {}
        self._sums = dict.fromkeys(INTERVAL_SUMS, 0)
        self._histograms = _Histograms()
        self._bytes = dict.fromkeys(BYTE_COUNTERS, 0)
        self._first_t: float | None = None
        self._last_t = 0.0

    def add(self, snapshot: WorkerSnapshot) -> None:
        self.latest[snapshot.worker] = snapshot
        for key in INTERVAL_SUMS:
            self._sums[key] += int(getattr(snapshot, key))
        for key in BYTE_COUNTERS:
            self._bytes[key] += snapshot.media_bytes.get(key, 0)
        self._histograms.add(snapshot)
        if self._first_t is None:
            self._first_t = snapshot.t - 1.0  # a snapshot covers the second before its time
        self._last_t = max(self._last_t, snapshot.t)

    def last_second(self) -> Interval | None:
        """Each worker's latest snapshot, whatever its tick: workers a tick apart make one row."""
        if not self.latest:
            return None
        latest = list(self.latest.values())
        return _row(0.0, latest, _Histograms(latest))

    def whole_run(self) -> Interval | None:
        """The run so far: percentiles over every interval, counts summed, bitrates as the mean
        total rate (kbit/s) since the first snapshot."""
        if not self.latest:
            return None
        return Interval(
            {
                **self._histograms.percentiles(),
                **{k: v for k, v in self._sums.items() if k != "video_frames"},
                **_rates(self._bytes, self._last_t - (self._first_t or 0.0)),
            }
        )


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def saturation_reasons(
    worker: int | str, cpu_percent: float | None, loop_lag: Histogram, cpu_intervals: Sequence[float] | None = None
) -> list[str]:
    """Why a worker's numbers cannot be trusted (empty: they can).

    Any of: its CPU over the run >= 90% of a core; >= 90% in a quarter of its seconds or more;
    its event loop late by >= 10 ms at the median (never idle) or >= 100 ms at p99.
    """
    reasons: list[str] = []
    busy = [c for c in cpu_intervals or [] if c >= SATURATION_CPU_PERCENT]
    if cpu_percent is not None and cpu_percent >= SATURATION_CPU_PERCENT:
        reasons.append(f"worker {worker} used {cpu_percent:.0f}% of a core (>= {SATURATION_CPU_PERCENT:.0f}%)")
    elif cpu_intervals and len(busy) >= max(1, SATURATION_BUSY_SHARE * len(cpu_intervals)):
        reasons.append(
            f"worker {worker} used >= {SATURATION_CPU_PERCENT:.0f}% of a core in {len(busy)} of its "
            f"{len(cpu_intervals)} seconds"
        )
    p50 = loop_lag.percentile(50)
    if p50 is not None and p50 >= SATURATION_MEDIAN_LAG_MS:
        reasons.append(
            f"worker {worker} event loop lagged {p50:.0f} ms at the median (>= {SATURATION_MEDIAN_LAG_MS:.0f} ms)"
        )
    p99 = loop_lag.percentile(99)
    if p99 is not None and p99 >= SATURATION_LOOP_LAG_MS:
        reasons.append(f"worker {worker} event loop lagged {p99:.0f} ms at p99 (>= {SATURATION_LOOP_LAG_MS:.0f} ms)")
    return reasons


def generator_section(finals: Sequence[WorkerFinal]) -> tuple[Generator, Histogram]:
    lag = Histogram()
    reasons: list[str] = []
    cpus: list[float] = []
    loops = {final.generator.event_loop for final in finals if final.generator.event_loop is not None}
    for final in finals:
        worker_lag = unpack(final.generator.loop_lag)
        lag.merge(worker_lag)
        cpu = final.generator.cpu_percent
        if cpu is not None:
            cpus.append(cpu)
        reasons += saturation_reasons(final.worker, cpu, worker_lag, final.generator.cpu_intervals)
    section = Generator(
        workers=len(finals),
        cpu_percent=round(sum(cpus) / len(cpus), 1) if cpus else None,
        cpu_percent_max=round(max(cpus), 1) if cpus else None,
        loop_lag_ms=Summary.of(lag),
        saturated=bool(reasons),
        saturation_reasons=tuple(reasons),
        event_loop=(loops.pop() if len(loops) == 1 else "mixed") if loops else None,
    )
    return section, lag


def build_report(
    *,
    scenario: ScenarioInfo,
    room_names: Sequence[str],
    finals: Sequence[WorkerFinal],
    snapshots: Sequence[WorkerSnapshot],
    started_at: str,
    duration_s: float,
    planned_per_room: Mapping[str, int] | None = None,
    errors: Sequence[str] = (),
    raw: RawData | None = None,
    missing_shards: Sequence[int] | None = None,
    interrupted_shards: Sequence[int] | None = None,
    faults: Sequence[FaultReport] = (),
    profiles: Sequence[ProfileReport] = (),
) -> LoadReport:
    """The report without assertions and verdict (:func:`sealrtc.report.judge.judge` adds them).

    ``planned_per_room``: the participants each room planned, reported or not (see
    :func:`merge_rooms`); rooms are listed in ``room_names`` order and the totals are their sum.
    """
    rooms = merge_rooms(finals, planned_per_room or {})
    total = RoomTotals()
    for name in room_names:
        total.add(rooms.setdefault(name, RoomTotals()))
    generator, lag = generator_section(finals)
    histograms = {n: h.encode() for n, h in total.histograms.items() if h.count}
    if lag.count:
        histograms["loop_lag_ms"] = lag.encode()
    return LoadReport(
        started_at=started_at,
        duration_s=round(duration_s, 2),
        scenario=scenario,
        participants=participants(total),
        metrics=metrics(total),
        rooms=tuple(RoomReport(name, participants(rooms[name]), metrics(rooms[name])) for name in room_names),
        generator=generator,
        intervals=tuple(merge_intervals(snapshots)),
        histograms=histograms,
        histogram_max_ms={n: h.max_ms for n, h in total.histograms.items() if h.count and h.max_ms is not None},
        errors=tuple(errors)[:50],
        missing_shards=tuple(missing_shards) if missing_shards is not None else None,
        interrupted_shards=tuple(interrupted_shards) if interrupted_shards is not None else None,
        raw=raw,
        participant_rows=participant_rows(finals),
        faults=tuple(faults),
        profiles=tuple(profiles),
    )


def participant_rows(finals: Iterable[WorkerFinal]) -> tuple[ParticipantRow, ...]:
    """Every worker's participant rows, worst first, at most :data:`MAX_PARTICIPANT_ROWS`."""
    rows = sorted((row for final in finals for row in final.participants), key=ParticipantRow.worst_first)
    return tuple(rows[:MAX_PARTICIPANT_ROWS])


def relabel(snapshot: WorkerSnapshot, worker: WorkerId) -> WorkerSnapshot:
    """The snapshot as a shard's raw section keeps it: labelled ``SHARD.WORKER``, rooms dropped."""
    return dataclasses.replace(snapshot, worker=worker, rooms={})
