"""HdrHistogram wrapper: values recorded in microseconds, read in milliseconds.

Reports store the standard compressed encoding (``HISTF...`` base64), so workers and shards merge
exactly; percentiles are always read from a (merged) histogram, never averaged. The exact maximum
is kept beside the histogram (HdrHistogram only knows it to its precision).
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50, 90, 95, 99)


class Histogram:
    """Milliseconds in, percentiles out; clamped to [0, 1 h] (a negative cross-host latency
    from unsynchronised clocks is counted as 0 and tallied in :attr:`clamped`)."""

    __slots__ = ("_h", "clamped", "max_ms")

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.max_ms: float | None = None
        self.clamped = 0

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def record(self, value_ms: float) -> None:
        us = int(value_ms * 1000)
        if us < 0 or us > HIGHEST_US:
            self.clamped += 1
            us = 0 if us < 0 else HIGHEST_US
        self._h.record_value(us)
        if self.max_ms is None or value_ms > self.max_ms:
            self.max_ms = value_ms

    def percentile(self, p: float) -> float | None:
        if self.count == 0:
            return None
        return float(self._h.get_value_at_percentile(p)) / 1000

    def merge(self, other: Histogram) -> None:
        self._h.add(other._h)
        self.clamped += other.clamped
        if other.max_ms is not None and (self.max_ms is None or other.max_ms > self.max_ms):
            self.max_ms = other.max_ms

    def summary(self) -> dict[str, Any] | None:
        """``{"count", "p50", "p90", "p95", "p99", "max"}`` in ms (1 µs resolution), None if empty."""
        if self.count == 0:
            return None
        out: dict[str, Any] = {"count": self.count}
        for p in PERCENTILES:
            value = self.percentile(p)
            out[f"p{p}"] = round(value, 3) if value is not None else None
        out["max"] = round(self.max_ms, 3) if self.max_ms is not None else None
        return out

    def encode(self) -> str:
        """HdrHistogram's standard compressed encoding (base64 text)."""
        return str(self._h.encode().decode("ascii"))

    @classmethod
    def decode(cls, encoded: str, *, max_ms: float | None = None) -> Histogram:
        histogram = cls()
        histogram._h.add(HdrHistogram.decode(encoded.encode("ascii")))
        if histogram.count:
            histogram.max_ms = max_ms if max_ms is not None else float(histogram._h.get_max_value()) / 1000
        return histogram


def summarize(values_ms: list[float]) -> dict[str, Any] | None:
    """Summary of a list of values through a histogram (the same rounding as reports)."""
    histogram = Histogram()
    for value in values_ms:
        histogram.record(value)
    return histogram.summary()
