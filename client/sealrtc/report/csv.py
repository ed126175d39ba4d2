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
from collections.abc import Mapping

from .model import INTERVAL_FIELDS, Interval, LoadReport

__all__ = ["INTERVAL_COLUMNS", "intervals_csv", "write_intervals_csv"]

INTERVAL_COLUMNS: tuple[str, ...] = tuple(f for f in INTERVAL_FIELDS if f not in ("failed", "workers"))
"""The CSV's columns: the interval fields in their order, without ``failed`` and ``workers``
(the CSV format predates them; tools that read it by position keep working)."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value(row: Interval, column: str) -> object:
    return row.get(column) if column in INTERVAL_FIELDS else row.extra.get(column)


def intervals_csv(report: LoadReport | Mapping[str, object]) -> str:
    """The intervals of ``report`` as CSV text (header first; ``\\r\\n`` line ends, as csv writes).
    A mapping is report JSON, read with :meth:`LoadReport.from_json`."""
    if not isinstance(report, LoadReport):
        report = LoadReport.from_json(report)
    rows = report.intervals
    present = {name for row in rows for name in INTERVAL_FIELDS if row.has(name)}
    extra = sorted((present | {str(key) for row in rows for key in row.extra}) - set(INTERVAL_COLUMNS))
    columns = (*INTERVAL_COLUMNS, *extra)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(_value(row, column)) for column in columns])
    return out.getvalue()


def write_intervals_csv(report: LoadReport | Mapping[str, object], path: str | os.PathLike[str]) -> None:
    """Write :func:`intervals_csv` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(intervals_csv(report))
