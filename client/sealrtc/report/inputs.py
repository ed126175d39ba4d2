"""Reading a load report file that may come from anywhere (``sealrtc report merge``'s inputs).

Every check answers with one line naming the file, before anything costly happens: the file's
size (:data:`MAX_REPORT_BYTES`, never read past it), JSON numbers (integers of more than
:data:`MAX_DIGITS` digits, ``NaN`` and ``Infinity`` refused), the JSON Schema, the shard
numbers (a ``scenario.shard.count`` of ``1e7`` must not make a list of ten million missing
shards: at most :data:`MAX_SHARDS`), how many worker records there are, and every encoded
histogram (bounded decompression: :func:`.records.check_encoded`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SealError
from .jsonread import integer, mapping, sequence
from .model import LoadReport
from .records import HistogramError, check_encoded
from .schema import first_problem

__all__ = ["MAX_DIGITS", "MAX_RECORDS", "MAX_REPORT_BYTES", "MAX_SHARDS", "ReportFileError", "read_report"]

MAX_REPORT_BYTES = 256 * 1024 * 1024
"""Largest report file read (an hour-long run of many workers is some tens of MiB)."""
MAX_DIGITS = 19
"""Digits of a JSON integer (a 64-bit counter has at most 19 or 20; 400-digit ones are refused)."""
MAX_SHARDS = 1024
"""Shards of one run a report may claim."""
MAX_RECORDS = 1_000_000
"""Worker snapshots and finals in one report's raw section (one per worker per second)."""


class ReportFileError(SealError):
    """A report file that is refused (one line: the file and why)."""


class _BadNumber(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _BadNumber(f"an integer with more than {MAX_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"a number out of range ({text[:20]})")
    return value


def _parse_constant(text: str) -> Any:
    raise _BadNumber(f"{text} is not a JSON number")


def _decode(name: str, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _BadNumber as exc:
        raise ReportFileError(f"{name} is not a valid sealrtc load report: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ReportFileError(f"{name} is not a JSON report") from None
    if not isinstance(data, dict):
        raise ReportFileError(f"{name} is not a JSON report")
    return data


def _check_counts(name: str, data: dict[str, Any]) -> None:
    shard = mapping(mapping(data.get("scenario")).get("shard"))
    count = integer(shard.get("count"))
    if count is not None and not 1 <= count <= MAX_SHARDS:
        raise ReportFileError(f"{name}: scenario.shard.count {count} is not a shard count (1..{MAX_SHARDS})")
    raw = mapping(data.get("raw"))
    index = integer(raw.get("shard"))
    if index is not None and not 0 <= index < (count or 1):
        raise ReportFileError(f"{name}: raw.shard {index} is not a shard of {count or 1}")
    records = len(sequence(raw.get("finals"))) + len(sequence(raw.get("snapshots")))
    if records > MAX_RECORDS:
        raise ReportFileError(f"{name}: more than {MAX_RECORDS} worker records in raw")


def _check_snapshots(report: LoadReport) -> None:
    """The histograms decoded only when the merge needs them, checked now (one line, the file)."""
    if report.raw is None:
        return
    for snapshot in report.raw.snapshots:
        for packed in (snapshot.latency, snapshot.latency_video, snapshot.latency_audio, snapshot.loop_lag,
                       *(r.latency for r in snapshot.rooms.values())):  # fmt: skip
            if packed:
                check_encoded(str(packed[0]))
    for final in report.raw.finals:
        if final.generator.loop_lag:
            check_encoded(str(final.generator.loop_lag[0]))


def _read_at_most(file: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` bytes, in chunks (``read(limit)`` would allocate ``limit`` at once)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = file.read(min(1024 * 1024, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_report(path: str) -> LoadReport:
    """The typed report in the file at ``path``, or :class:`ReportFileError`."""
    name = path
    try:
        with Path(path).open("rb") as file:
            raw = _read_at_most(file, MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise ReportFileError(f"cannot read {name}: {exc.strerror}") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportFileError(f"{name} is over {MAX_REPORT_BYTES // (1024 * 1024)} MiB: not a load report")
    data = _decode(name, raw)
    problem = first_problem(data)
    if problem is not None:
        raise ReportFileError(f"{name} is not a valid sealrtc load report: {problem}")
    _check_counts(name, data)
    try:
        report = LoadReport.from_json(data)  # decodes the finals' histograms (each checked first)
        _check_snapshots(report)
        return report
    except HistogramError as exc:
        raise ReportFileError(f"{name}: {exc}") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, AttributeError) as exc:
        # the schema leaves some shapes open; whatever a field holds, the answer is one line
        raise ReportFileError(f"{name} is not a valid sealrtc load report ({exc.__class__.__name__})") from None
