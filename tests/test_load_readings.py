"""What a load report reads (issue 21): video and audio latency apart, bitrates, participant rows.

Pure: synthetic worker records through the one builder, the schema, the CSV and the HTML page.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import re
from typing import Any

import pytest

from sealrtc.failures import FailureCounts
from sealrtc.load.aggregate import LiveTotals, build_report, merge_intervals
from sealrtc.load.scenario import Scenario
from sealrtc.metrics import Histogram
from sealrtc.report import check_all, evaluate, intervals_csv, judge, parse
from sealrtc.report.csv import PARTICIPANT_COLUMNS, participants_csv
from sealrtc.report.html import render_html
from sealrtc.report.measures import ParticipantRow
from sealrtc.report.model import LoadReport, RawData, ScenarioInfo
from sealrtc.report.records import (
    MAX_PARTICIPANT_ROWS,
    MediaBytes,
    RoomTotals,
    WorkerFinal,
    WorkerSnapshot,
    pack,
)
from sealrtc.report.schema import first_problem

pytestmark = pytest.mark.unit

ROOMS = ("room-a", "room-b")
_info = ScenarioInfo.from_json(
    Scenario(rooms=2, publishers=1, subscribers=2, duration=10).as_dict()
    | {"target": "whip http://x", "workers": 2, "shard": {"index": None, "count": 1}}
)
assert _info is not None
SCENARIO: ScenarioInfo = _info


def _histogram(values: list[float]) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def _snapshot(worker: int, t: float, *, video_kbps: float, audio_kbps: float = 48.0) -> WorkerSnapshot:
    """One worker's second: one publisher sending at the given rates, two subscribers receiving
    them whole; video frames arrive in ~20-40 ms, audio in ~150-170 ms."""
    sent_video, sent_audio = int(video_kbps * 1000 / 8), int(audio_kbps * 1000 / 8)
    video = _histogram([20.0 + i for i in range(21)] * 2)
    audio = _histogram([150.0 + i for i in range(21)] * 2)
    mixed = Histogram()
    mixed.merge(video)
    mixed.merge(audio)
    return WorkerSnapshot(
        worker,
        t,
        joined=3,
        video_tracks=2,
        video_frames=60,
        cpu_percent=35.0,
        latency=pack(mixed),
        latency_video=pack(video),
        latency_audio=pack(audio),
        media_bytes={
            "sent_video": sent_video,
            "sent_audio": sent_audio,
            "received_video": 2 * sent_video,
            "received_audio": 2 * sent_audio,
        },
    )


def _final(worker: int, room: str, *, video_kbps: float, seconds: float = 10.0) -> WorkerFinal:
    """A worker with one publisher and two subscribers in ``room`` for ``seconds``."""
    totals = RoomTotals(planned=3, joined=3)
    byte_rate = video_kbps * 1000 / 8
    totals.media = MediaBytes(
        {
            "sent_video": int(byte_rate * seconds),
            "sent_audio": int(6000 * seconds),
            "received_video": int(2 * byte_rate * seconds),
            "received_audio": int(2 * 6000 * seconds),
        },
        sending_s=seconds,
        receiving_s=2 * seconds,
    )
    for kind, base in (("video", 25.0), ("audio", 160.0)):
        totals.histograms[f"latency_{kind}_ms"].merge(_histogram([base + i for i in range(10)]))
    rows = (
        ParticipantRow(f"publisher-{worker}", "publisher", room, worker, join_ms=120.0, sent_kbps=video_kbps + 48),
        ParticipantRow(
            f"subscriber-{worker}0",
            "subscriber",
            room,
            worker,
            join_ms=200.0,
            first_frame_ms=450.0,
            latency_video_p50=25.0,
            latency_video_p95=35.0,
            latency_audio_p50=160.0,
            latency_audio_p95=170.0,
            fps=29.9,
            received_kbps=video_kbps + 48,
            lost=0,
            freezes=0,
        ),
        ParticipantRow(
            f"subscriber-{worker}1",
            "subscriber",
            room,
            worker,
            join_ms=210.0,
            first_frame_ms=470.0,
            latency_video_p50=26.0,
            latency_video_p95=90.0 + worker,
            latency_audio_p50=161.0,
            latency_audio_p95=171.0,
            fps=27.0,
            received_kbps=video_kbps + 40,
            lost=4,
            freezes=worker,
            decrypt_failures=None,
            reconnects=worker or None,
        ),
    )
    return WorkerFinal(worker, {room: totals}, participants=rows)


def _report(finals: list[WorkerFinal], snapshots: list[WorkerSnapshot] | None = None) -> LoadReport:
    return build_report(
        scenario=SCENARIO,
        room_names=ROOMS,
        finals=finals,
        snapshots=snapshots or [],
        started_at="2026-12-07T16:00:00Z",
        duration_s=10.0,
        raw=RawData(None, tuple(finals), tuple(snapshots or ()), {}),
    )


def test_intervals_carry_video_and_audio_latency_and_bitrates_that_follow_the_publisher() -> None:
    low = merge_intervals([_snapshot(0, 1.0, video_kbps=300), _snapshot(1, 1.0, video_kbps=300)])[0]
    high = merge_intervals([_snapshot(0, 1.0, video_kbps=900), _snapshot(1, 1.0, video_kbps=900)])[0]
    assert low.get("latency_video_p50") == pytest.approx(30, abs=1)
    assert low.get("latency_audio_p50") == pytest.approx(160, abs=1)
    assert low.get("latency_video_p95") == pytest.approx(39, abs=1)
    assert low.get("latency_audio_p95") == pytest.approx(169, abs=1)
    # totals over both workers' participants: 2 publishers sent, 4 subscribers received
    assert low.get("sent_kbps") == pytest.approx(2 * (300 + 48), abs=0.5)
    assert low.get("received_video_kbps") == pytest.approx(4 * 300, abs=0.5)
    assert low.get("received_audio_kbps") == pytest.approx(4 * 48, abs=0.5)
    assert low.get("received_kbps") == pytest.approx(4 * 348, abs=0.5)
    assert high.get("received_video_kbps") == pytest.approx(3 * low.get("received_video_kbps"), rel=0.01)  # type: ignore[operator]
    assert high.get("received_audio_kbps") == low.get("received_audio_kbps")


def test_live_totals_split_latency_and_rate_the_whole_run() -> None:
    live = LiveTotals()
    for t in (1.0, 2.0, 3.0):
        live.add(_snapshot(0, t, video_kbps=500))
    last, whole = live.last_second(), live.whole_run()
    assert last is not None and whole is not None
    assert last.get("latency_video_p95") == pytest.approx(39, abs=1)
    assert whole.get("latency_audio_p50") == pytest.approx(160, abs=1)
    assert last.get("received_video_kbps") == pytest.approx(1000, abs=0.5)
    assert whole.get("received_video_kbps") == pytest.approx(1000, abs=0.5)  # 3 s of 2 x 500 kbit/s


def test_report_bitrate_is_the_mean_per_participant_and_assertable() -> None:
    report = _report([_final(0, "room-a", video_kbps=400), _final(1, "room-b", video_kbps=800)])
    bitrate = report.metrics.bitrate if report.metrics is not None else None
    assert bitrate is not None
    assert bitrate.sent_video_kbps == pytest.approx(600, abs=0.2)  # mean of the two publishers
    assert bitrate.received_video_kbps == pytest.approx(600, abs=0.2)  # mean of the four subscribers
    assert bitrate.sent_audio_kbps == pytest.approx(48, abs=0.2)
    rooms = {r.room: r.metrics.bitrate for r in report.rooms if r.metrics is not None}
    assert rooms["room-a"] is not None and rooms["room-a"].received_video_kbps == pytest.approx(400, abs=0.2)
    assert rooms["room-b"] is not None and rooms["room-b"].sent_video_kbps == pytest.approx(800, abs=0.2)
    values = {
        name: evaluate(parse(f"{name} > 0"), report).value
        for name in ("bitrate_kbps", "video_bitrate_kbps", "audio_bitrate_kbps", "sent_bitrate_kbps")
    }
    assert values == pytest.approx(
        {"bitrate_kbps": 648, "video_bitrate_kbps": 600, "audio_bitrate_kbps": 48, "sent_bitrate_kbps": 648}, abs=0.5
    )
    assert not evaluate(parse("video_bitrate_kbps > 700"), report).ok
    assert evaluate(parse("p95(latency_video_ms) < 50 and p95(latency_audio_ms) > 150"), report).ok
    empty = LoadReport.from_json({"metrics": {}})
    assert evaluate(parse("bitrate_kbps > 0"), empty).reason == "no metrics.bitrate in the report"


def test_participant_rows_worst_first_schema_valid_and_rebuilt_from_raw() -> None:
    finals = [_final(0, "room-a", video_kbps=400), _final(1, "room-b", video_kbps=800)]
    report = _report(finals)
    data = json.loads(json.dumps(judge(report, (), default_checks=check_all(["joined == planned"])).report.to_json()))
    assert first_problem(data) is None
    rows = data["participant_rows"]
    assert len(rows) == 6
    assert [r["id"] for r in rows[:2]] == ["subscriber-11", "subscriber-01"]  # a freeze, then the most lost
    worst = rows[0]
    assert worst["role"] == "subscriber" and worst["room"] == "room-b" and worst["worker"] == 1
    assert worst["latency_video_p95"] == 91.0 and worst["latency_audio_p95"] == 171.0
    assert worst["received_kbps"] == 840.0 and worst["reconnects"] == 1
    assert "reconnects" not in rows[1]  # none: not written
    publisher = next(r for r in rows if r["role"] == "publisher")
    assert publisher["sent_kbps"] == 448.0 and publisher["received_kbps"] is None
    # report merge rebuilds them from the raw section (the workers' finals)
    raw = RawData.from_json(data["raw"])
    assert raw is not None
    again = _report(list(raw.finals))
    assert [r.to_json() for r in again.participant_rows] == rows
    assert LoadReport.from_json(data).participant_rows == report.participant_rows


def test_participant_rows_are_bounded() -> None:
    many = tuple(ParticipantRow(f"subscriber-{i}", "subscriber", "room-a", 0, lost=i % 7) for i in range(6000))
    finals = [WorkerFinal(w, {}, participants=many) for w in range(2)]
    report = _report(finals)
    assert len(report.participant_rows) == MAX_PARTICIPANT_ROWS
    kept = [r.lost for r in report.participant_rows]
    assert kept[0] == 6 and kept.count(6) == 2 * sum(1 for i in range(6000) if i % 7 == 6)  # the worst are kept
    assert 0 not in kept


def test_csv_has_the_new_interval_columns_after_the_old_ones() -> None:
    snapshots = [_snapshot(0, float(t), video_kbps=500) for t in (1, 2)]
    report = _report([_final(0, "room-a", video_kbps=500)], snapshots)
    rows = list(csv.DictReader(io.StringIO(intervals_csv(report))))
    header = next(csv.reader(io.StringIO(intervals_csv(report))))
    assert header[:13] == ["t", "joined", "intruders", "frames_decrypted", "fps", "latency_p50", "latency_p95",
                           "lost", "freezes", "decrypt_failures", "intruder_decrypts", "cpu_percent",
                           "loop_lag_ms"]  # fmt: skip
    assert header[13:21] == ["latency_video_p50", "latency_video_p95", "latency_audio_p50", "latency_audio_p95",
                           "sent_kbps", "received_kbps", "received_video_kbps", "received_audio_kbps"]  # fmt: skip
    assert float(rows[1]["received_video_kbps"]) == pytest.approx(1000, abs=0.5)
    assert float(rows[1]["latency_audio_p50"]) == pytest.approx(160, abs=1)


def _random_row(rng: random.Random, i: int) -> dict[str, Any]:
    return {"id": f"subscriber-{i}", "role": "subscriber", "freezes": rng.randint(0, 3), "lost": rng.randint(0, 5)}


def test_worst_first_orders_by_freezes_then_lost_then_latency() -> None:
    rng = random.Random(3)
    rows = [ParticipantRow.from_json(_random_row(rng, i)) for i in range(50)]
    ordered = sorted((r for r in rows if r is not None), key=ParticipantRow.worst_first)
    keys = [(r.freezes, r.lost) for r in ordered]
    assert keys == sorted(keys, reverse=True)
    failed = ParticipantRow("publisher-0", "publisher", failed=True)
    assert sorted([*ordered, failed], key=ParticipantRow.worst_first)[0] is failed


def test_html_leads_with_video_latency_and_shows_bitrate_and_participants_worst_first() -> None:
    evil = _final(1, "room-b", video_kbps=800)
    rows = (dataclasses.replace(evil.participants[0], room="<b>room-b</b>"), *evil.participants[1:])
    finals = [_final(0, "room-a", video_kbps=400), dataclasses.replace(evil, participants=rows)]
    snapshots = [_snapshot(0, float(t), video_kbps=400) for t in (1, 2, 3)]
    page = render_html(_report(finals, snapshots))
    cards = page[page.index('<section class="cards">') : page.index("</section>")]
    labels = re.findall(r'<div class="label">([^<]+)</div>', cards)
    assert labels[1:6] == ["video latency p50", "video latency p95", "video latency p99", "audio latency p50",
                           "audio latency p95"]  # fmt: skip
    assert "latency p50" not in labels and "video received" in labels and "sent per publisher" in labels
    assert "600 <small>kbit/s</small>" in cards and "48 <small>kbit/s</small>" in cards
    assert (
        "Bitrate: sent by all publishers, received by all subscribers" in page
        and "End-to-end latency, video and audio" in page
    )
    table = page[page.index("<h2>Participants, worst first</h2>") :]
    table = table[: table.index("</table>")]
    ids = re.findall(r'<tr class="[^"]*"><td class="text">([^<]+)</td>', table)
    assert ids[:2] == ["subscriber-11", "subscriber-01"] and len(ids) == 6
    assert "&lt;b&gt;room-b&lt;/b&gt;" in table and "<b>room-b" not in page
    assert "91.0 ms" in table and "840 kbit/s" in table


def test_participants_csv_one_row_each_with_failures_by_reason() -> None:
    final = _final(0, "room-a", video_kbps=400)
    rows = list(final.participants)
    rows[1] = dataclasses.replace(rows[1], decrypt_failures=FailureCounts({"replayed": 2, "unknown_key": 1}))
    report = _report([dataclasses.replace(final, participants=tuple(rows))])
    parsed = list(csv.DictReader(io.StringIO(participants_csv(report))))
    header = next(csv.reader(io.StringIO(participants_csv(report))))
    assert header[: len(PARTICIPANT_COLUMNS)] == list(PARTICIPANT_COLUMNS)
    assert header[len(PARTICIPANT_COLUMNS) :] == ["decrypt_failures.replayed", "decrypt_failures.unknown_key",
                                                 "reconnects"]  # fmt: skip
    assert [r["id"] for r in parsed] == [r.id for r in report.participant_rows]
    by_id = {r["id"]: r for r in parsed}
    assert (
        by_id["subscriber-00"]["decrypt_failures"] == "3" and by_id["subscriber-00"]["decrypt_failures.replayed"] == "2"
    )
    assert by_id["publisher-0"]["sent_kbps"] == "448" and by_id["publisher-0"]["received_kbps"] == ""
    assert by_id["subscriber-01"]["latency_video_p95"] == "90.0"


def test_csv_text_cells_are_cleaned_and_never_formulas_while_numbers_stay_numbers() -> None:
    final = _final(0, "room-a", video_kbps=400)
    rows = list(final.participants)
    rows[0] = dataclasses.replace(rows[0], id='\x1b[31m=HYPERLINK("http://x")', room="-room\r\n")
    rows[1] = dataclasses.replace(rows[1], id="\tsub", worker="@w", latency_video_p50=-2.5)
    report = _report([dataclasses.replace(final, participants=tuple(rows))])
    text = participants_csv(report)
    assert "\x1b" not in text and "\t" not in text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows)
    by_id = {r["id"]: r for r in parsed}
    evil = by_id['\\x1b[31m=HYPERLINK("http://x")']  # shown, escaped: no longer a formula
    assert evil["room"] == "'-room\\r\\n" and evil["role"] == "publisher"
    tabbed = by_id["'\\tsub"]
    assert tabbed["worker"] == "'@w" and tabbed["latency_video_p50"] == "-2.5" and tabbed["room"] == "room-a"
    assert by_id["subscriber-01"]["latency_video_p50"] == "26.0"


def test_interval_csv_cleans_text_from_a_merged_report_even_in_its_column_names() -> None:
    data = _report([_final(0, "room-a", video_kbps=400)], [_snapshot(0, 1.0, video_kbps=400)]).to_json()
    data["intervals"][0]["=cmd\x1b"] = "+1"
    data["intervals"][0]["note"] = "@SUM(A1)"
    text = intervals_csv(data)
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    assert "\x1b" not in text and "'=cmd\\x1b" in header
    assert first[header.index("note")] == "'@SUM(A1)" and first[header.index("'=cmd\\x1b")] == "'+1"


def test_the_schema_bounds_participant_names() -> None:
    report = _report([_final(0, "room-a", video_kbps=400)])
    row = judge(report, check_all(["joined == planned"])).report.to_json()
    assert first_problem(row) is None
    row["participant_rows"][0]["room"] = "a\x1b[2J"
    assert (first_problem(row) or "").startswith("participant_rows[0].room:")
    row["participant_rows"][0]["room"] = "r" * 129
    assert (first_problem(row) or "").startswith("participant_rows[0].room:")
    row["participant_rows"][0]["room"] = "r" * 128
    assert first_problem(row) is None


def _chart(page: str, caption: str) -> str:
    figure = page[page.index(f"<figcaption>{caption}</figcaption>") :]
    return figure[: figure.index("</figure>")]


def test_html_small_items_grammar_thresholds_and_clock_times() -> None:
    one = dataclasses.replace(SCENARIO, rooms=1, workers=1)
    report = build_report(
        scenario=one, room_names=ROOMS[:1], finals=[_final(0, "room-a", video_kbps=400)],
        snapshots=[_snapshot(0, float(t), video_kbps=400) for t in (1, 2, 3)],
        started_at="2026-12-07T16:00:00Z", duration_s=3.0,
    )  # fmt: skip
    checks = ["p95(latency_video_ms) < 200 ms", "cpu_percent < 80 and frames.lost == 0", "joined == planned"]
    judged = judge(report, check_all(checks)).report
    page = render_html(judged)
    assert "1 room \u00d7" in page and "1 worker" in page and "1 rooms" not in page and "1 workers" not in page
    assert "interval counts are per interval" not in page
    latency = _chart(page, "End-to-end latency, video and audio")
    assert 'stroke-dasharray="6 4"' in latency and "p95(latency_video_ms) &lt; 200" in latency
    cpu = _chart(page, "Generator CPU")
    charts = page[page.index('<section class="charts">') :]
    assert "cpu_percent &lt; 80" in cpu and "frames.lost" not in charts[: charts.index("</section>")]
    assert 'stroke-dasharray="6 4"' not in _chart(page, "Generator event-loop lag")  # no assertion on it
    assert "time (s after 16:00:00 UTC)" in latency
