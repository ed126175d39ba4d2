"""Per received track metrics: latency, loss, reordering, freezes, fps, bitrate, first frame.

Fed by the aiortc adapter once per decrypted frame with two clocks: monotonic seconds (intervals,
freezes, rates) and Unix nanoseconds (end-to-end latency against the probe's ``capture_ns``; exact
on one host, and across hosts only as good as their clock synchronisation).
"""

from __future__ import annotations

from typing import Any

from .freeze import FreezeDetector
from .histogram import Histogram
from .sequence import SequenceTracker

OUTAGE_STALL_S = 1.0
"""A track that got no frame for this long (seconds), and for at least :data:`STALL_FRAMES` of
its own frame intervals, was in an outage (a publisher that reconnected while this connection
survived): a sequence gap that ends it counts as missed, not as lost. The second bound keeps a
slow track's ordinary loss (one frame at 1 fps is a 2 s gap) counted as loss."""
STALL_FRAMES = 4


class ReceiveMetrics:
    """What one receiving track measured. ``video`` enables freeze detection."""

    __slots__ = (
        "_sequences",
        "bytes",
        "first_at",
        "frames",
        "freezes",
        "interval_latency",
        "last_at",
        "latency",
        "probes",
        "stream_ids",
        "video",
    )

    def __init__(self, *, video: bool) -> None:
        self.video = video
        self.frames = 0
        self.bytes = 0
        self.probes = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.latency = Histogram()
        self.interval_latency: Histogram | None = None
        """A second latency histogram for the current interval (see :meth:`take_interval`)."""
        self.freezes = FreezeDetector()
        self._sequences: dict[int, SequenceTracker] = {}
        self.stream_ids: list[int] = []

    def frame(self, at: float, now_ns: int, size: int, probe: tuple[int, int, int] | None) -> None:
        """One frame of ``size`` payload bytes (probe excluded) decrypted at ``at``/``now_ns``;
        ``probe`` is ``(stream_id, sequence, capture_ns)`` (a :class:`Probe` or a plain tuple)."""
        after_outage = self._stalled(at)
        self.frames += 1
        self.bytes += size
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        if self.video:
            self.freezes.frame(at)
        if probe is not None:
            stream_id, sequence, capture_ns = probe
            self.probes += 1
            latency_ms = (now_ns - capture_ns) / 1e6
            self.latency.record(latency_ms)
            if self.interval_latency is not None:
                self.interval_latency.record(latency_ms)
            tracker = self._sequences.get(stream_id)
            if tracker is None:
                tracker = self._sequences[stream_id] = SequenceTracker()
                self.stream_ids.append(stream_id)
            tracker.add(sequence, after_outage=after_outage)

    def _stalled(self, at: float) -> bool:
        """Whether the gap before a frame at ``at`` is an outage, not a frame or two lost."""
        if self.last_at is None or self.first_at is None:
            return False
        gap = at - self.last_at
        spacing = (self.last_at - self.first_at) / (self.frames - 1) if self.frames > 1 else 0.0
        return gap >= max(OUTAGE_STALL_S, STALL_FRAMES * spacing)

    def take_interval(self) -> Histogram:
        """Latencies recorded since the previous call (the first call: everything so far)."""
        taken = self.interval_latency
        if taken is None:
            taken = Histogram()
            taken.merge(self.latency)
        self.interval_latency = Histogram()
        return taken

    def sequence_span(self) -> dict[int, tuple[int, int]]:
        """Per probe stream id, the first and the highest sequence number received: where a
        reconnecting agent matches the streams before and after an outage."""
        return {
            stream_id: (t.first, t.highest)
            for stream_id, t in self._sequences.items()
            if t.first is not None and t.highest is not None
        }

    @property
    def frames_lost(self) -> int:
        return sum(t.lost for t in self._sequences.values())

    @property
    def frames_missed(self) -> int:
        """Frames of gaps that ended a stall of :data:`OUTAGE_STALL_S` on this track (an outage
        the connection survived), apart from :attr:`frames_lost`."""
        return sum(t.missed for t in self._sequences.values())

    @property
    def out_of_order(self) -> int:
        return sum(t.out_of_order for t in self._sequences.values())

    def fps(self) -> float | None:
        if self.first_at is None or self.last_at is None or self.frames < 2 or self.last_at <= self.first_at:
            return None
        return (self.frames - 1) / (self.last_at - self.first_at)

    def bitrate_kbps(self) -> float | None:
        if self.first_at is None or self.last_at is None or self.frames < 2 or self.last_at <= self.first_at:
            return None
        return self.bytes * 8 / (self.last_at - self.first_at) / 1000

    def summary(self, since: float | None = None) -> dict[str, Any]:
        """Report fields; ``first_frame_ms`` is measured from ``since`` (monotonic) when given."""
        fps, kbps = self.fps(), self.bitrate_kbps()
        first = None
        if since is not None and self.first_at is not None:
            first = round((self.first_at - since) * 1000, 1)
        return {
            "latency_ms": self.latency.summary(),
            "frames_lost": self.frames_lost if self.probes else None,
            "frames_missed": self.frames_missed if self.probes else None,
            "frames_out_of_order": self.out_of_order if self.probes else None,
            "freezes": {"count": self.freezes.count, "total_ms": round(self.freezes.total_ms, 1)}
            if self.video and self.frames
            else None,
            "fps": round(fps, 2) if fps is not None else None,
            "bitrate_kbps": round(kbps, 1) if kbps is not None else None,
            "first_frame_ms": first,
            "probe_streams": list(self.stream_ids),
        }
