"""Recovery, faults and impaired shares in load runs, the pure half: the workers' recovery
totals and how they merge, the report's recovery metrics and their assertion names. Pure: no
sockets, no processes (the runs themselves: test_load_faults_run.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sealrtc.load.aggregate import build_report
from sealrtc.load.plan import SUBSCRIBER, Participant
from sealrtc.load.worker import Worker, _Joined
from sealrtc.metrics import Histogram
from sealrtc.report import check_all
from sealrtc.report.assertions import evaluate
from sealrtc.report.model import LoadReport, ScenarioInfo
from sealrtc.report.records import RecoveryTotals, RoomTotals, WorkerFinal

pytestmark = pytest.mark.unit


def _room(reconnects: int, recoveries: list[float], watched: float, available: float) -> RoomTotals:
    totals = RoomTotals(planned=3, joined=3)
    for ms in recoveries:
        totals.histograms["time_to_recover_ms"].record(ms)
    totals.recovery = RecoveryTotals(reconnects, sum(recoveries), watched, available)
    return totals


def _report(*finals: WorkerFinal) -> LoadReport:
    info = ScenarioInfo.from_json({"rooms": 2, "target": "embedded relay", "workers": len(finals)})
    assert info is not None
    return build_report(scenario=info, room_names=["a", "b"], finals=finals, snapshots=(), started_at="x",
                        duration_s=20)  # fmt: skip


def test_recovery_totals_travel_and_merge_per_room_and_in_total() -> None:
    one = WorkerFinal(0, {"a": _room(3, [1200.0, 2400.0], 40.0, 36.0), "b": _room(0, [], 20.0, 20.0)})
    two = WorkerFinal(1, {"a": _room(1, [4800.0], 20.0, 15.0)})
    again = WorkerFinal.from_json(one.to_json())
    assert again.rooms["a"].recovery == one.rooms["a"].recovery
    assert again.rooms["a"].histograms["time_to_recover_ms"].count == 2

    report = LoadReport.from_json(_report(one, two).to_json())
    metrics = report.metrics
    assert metrics is not None and metrics.time_to_recover_ms is not None
    assert metrics.reconnects == 4 and metrics.time_to_recover_ms.count == 3
    assert metrics.outage_ms == pytest.approx(8400.0)
    assert metrics.availability_percent == pytest.approx(100 * 71 / 80)  # subscriber-seconds, not rooms averaged
    rooms = {r.room: r.metrics for r in report.rooms}
    assert rooms["b"] is not None and rooms["b"].availability_percent == 100.0 and rooms["b"].reconnects == 0
    assert rooms["b"].time_to_recover_ms is None


def test_recovery_assertion_names() -> None:
    report = _report(WorkerFinal(0, {"a": _room(2, [1000.0, 3000.0], 30.0, 27.0)}))
    texts = ["reconnects == 2", "p95(time_to_recover_ms) < 2500", "availability_percent >= 90",
             "count(time_to_recover_ms) == 2", "outage_ms < 5000"]  # fmt: skip
    results = {text: evaluate(assertion, report) for text, assertion in zip(texts, check_all(texts), strict=True)}
    assert [r.ok for r in results.values()] == [True, False, True, True, True]
    assert results["p95(time_to_recover_ms) < 2500"].value == pytest.approx(3000, rel=0.01)
    assert results["availability_percent >= 90"].value == pytest.approx(90.0)
    quiet = _report(WorkerFinal(0, {"a": _room(0, [], 0.0, 0.0)}))
    (no_samples,) = check_all(["p95(time_to_recover_ms) < 1000"])
    assert evaluate(no_samples, quiet).reason == "no time-to-recover samples"
    (no_video,) = check_all(["availability_percent > 99"])
    assert evaluate(no_video, quiet).reason == "no metrics.availability_percent in the report"


def test_availability_counts_seconds_after_the_first_video_frame() -> None:
    entry = _Joined(Participant(1, 0, SUBSCRIBER, False, 0.0), SimpleNamespace(), 0.0)
    sample: Any = Worker._sample_availability
    sample(entry, 0, 1.0)  # no video yet: not watched
    sample(entry, 30, 1.0)  # the first frames: watching starts now
    assert (entry.watched_s, entry.available_s) == (0.0, 0.0)
    for video, elapsed in [(60, 1.0), (60, 1.0), (60, 2.0), (90, 1.0)]:  # an outage of three seconds
        sample(entry, video, elapsed)
    assert (entry.watched_s, entry.available_s) == (5.0, 2.0)


def test_a_histogram_of_recoveries_merges_exactly() -> None:
    a, b = Histogram(), Histogram()
    a.record(100.0)
    b.record(5000.0)
    merged = RoomTotals()
    for h in (a, b):
        part = RoomTotals()
        part.histograms["time_to_recover_ms"] = h
        merged.add(part)
    assert merged.histograms["time_to_recover_ms"].count == 2
    assert merged.histograms["time_to_recover_ms"].max_ms == 5000.0
