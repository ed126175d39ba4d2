"""What load workers send their parent, as typed records: snapshots, finals, crashes.

A worker sends a :class:`WorkerSnapshot` every second (deltas since the last one, interval
histograms) and a :class:`WorkerFinal` at the end (per-room totals, cumulative histograms, its
CPU and event-loop lag). The same records, as JSON, are the ``raw`` section of a report, from
which ``sealrtc report merge`` rebuilds a merged report exactly. Histograms travel as
``[hdrhistogram encoding, exact max]`` pairs so merging loses nothing.

Readers (``from_json``) take what a worker or a report file holds; a field a snapshot lacks is
0 (tests and older reports send partial snapshots). Report files are checked against the JSON
Schema before they are read.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SealError
from ..failures import FailureCounts
from ..metrics import Histogram
from ..metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from .measures import ParticipantRow

HISTOGRAMS = ("join_ms", "first_frame_ms", "latency_ms", "latency_video_ms", "latency_audio_ms", "time_to_recover_ms")
FRAME_COUNTERS = ("sent", "received", "decrypted", "decoded", "lost")
BYTE_COUNTERS = ("sent_video", "sent_audio", "received_video", "received_audio")
"""Media bytes, by direction and kind: sent = frames as handed to RTP (encrypted, probe
included); received = accepted frames' media payload (decrypted, probe excluded)."""
MAX_PARTICIPANT_ROWS = 10_000
"""Per-participant rows a worker sends, and a report keeps (the worst first)."""

Packed = tuple[str, float | None]
"""A histogram on the wire: its standard compressed encoding and its exact maximum (ms)."""

WorkerId = int | str
"""A worker's number in its run; ``"SHARD.WORKER"`` once pooled from shards."""


def pack(histogram: Histogram) -> Packed | None:
    return (histogram.encode(), histogram.max_ms) if histogram.count else None


MAX_ENCODED = 1024 * 1024
"""Characters of one encoded histogram (a full one of ours is some tens of KiB)."""
MAX_DECOMPRESSED = 1024 * 1024
"""Bytes one histogram may decompress to: every bucket of ours fits in a few hundred KiB."""
_COMPRESSION_COOKIE = 0x1C849304
_PAYLOAD_HEADER = struct.Struct(">IIIIQQd")  # cookie, length, offset, digits, lowest, highest, ratio


class HistogramError(SealError):
    """An encoded histogram that is refused: malformed, too big, or not one of ours (one line)."""


def check_encoded(text: str) -> None:
    """Refuse, before decoding, an encoded histogram that would be costly: over
    :data:`MAX_ENCODED` characters, a zlib payload that inflates past :data:`MAX_DECOMPRESSED`
    bytes (a zlib bomb is cut there, never inflated whole), or a header for another range or
    precision than ours (which would make the decoder allocate for it)."""
    if len(text) > MAX_ENCODED:
        raise HistogramError(f"an encoded histogram is over {MAX_ENCODED // 1024} KiB")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise HistogramError("an encoded histogram is not base64") from None
    if len(raw) < 8:
        raise HistogramError("an encoded histogram is too short")
    cookie, length = struct.unpack_from(">II", raw)
    if cookie & ~0xF0 != _COMPRESSION_COOKIE or length != len(raw) - 8:
        raise HistogramError("an encoded histogram is not an HdrHistogram encoding")
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[8:], MAX_DECOMPRESSED)
    except zlib.error:
        raise HistogramError("an encoded histogram does not decompress") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise HistogramError(f"an encoded histogram decompresses to more than {MAX_DECOMPRESSED // 1024} KiB "
                             "(or is cut short): refused")  # fmt: skip
    if len(payload) < _PAYLOAD_HEADER.size:
        raise HistogramError("an encoded histogram is too short")
    _, _, _, digits, lowest, highest, _ = _PAYLOAD_HEADER.unpack_from(payload)
    if (digits, lowest, highest) != (SIGNIFICANT_DIGITS, LOWEST_US, HIGHEST_US):
        raise HistogramError("an encoded histogram has another range or precision than sealrtc's")


def unpack(packed: Packed | None) -> Histogram:
    """The histogram of a packed pair; a refused encoding raises :class:`HistogramError`."""
    if not packed:
        return Histogram()
    text = str(packed[0])
    check_encoded(text)
    try:
        return Histogram.decode(text, max_ms=packed[1])
    except Exception:  # hdrh's own exceptions, ValueError, ctypes errors: all "malformed"
        raise HistogramError("an encoded histogram is malformed") from None


def packed_from_json(data: object) -> Packed | None:
    if isinstance(data, list | tuple) and len(data) == 2 and isinstance(data[0], str):
        top = data[1]
        return (data[0], float(top) if isinstance(top, int | float) and not isinstance(top, bool) else None)
    return None


def packed_to_json(packed: Packed | None) -> list[Any] | None:
    return list(packed) if packed is not None else None


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _worker(value: object) -> WorkerId:
    return value if isinstance(value, int | str) and not isinstance(value, bool) else 0


def _failures(value: object) -> FailureCounts:
    if not isinstance(value, Mapping):
        return FailureCounts()
    return FailureCounts({str(k): int(v) for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)})


@dataclass
class KeyTotals:
    """A room's key lifecycle (see :mod:`sealrtc.load.keying`): how far keys went, what
    legitimate subscribers saw within 2 s of each change, and who joined during the run."""

    rotations: int = 0
    """Secret changes (keying v1); the same in every worker, so merged by max."""
    epochs: int = 0
    """Highest epoch reached (keying v2); merged by max."""
    near_failures: FailureCounts = field(default_factory=FailureCounts)
    near_lost: int = 0
    near_freezes: int = 0
    longest_gap_ms: float = 0.0
    churn_joins: int = 0
    churn_join_ms: Histogram = field(default_factory=Histogram)
    churn_first_frame_ms: Histogram = field(default_factory=Histogram)

    def add(self, other: KeyTotals) -> None:
        self.rotations = max(self.rotations, other.rotations)
        self.epochs = max(self.epochs, other.epochs)
        self.near_failures.add(other.near_failures)
        self.near_lost += other.near_lost
        self.near_freezes += other.near_freezes
        self.longest_gap_ms = max(self.longest_gap_ms, other.longest_gap_ms)
        self.churn_joins += other.churn_joins
        self.churn_join_ms.merge(other.churn_join_ms)
        self.churn_first_frame_ms.merge(other.churn_first_frame_ms)

    def to_wire(self) -> dict[str, Any]:
        return {
            "rotations": self.rotations,
            "epochs": self.epochs,
            "near_failures": dict(self.near_failures),
            "near_lost": self.near_lost,
            "near_freezes": self.near_freezes,
            "longest_gap_ms": round(self.longest_gap_ms, 1),
            "churn_joins": self.churn_joins,
            "churn_join_ms": packed_to_json(pack(self.churn_join_ms)),
            "churn_first_frame_ms": packed_to_json(pack(self.churn_first_frame_ms)),
        }

    @classmethod
    def from_wire(cls, data: object) -> KeyTotals:
        if not isinstance(data, Mapping):
            return cls()  # reports from before key lifecycles
        gap = _float(data.get("longest_gap_ms"))
        return cls(
            rotations=_int(data, "rotations"),
            epochs=_int(data, "epochs"),
            near_failures=_failures(data.get("near_failures")),
            near_lost=_int(data, "near_lost"),
            near_freezes=_int(data, "near_freezes"),
            longest_gap_ms=gap if gap is not None else 0.0,
            churn_joins=_int(data, "churn_joins"),
            churn_join_ms=unpack(packed_from_json(data.get("churn_join_ms"))),
            churn_first_frame_ms=unpack(packed_from_json(data.get("churn_first_frame_ms"))),
        )


@dataclass
class MediaBytes:
    """Media bytes of a room (or a worker, or the run) and the connected time they were sent or
    received in: ``sending_s`` sums every publisher's seconds from connecting to its end,
    ``receiving_s`` every legitimate subscriber's seconds from its first to its last frame. A mean
    bitrate per participant is then bits / participant-seconds (merged exactly: sums only)."""

    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BYTE_COUNTERS, 0))
    sending_s: float = 0.0
    receiving_s: float = 0.0

    def add(self, other: MediaBytes) -> None:
        for key, value in other.bytes.items():
            self.bytes[key] = self.bytes.get(key, 0) + value
        self.sending_s += other.sending_s
        self.receiving_s += other.receiving_s

    def kbps(self, name: str) -> float | None:
        """The mean rate of one participant while connected (None: nobody sent/received)."""
        seconds = self.sending_s if name.startswith("sent") else self.receiving_s
        return round(self.bytes.get(name, 0) * 8 / seconds / 1000, 1) if seconds > 0 else None

    def to_wire(self) -> dict[str, Any]:
        return {"bytes": dict(self.bytes), "sending_s": round(self.sending_s, 3),
                "receiving_s": round(self.receiving_s, 3)}  # fmt: skip

    @classmethod
    def from_wire(cls, data: object) -> MediaBytes:
        if not isinstance(data, Mapping):
            return cls()  # reports from before bitrates
        return cls(
            bytes={k: _int(_mapping(data.get("bytes")), k) for k in BYTE_COUNTERS},
            sending_s=_float(data.get("sending_s")) or 0.0,
            receiving_s=_float(data.get("receiving_s")) or 0.0,
        )


@dataclass
class RecoveryTotals:
    """Lost servers and media in a room: reconnects (every legitimate participant's), the
    subscribers' outages, and their seconds with and without decrypted video (availability).

    ``watched_s`` counts a legitimate subscriber's seconds from its first decrypted video frame
    (to the second: the worker's tick) to the end of the run or its leaving; ``available_s`` is
    that less its time without video: its outages (from the last frame before a lost connection
    to the first decrypted on the next one) and its video freezes (the W3C rule, on a connection).
    ``frames_missed``: the video frames subscribers did not get during their outages (apart from
    the frames lost on a working link; see :class:`~sealrtc.agents.recovery.RecoveryLog`)."""

    reconnects: int = 0
    outage_ms: float = 0.0
    watched_s: float = 0.0
    available_s: float = 0.0
    frames_missed: int = 0

    def add(self, other: RecoveryTotals) -> None:
        self.reconnects += other.reconnects
        self.outage_ms += other.outage_ms
        self.frames_missed += other.frames_missed
        self.watched_s += other.watched_s
        self.available_s += other.available_s

    @property
    def availability_percent(self) -> float | None:
        """100 x available / watched subscriber-seconds (None: no subscriber had video)."""
        return 100.0 * self.available_s / self.watched_s if self.watched_s else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "reconnects": self.reconnects,
            "outage_ms": round(self.outage_ms, 1),
            "watched_s": round(self.watched_s, 3),
            "available_s": round(self.available_s, 3),
            "frames_missed": self.frames_missed,
        }

    @classmethod
    def from_wire(cls, data: object) -> RecoveryTotals:
        if not isinstance(data, Mapping):
            return cls()  # reports from before recovery in load runs
        return cls(
            reconnects=_int(data, "reconnects"),
            outage_ms=_float(data.get("outage_ms")) or 0.0,
            watched_s=_float(data.get("watched_s")) or 0.0,
            available_s=_float(data.get("available_s")) or 0.0,
            frames_missed=_int(data, "frames_missed"),
        )


@dataclass
class FaultTotals:
    """What legitimate subscribers saw around one fault of the run (see :mod:`sealrtc.load.faults`):
    how many were watched (they had video), lost media, recovered, and each one's recovery time."""

    watched: int = 0
    lost_media: int = 0
    recovered: int = 0
    recovery_ms: Histogram = field(default_factory=Histogram)

    def add(self, other: FaultTotals) -> None:
        self.watched += other.watched
        self.lost_media += other.lost_media
        self.recovered += other.recovered
        self.recovery_ms.merge(other.recovery_ms)

    def to_wire(self) -> dict[str, Any]:
        return {
            "watched": self.watched,
            "lost_media": self.lost_media,
            "recovered": self.recovered,
            "recovery_ms": packed_to_json(pack(self.recovery_ms)),
        }

    @classmethod
    def from_wire(cls, data: object) -> FaultTotals:
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            watched=_int(data, "watched"),
            lost_media=_int(data, "lost_media"),
            recovered=_int(data, "recovered"),
            recovery_ms=unpack(packed_from_json(data.get("recovery_ms"))),
        )


@dataclass
class RoomTotals:
    """Everything measured in one room (by one worker, or merged over several): the builder's
    accumulator and the per-room part of a :class:`WorkerFinal`."""

    planned: int = 0
    joined: int = 0
    failed: int = 0
    intruders: int = 0
    histograms: dict[str, Histogram] = field(default_factory=lambda: {n: Histogram() for n in HISTOGRAMS})
    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAME_COUNTERS, 0))
    decrypt_failures: FailureCounts = field(default_factory=FailureCounts)
    intruder_decrypts: int = 0
    intruder_failures: FailureCounts = field(default_factory=FailureCounts)
    freezes_count: int = 0
    freezes_ms: float = 0.0
    keys: KeyTotals = field(default_factory=KeyTotals)
    media: MediaBytes = field(default_factory=MediaBytes)
    recovery: RecoveryTotals = field(default_factory=RecoveryTotals)

    def add(self, other: RoomTotals) -> None:
        self.planned += other.planned
        self.joined += other.joined
        self.failed += other.failed
        self.intruders += other.intruders
        for name in HISTOGRAMS:
            self.histograms[name].merge(other.histograms[name])
        for key, value in other.frames.items():
            self.frames[key] = self.frames.get(key, 0) + value
        self.decrypt_failures.add(other.decrypt_failures)
        self.intruder_failures.add(other.intruder_failures)
        self.intruder_decrypts += other.intruder_decrypts
        self.freezes_count += other.freezes_count
        self.freezes_ms += other.freezes_ms
        self.keys.add(other.keys)
        self.media.add(other.media)
        self.recovery.add(other.recovery)

    def to_wire(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "joined": self.joined,
            "failed": self.failed,
            "intruders": self.intruders,
            "histograms": {n: packed_to_json(pack(h)) for n, h in self.histograms.items()},
            "frames": dict(self.frames),
            "decrypt_failures": dict(self.decrypt_failures),
            "intruder_decrypts": self.intruder_decrypts,
            "intruder_failures": dict(self.intruder_failures),
            "freezes": [self.freezes_count, self.freezes_ms],
            "keys": self.keys.to_wire(),
            "media": self.media.to_wire(),
            "recovery": self.recovery.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RoomTotals:
        freezes = data.get("freezes") or [0, 0.0]
        totals = cls(
            planned=_int(data, "planned"),
            joined=_int(data, "joined"),
            failed=_int(data, "failed"),
            intruders=_int(data, "intruders"),
            frames=dict.fromkeys(FRAME_COUNTERS, 0) | {k: int(v) for k, v in (data.get("frames") or {}).items()},
            decrypt_failures=_failures(data.get("decrypt_failures")),
            intruder_decrypts=_int(data, "intruder_decrypts"),
            intruder_failures=_failures(data.get("intruder_failures")),
            freezes_count=int(freezes[0]),
            freezes_ms=float(freezes[1]),
            keys=KeyTotals.from_wire(data.get("keys")),
            media=MediaBytes.from_wire(data.get("media")),
            recovery=RecoveryTotals.from_wire(data.get("recovery")),
        )
        histograms = data.get("histograms") or {}
        for name in HISTOGRAMS:  # (reports of older versions lack the per-kind latencies)
            totals.histograms[name] = unpack(packed_from_json(histograms.get(name)))
        return totals


@dataclass
class LinkTotals:
    """What impaired links did in one direction, summed over connections (datagrams)."""

    offered: int = 0
    delivered: int = 0
    dropped: int = 0
    """By the loss model or the bottleneck's full queue."""
    queue_dropped: int = 0
    duplicated: int = 0
    delay_total_s: float = 0.0
    """Sum of the delivered datagrams' delays (seconds), for their mean."""

    def add(self, other: LinkTotals) -> None:
        self.offered += other.offered
        self.delivered += other.delivered
        self.dropped += other.dropped
        self.queue_dropped += other.queue_dropped
        self.duplicated += other.duplicated
        self.delay_total_s += other.delay_total_s

    def to_wire(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "queue_dropped": self.queue_dropped,
            "duplicated": self.duplicated,
            "delay_total_s": round(self.delay_total_s, 6),
        }

    def to_json(self) -> dict[str, Any]:
        """The report's view: counts, the dropped share and the mean added delay."""
        mean = self.delay_total_s / self.delivered * 1000 if self.delivered else None
        return {
            "offered": self.offered,
            "dropped": self.dropped,
            "dropped_percent": round(100 * self.dropped / self.offered, 2) if self.offered else None,
            "queue_dropped": self.queue_dropped,
            "delivered": self.delivered,
            "duplicated": self.duplicated,
            "mean_delay_ms": round(mean, 2) if mean is not None else None,
        }

    @classmethod
    def from_wire(cls, data: object) -> LinkTotals:
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            offered=_int(data, "offered"),
            delivered=_int(data, "delivered"),
            dropped=_int(data, "dropped"),
            queue_dropped=_int(data, "queue_dropped"),
            duplicated=_int(data, "duplicated"),
            delay_total_s=_float(data.get("delay_total_s")) or 0.0,
        )


@dataclass
class ProfileTotals:
    """One link profile's participants (see :mod:`sealrtc.load.profiles`): what they measured, as
    a room's totals, and what their impaired links did in each direction."""

    totals: RoomTotals = field(default_factory=RoomTotals)
    up: LinkTotals = field(default_factory=LinkTotals)
    down: LinkTotals = field(default_factory=LinkTotals)

    def add(self, other: ProfileTotals) -> None:
        self.totals.add(other.totals)
        self.up.add(other.up)
        self.down.add(other.down)

    def to_wire(self) -> dict[str, Any]:
        return {"totals": self.totals.to_wire(), "up": self.up.to_wire(), "down": self.down.to_wire()}

    @classmethod
    def from_wire(cls, data: object) -> ProfileTotals:
        if not isinstance(data, Mapping):
            return cls()
        totals = data.get("totals")
        return cls(
            totals=RoomTotals.from_wire(totals if isinstance(totals, Mapping) else {}),
            up=LinkTotals.from_wire(data.get("up")),
            down=LinkTotals.from_wire(data.get("down")),
        )


@dataclass(frozen=True)
class RoomSnapshot:
    """One room's part of a worker's second, for the live Prometheus metrics (reports keep only
    the worker totals)."""

    joined: int = 0
    failed: int = 0
    intruders: int = 0
    joins: tuple[float, ...] = ()
    """Join times (ms) of participants that connected during this second."""
    frames_decrypted: int = 0
    lost: int = 0
    intruder_decrypts: int = 0
    decrypt_failures: FailureCounts = field(default_factory=FailureCounts)
    latency: Packed | None = None
    rotations: int = 0
    """Key changes so far, levels of this worker: keying v1 rotations, the room's epoch (v2),
    churn joiners started, legitimate subscribers' failures within 2 s of a key change."""
    epoch: int = 0
    churn_joins: int = 0
    near_failures: FailureCounts = field(default_factory=FailureCounts)

    def to_json(self) -> dict[str, Any]:
        return {
            "rotations": self.rotations,
            "epoch": self.epoch,
            "churn_joins": self.churn_joins,
            "near_failures": dict(self.near_failures),
            "joined": self.joined,
            "failed": self.failed,
            "intruders": self.intruders,
            "joins": list(self.joins),
            "frames_decrypted": self.frames_decrypted,
            "lost": self.lost,
            "intruder_decrypts": self.intruder_decrypts,
            "decrypt_failures": dict(self.decrypt_failures),
            "latency": packed_to_json(self.latency),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoomSnapshot:
        return cls(
            joined=_int(data, "joined"),
            failed=_int(data, "failed"),
            intruders=_int(data, "intruders"),
            joins=tuple(float(j) for j in data.get("joins") or ()),
            frames_decrypted=_int(data, "frames_decrypted"),
            lost=_int(data, "lost"),
            intruder_decrypts=_int(data, "intruder_decrypts"),
            decrypt_failures=_failures(data.get("decrypt_failures")),
            latency=packed_from_json(data.get("latency")),
            rotations=_int(data, "rotations"),
            epoch=_int(data, "epoch"),
            churn_joins=_int(data, "churn_joins"),
            near_failures=_failures(data.get("near_failures")),
        )


@dataclass(frozen=True)
class WorkerSnapshot:
    """One worker's second: counters are deltas since its previous snapshot, ``joined``,
    ``failed``, ``intruders`` and ``video_tracks`` are levels, histograms cover the second."""

    worker: WorkerId
    t: float
    """Seconds since the run's start at the end of the second this snapshot covers."""
    joined: int = 0
    failed: int = 0
    intruders: int = 0
    video_tracks: int = 0
    frames_decrypted: int = 0
    video_frames: int = 0
    lost: int = 0
    freezes: int = 0
    decrypt_failures: int = 0
    intruder_decrypts: int = 0
    cpu_percent: float | None = None
    latency: Packed | None = None
    """Video and audio latencies together (kept for the JSON; displays read the two below)."""
    latency_video: Packed | None = None
    latency_audio: Packed | None = None
    loop_lag: Packed | None = None
    media_bytes: dict[str, int] = field(default_factory=dict)
    """Deltas of :data:`BYTE_COUNTERS` (absent: 0)."""
    rooms: dict[str, RoomSnapshot] = field(default_factory=dict)

    def to_json(self, *, rooms: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "snapshot",
            "worker": self.worker,
            "t": self.t,
            "joined": self.joined,
            "failed": self.failed,
            "intruders": self.intruders,
            "video_tracks": self.video_tracks,
            "frames_decrypted": self.frames_decrypted,
            "video_frames": self.video_frames,
            "lost": self.lost,
            "freezes": self.freezes,
            "decrypt_failures": self.decrypt_failures,
            "intruder_decrypts": self.intruder_decrypts,
            "cpu_percent": self.cpu_percent,
            "latency": packed_to_json(self.latency),
            "latency_video": packed_to_json(self.latency_video),
            "latency_audio": packed_to_json(self.latency_audio),
            "loop_lag": packed_to_json(self.loop_lag),
            "media_bytes": dict(self.media_bytes),
        }
        if rooms:
            out["rooms"] = {name: room.to_json() for name, room in self.rooms.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerSnapshot:
        rooms = data.get("rooms") or {}
        return cls(
            worker=_worker(data.get("worker")),
            t=_float(data.get("t")) or 0.0,
            joined=_int(data, "joined"),
            failed=_int(data, "failed"),
            intruders=_int(data, "intruders"),
            video_tracks=_int(data, "video_tracks"),
            frames_decrypted=_int(data, "frames_decrypted"),
            video_frames=_int(data, "video_frames"),
            lost=_int(data, "lost"),
            freezes=_int(data, "freezes"),
            decrypt_failures=_int(data, "decrypt_failures"),
            intruder_decrypts=_int(data, "intruder_decrypts"),
            cpu_percent=_float(data.get("cpu_percent")),
            latency=packed_from_json(data.get("latency")),
            latency_video=packed_from_json(data.get("latency_video")),
            latency_audio=packed_from_json(data.get("latency_audio")),
            loop_lag=packed_from_json(data.get("loop_lag")),
            media_bytes={k: _int(_mapping(data.get("media_bytes")), k) for k in BYTE_COUNTERS},
            rooms={str(name): RoomSnapshot.from_json(room) for name, room in rooms.items()},
        )


@dataclass(frozen=True)
class GeneratorFinal:
    """How loaded a worker was over the whole run, and on which event loop it ran."""

    cpu_percent: float | None = None
    cpu_intervals: tuple[float, ...] = ()
    loop_lag: Packed | None = None
    event_loop: str | None = None
    """``"uvloop"`` or ``"asyncio"`` (None in reports written before it was recorded)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_percent": self.cpu_percent,
            "cpu_intervals": list(self.cpu_intervals),
            "loop_lag": packed_to_json(self.loop_lag),
            "event_loop": self.event_loop,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeneratorFinal:
        loop = data.get("event_loop")
        return cls(
            cpu_percent=_float(data.get("cpu_percent")),
            cpu_intervals=tuple(c for c in map(_float, data.get("cpu_intervals") or ()) if c is not None),
            loop_lag=packed_from_json(data.get("loop_lag")),
            event_loop=loop if isinstance(loop, str) else None,
        )


@dataclass(frozen=True)
class WorkerFinal:
    """A worker's whole run: per-room totals (its planned participants included) and load."""

    worker: WorkerId
    rooms: dict[str, RoomTotals] = field(default_factory=dict)
    generator: GeneratorFinal = field(default_factory=GeneratorFinal)
    errors: tuple[str, ...] = ()
    participants: tuple[ParticipantRow, ...] = ()
    """One row per participant (at most :data:`MAX_PARTICIPANT_ROWS`, the worst first)."""
    faults: tuple[FaultTotals, ...] = ()
    """One per fault of the run (``--fault``), in time order."""
    profiles: dict[str, ProfileTotals] = field(default_factory=dict)
    """Per link profile (impaired runs only), by profile name."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "final",
            "worker": self.worker,
            "rooms": {name: totals.to_wire() for name, totals in self.rooms.items()},
            "generator": self.generator.to_json(),
            "errors": list(self.errors),
            "participants": [row.to_json() for row in self.participants],
        }
        if self.faults:
            out["faults"] = [fault.to_wire() for fault in self.faults]
        if self.profiles:
            out["profiles"] = {name: totals.to_wire() for name, totals in self.profiles.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerFinal:
        return cls(
            worker=_worker(data.get("worker")),
            rooms={str(name): RoomTotals.from_wire(room) for name, room in (data.get("rooms") or {}).items()},
            generator=GeneratorFinal.from_json(data.get("generator") or {}),
            errors=tuple(str(e) for e in data.get("errors") or ()),
            participants=tuple(
                row for row in map(ParticipantRow.from_json, data.get("participants") or ()) if row is not None
            )[:MAX_PARTICIPANT_ROWS],
            faults=tuple(FaultTotals.from_wire(f) for f in data.get("faults") or ()),
            profiles={str(name): ProfileTotals.from_wire(p) for name, p in (data.get("profiles") or {}).items()},
        )

    def relabelled(self, worker: WorkerId) -> WorkerFinal:
        rows = tuple(dataclasses.replace(row, worker=worker) for row in self.participants)
        return replace(self, worker=worker, participants=rows)


@dataclass(frozen=True)
class WorkerCrash:
    """A worker died with an exception (reported, never silent)."""

    worker: WorkerId
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "crash", "worker": self.worker, "error": self.error}


WorkerMessage = WorkerSnapshot | WorkerFinal | WorkerCrash


def read_message(data: Mapping[str, Any]) -> WorkerMessage:
    """A message from a worker's queue. Messages cross the process boundary as JSON-ready
    dicts (``to_json()``), the form the report's raw section keeps too."""
    kind = data.get("type")
    if kind == "snapshot":
        return WorkerSnapshot.from_json(data)
    if kind == "final":
        return WorkerFinal.from_json(data)
    return WorkerCrash(_worker(data.get("worker")), str(data.get("error", f"unknown message {kind!r}")))
