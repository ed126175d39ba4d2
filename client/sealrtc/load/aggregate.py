"""Combine what workers (or shards) measured into one report: exact histogram merges, summed
counters, intervals over time, saturation. Pure: dicts in, dicts out.

A worker sends a *snapshot* every second (deltas since the last one, interval histograms) and a
*final* at the end (per-room totals and cumulative histograms). Histograms travel as
``[hdrhistogram encoding, exact max]`` pairs so merging loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DECRYPT_FAILURE_REASONS
from ..metrics import Histogram

HISTOGRAMS = ("join_ms", "first_frame_ms", "latency_ms", "latency_video_ms", "latency_audio_ms")
SATURATION_CPU_PERCENT = 90.0
"""A worker that kept a core this busy has no headroom: its timings include its own queueing."""
SATURATION_LOOP_LAG_MS = 100.0
"""p99 event-loop lag at which a worker's timestamps are late by more than a video frame x3."""
SATURATION_MEDIAN_LAG_MS = 10.0
"""Median event-loop lag of a loop that is never idle (an idle-enough loop lags < 1 ms)."""
SATURATION_BUSY_SHARE = 0.25
"""Share of a worker's seconds at >= SATURATION_CPU_PERCENT that marks it saturated."""

Packed = list[Any]  # [encoding, max_ms]


def pack(histogram: Histogram) -> Packed | None:
    return [histogram.encode(), histogram.max_ms] if histogram.count else None


def unpack(packed: Packed | None) -> Histogram:
    if not packed:
        return Histogram()
    return Histogram.decode(str(packed[0]), max_ms=packed[1])


def _failures() -> dict[str, int]:
    return dict.fromkeys(DECRYPT_FAILURE_REASONS, 0)


@dataclass
class RoomTotals:
    """Everything measured in one room (by one worker, or merged over several)."""

    planned: int = 0
    joined: int = 0
    failed: int = 0
    intruders: int = 0
    histograms: dict[str, Histogram] = field(default_factory=lambda: {n: Histogram() for n in HISTOGRAMS})
    frames: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("sent", "received", "decrypted", "decoded", "lost"), 0)
    )
    decrypt_failures: dict[str, int] = field(default_factory=_failures)
    intruder_decrypts: int = 0
    intruder_failures: dict[str, int] = field(default_factory=_failures)
    freezes_count: int = 0
    freezes_ms: float = 0.0

    def add(self, other: RoomTotals) -> None:
        self.planned += other.planned
        self.joined += other.joined
        self.failed += other.failed
        self.intruders += other.intruders
        for name in HISTOGRAMS:
            self.histograms[name].merge(other.histograms[name])
        for key, value in other.frames.items():
            self.frames[key] = self.frames.get(key, 0) + value
        for reason, n in other.decrypt_failures.items():
            self.decrypt_failures[reason] = self.decrypt_failures.get(reason, 0) + n
        for reason, n in other.intruder_failures.items():
            self.intruder_failures[reason] = self.intruder_failures.get(reason, 0) + n
        self.intruder_decrypts += other.intruder_decrypts
        self.freezes_count += other.freezes_count
        self.freezes_ms += other.freezes_ms

    def to_wire(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "joined": self.joined,
            "failed": self.failed,
            "intruders": self.intruders,
            "histograms": {n: pack(h) for n, h in self.histograms.items()},
            "frames": dict(self.frames),
            "decrypt_failures": dict(self.decrypt_failures),
            "intruder_decrypts": self.intruder_decrypts,
            "intruder_failures": dict(self.intruder_failures),
            "freezes": [self.freezes_count, self.freezes_ms],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RoomTotals:
        totals = cls(
            planned=int(data["planned"]),
            joined=int(data["joined"]),
            failed=int(data["failed"]),
            intruders=int(data["intruders"]),
            frames={k: int(v) for k, v in data["frames"].items()},
            decrypt_failures={k: int(v) for k, v in data["decrypt_failures"].items()},
            intruder_decrypts=int(data["intruder_decrypts"]),
            intruder_failures={k: int(v) for k, v in data["intruder_failures"].items()},
            freezes_count=int(data["freezes"][0]),
            freezes_ms=float(data["freezes"][1]),
        )
        for name in HISTOGRAMS:  # (reports of older versions lack the per-kind latencies)
            totals.histograms[name] = unpack(data["histograms"].get(name))
        return totals

    def participants(self) -> dict[str, int]:
        return {"planned": self.planned, "joined": self.joined, "failed": self.failed, "intruders": self.intruders}

    def metrics(self) -> dict[str, Any]:
        return {
            "join_ms": self.histograms["join_ms"].summary(),
            "first_frame_ms": self.histograms["first_frame_ms"].summary(),
            "latency_ms": self.histograms["latency_ms"].summary(),
            "latency_video_ms": self.histograms["latency_video_ms"].summary(),
            "latency_audio_ms": self.histograms["latency_audio_ms"].summary(),
            "frames": dict(self.frames),
            "decrypt_failures": dict(self.decrypt_failures),
            "intruder_decrypts": self.intruder_decrypts,
            "intruder_failures": dict(self.intruder_failures),
            "freezes": {"count": self.freezes_count, "total_ms": round(self.freezes_ms, 1)},
        }


def merge_rooms(finals: list[dict[str, Any]]) -> dict[str, RoomTotals]:
    """Per-room totals over every worker's final (rooms keyed by name)."""
    rooms: dict[str, RoomTotals] = {}
    for final in finals:
        for name, wire in final.get("rooms", {}).items():
            rooms.setdefault(name, RoomTotals()).add(RoomTotals.from_wire(wire))
    return rooms


INTERVAL_SUMS = ("frames_decrypted", "video_frames", "lost", "freezes", "decrypt_failures", "intruder_decrypts")
INTERVAL_LEVELS = ("joined", "failed", "intruders", "video_tracks")


def merge_intervals(snapshots: list[dict[str, Any]], tick: float = 1.0) -> list[dict[str, Any]]:
    """One row per tick over all workers: sums of deltas, levels summed, percentiles from merged
    interval histograms, CPU as the mean over workers (each worker's % of one core).

    A worker can land two snapshots in one tick (a late loop, or the caller folding the whole
    run into one row): deltas and histograms add up, but levels such as "joined" come from each
    worker's latest snapshot only, or a participant would be counted twice."""
    by_t: dict[float, list[dict[str, Any]]] = {}
    for snap in snapshots:
        by_t.setdefault(round(float(snap["t"]) / tick) * tick, []).append(snap)
    rows: list[dict[str, Any]] = []
    for t in sorted(by_t):
        group = by_t[t]
        latest = list({snap.get("worker"): snap for snap in group}.values())
        latency, lag = Histogram(), Histogram()
        for snap in group:
            latency.merge(unpack(snap.get("latency")))
            lag.merge(unpack(snap.get("loop_lag")))
        sums = {k: sum(int(s.get(k, 0)) for s in group) for k in INTERVAL_SUMS}
        levels = {k: sum(int(s.get(k, 0)) for s in latest) for k in INTERVAL_LEVELS}
        cpus = [float(s["cpu_percent"]) for s in latest if s.get("cpu_percent") is not None]
        fps = sums["video_frames"] / levels["video_tracks"] / tick if levels["video_tracks"] else None
        rows.append(
            {
                "t": round(t, 3),
                "joined": levels["joined"],
                "intruders": levels["intruders"],
                "failed": levels["failed"],
                "frames_decrypted": sums["frames_decrypted"],
                "fps": round(fps, 2) if fps is not None else None,
                "latency_p50": _round(latency.percentile(50)),
                "latency_p95": _round(latency.percentile(95)),
                "lost": sums["lost"],
                "freezes": sums["freezes"],
                "decrypt_failures": sums["decrypt_failures"],
                "intruder_decrypts": sums["intruder_decrypts"],
                "cpu_percent": round(sum(cpus) / len(cpus), 1) if cpus else None,
                "loop_lag_ms": _round(lag.percentile(99)),
                "workers": len(latest),
            }
        )
    return rows


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def saturation_reasons(
    worker: int | str, cpu_percent: float | None, loop_lag: Histogram, cpu_intervals: list[float] | None = None
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


def generator_section(finals: list[dict[str, Any]]) -> tuple[dict[str, Any], Histogram]:
    lag = Histogram()
    reasons: list[str] = []
    cpus: list[float] = []
    for final in finals:
        gen = final.get("generator", {})
        worker_lag = unpack(gen.get("loop_lag"))
        lag.merge(worker_lag)
        cpu = gen.get("cpu_percent")
        if cpu is not None:
            cpus.append(float(cpu))
        intervals = [float(c) for c in gen.get("cpu_intervals", []) if c is not None]
        reasons += saturation_reasons(final.get("worker", 0), cpu, worker_lag, intervals)
    section = {
        "workers": len(finals),
        "cpu_percent": round(sum(cpus) / len(cpus), 1) if cpus else None,
        "cpu_percent_max": round(max(cpus), 1) if cpus else None,
        "loop_lag_ms": lag.summary(),
        "saturated": bool(reasons),
        "saturation_reasons": reasons,
    }
    return section, lag


def build_report(
    *,
    scenario: dict[str, Any],
    room_names: list[str],
    finals: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
    started_at: str,
    duration_s: float,
) -> dict[str, Any]:
    """The report without assertions and verdict (the caller adds them)."""
    rooms = merge_rooms(finals)
    total = RoomTotals()
    for name in room_names:
        total.add(rooms.setdefault(name, RoomTotals()))
    generator, lag = generator_section(finals)
    histograms = {n: h.encode() for n, h in total.histograms.items() if h.count}
    if lag.count:
        histograms["loop_lag_ms"] = lag.encode()
    return {
        "version": 1,
        "tool": "sealrtc load",
        "started_at": started_at,
        "duration_s": round(duration_s, 2),
        "scenario": scenario,
        "participants": total.participants(),
        "metrics": total.metrics(),
        "rooms": [
            {"room": name, "participants": rooms[name].participants(), "metrics": rooms[name].metrics()}
            for name in room_names
        ],
        "generator": generator,
        "assertions": [],
        "intervals": merge_intervals(snapshots),
        "histograms": histograms,
        "histogram_max_ms": {n: h.max_ms for n, h in total.histograms.items() if h.count},
    }
