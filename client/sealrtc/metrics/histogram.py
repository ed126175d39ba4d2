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


SUB_BUCKET_BITS = 11
"""3 significant digits: HdrHistogram keeps 2048 sub-buckets per power of two."""


class Histogram:
    """Milliseconds in, percentiles out; clamped to [0, 1 h] (a negative cross-host latency
    from unsynchronised clocks is counted as 0 and tallied in :attr:`clamped`).

    ``record`` is on the per-frame path, and ``hdrh``'s ``record_value`` is pure Python
    (~1.4 µs): values are first rounded down to their HdrHistogram bucket (the same lowest
    equivalent value HdrHistogram would keep) and counted in a dict, then added in bulk when
    the histogram is read. The result is bucket-for-bucket the histogram ``record_value`` makes.
    """

    __slots__ = ("_h", "_pending", "clamped", "max_ms")

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self._pending: dict[int, int] = {}
        self.max_ms: float | None = None
        self.clamped = 0

    def _flush(self) -> None:
        if self._pending:
            record = self._h.record_value
            for value, count in self._pending.items():
                record(value, count)
            self._pending.clear()

    @property
    def count(self) -> int:
        self._flush()
        return int(self._h.get_total_count())

    def record(self, value_ms: float) -> None:
        us = int(value_ms * 1000)
        if us < 0 or us > HIGHEST_US:
            self.clamped += 1
            us = 0 if us < 0 else HIGHEST_US
        shift = us.bit_length() - SUB_BUCKET_BITS
        if shift > 0:
            us = (us >> shift) << shift
        pending = self._pending
        pending[us] = pending.get(us, 0) + 1
        max_ms = self.max_ms
        if max_ms is None or value_ms > max_ms:
            self.max_ms = value_ms

    def percentile(self, p: float) -> float | None:
        if self.count == 0:
            return None
        return float(self._h.get_value_at_percentile(p)) / 1000

    def values(self) -> list[tuple[float, int]]:
        """``(value_ms, count)`` for every recorded bucket (its highest equivalent value)."""
        self._flush()
        return [
            (float(item.value_iterated_to) / 1000, int(item.count_added_in_this_iter_step))
            for item in self._h.get_recorded_iterator()
        ]

    def merge(self, other: Histogram) -> None:
        self._flush()
        other._flush()
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
            if value is not None and self.max_ms is not None:
                value = min(value, self.max_ms)  # a bucket's top may lie above the exact maximum
            out[f"p{p}"] = round(value, 3) if value is not None else None
        out["max"] = round(self.max_ms, 3) if self.max_ms is not None else None
        return out

    def encode(self) -> str:
        """HdrHistogram's standard compressed encoding (base64 text)."""
        self._flush()
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
