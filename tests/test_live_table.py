"""The load command's live table fits the terminal (issue 21 item 2): no number is ever cut."""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from sealrtc.cli.display import Column, LiveView, fit_columns, fmt, live_table
from sealrtc.cli.load import LoadProgress
from sealrtc.load.aggregate import LiveTotals
from sealrtc.metrics import Histogram
from sealrtc.report.records import WorkerSnapshot, pack

pytestmark = pytest.mark.unit


def _histogram(*values: float) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def _progress() -> LoadProgress:
    """A run with wide numbers everywhere (the widest a busy run shows)."""
    live = LiveTotals()
    for worker in range(3):
        live.add(
            WorkerSnapshot(
                worker,
                12.0,
                joined=333,
                intruders=33,
                video_tracks=300,
                video_frames=8950,
                lost=1234,
                freezes=56,
                decrypt_failures=789,
                intruder_decrypts=0,
                cpu_percent=87.3,
                latency_video=pack(_histogram(69.4, 160.8, 1234.5)),
                latency_audio=pack(_histogram(160.8, 171.2, 2345.6)),
                loop_lag=pack(_histogram(12.5, 134.7)),
                media_bytes={"received_video": 21_000_000, "received_audio": 1_800_000},
            )
        )
    progress = LoadProgress(planned=1000)
    progress.run = SimpleNamespace(live=live)  # type: ignore[assignment]
    return progress


def _render(width: int) -> tuple[str, list[Sequence[Any]]]:
    _, rows = _progress().rows()
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    console.print(live_table("sealrtc load — 12 / 60 s", LoadProgress.COLUMNS, rows, width))
    return console.export_text(), rows


@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_number_shown_is_whole(width: int) -> None:
    text, rows = _render(width)
    kept, _ = fit_columns(LoadProgress.COLUMNS, rows, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for row in rows:
        for i in kept[1:]:
            cell = fmt(row[i])
            if cell not in ("", "-"):
                assert re.search(rf"(?<![\d.]){re.escape(cell)}(?![\d.])", text), (width, cell, text)
    # what always stays: joined, video p95 and intruder decrypts
    for name in ("joined", "video p95 ms", "intruder decrypts"):
        assert [c.name for c in LoadProgress.COLUMNS].index(name) in kept


def test_wide_terminals_keep_everything_and_the_row_label_never_wraps() -> None:
    text, rows = _render(120)
    last = next(line for line in text.splitlines() if "last second" in line)
    assert "1000" in last and fmt(rows[0][5]) in last  # the whole row on one line
    kept, headers = fit_columns(LoadProgress.COLUMNS, rows, 200)
    assert len(kept) == len(LoadProgress.COLUMNS) and headers[5] == "video p95 ms"
    kept80, headers80 = fit_columns(LoadProgress.COLUMNS, rows, 80)
    assert headers80[:2] == ["", "join"] and len(kept80) < len(LoadProgress.COLUMNS)


def test_columns_go_in_their_documented_order() -> None:
    rows: list[Any] = [("x", *(["12345"] * 14))]
    dropped_at: dict[str, int] = {}
    for width in range(200, 20, -1):
        kept, _ = fit_columns(LoadProgress.COLUMNS, rows, width)
        for i, column in enumerate(LoadProgress.COLUMNS):
            if i not in kept:
                dropped_at.setdefault(column.name, width)
    order = sorted(dropped_at, key=lambda name: -dropped_at[name])
    expected = sorted((c for c in LoadProgress.COLUMNS if c.drop is not None), key=lambda c: c.drop or 0)
    assert order == [c.name for c in expected]
    doc = LoadProgress.__doc__ or ""
    words = ("loop lag", "CPU", "audio p50", "intruders", "received kbit/s", "freezes", "fps", "video p50", "lost",
             "audio p95", "decrypt")  # fmt: skip
    positions = [doc.index(word) for word in words]
    assert positions == sorted(positions)  # the docstring states the same order


def test_short_headers_come_before_dropping_and_a_plain_view_is_unchanged() -> None:
    columns = (Column(""), Column("a long header", "a", drop=1), Column("b"))
    rows: list[Sequence[Any]] = [("row", 1.0, 2.0)]
    assert fit_columns(columns, rows, 40) == ([0, 1, 2], ["", "a long header", "b"])
    assert fit_columns(columns, rows, 20) == ([0, 1, 2], ["", "a", "b"])
    assert fit_columns(columns, rows, 14) == ([0, 2], ["", "b"])
    assert LiveView(lambda: (("", "a"), []), lambda: "line").columns == ()
