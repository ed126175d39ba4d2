"""What a room, or the whole run, measured: participants, frames, failures, freezes and histogram
summaries, as typed report sections (``participants`` and ``metrics`` in the report JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..failures import FailureCounts
from ..metrics import Histogram
from ..metrics.histogram import PERCENTILES
from .jsonread import Number, failures, number

__all__ = [
    "Bitrate",
    "Frames",
    "Freezes",
    "KeyChanges",
    "Metrics",
    "ParticipantRow",
    "Participants",
    "RoomReport",
    "Summary",
    "loss_percent",
]


def loss_percent(lost: Number | None, decrypted: Number | None) -> float | None:
    """100 x lost / (decrypted + lost); 0 with no frames; None when either count is unknown."""
    if lost is None or decrypted is None:
        return None
    delivered = lost + decrypted
    return 100.0 * lost / delivered if delivered else 0.0


@dataclass(frozen=True)
class Summary:
    """A histogram's summary in ms: sample count, percentiles and the exact maximum."""

    count: Number | None
    p50: Number | None = None
    p90: Number | None = None
    p95: Number | None = None
    p99: Number | None = None
    max: Number | None = None

    @classmethod
    def of(cls, histogram: Histogram) -> Summary | None:
        """None for an empty histogram (the report writes ``null``)."""
        data = histogram.summary()
        return cls.from_json(data) if data is not None else None

    def value(self, function: str) -> Number | None:
        """``count``, ``max`` or ``pNN``."""
        return {
            "count": self.count, "p50": self.p50, "p90": self.p90, "p95": self.p95, "p99": self.p99, "max": self.max,
        }.get(function)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, **{f"p{p}": self.value(f"p{p}") for p in PERCENTILES}, "max": self.max}

    @classmethod
    def from_json(cls, data: object) -> Summary | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            count=number(data.get("count")),
            p50=number(data.get("p50")),
            p90=number(data.get("p90")),
            p95=number(data.get("p95")),
            p99=number(data.get("p99")),
            max=number(data.get("max")),
        )


@dataclass(frozen=True)
class Participants:
    planned: Number | None = None
    joined: Number | None = None
    failed: Number | None = None
    intruders: Number | None = None

    def to_json(self) -> dict[str, Any]:
        return {"planned": self.planned, "joined": self.joined, "failed": self.failed, "intruders": self.intruders}

    @classmethod
    def from_json(cls, data: object) -> Participants | None:
        if not isinstance(data, Mapping):
            return None
        return cls(*(number(data.get(k)) for k in ("planned", "joined", "failed", "intruders")))


@dataclass(frozen=True)
class Frames:
    sent: Number | None = None
    received: Number | None = None
    decrypted: Number | None = None
    decoded: Number | None = None
    lost: Number | None = None

    NAMES = ("sent", "received", "decrypted", "decoded", "lost")

    def get(self, name: str) -> Number | None:
        return {
            "sent": self.sent, "received": self.received, "decrypted": self.decrypted, "decoded": self.decoded,
            "lost": self.lost,
        }.get(name)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {name: self.get(name) for name in self.NAMES}

    @classmethod
    def from_json(cls, data: object) -> Frames | None:
        if not isinstance(data, Mapping):
            return None
        return cls(*(number(data.get(k)) for k in cls.NAMES))


@dataclass(frozen=True)
class Freezes:
    count: Number | None = None
    total_ms: Number | None = None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "total_ms": self.total_ms}

    @classmethod
    def from_json(cls, data: object) -> Freezes | None:
        if not isinstance(data, Mapping):
            return None
        return cls(number(data.get("count")), number(data.get("total_ms")))


@dataclass(frozen=True)
class KeyChanges:
    """The key lifecycle of a run (``metrics.keys``): rotations (keying v1), the highest epoch
    (keying v2), what legitimate subscribers saw within 2 s of a change, and joins during the run."""

    rotations: Number | None = None
    epochs: Number | None = None
    decrypt_failures: FailureCounts | None = None
    """Legitimate subscribers' decrypt failures within 2 s of a change."""
    frames_lost: Number | None = None
    freezes: Number | None = None
    longest_gap_ms: Number | None = None
    """The longest time any legitimate subscriber went without a decrypted video frame within 2 s
    of a change (sampled every 20 ms)."""
    joins: Number | None = None
    """Subscribers who joined during the run in place of one who left (``--churn``)."""
    join_ms: Summary | None = None
    first_frame_ms: Summary | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rotations": self.rotations,
            "epochs": self.epochs,
            "near_change": {
                "decrypt_failures": dict(self.decrypt_failures) if self.decrypt_failures is not None else None,
                "frames_lost": self.frames_lost,
                "freezes": self.freezes,
                "longest_gap_ms": self.longest_gap_ms,
            },
            "joins_during_run": {
                "count": self.joins,
                "join_ms": self.join_ms.to_json() if self.join_ms is not None else None,
                "first_frame_ms": self.first_frame_ms.to_json() if self.first_frame_ms is not None else None,
            },
        }

    @classmethod
    def from_json(cls, data: object) -> KeyChanges | None:
        if not isinstance(data, Mapping):
            return None
        near = data.get("near_change")
        near = near if isinstance(near, Mapping) else {}
        joins = data.get("joins_during_run")
        joins = joins if isinstance(joins, Mapping) else {}
        return cls(
            rotations=number(data.get("rotations")),
            epochs=number(data.get("epochs")),
            decrypt_failures=failures(near.get("decrypt_failures")),
            frames_lost=number(near.get("frames_lost")),
            freezes=number(near.get("freezes")),
            longest_gap_ms=number(near.get("longest_gap_ms")),
            joins=number(joins.get("count")),
            join_ms=Summary.from_json(joins.get("join_ms")),
            first_frame_ms=Summary.from_json(joins.get("first_frame_ms")),
        )


@dataclass(frozen=True)
class Bitrate:
    """Media bitrates in kbit/s (``metrics.bitrate``): the mean of one sending (publisher) or
    receiving (legitimate subscriber) participant over the time it was connected, i.e. all bits
    over all participants' connected seconds. A publisher is connected from its connection to the
    run's end; a subscriber from its first frame to its last. Sent counts frames as handed to RTP
    (encrypted, with the latency probe); received counts the media payload of accepted frames
    (decrypted, without the probe). The two are means over different windows, so their
    difference is not the E2EE overhead and received may exceed sent: a subscriber's window
    starts with a key frame (a short one, a churn joiner's, is mostly that key frame). Frame for
    frame, sent is the larger by the SFrame header, tag and probe (a few %)."""

    sent_video_kbps: Number | None = None
    sent_audio_kbps: Number | None = None
    received_video_kbps: Number | None = None
    received_audio_kbps: Number | None = None

    NAMES = ("sent_video_kbps", "sent_audio_kbps", "received_video_kbps", "received_audio_kbps")

    def get(self, name: str) -> Number | None:
        return {
            "sent_video_kbps": self.sent_video_kbps, "sent_audio_kbps": self.sent_audio_kbps,
            "received_video_kbps": self.received_video_kbps, "received_audio_kbps": self.received_audio_kbps,
        }.get(name)  # fmt: skip

    def shown(self, name: str) -> Number | None:
        """``name``'s value for a display: None (absent, shown as a dash) where its kind was not
        sent at all (publishers connected and sent no byte of it: ``--no-audio``, a room's
        ``no-audio``), so a kind that was never sent does not read as one that was all lost."""
        kind = "audio" if "audio" in name else "video"
        return None if self.get(f"sent_{kind}_kbps") == 0 else self.get(name)

    def total(self, direction: str) -> Number | None:
        """``sent`` or ``received``: video + audio (None when neither was measured)."""
        parts = [v for v in (self.get(f"{direction}_video_kbps"), self.get(f"{direction}_audio_kbps")) if v is not None]
        return round(sum(parts), 1) if parts else None

    def to_json(self) -> dict[str, Any]:
        return {name: self.get(name) for name in self.NAMES}

    @classmethod
    def from_json(cls, data: object) -> Bitrate | None:
        if not isinstance(data, Mapping):
            return None
        return cls(*(number(data.get(k)) for k in cls.NAMES))


@dataclass(frozen=True)
class Metrics:
    """What legitimate subscribers measured (and what intruders managed), in a room or in all."""

    join_ms: Summary | None = None
    first_frame_ms: Summary | None = None
    latency_ms: Summary | None = None
    latency_video_ms: Summary | None = None
    latency_audio_ms: Summary | None = None
    frames: Frames | None = None
    decrypt_failures: FailureCounts | None = None
    intruder_decrypts: Number | None = None
    intruder_failures: FailureCounts | None = None
    freezes: Freezes | None = None
    keys: KeyChanges | None = None
    bitrate: Bitrate | None = None
    reconnects: Number | None = None
    """Reconnects of legitimate participants (publishers and subscribers) after a lost server."""
    time_to_recover_ms: Summary | None = None
    """Legitimate subscribers: from losing media to the next decrypted frame, per outage."""
    outage_ms: Number | None = None
    """Legitimate subscribers' outages, summed (the ones still going at the end included)."""
    outage_frames_missed: Number | None = None
    """Video frames legitimate subscribers did not get during their outages (not in ``frames.lost``,
    the loss on working links): exact from probes where the publisher's stream continued across
    the reconnects, else estimated from the outage's length and the frame rate before it."""
    availability_percent: Number | None = None
    """The share of legitimate subscriber-seconds with decrypted video (see ``RecoveryTotals``)."""

    @property
    def loss_percent(self) -> float | None:
        """100 x lost / (decrypted + lost), 0 with no frames (the one place it is computed)."""
        if self.frames is None:
            return None
        return loss_percent(self.frames.lost, self.frames.decrypted)

    def summary(self, name: str) -> Summary | None:
        return {
            "join_ms": self.join_ms, "first_frame_ms": self.first_frame_ms, "latency_ms": self.latency_ms,
            "latency_video_ms": self.latency_video_ms, "latency_audio_ms": self.latency_audio_ms,
            "time_to_recover_ms": self.time_to_recover_ms,
        }.get(name)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        def s(summary: Summary | None) -> dict[str, Any] | None:
            return summary.to_json() if summary is not None else None

        return {
            "join_ms": s(self.join_ms),
            "first_frame_ms": s(self.first_frame_ms),
            "latency_ms": s(self.latency_ms),
            "latency_video_ms": s(self.latency_video_ms),
            "latency_audio_ms": s(self.latency_audio_ms),
            "frames": self.frames.to_json() if self.frames is not None else None,
            "decrypt_failures": dict(self.decrypt_failures) if self.decrypt_failures is not None else None,
            "intruder_decrypts": self.intruder_decrypts,
            "intruder_failures": dict(self.intruder_failures) if self.intruder_failures is not None else None,
            "freezes": self.freezes.to_json() if self.freezes is not None else None,
            "keys": self.keys.to_json() if self.keys is not None else None,
            "bitrate": self.bitrate.to_json() if self.bitrate is not None else None,
            "reconnects": self.reconnects,
            "time_to_recover_ms": s(self.time_to_recover_ms),
            "outage_ms": self.outage_ms,
            "outage_frames_missed": self.outage_frames_missed,
            "availability_percent": self.availability_percent,
        }

    @classmethod
    def from_json(cls, data: object) -> Metrics | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            join_ms=Summary.from_json(data.get("join_ms")),
            first_frame_ms=Summary.from_json(data.get("first_frame_ms")),
            latency_ms=Summary.from_json(data.get("latency_ms")),
            latency_video_ms=Summary.from_json(data.get("latency_video_ms")),
            latency_audio_ms=Summary.from_json(data.get("latency_audio_ms")),
            frames=Frames.from_json(data.get("frames")),
            decrypt_failures=failures(data.get("decrypt_failures")),
            intruder_decrypts=number(data.get("intruder_decrypts")),
            intruder_failures=failures(data.get("intruder_failures")),
            freezes=Freezes.from_json(data.get("freezes")),
            keys=KeyChanges.from_json(data.get("keys")),
            bitrate=Bitrate.from_json(data.get("bitrate")),
            reconnects=number(data.get("reconnects")),
            time_to_recover_ms=Summary.from_json(data.get("time_to_recover_ms")),
            outage_ms=number(data.get("outage_ms")),
            outage_frames_missed=number(data.get("outage_frames_missed")),
            availability_percent=number(data.get("availability_percent")),
        )


@dataclass(frozen=True)
class RoomReport:
    """One room: the same participants and metrics as the whole report (assertions apply)."""

    room: str | None
    participants: Participants | None = None
    metrics: Metrics | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "participants": self.participants.to_json() if self.participants is not None else None,
            "metrics": self.metrics.to_json() if self.metrics is not None else None,
        }

    @classmethod
    def from_json(cls, data: object) -> RoomReport | None:
        if not isinstance(data, Mapping):
            return None
        room = data.get("room")
        return cls(
            str(room) if isinstance(room, str | int) and not isinstance(room, bool) else None,
            Participants.from_json(data.get("participants")),
            Metrics.from_json(data.get("metrics")),
        )


@dataclass(frozen=True)
class ParticipantRow:
    """One participant's run (the report's ``participant_rows``): who, where, and what it
    measured. Times in ms, rates in kbit/s over its connected time (see :class:`Bitrate`);
    None where a role has no such number (a publisher receives nothing). ``reconnects`` is None
    unless the participant reconnected."""

    id: str
    role: str
    """``publisher``, ``subscriber`` or ``intruder``."""
    room: str | None = None
    worker: int | str | None = None
    failed: bool = False
    """Its join or its connection failed."""
    join_ms: Number | None = None
    first_frame_ms: Number | None = None
    latency_video_p50: Number | None = None
    latency_video_p95: Number | None = None
    latency_audio_p50: Number | None = None
    latency_audio_p95: Number | None = None
    fps: Number | None = None
    sent_kbps: Number | None = None
    received_kbps: Number | None = None
    lost: Number | None = None
    freezes: Number | None = None
    decrypt_failures: FailureCounts | None = None
    reconnects: Number | None = None

    NUMBERS = (
        "join_ms", "first_frame_ms", "latency_video_p50", "latency_video_p95", "latency_audio_p50",
        "latency_audio_p95", "fps", "sent_kbps", "received_kbps", "lost", "freezes",
    )  # fmt: skip

    def get(self, name: str) -> Number | None:
        value = getattr(self, name, None) if name in self.NUMBERS or name == "reconnects" else None
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def worst_first(self) -> tuple[float, ...]:
        """Sort key, worst first: failed, then most freezes, most frames lost, highest video
        latency p95 (then audio p95)."""
        return (
            -float(self.failed),
            -float(self.freezes or 0),
            -float(self.lost or 0),
            -float(self.latency_video_p95 or 0),
            -float(self.latency_audio_p95 or 0),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "role": self.role, "room": self.room, "worker": self.worker}
        if self.failed:
            out["failed"] = True
        out.update({name: self.get(name) for name in self.NUMBERS})
        out["decrypt_failures"] = dict(self.decrypt_failures) if self.decrypt_failures is not None else None
        if self.reconnects:
            out["reconnects"] = self.reconnects
        return out

    @classmethod
    def from_json(cls, data: object) -> ParticipantRow | None:
        if not isinstance(data, Mapping):
            return None
        worker = data.get("worker")
        room = data.get("room")
        return cls(
            id=str(data.get("id", "?")),
            role=str(data.get("role", "?")),
            room=str(room) if isinstance(room, str | int) and not isinstance(room, bool) else None,
            worker=worker if isinstance(worker, int | str) and not isinstance(worker, bool) else None,
            failed=data.get("failed") is True,
            decrypt_failures=failures(data.get("decrypt_failures")),
            reconnects=number(data.get("reconnects")),
            join_ms=number(data.get("join_ms")),
            first_frame_ms=number(data.get("first_frame_ms")),
            latency_video_p50=number(data.get("latency_video_p50")),
            latency_video_p95=number(data.get("latency_video_p95")),
            latency_audio_p50=number(data.get("latency_audio_p50")),
            latency_audio_p95=number(data.get("latency_audio_p95")),
            fps=number(data.get("fps")),
            sent_kbps=number(data.get("sent_kbps")),
            received_kbps=number(data.get("received_kbps")),
            lost=number(data.get("lost")),
            freezes=number(data.get("freezes")),
        )
