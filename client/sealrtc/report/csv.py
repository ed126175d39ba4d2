"""The report's intervals as CSV: one row per interval, for spreadsheets and plotting tools.

Columns, in this fixed order (any extra interval keys follow, sorted by name)::

    t, joined, intruders, frames_decrypted, fps, latency_p50, latency_p95, lost, freezes,
    decrypt_failures, intruder_decrypts, cpu_percent, loop_lag_ms

``t`` is seconds since the run started (the interval's end). A null (or absent) value is an
empty cell; numbers are written as Python prints them (``29.8``, ``120``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence

__all__ = ["INTERVAL_COLUMNS", "intervals_csv", "write_intervals_csv"]

INTERVAL_COLUMNS: tuple[str, ...] = (
    "t",
    "joined",
    "intruders",
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
)


def _intervals(report: Mapping[str, object]) -> list[Mapping[str, object]]:
    intervals = report.get("intervals")
    if not isinstance(intervals, Sequence):
        return []
    return [row for row in intervals if isinstance(row, Mapping)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def intervals_csv(report: Mapping[str, object]) -> str:
    """The intervals of ``report`` as CSV text (header first; ``\\r\\n`` line ends, as csv writes)."""
    rows = _intervals(report)
    extra = sorted({str(key) for row in rows for key in row} - set(INTERVAL_COLUMNS))
    columns = (*INTERVAL_COLUMNS, *extra)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def write_intervals_csv(report: Mapping[str, object], path: str | os.PathLike[str]) -> None:
    """Write :func:`intervals_csv` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(intervals_csv(report))
