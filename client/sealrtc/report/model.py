"""The load report as typed records: what ``sealrtc load`` and ``report merge`` write, and what
the judge, the HTML page, the CSV and the summary read. A room's numbers (and the whole run's)
are the sections of :mod:`.measures`.

``LoadReport.to_json()`` is the report file (its JSON Schema: ``report.schema.json`` beside this
module; ``"schema"`` names its version). ``LoadReport.from_json()`` is the ONE reader of report
JSON. It never raises: a report from a newer or broken writer reads with the parts it lacks (or
holds with a wrong type) as None, so a page can still show what is there and an assertion can
say "no ... in the report". Numbers keep their JSON type (``5`` stays an int, ``5.0`` a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .jsonread import Number, boolean, integer, mapping, number, sequence, text
from .measures import Metrics, ParticipantRow, Participants, RoomReport, Summary
from .records import WorkerFinal, WorkerSnapshot

__all__ = [
    "INTERVAL_FIELDS",
    "REPORT_VERSION",
    "SCHEMA_VERSION",
    "AssertionOutcome",
    "FaultReport",
    "Generator",
    "Interval",
    "LoadReport",
    "ProfileReport",
    "RawData",
    "ScenarioInfo",
    "ShardInfo",
]

REPORT_VERSION = 1
"""``"version"``: the report's field layout, unchanged since the first load reports."""
SCHEMA_VERSION = 1
"""``"schema"``: the version of ``report.schema.json`` the report was written against."""


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Generator:
    """The load generator itself: how busy its workers were, and whether that spoils the numbers."""

    workers: Number | None = None
    cpu_percent: Number | None = None
    cpu_percent_max: Number | None = None
    loop_lag_ms: Summary | None = None
    saturated: bool | None = None
    saturation_reasons: tuple[str, ...] = ()
    event_loop: str | None = None
    """``"uvloop"`` or ``"asyncio"`` (what the workers ran on; ``"mixed"`` if they differed)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "cpu_percent": self.cpu_percent,
            "cpu_percent_max": self.cpu_percent_max,
            "loop_lag_ms": self.loop_lag_ms.to_json() if self.loop_lag_ms is not None else None,
            "saturated": self.saturated,
            "saturation_reasons": list(self.saturation_reasons),
            "event_loop": self.event_loop,
        }

    @classmethod
    def from_json(cls, data: object) -> Generator | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            workers=number(data.get("workers")),
            cpu_percent=number(data.get("cpu_percent")),
            cpu_percent_max=number(data.get("cpu_percent_max")),
            loop_lag_ms=Summary.from_json(data.get("loop_lag_ms")),
            saturated=boolean(data.get("saturated")),
            saturation_reasons=tuple(r for r in sequence(data.get("saturation_reasons")) if isinstance(r, str)),
            event_loop=text(data.get("event_loop")),
        )


@dataclass(frozen=True)
class AssertionOutcome:
    """One assertion as the report keeps it (``default``: it was not asked for, the run's
    defaults were checked)."""

    expr: str
    value: float | None
    ok: bool
    reason: str | None = None
    default: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"expr": self.expr, "value": self.value, "ok": self.ok}
        if self.reason:
            out["reason"] = self.reason
        if self.default:
            out["default"] = True
        return out

    @classmethod
    def from_json(cls, data: object) -> AssertionOutcome | None:
        if not isinstance(data, Mapping):
            return None
        value = number(data.get("value"))
        return cls(
            str(data.get("expr", "")),
            float(value) if value is not None else None,
            data.get("ok") is True,
            text(data.get("reason")) or None,
            data.get("default") is True,
        )


INTERVAL_FIELDS = (
    "t",
    "joined",
    "intruders",
    "failed",
    "frames_decrypted",
    "fps",
    "latency_p50",
    "latency_p95",
    "lost",
    "freezes",
    "decrypt_failures",
    "intruder_decrypts",
    "cpu_percent",
    "loop_lag_ms",
    "workers",
    "latency_video_p50",
    "latency_video_p95",
    "latency_audio_p50",
    "latency_audio_p95",
    "sent_kbps",
    "received_kbps",
    "received_video_kbps",
    "received_audio_kbps",
)
"""An interval's fields. ``latency_p50``/``latency_p95`` mix video and audio (kept for readers of
older reports; displays show ``latency_video_*`` and ``latency_audio_*``). The ``*_kbps`` fields
are totals over every participant in that interval: what all publishers sent, what all
legitimate subscribers received (video and audio together, and each apart). New fields go at the
end: the CSV's columns follow this order."""


@dataclass(frozen=True)
class Interval:
    """One second of the run over all workers (counters per interval, ``joined`` a level).

    ``values`` maps every field of :data:`INTERVAL_FIELDS` the row has (None: a null or a value
    that is not a number); ``extra`` keeps keys this version does not know (the CSV shows them).
    """

    values: Mapping[str, Number | None]
    extra: Mapping[str, object] = field(default_factory=dict)

    def get(self, name: str) -> Number | None:
        return self.values.get(name)

    def has(self, name: str) -> bool:
        return name in self.values

    def to_json(self) -> dict[str, Any]:
        return {**self.values, **self.extra}

    @classmethod
    def from_json(cls, data: object) -> Interval | None:
        if not isinstance(data, Mapping):
            return None
        values = {k: number(data[k]) for k in INTERVAL_FIELDS if k in data}
        return cls(values, {str(k): v for k, v in data.items() if k not in INTERVAL_FIELDS})


@dataclass(frozen=True)
class ShardInfo:
    index: int | None = None
    count: int = 1
    merged: tuple[int, ...] | None = None
    """The shard indexes a merged report was made of (None: not a merge)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "count": self.count}
        if self.merged is not None:
            out["merged"] = list(self.merged)
        return out

    @classmethod
    def from_json(cls, data: object) -> ShardInfo | None:
        if not isinstance(data, Mapping):
            return None
        merged = data.get("merged")
        return cls(
            integer(data.get("index")),
            integer(data.get("count")) or 1,
            tuple(m for m in merged if isinstance(m, int)) if isinstance(merged, list) else None,
        )


SCENARIO_FIELDS = (
    "rooms", "publishers", "subscribers", "intruders", "duration", "ramp", "decode_every", "e2ee", "suite", "probe",
    "media", "room_ids", "assertions", "target", "workers", "shard", "run_id",
)  # fmt: skip


@dataclass(frozen=True)
class ScenarioInfo:
    """The run as configured (the scenario's settings) and as it ran (target, workers, shard)."""

    rooms: Number | None = None
    publishers: Number | None = None
    subscribers: Number | None = None
    intruders: Number | None = None
    duration: Number | None = None
    ramp: Number | None = None
    decode_every: Number | None = None
    e2ee: bool | None = None
    suite: Number | None = None
    probe: bool | None = None
    media: str | None = None
    room_ids: tuple[str, ...] = ()
    assertions: tuple[str, ...] = ()
    target: str | None = None
    workers: Number | None = None
    shard: ShardInfo | None = None
    run_id: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rooms": self.rooms,
            "publishers": self.publishers,
            "subscribers": self.subscribers,
            "intruders": self.intruders,
            "duration": self.duration,
            "ramp": self.ramp,
            "decode_every": self.decode_every,
            "e2ee": self.e2ee,
            "suite": self.suite,
            "probe": self.probe,
            "media": self.media,
            "room_ids": list(self.room_ids),
            "assertions": list(self.assertions),
            "target": self.target,
            "workers": self.workers,
            "shard": self.shard.to_json() if self.shard is not None else None,
            "run_id": self.run_id,
        }
        return out | dict(self.extra)

    @classmethod
    def from_json(cls, data: object) -> ScenarioInfo | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            rooms=number(data.get("rooms")),
            publishers=number(data.get("publishers")),
            subscribers=number(data.get("subscribers")),
            intruders=number(data.get("intruders")),
            duration=number(data.get("duration")),
            ramp=number(data.get("ramp")),
            decode_every=number(data.get("decode_every")),
            e2ee=boolean(data.get("e2ee")),
            suite=number(data.get("suite")),
            probe=boolean(data.get("probe")),
            media=text(data.get("media")),
            room_ids=tuple(str(r) for r in sequence(data.get("room_ids"))),
            assertions=tuple(str(a) for a in sequence(data.get("assertions"))),
            target=text(data.get("target")),
            workers=number(data.get("workers")),
            shard=ShardInfo.from_json(data.get("shard")),
            run_id=text(data.get("run_id")),
            extra={str(k): v for k, v in data.items() if k not in SCENARIO_FIELDS},
        )


@dataclass(frozen=True)
class FaultReport:
    """One fault of the run (``--fault``) and what legitimate subscribers saw around it: how
    many had video when it struck (``watched``), lost media, recovered, and their recovery times
    (from the last decrypted video frame before to the first after)."""

    spec: str | None = None
    kind: str | None = None
    at_s: Number | None = None
    length_s: Number | None = None
    watched: Number | None = None
    lost_media: Number | None = None
    recovered: Number | None = None
    recovery_ms: Summary | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "at_s": self.at_s,
            "length_s": self.length_s,
            "watched": self.watched,
            "lost_media": self.lost_media,
            "recovered": self.recovered,
            "recovery_ms": self.recovery_ms.to_json() if self.recovery_ms is not None else None,
        }

    @classmethod
    def from_json(cls, data: object) -> FaultReport | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            spec=text(data.get("spec")),
            kind=text(data.get("kind")),
            at_s=number(data.get("at_s")),
            length_s=number(data.get("length_s")),
            watched=number(data.get("watched")),
            lost_media=number(data.get("lost_media")),
            recovered=number(data.get("recovered")),
            recovery_ms=Summary.from_json(data.get("recovery_ms")),
        )


@dataclass(frozen=True)
class ProfileReport:
    """The participants of one link profile (``--impair*``, a scenario's ``impair`` shares): how
    many, what they measured (the report's metrics, for them alone) and what their impaired
    links did to datagrams, per direction (offered, dropped, delivered, mean added delay)."""

    profile: str | None = None
    participants: Participants | None = None
    metrics: Metrics | None = None
    impairment: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "participants": self.participants.to_json() if self.participants is not None else None,
            "metrics": self.metrics.to_json() if self.metrics is not None else None,
            "impairment": {k: dict(v) for k, v in self.impairment.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> ProfileReport | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            profile=text(data.get("profile")),
            participants=Participants.from_json(data.get("participants")),
            metrics=Metrics.from_json(data.get("metrics")),
            impairment={str(k): dict(v) for k, v in mapping(data.get("impairment")).items() if isinstance(v, Mapping)},
        )


@dataclass(frozen=True)
class RawData:
    """Every worker's final and snapshots (without per-room live data), and the participants
    each room planned: what ``report merge`` rebuilds a merged report from."""

    shard: int | None
    finals: tuple[WorkerFinal, ...]
    snapshots: tuple[WorkerSnapshot, ...]
    planned_per_room: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "finals": [f.to_json() for f in self.finals],
            "snapshots": [s.to_json(rooms=False) for s in self.snapshots],
            "planned_per_room": dict(self.planned_per_room),
        }

    @classmethod
    def from_json(cls, data: object) -> RawData | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("finals"), list):
            return None
        return cls(
            integer(data.get("shard")),
            tuple(WorkerFinal.from_json(f) for f in data["finals"] if isinstance(f, Mapping)),
            tuple(WorkerSnapshot.from_json(s) for s in sequence(data.get("snapshots")) if isinstance(s, Mapping)),
            {str(k): v for k, v in mapping(data.get("planned_per_room")).items() if isinstance(v, int)},
        )


@dataclass(frozen=True)
class LoadReport:
    """A whole load report (one run, one shard, or a merge of shards)."""

    scenario: ScenarioInfo | None = None
    participants: Participants | None = None
    metrics: Metrics | None = None
    rooms: tuple[RoomReport, ...] = ()
    generator: Generator | None = None
    assertions: tuple[AssertionOutcome, ...] = ()
    intervals: tuple[Interval, ...] = ()
    histograms: Mapping[str, str] = field(default_factory=dict)
    """Standard HdrHistogram encodings of the whole run's histograms (for other tools)."""
    histogram_max_ms: Mapping[str, float] = field(default_factory=dict)
    started_at: str | None = None
    duration_s: Number | None = None
    version: Number | None = REPORT_VERSION
    schema: int | None = SCHEMA_VERSION
    tool: str | None = "sealrtc load"
    errors: tuple[str, ...] = ()
    verdict: str | None = None
    exit_status: int | None = None
    missing_shards: tuple[int, ...] | None = None
    """Set by ``report merge``: shards of the run that were not given."""
    interrupted_shards: tuple[int, ...] | None = None
    raw: RawData | None = None
    participant_rows: tuple[ParticipantRow, ...] = ()
    """One row per participant, worst first (:meth:`ParticipantRow.worst_first`); at most
    :data:`~sealrtc.report.records.MAX_PARTICIPANT_ROWS` (the worst are kept)."""
    faults: tuple[FaultReport, ...] = ()
    """The run's faults (``--fault``), in time order; absent from the JSON when there were none."""
    profiles: tuple[ProfileReport, ...] = ()
    """Per link profile, when the run impaired links; absent from the JSON otherwise."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "version": self.version,
            "tool": self.tool,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "scenario": self.scenario.to_json() if self.scenario is not None else None,
            "participants": self.participants.to_json() if self.participants is not None else None,
            "metrics": self.metrics.to_json() if self.metrics is not None else None,
            "rooms": [r.to_json() for r in self.rooms],
            "generator": self.generator.to_json() if self.generator is not None else None,
            "assertions": [a.to_json() for a in self.assertions],
            "intervals": [i.to_json() for i in self.intervals],
            "histograms": dict(self.histograms),
            "histogram_max_ms": dict(self.histogram_max_ms),
            "errors": list(self.errors),
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "participant_rows": [row.to_json() for row in self.participant_rows],
        }
        optional = {
            "missing_shards": list(self.missing_shards) if self.missing_shards is not None else None,
            "interrupted_shards": list(self.interrupted_shards) if self.interrupted_shards is not None else None,
            "raw": self.raw.to_json() if self.raw is not None else None,
            "faults": [f.to_json() for f in self.faults] if self.faults else None,
            "profiles": [p.to_json() for p in self.profiles] if self.profiles else None,
        }
        return out | _drop_none(optional)

    @classmethod
    def from_json(cls, data: object) -> LoadReport:
        """Read any JSON value (a non-object reads as an empty report); never raises."""
        d = mapping(data)

        def ints(value: object) -> tuple[int, ...] | None:
            return tuple(i for i in value if isinstance(i, int)) if isinstance(value, list) else None

        return cls(
            scenario=ScenarioInfo.from_json(d.get("scenario")),
            participants=Participants.from_json(d.get("participants")),
            metrics=Metrics.from_json(d.get("metrics")),
            rooms=tuple(r for r in map(RoomReport.from_json, sequence(d.get("rooms"))) if r is not None),
            generator=Generator.from_json(d.get("generator")),
            assertions=tuple(
                a for a in map(AssertionOutcome.from_json, sequence(d.get("assertions"))) if a is not None
            ),
            intervals=tuple(i for i in map(Interval.from_json, sequence(d.get("intervals"))) if i is not None),
            histograms={str(k): v for k, v in mapping(d.get("histograms")).items() if isinstance(v, str)},
            histogram_max_ms={
                str(k): float(v) for k, v in mapping(d.get("histogram_max_ms")).items() if number(v) is not None
            },
            started_at=text(d.get("started_at")),
            duration_s=number(d.get("duration_s")),
            version=number(d.get("version")),
            schema=integer(d.get("schema")),
            tool=text(d.get("tool")),
            errors=tuple(str(e) for e in sequence(d.get("errors"))),
            verdict=text(d.get("verdict")),
            exit_status=integer(d.get("exit_status")),
            missing_shards=ints(d.get("missing_shards")),
            interrupted_shards=ints(d.get("interrupted_shards")),
            raw=RawData.from_json(d.get("raw")),
            participant_rows=tuple(
                row for row in map(ParticipantRow.from_json, sequence(d.get("participant_rows"))) if row is not None
            ),
            faults=tuple(f for f in map(FaultReport.from_json, sequence(d.get("faults"))) if f is not None),
            profiles=tuple(p for p in map(ProfileReport.from_json, sequence(d.get("profiles"))) if p is not None),
        )
