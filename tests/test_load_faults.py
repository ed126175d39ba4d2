"""Recovery, faults and impaired shares in load runs, the pure half: the workers' recovery
totals and how they merge, the report's recovery metrics and their assertion names. Pure: no
sockets, no processes (the runs themselves: test_load_faults_run.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sealrtc.agents.recovery import RecoveryLog
from sealrtc.cli.common import ExitStatus
from sealrtc.cli.faults import load_rows
from sealrtc.cli.main import main
from sealrtc.load.aggregate import build_report
from sealrtc.load.faults import (
    SAMPLE,
    Fault,
    FaultError,
    GapWatch,
    check_faults,
    fault_reports,
    may_close,
    parse_fault,
    windows,
)
from sealrtc.load.plan import INTRUDER, PUBLISHER, SUBSCRIBER, Participant, plan
from sealrtc.load.plan import shard as plan_shard
from sealrtc.load.profiles import assign_links, profile_reports
from sealrtc.load.runner import LoadRun, external_faults, shard_report
from sealrtc.load.scenario import Scenario, ScenarioError, build, load_file
from sealrtc.load.shares import ImpairShare, parse_shares
from sealrtc.load.worker import Worker, _Joined
from sealrtc.metrics import Histogram
from sealrtc.report import check_all, first_problem, judge
from sealrtc.report.assertions import evaluate
from sealrtc.report.model import LoadReport, ScenarioInfo
from sealrtc.report.records import (
    FaultTotals,
    LinkTotals,
    ProfileTotals,
    RecoveryTotals,
    RoomTotals,
    WorkerFinal,
    read_message,
)

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


def test_availability_is_watched_time_less_outages_and_freezes() -> None:
    recovery = RecoveryLog(clock=lambda: 100.0)
    recovery.outages_ms = [2500.0]
    entry = _Joined(Participant(1, 0, SUBSCRIBER, False, 0.0), SimpleNamespace(recovery=recovery), 0.0)
    sample: Any = Worker._sample_availability
    sample(entry, 0, 1.0)  # no video yet: not watched
    sample(entry, 30, 1.0)  # the first frames: watching starts now
    for video, elapsed in [(60, 1.0), (60, 1.0), (60, 2.0), (90, 1.0), (120, 5.0)]:
        sample(entry, video, elapsed)
    assert entry.watched_s == 10.0
    totals = RoomTotals()
    add: Any = Worker._add_recovery
    add(totals, entry, 500.0)  # 2.5 s of outage, 0.5 s frozen
    assert (totals.recovery.watched_s, totals.recovery.available_s) == (10.0, 7.0)
    assert totals.recovery.availability_percent == pytest.approx(70.0)
    recovery.lost_at = 96.0  # an outage still going at the end counts too
    add(totals, entry, 0.0)
    assert totals.recovery.available_s == pytest.approx(7.0 + 10.0 - 6.5)


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


# -- fault specs and what subscribers saw ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("relay-restart@10s", Fault("relay-restart", 10.0, 0.0, "relay-restart@10s")),
        ("relay-restart@1500ms", Fault("relay-restart", 1.5, 0.0, "relay-restart@1500ms")),
        ("relay-pause@10s+3s", Fault("relay-pause", 10.0, 3.0, "relay-pause@10s+3s")),
        (" relay-pause@8+500ms ", Fault("relay-pause", 8.0, 0.5, "relay-pause@8+500ms")),
    ],
)
def test_fault_specs(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("relay-explode@10s", "unknown fault 'relay-explode' (known: relay-restart, relay-pause)"),
        ("relay-restart", "expected KIND@TIME"),
        ("relay-restart@10h", "expected KIND@TIME"),
        ("relay-pause@10s", "a pause needs its length"),
        ("relay-restart@10s+2s", "a restart takes no length"),
        ("relay-restart@1.2.3s", "times are numbers of seconds"),
    ],
)
def test_bad_fault_specs_are_one_line(text: str, message: str) -> None:
    with pytest.raises(FaultError) as caught:
        parse_fault(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_faults_must_fit_the_run_and_its_target() -> None:
    late, early = parse_fault("relay-restart@12s"), parse_fault("relay-pause@4s+3s")
    assert check_faults([late, early], duration=20, target="relay") == [early, late]
    with pytest.raises(FaultError, match="this run's target is a Janus"):
        check_faults([late], duration=20, target="janus")
    with pytest.raises(FaultError, match=r"during the run \(0 < time < 10 s\)"):
        check_faults([late], duration=10, target="relay")
    with pytest.raises(FaultError, match="starts before relay-pause@4s\\+3s is over"):
        check_faults([early, parse_fault("relay-restart@6s")], duration=20, target="relay")


def test_each_fault_is_watched_until_the_next_one() -> None:
    faults = [parse_fault("relay-pause@5s+2s"), parse_fault("relay-restart@12s")]
    assert windows(faults, 20) == [(4.5, 11.5), (11.5, 19.5)]


def test_a_gap_watch_tells_lost_recovered_and_how_long() -> None:
    steady = GapWatch(0.0, 10)
    for i in range(1, 40):
        steady.sample(i * SAMPLE, 10 + i)
    assert steady.outcome(2.0) == (False, None)

    restarted = GapWatch(0.0, 10)
    restarted.sample(0.5, 20)
    restarted.sample(3.5, 20)  # nothing for three seconds
    assert restarted.in_gap(3.5) and restarted.outcome(3.5) == (True, None)
    assert not may_close([steady, restarted], 3.5, over_at=0.0)
    restarted.sample(3.7, 21)
    assert restarted.outcome(4.0) == (True, pytest.approx(3.2))
    assert may_close([restarted], 4.0, over_at=0.5) and not may_close([restarted], 3.0, over_at=0.5)


def test_fault_watches_merge_over_workers_into_the_report() -> None:
    faults = [parse_fault("relay-restart@8s")]
    parts = []
    for recoveries in ([2000.0, 3000.0], [2500.0]):
        totals = FaultTotals(watched=3, lost_media=3, recovered=len(recoveries))
        for ms in recoveries:
            totals.recovery_ms.record(ms)
        parts.append(WorkerFinal.from_json(WorkerFinal(len(parts), faults=(totals,)).to_json()))
    (fault,) = fault_reports(faults, parts)
    assert (fault.kind, fault.at_s, fault.watched, fault.lost_media, fault.recovered) == ("relay-restart", 8.0, 6, 6, 3)
    assert fault.recovery_ms is not None and fault.recovery_ms.count == 3
    assert fault.recovery_ms.max == pytest.approx(3000, rel=0.01)
    info = ScenarioInfo.from_json(Scenario().as_dict() | {"target": "relay", "workers": 2, "shard": {"index": 0}})
    report = build_report(
        scenario=info or ScenarioInfo(),
        room_names=["a"], finals=parts, snapshots=(), started_at="x", duration_s=20, faults=(fault,),
    ).to_json()  # fmt: skip
    assert LoadReport.from_json(report).faults == (fault,)
    assert report["faults"][0]["lost_media"] == 6 and "faults" not in _report().to_json()
    assert first_problem(report | {"verdict": "pass", "exit_status": 0}) is None


def test_a_fault_the_run_cannot_have_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--fault", "relay-melt@3s"], ["--fault", "relay-restart@3s", "--server", "http://10.0.0.9:1"]):
        assert main(["load", "--no-isolate", "--duration", "5", *flags]) == ExitStatus.USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--fault" in err, err


# -- impaired links: who gets which, and the per-profile rows ------------------------------------


def test_shares_take_exact_counts_per_role_spread_over_rooms() -> None:
    participants = plan(Scenario(rooms=4, publishers=1, subscribers=8, intruders=1))
    shares = parse_shares([{"share": 0.25, "down": "3g"}, {"share": 0.25, "both": "lossy"}])
    links = assign_links(participants, shares, up="wifi", seed=7)
    assert links == assign_links(participants, shares, up="wifi", seed=7)  # from the plan, not chance
    by_profile: dict[str, list[Participant]] = {}
    for p in participants:
        by_profile.setdefault(links[p.index].profile, []).append(p)
    assert set(by_profile) == {"down=3g", "up=lossy down=lossy", "up=wifi"}
    for name, count in [("down=3g", (1, 8, 1)), ("up=lossy down=lossy", (1, 8, 1)), ("up=wifi", (2, 16, 2))]:
        roles = [p.role for p in by_profile[name]]
        assert (roles.count(PUBLISHER), roles.count(SUBSCRIBER), roles.count(INTRUDER)) == count, name
    assert len({p.room for p in by_profile["down=3g"] if p.role == SUBSCRIBER}) >= 3  # spread, not room 0 only
    assert len({link.seed for link in links.values()}) == len(participants)
    assert links[participants[0].index].up in ("wifi", "lossy", None)


def test_without_a_run_link_only_the_shares_are_impaired() -> None:
    participants = plan(Scenario(rooms=1, publishers=1, subscribers=4))
    links = assign_links(participants, parse_shares([{"share": 0.5, "down": "lossy"}]))
    roles = sorted(p.role for p in participants if p.index in links)
    assert roles == [PUBLISHER, SUBSCRIBER, SUBSCRIBER]  # half of one publisher rounds up
    assert {link.profile for link in links.values()} == {"down=lossy"}
    assert assign_links(participants, ()) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"share": 0.25}], "item 1: give up, down or both"),
        ([{"share": 1.5, "down": "3g"}], "item 1: share must be a number in (0, 1]"),
        ([{"share": 0.6, "down": "3g"}, {"share": 0.6, "up": "3g"}], "add up to more than 1"),
        ([{"share": 0.2, "down": "5g"}], "item 1: down: unknown profile"),
        ([{"share": 0.2, "sideways": "3g"}], "unknown key 'sideways'"),
        ("3g", "expected a list of shares"),
    ],
)
def test_bad_shares_are_refused_before_the_run(value: object, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        build({"impair": value}, {})
    assert message in str(caught.value) and str(caught.value).startswith("setting impair: ")


def test_a_scenario_file_gives_shares_and_flags_give_everyone_a_link(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('subscribers = 4\nimpair-seed = 3\nimpair = [{share = 0.25, down = "3g"}]\n')
    scenario = build(load_file(path), {"impair_up": "wifi", "impair_down": None})
    assert scenario.impair == (ImpairShare(0.25, None, "3g"),)
    assert (scenario.impair_up, scenario.impair_down, scenario.impair_seed) == ("wifi", None, 3)
    assert scenario.as_dict()["impair"] == ({"share": 0.25, "up": None, "down": "3g"},)
    with pytest.raises(ScenarioError, match="setting impair-down: unknown setting"):
        build({}, {"impair_down": "speed=9"})


def _profile(dropped: int, offered: int, decrypted: int) -> ProfileTotals:
    totals = ProfileTotals(down=LinkTotals(offered, offered - dropped, dropped, 0, 0, 0.02 * (offered - dropped)))
    totals.totals.planned = totals.totals.joined = 2
    totals.totals.frames["decrypted"] = decrypted
    return totals


def test_profile_rows_merge_over_workers_in_the_run_order() -> None:
    first = WorkerFinal(0, profiles={"none": _profile(0, 0, 300), "down=3g": _profile(40, 1000, 250)})
    finals = [WorkerFinal.from_json(first.to_json()), WorkerFinal(1, profiles={"down=3g": _profile(60, 1000, 260)})]
    rows = profile_reports(finals, ["down=3g", "none"])
    assert [r.profile for r in rows] == ["down=3g", "none"]
    three_g = rows[0]
    assert three_g.participants is not None and three_g.participants.planned == 4
    assert three_g.metrics is not None and three_g.metrics.frames is not None
    assert three_g.metrics.frames.decrypted == 510
    assert three_g.impairment["down"] == {"offered": 2000, "dropped": 100, "dropped_percent": 5.0, "queue_dropped": 0,
                                          "delivered": 1900, "duplicated": 0, "mean_delay_ms": 20.0}  # fmt: skip
    info = ScenarioInfo.from_json(Scenario().as_dict() | {"target": "relay", "workers": 2, "shard": {"index": 0}})
    report = build_report(scenario=info or ScenarioInfo(), room_names=["a"], finals=finals, snapshots=(),
                          started_at="x", duration_s=10, profiles=rows).to_json()  # fmt: skip
    assert LoadReport.from_json(report).profiles == rows
    assert first_problem(report | {"verdict": "pass", "exit_status": 0}) is None


def test_the_summary_tells_recoveries_faults_and_links() -> None:
    assert load_rows(_report(WorkerFinal(0, {"a": _room(0, [], 10.0, 10.0)}))) == []  # a plain run: no rows
    fault = FaultTotals(watched=4, lost_media=4, recovered=3)
    for ms in (1500.0, 2000.0, 2500.0):
        fault.recovery_ms.record(ms)
    links = {"down=3g": _profile(50, 1000, 90)}
    final = WorkerFinal(0, {"a": _room(5, [1500.0], 20.0, 18.0)}, faults=(fault,), profiles=links)
    planned = fault_reports([parse_fault("relay-restart@8s")], [final])
    report = dataclasses.replace(
        _report(final),
        faults=(*planned, *external_faults([("janus-restart", 5.2, 0.5)])),
        profiles=profile_reports([final], ["down=3g"]),
    )
    rows, metrics = dict(load_rows(report)), report.metrics
    assert rows["recovery"].startswith("5 reconnect(s), time to recover p50 1500 ms")
    assert rows["recovery"].endswith("availability 90.0%")
    assert rows["fault relay-restart@8s"].startswith("4/4 subscribers lost media, 3 recovered: p50 2001 ms")
    assert rows["fault janus-restart"] == "at 5.2 s, away 0.5 s (not planned: see recovery)"
    assert metrics is not None
    missed = dataclasses.replace(report, metrics=dataclasses.replace(metrics, outage_frames_missed=204))
    assert dict(load_rows(missed))["recovery"].endswith("availability 90.0%, 204 video frame(s) missed during outages")
    assert "down: 50/1000 datagrams dropped (5.0%), mean delay 20 ms" in rows["link down=3g"]


def test_merged_shards_keep_the_link_profiles(tmp_path: Path) -> None:
    scenario = Scenario(rooms=2, subscribers=2, duration=5)
    reports = []
    for index in range(2):
        participants = plan_shard(plan(scenario), index, 2)
        run = LoadRun(scenario, participants, ["a", "b"])
        planned = ProfileTotals()
        planned.totals.planned = sum(p.legitimate for p in participants)
        links = {"down=3g": _profile(10 * (index + 1), 500, 100), "none": planned}
        run.take(read_message(WorkerFinal(0, {"a": _room(0, [], 5.0, 5.0)}, profiles=links).to_json()))
        info = ScenarioInfo.from_json(
            scenario.as_dict() | {"target": "janus", "workers": 1, "shard": {"index": index, "count": 2}, "run_id": "m"}
        )
        assert info is not None
        report = shard_report(run, info, index, started_at="x", duration_s=5, profiles=["down=3g", "none"])
        reports.append(str(tmp_path / f"s{index}.json"))
        Path(reports[-1]).write_text(json.dumps(judge(report, check_all(["joined >= 0"])).report.to_json()))
    assert main(["report", "merge", *reports, "--json", str(tmp_path / "all.json"), "--quiet"]) in (0, 1)
    merged = json.loads((tmp_path / "all.json").read_text())
    rows = {row["profile"]: row for row in merged["profiles"]}
    assert list(rows) == ["down=3g", "none"]
    assert rows["down=3g"]["impairment"]["down"]["dropped"] == 30 and rows["down=3g"]["participants"]["planned"] == 4
    assert first_problem(merged) is None
