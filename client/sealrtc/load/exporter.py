"""Live Prometheus metrics of a load run (``--metrics-port``), labelled by shard and room.

:class:`LoadMetrics` is fed the workers' per-second snapshots and turns them into metric
families on each scrape (a custom collector: HdrHistogram interval data becomes Prometheus
histogram buckets without replaying samples). Key changes (``sealrtc_key_*``,
``sealrtc_churn_joins_total``) come as every worker's levels so far, in its snapshots and then its
final (which has the last change's window measured). Only :func:`serve` opens a socket: on loopback
unless told otherwise (``--metrics-listen``), with a bounded number of connections, each timed
out when idle.
"""

from __future__ import annotations

import bisect
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..failures import FailureCounts
from ..report.records import KeyTotals, RoomSnapshot, WorkerFinal, WorkerSnapshot, unpack
from ..shell.listeners import inherited_listener

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


@dataclass
class _Room:
    """A room's live numbers: levels per worker (a worker reports its own), counters summed."""

    joined: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    intruders: dict[str, int] = field(default_factory=dict)
    frames_decrypted: int = 0
    frames_lost: int = 0
    intruder_decrypts: int = 0
    decrypt_failures: FailureCounts = field(default_factory=FailureCounts)
    latency: _Buckets = field(default_factory=lambda: _Buckets(LATENCY_BUCKETS_S))
    join: _Buckets = field(default_factory=lambda: _Buckets(JOIN_BUCKETS_S))
    keys: dict[str, _KeyLevels] = field(default_factory=dict)
    """Per worker: its key changes so far (levels)."""

    def key_numbers(self) -> tuple[int, int, int, FailureCounts]:
        """Rotations and epoch (every worker of a room changes keys together: the highest),
        churn joins and failures near key changes (each worker's own: summed)."""
        levels = list(self.keys.values())
        failures = FailureCounts()
        for level in levels:
            failures.add(level.near_failures)
        return (
            max((k.rotations for k in levels), default=0),
            max((k.epoch for k in levels), default=0),
            sum(k.churn_joins for k in levels),
            failures,
        )


@dataclass(frozen=True)
class _KeyLevels:
    rotations: int = 0
    epoch: int = 0
    churn_joins: int = 0
    near_failures: FailureCounts = field(default_factory=FailureCounts)

    @classmethod
    def of(cls, data: RoomSnapshot | KeyTotals) -> _KeyLevels:
        if isinstance(data, KeyTotals):
            return cls(data.rotations, data.epochs, data.churn_joins, FailureCounts(data.near_failures))
        return cls(data.rotations, data.epoch, data.churn_joins, FailureCounts(data.near_failures))


class LoadMetrics(Collector):
    """Fed from the event loop, read by the exporter's HTTP thread: a lock makes each snapshot
    appear whole (a scrape never sees a room's frames without their latencies)."""

    def __init__(self, shard: str) -> None:
        self.shard = shard
        self._lock = threading.Lock()
        self.rooms: dict[str, _Room] = {}
        self.workers: dict[str, dict[str, float]] = {}

    def _room(self, name: str) -> _Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = _Room()
        return room

    def take(self, snapshot: WorkerSnapshot) -> None:
        decoded = {name: (unpack(data.latency).values(), data) for name, data in snapshot.rooms.items()}
        lag = unpack(snapshot.loop_lag).percentile(99)
        with self._lock:
            self._take(str(snapshot.worker), decoded, snapshot, lag)

    def _take(
        self,
        worker: str,
        decoded: dict[str, tuple[list[tuple[float, int]], RoomSnapshot]],
        snapshot: WorkerSnapshot,
        lag: float | None,
    ) -> None:
        for name, (latencies, data) in decoded.items():
            room = self._room(name)
            room.joined[worker] = data.joined
            room.failed[worker] = data.failed
            room.intruders[worker] = data.intruders
            room.frames_decrypted += data.frames_decrypted
            room.frames_lost += data.lost
            room.intruder_decrypts += data.intruder_decrypts
            room.decrypt_failures.add(data.decrypt_failures)
            for value_ms, count in latencies:
                room.latency.add(value_ms / 1000, count)
            for join_ms in data.joins:
                room.join.add(join_ms / 1000)
            room.keys[worker] = _KeyLevels.of(data)
        self.workers[worker] = {"cpu": snapshot.cpu_percent or 0.0, "lag": (lag or 0.0) / 1000}

    def take_final(self, final: WorkerFinal) -> None:
        """A worker's final: its key changes' last levels (its last window measured to the end)."""
        with self._lock:
            for name, totals in final.rooms.items():
                self._room(name).keys[str(final.worker)] = _KeyLevels.of(totals.keys)

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
        rotations = CounterMetricFamily(
            "sealrtc_key_rotations", "Secret rotations (keying v1, --rotate-every)", labels=labels
        )
        epoch = GaugeMetricFamily("sealrtc_key_epoch", "Highest key epoch reached (keying v2)", labels=labels)
        near = CounterMetricFamily(
            "sealrtc_key_change_decrypt_failures",
            "Frames legitimate subscribers dropped within 2 s of a key change",
            labels=[*labels, "reason"],
        )
        churn = CounterMetricFamily(
            "sealrtc_churn_joins", "Subscribers who joined during the run in place of one who left (--churn)",
            labels=labels,
        )  # fmt: skip
        for name, room in sorted(self.rooms.items()):
            values = [self.shard, name]
            for level, by_worker in (("joined", room.joined), ("failed", room.failed), ("intruders", room.intruders)):
                participants.add_metric([*values, level], sum(by_worker.values()))
            frames.add_metric([*values, "decrypted"], room.frames_decrypted)
            frames.add_metric([*values, "lost"], room.frames_lost)
            for reason, n in sorted(room.decrypt_failures.items()):
                failures.add_metric([*values, reason], n)
            intruders.add_metric(values, room.intruder_decrypts)
            latency.add_metric(values, room.latency.exposition(), room.latency.sum)
            join.add_metric(values, room.join.exposition(), room.join.sum)
            rotated, reached, joined, near_failures = room.key_numbers()
            rotations.add_metric(values, rotated)
            epoch.add_metric(values, reached)
            churn.add_metric(values, joined)
            for reason, n in sorted(near_failures.items()):
                near.add_metric([*values, reason], n)
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
        yield from (participants, frames, failures, intruders, latency, join, rotations, epoch, near, churn, cpu, lag)


IDLE_TIMEOUT = 5.0
"""Seconds a metrics connection may stay silent (a scrape sends its request at once)."""
MAX_CONNECTIONS = 8
"""Connections served at once; more are closed at once (a scraper retries on its next interval)."""


class _Handler(WSGIRequestHandler):
    """One request per connection, silent (no access log on stderr), idle sockets time out."""

    timeout = IDLE_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        return None


class MetricsServer(WSGIServer):
    """``/metrics`` over a bounded pool of threads: at most ``max_connections`` connections are
    served at once, each silent one for at most ``idle_timeout`` seconds; any connection past
    the budget is closed at once. (prometheus_client's own server starts a thread per connection
    with no timeout: 300 idle connections made 300 threads.)"""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        handler = type("Handler", (_Handler,), {"timeout": idle_timeout})
        inherited = inherited_listener(address)  # opened where the user is (load re-run in a namespace)
        super().__init__(address, handler, bind_and_activate=inherited is None)
        if inherited is not None:
            self.socket.close()
            self.socket = inherited
            self.server_address = inherited.getsockname()[:2]
            self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
            self.setup_environ()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._pool = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="sealrtc-metrics")
        self._thread: threading.Thread | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a broken or timed-out scrape concerns nobody
            pass
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="sealrtc-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening, and wait for the connections being served."""
        self.shutdown()
        self.server_close()
        self._pool.shutdown(wait=True)


def serve(
    metrics: LoadMetrics,
    address: tuple[str, int],
    *,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout: float = IDLE_TIMEOUT,
) -> MetricsServer:
    """Serve ``/metrics`` on ``address`` (host, port; port 0: any) in a thread; the caller
    closes the returned server. ``--metrics-port P`` means ``("127.0.0.1", P)``."""
    from prometheus_client import make_wsgi_app

    registry = CollectorRegistry()
    registry.register(metrics)
    server = MetricsServer(address, max_connections=max_connections, idle_timeout=idle_timeout)
    server.set_app(make_wsgi_app(registry))
    server.start()
    return server
