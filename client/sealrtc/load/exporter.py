"""Live Prometheus metrics of a load run (``--metrics-port``), labelled by shard and room.

:class:`LoadMetrics` is fed the workers' per-second snapshots and turns them into metric
families on each scrape (a custom collector: HdrHistogram interval data becomes Prometheus
histogram buckets without replaying samples). Only :func:`serve` opens a socket.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .aggregate import unpack

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)
JOIN_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Buckets:
    """A cumulative Prometheus histogram kept as per-bucket counts and a sum."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def add(self, value_s: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value_s)] += n
        self.sum += value_s * n
        self.count += n

    def exposition(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((repr(bound), running))
        out.append(("+Inf", self.count))
        return out


class LoadMetrics(Collector):
    """Fed from the event loop, read by the exporter's HTTP thread: a lock makes each snapshot
    appear whole (a scrape never sees a room's frames without their latencies)."""

    def __init__(self, shard: str) -> None:
        self.shard = shard
        self._lock = threading.Lock()
        self.rooms: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, dict[str, float]] = {}

    def _room(self, name: str) -> dict[str, Any]:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = {
                "joined": {},
                "failed": {},
                "intruders": {},
                "frames_decrypted": 0,
                "frames_lost": 0,
                "intruder_decrypts": 0,
                "decrypt_failures": {},
                "latency": _Buckets(LATENCY_BUCKETS_S),
                "join": _Buckets(JOIN_BUCKETS_S),
            }
        return room

    def take(self, snapshot: dict[str, Any]) -> None:
        decoded = {
            name: (unpack(data.get("latency")).values(), data) for name, data in snapshot.get("rooms", {}).items()
        }
        lag = unpack(snapshot.get("loop_lag")).percentile(99)
        with self._lock:
            self._take(str(snapshot.get("worker", 0)), decoded, snapshot, lag)

    def _take(self, worker: str, decoded: dict[str, Any], snapshot: dict[str, Any], lag: float | None) -> None:
        for name, (latencies, data) in decoded.items():
            room = self._room(name)
            for level in ("joined", "failed", "intruders"):
                room[level][worker] = int(data.get(level, 0))
            room["frames_decrypted"] += int(data.get("frames_decrypted", 0))
            room["frames_lost"] += int(data.get("lost", 0))
            room["intruder_decrypts"] += int(data.get("intruder_decrypts", 0))
            for reason, n in data.get("decrypt_failures", {}).items():
                room["decrypt_failures"][reason] = room["decrypt_failures"].get(reason, 0) + int(n)
            for value_ms, count in latencies:
                room["latency"].add(value_ms / 1000, count)
            for join_ms in data.get("joins", []):
                room["join"].add(float(join_ms) / 1000)
        self.workers[worker] = {
            "cpu": float(snapshot.get("cpu_percent") or 0.0),
            "lag": (lag or 0.0) / 1000,
        }

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = list(self._families())
        yield from families

    def _families(self) -> Iterator[Metric]:
        labels = ["shard", "room"]
        participants = GaugeMetricFamily(
            "sealrtc_load_participants", "Participants by state (joined, failed, intruders)", labels=[*labels, "state"]
        )
        frames = CounterMetricFamily(
            "sealrtc_load_frames", "Frames at legitimate subscribers", labels=[*labels, "kind"]
        )
        failures = CounterMetricFamily(
            "sealrtc_load_decrypt_failures", "Frames legitimate subscribers dropped", labels=[*labels, "reason"]
        )
        intruders = CounterMetricFamily(
            "sealrtc_load_intruder_decrypts", "Frames intruders decrypted (must stay 0)", labels=labels
        )
        latency = HistogramMetricFamily(
            "sealrtc_load_latency_seconds", "End-to-end latency from authenticated probes", labels=labels
        )
        join = HistogramMetricFamily("sealrtc_load_join_seconds", "Time to join (connected)", labels=labels)
        for name, room in sorted(self.rooms.items()):
            values = [self.shard, name]
            for level in ("joined", "failed", "intruders"):
                participants.add_metric([*values, level], sum(room[level].values()))
            frames.add_metric([*values, "decrypted"], room["frames_decrypted"])
            frames.add_metric([*values, "lost"], room["frames_lost"])
            for reason, n in sorted(room["decrypt_failures"].items()):
                failures.add_metric([*values, reason], n)
            intruders.add_metric(values, room["intruder_decrypts"])
            latency.add_metric(values, room["latency"].exposition(), room["latency"].sum)
            join.add_metric(values, room["join"].exposition(), room["join"].sum)
        cpu = GaugeMetricFamily(
            "sealrtc_load_generator_cpu_percent", "Worker CPU, % of one core (last second)", labels=["shard", "worker"]
        )
        lag = GaugeMetricFamily(
            "sealrtc_load_generator_loop_lag_seconds", "Worker event-loop lag, p99 of the last second",
            labels=["shard", "worker"],
        )  # fmt: skip
        for worker, data in sorted(self.workers.items()):
            cpu.add_metric([self.shard, worker], data["cpu"])
            lag.add_metric([self.shard, worker], data["lag"])
        yield from (participants, frames, failures, intruders, latency, join, cpu, lag)


def serve(metrics: LoadMetrics, port: int, host: str = "0.0.0.0") -> Any:
    """Start the ``/metrics`` HTTP server in a thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(metrics)
    return start_http_server(port, addr=host, registry=registry)
