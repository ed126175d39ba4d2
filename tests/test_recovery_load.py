"""Frames missed during outages in load runs, the pure half: what a worker adds per subscriber,
how the room totals travel and merge, the report's ``outage_frames_missed`` (whole run and per
room, valid against the shipped schema) and its assertion name. No sockets, no processes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sealrtc.agents.recovery import RecoveryLog
from sealrtc.load.aggregate import build_report
from sealrtc.load.plan import SUBSCRIBER, Participant
from sealrtc.load.worker import Worker, _Joined
from sealrtc.report import check_all, first_problem
from sealrtc.report.assertions import evaluate
from sealrtc.report.model import LoadReport, ScenarioInfo
from sealrtc.report.records import RecoveryTotals, RoomTotals, WorkerFinal

from .report_fixture import sample_report

pytestmark = pytest.mark.unit


def _room(missed: int, reconnects: int = 1) -> RoomTotals:
    totals = RoomTotals(planned=2, joined=2)
    totals.recovery = RecoveryTotals(reconnects=reconnects, outage_ms=1000.0, watched_s=10.0, available_s=9.0,
                                     frames_missed=missed)  # fmt: skip
    return totals


def _report(*finals: WorkerFinal) -> LoadReport:
    info = ScenarioInfo.from_json({"rooms": 2, "target": "embedded relay", "workers": len(finals)})
    assert info is not None
    return build_report(scenario=info, room_names=["a", "b"], finals=finals, snapshots=(), started_at="x",
                        duration_s=20)  # fmt: skip


def test_missed_frames_travel_and_sum_per_room_and_in_total() -> None:
    one = WorkerFinal(0, {"a": _room(30), "b": _room(0, reconnects=0)})
    two = WorkerFinal(1, {"a": _room(12)})
    again = WorkerFinal.from_json(one.to_json())
    assert again.rooms["a"].recovery.frames_missed == 30
    assert RecoveryTotals.from_wire({"reconnects": 1}).frames_missed == 0  # a worker of before

    data = _report(one, two).to_json()
    valid = sample_report()  # a whole valid report, with these metrics in total and in a room
    valid["metrics"], valid["rooms"][0]["metrics"] = data["metrics"], data["rooms"][0]["metrics"]
    assert first_problem(valid) is None
    report = LoadReport.from_json(data)
    assert report.metrics is not None and report.metrics.outage_frames_missed == 42
    rooms = {r.room: r.metrics for r in report.rooms}
    assert rooms["a"] is not None and rooms["a"].outage_frames_missed == 42
    assert rooms["b"] is not None and rooms["b"].outage_frames_missed == 0
    valid["metrics"]["outage_frames_missed"] = -1
    problem = first_problem(valid)
    assert problem is not None and problem.startswith("metrics.outage_frames_missed")


def test_the_assertion_name_reads_the_missed_frames() -> None:
    report = _report(WorkerFinal(0, {"a": _room(45)}))
    texts = ["outage_frames_missed <= 50", "outage_frames_missed < 45"]
    results = [evaluate(assertion, report) for assertion in check_all(texts)]
    assert [r.ok for r in results] == [True, False]
    assert results[1].value == 45


def test_a_worker_adds_each_subscribers_missed_frames_ongoing_outage_included() -> None:
    now = [0.0]
    log = RecoveryLog(clock=lambda: now[0])
    log.lost("gone", since=0.0, frame_rate=30.0, last_probes={5: 100})
    log.recovered(at=2.0)
    log.first_probes({5: 161})  # 60 frames missed, matched by probes
    now[0] = 10.0
    log.lost("again", since=10.0, frame_rate=30.0, last_probes={5: 400})
    now[0] = 11.0  # the run ends one second into the second outage: about 30 more
    entry = _Joined(Participant(1, 0, SUBSCRIBER, False, 0.0), SimpleNamespace(recovery=log), 0.0)
    totals = RoomTotals()
    add: Any = Worker._add_recovery
    add(totals, entry, 0.0)
    assert totals.recovery.frames_missed == 90
    add(totals, entry, 0.0, 12)  # and those of outages its connections survived (stalled tracks)
    assert totals.recovery.frames_missed == 90 + 90 + 12
