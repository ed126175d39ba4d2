"""The report as CSV for spreadsheets and plotting tools: its intervals (one row per interval)
and its participants (one row per participant, ``--csv-participants``).

Interval columns, in this fixed order (any extra interval keys follow, sorted by name)::

    t, joined, intruders, frames_decrypted, fps, latency_p50, latency_p95, lost, freezes,
    decrypt_failures, intruder_decrypts, cpu_percent, loop_lag_ms, latency_video_p50,
    latency_video_p95, latency_audio_p50, latency_audio_p95, sent_kbps, received_kbps,
    received_video_kbps, received_audio_kbps

(``latency_p50``/``latency_p95`` mix video and audio; the ``*_kbps`` columns are totals over
every participant in that second.)

Participant columns (:data:`PARTICIPANT_COLUMNS`, then ``decrypt_failures.REASON`` for each
reason any participant counted, then ``reconnects``), worst participant first::

    id, role, room, worker, failed, join_ms, first_frame_ms, latency_video_p50,
    latency_video_p95, latency_audio_p50, latency_audio_p95, fps, sent_kbps, received_kbps,
    lost, freezes, decrypt_failures

``t`` is seconds since the run started (the interval's end). A null (or absent) value is an
empty cell; numbers are written as Python prints them (``29.8``, ``120``).

Text cells (and column names, which may come from a merged shard report) are outside text: a
shard's participant ``id`` is whatever that file says. Each goes through :func:`sealrtc.text.clean`
(an ESC or a newline shown escaped, never written raw for a terminal running ``--csv -`` to see),
and one that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
``'`` so that a spreadsheet shows it rather than running it as a formula (OWASP's rule for CSV
injection). Numbers stay numbers: ``-3`` is written as it is.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

from ..text import clean
from .measures import ParticipantRow
from .model import INTERVAL_FIELDS, Interval, LoadReport

__all__ = [
    "INTERVAL_COLUMNS",
    "PARTICIPANT_COLUMNS",
    "intervals_csv",
    "participants_csv",
    "write_intervals_csv",
    "write_participants_csv",
]

INTERVAL_COLUMNS: tuple[str, ...] = tuple(f for f in INTERVAL_FIELDS if f not in ("failed", "workers"))
"""The CSV's columns: the interval fields in their order, without ``failed`` and ``workers``
(the CSV format predates them; tools that read it by position keep working)."""


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters a spreadsheet may read as the start of a formula (OWASP, CSV injection)."""


def _text(value: str) -> str:
    """Outside text as an inert cell: cleaned for a terminal, and never read as a formula."""
    safe = clean(value)
    return f"'{safe}" if value.startswith(_FORMULA_STARTS) else safe


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _text(str(value))


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
    writer.writerow([_text(column) for column in columns])
    for row in rows:
        writer.writerow([_cell(_value(row, column)) for column in columns])
    return out.getvalue()


def write_intervals_csv(report: LoadReport | Mapping[str, object], path: str | os.PathLike[str]) -> None:
    """Write :func:`intervals_csv` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(intervals_csv(report))


PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "id",
    "role",
    "room",
    "worker",
    "failed",
    *ParticipantRow.NUMBERS,
    "decrypt_failures",
)
"""The participant CSV's first columns (``decrypt_failures``: the total over every reason)."""


def participants_csv(report: LoadReport | Mapping[str, object]) -> str:
    """The participant rows of ``report`` as CSV text, worst first (as the report keeps them)."""
    if not isinstance(report, LoadReport):
        report = LoadReport.from_json(report)
    rows = report.participant_rows
    reasons = sorted({reason for row in rows for reason, n in (row.decrypt_failures or {}).items() if n})
    columns = (*PARTICIPANT_COLUMNS, *(f"decrypt_failures.{r}" for r in reasons), "reconnects")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_text(column) for column in columns])
    for row in rows:
        failures = row.decrypt_failures
        writer.writerow(
            [
                _cell(row.id),
                _cell(row.role),
                _cell(row.room),
                _cell(row.worker),
                _cell(row.failed),
                *(_cell(row.get(name)) for name in ParticipantRow.NUMBERS),
                _cell(failures.total if failures is not None else None),
                *(_cell(failures.get(r, 0) if failures is not None else None) for r in reasons),
                _cell(row.reconnects or 0),
            ]
        )
    return out.getvalue()


def write_participants_csv(report: LoadReport | Mapping[str, object], path: str | os.PathLike[str]) -> None:
    """Write :func:`participants_csv` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(participants_csv(report))
