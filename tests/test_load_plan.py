"""The pure half of `sealrtc load`: scenarios, plans, worker assignment, report aggregation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealrtc.load.aggregate import build_report, merge_intervals, saturation_reasons
from sealrtc.load.plan import CHURN_INDEX, INTRUDER, PUBLISHER, SUBSCRIBER, assign, churn_for, churn_plan, plan, shard
from sealrtc.load.scenario import Scenario, ScenarioError, build, load_file
from sealrtc.metrics import Histogram
from sealrtc.report.model import ScenarioInfo
from sealrtc.report.records import RoomTotals, WorkerFinal, WorkerSnapshot, pack

pytestmark = pytest.mark.unit


def test_flags_override_a_toml_scenario(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[scenario]\nrooms = 3\nsubscribers = 5\ndecode-every = 2\nno-e2ee = false\nramp = 2.5\n")
    scenario = build(load_file(path), {"subscribers": 7, "rooms": None})
    assert (scenario.rooms, scenario.subscribers, scenario.decode_every, scenario.ramp) == (3, 7, 2, 2.5)
    assert scenario.e2ee and scenario.planned == 3 * (1 + 7)


def test_a_yaml_scenario(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("rooms: 2\nintruders: 1\nroom_ids: [101, 102]\nassert: p95(latency_ms) < 300\n")
    scenario = build(load_file(path), {})
    assert scenario.intruders == 1 and scenario.room_ids == ("101", "102")
    assert scenario.assertions == ("p95(latency_ms) < 300",)


def test_a_scenario_file_carries_its_assertions(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('rooms = 2\nassert = ["p95(latency_ms) < 300", "intruder_decrypts == 0"]\n')
    scenario = build(load_file(path), {})
    assert scenario.assertions == ("p95(latency_ms) < 300", "intruder_decrypts == 0")
    assert scenario.as_dict()["assertions"] == ["p95(latency_ms) < 300", "intruder_decrypts == 0"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rooms = 0", "rooms must be >= 1"),
        ("romos = 2", "unknown setting 'romos' \\(did you mean rooms\\? known: assert, "),
        ("rooms = 'two'", "setting rooms has a bad value"),
        ("duration = nan", "duration must be a positive"),
        ("rooms = [", "not valid TOML"),
        ("no-e2ee = true\nintruders = 1", "intruders need E2EE"),
        ("rooms = 2\nroom_ids = [5]", "as many room ids as --rooms"),
        ("assert = ['joined == planned', 3]", r"bad.toml: setting assert: item 2 \(3\) is not an expression"),
        ("assert = []", "setting assert must list at least one expression"),
        ("no-e2ee = 'false'", "setting 'no-e2ee' must be true or false"),
        ("rooms = 'two'", "bad.toml: setting rooms has a bad value"),
        ("assertions = ['x > 1']", "unknown setting 'assertions'.*known: assert, "),
    ],
)
def test_bad_scenarios_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message) as info:
        build(load_file(path), {})
    assert "\n" not in str(info.value)


def test_plan_order_publishers_first_ramp_and_decoders() -> None:
    scenario = Scenario(rooms=2, publishers=1, subscribers=4, intruders=1, ramp=4, decode_every=2)
    participants = plan(scenario)
    assert [p.role for p in participants[:2]] == [PUBLISHER, PUBLISHER]
    assert [p.join_at for p in participants[:3]] == [0, 0.25, 0.5]
    assert sum(p.role == SUBSCRIBER for p in participants) == 8
    assert sum(p.role == INTRUDER for p in participants) == 2
    assert sum(p.decode for p in participants) == 4  # one subscriber in two
    assert not any(p.decode for p in participants if p.role != SUBSCRIBER)
    rooms = [p.room for p in participants[2:6]]
    assert rooms == [0, 1, 0, 1]  # rooms fill evenly under the ramp
    intruder_positions = [i for i, p in enumerate(participants) if p.role == INTRUDER and p.room == 0]
    assert intruder_positions[0] < len(participants) - 2  # not all left to the end of the ramp


@given(
    st.integers(1, 12), st.integers(1, 3), st.integers(0, 20), st.integers(0, 3), st.integers(1, 8)
)  # fmt: skip
def test_assign_places_everyone_exactly_once_and_evenly(
    rooms: int, publishers: int, subscribers: int, intruders: int, workers: int
) -> None:
    participants = plan(Scenario(rooms=rooms, publishers=publishers, subscribers=subscribers, intruders=intruders))
    parts = assign(participants, workers)
    placed = sorted(p.index for part in parts for p in part)
    assert placed == list(range(len(participants)))
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= max(1, 0.1 * len(participants) / workers)
    for part in parts:
        assert [p.index for p in part] == sorted(p.index for p in part)
    assert assign(participants, workers) == parts  # deterministic
    assert shard(participants, 0, workers) == parts[0]


def test_whole_rooms_stay_together_when_even() -> None:
    parts = assign(plan(Scenario(rooms=4, subscribers=5)), 2)
    for part in parts:
        rooms = {p.room for p in part}
        assert len(rooms) == 2 and all(sum(p.room == r for p in part) == 6 for r in rooms)


def test_churn_is_planned_oldest_first_rooms_in_turn() -> None:
    scenario = Scenario(rooms=2, subscribers=2, intruders=1, ramp=10, duration=10, churn=2, decode_every=2)
    participants = plan(scenario)
    events = churn_plan(scenario, participants)
    ramp_end = max(p.join_at for p in participants)
    assert [e.at for e in events] == [round(ramp_end + 1 + n / 2, 6) for n in range(len(events))]
    assert events[-1].at < 10 - 2 <= events[-1].at + 0.5  # none in the last window
    subscribers = [p for p in participants if p.role == SUBSCRIBER]
    assert [e.leaves for e in events[:4]] == [p.index for p in subscribers]  # longest in the call first
    assert events[4].leaves == events[0].joiner.index  # then the first joiner
    by_index = {p.index: p for p in participants} | {e.joiner.index: e.joiner for e in events}
    for n, e in enumerate(events):
        leaver = by_index[e.leaves]
        assert e.joiner == type(e.joiner)(CHURN_INDEX + n, leaver.room, SUBSCRIBER, leaver.decode, e.at)
        assert leaver.role == SUBSCRIBER  # never a publisher or an intruder
    assert [e.joiner.room for e in events[:4]] == [0, 1, 0, 1]
    assert churn_plan(scenario, plan(scenario)) == events  # every worker and shard computes the same
    assert churn_plan(Scenario(subscribers=2), participants) == []


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.floats(0.5, 4.0), st.integers(1, 4))
def test_workers_and_shards_partition_the_churn(
    rooms: int, subscribers: int, workers: int, churn: float, shards: int
) -> None:
    scenario = Scenario(rooms=rooms, subscribers=subscribers, duration=15, ramp=20, churn=churn)
    participants = plan(scenario)
    events = churn_plan(scenario, participants)
    assert events
    for parts in (assign(participants, workers), [shard(participants, i, shards) for i in range(shards)]):
        carried = [churn_for(events, part) for part in parts]
        assert sorted(e.at for mine in carried for e in mine) == [e.at for e in events]  # each exactly once
        for part, mine in zip(parts, carried, strict=True):
            present = {p.index for p in part}
            for e in mine:  # a worker only removes its own participants (or its own earlier joiners)
                assert e.leaves in present
                present.add(e.joiner.index)
    for half in (shard(participants, i, 2) for i in range(2)):  # a shard's workers split its churn
        mine = churn_for(events, half)
        assert sorted(e.at for part in assign(half, workers) for e in churn_for(mine, part)) == [e.at for e in mine]


def histogram(*values: float) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def room(latencies: list[float], **counts: int) -> RoomTotals:
    totals = RoomTotals(planned=counts.get("planned", 2), joined=counts.get("joined", 2))
    totals.histograms["latency_ms"] = histogram(*latencies)
    totals.frames["decrypted"] = len(latencies)
    totals.intruder_failures["unknown_key"] = counts.get("refused", 0)
    return totals


def test_report_merges_workers_exactly() -> None:
    a_values = [float(v) for v in range(1, 101)]
    b_values = [float(v) for v in range(500, 520)]
    finals = [
        {"worker": 0, "rooms": {"r1": room(a_values).to_wire()}, "generator": {"cpu_percent": 40.0,
                                                                               "loop_lag": pack(histogram(1, 2))}},
        {"worker": 1, "rooms": {"r1": room(b_values, refused=7).to_wire(), "r2": room([], joined=1).to_wire()},
         "generator": {"cpu_percent": 97.0, "loop_lag": pack(histogram(3))}},
    ]  # fmt: skip
    report = build_report(
        scenario=ScenarioInfo(rooms=2), room_names=["r1", "r2"], finals=[WorkerFinal.from_json(f) for f in finals],
        snapshots=[], started_at="x", duration_s=3,
    ).to_json()  # fmt: skip
    union = histogram(*a_values, *b_values)
    assert report["metrics"]["latency_ms"] == union.summary()
    assert report["participants"] == {"planned": 6, "joined": 5, "failed": 0, "intruders": 0}
    assert [r["room"] for r in report["rooms"]] == ["r1", "r2"]
    assert report["rooms"][0]["metrics"]["frames"]["decrypted"] == 120
    assert report["metrics"]["intruder_failures"]["unknown_key"] == 7
    assert report["generator"]["saturated"] is True
    assert "worker 1 used 97% of a core" in report["generator"]["saturation_reasons"][0]
    assert Histogram.decode(report["histograms"]["latency_ms"]).count == 120


def test_intervals_sum_deltas_and_merge_percentiles() -> None:
    snaps = [
        {"t": 1, "worker": 0, "joined": 2, "video_tracks": 2, "video_frames": 60, "frames_decrypted": 160,
         "latency": pack(histogram(10, 10, 10)), "cpu_percent": 20.0, "lost": 1},
        {"t": 1, "worker": 1, "joined": 3, "video_tracks": 1, "video_frames": 30, "frames_decrypted": 80,
         "latency": pack(histogram(50)), "cpu_percent": 40.0},
        {"t": 2, "worker": 0, "joined": 2, "video_tracks": 2, "video_frames": 58, "latency": None, "cpu_percent": 10.0},
    ]  # fmt: skip
    rows = [row.to_json() for row in merge_intervals(map(WorkerSnapshot.from_json, snaps))]
    assert [r["t"] for r in rows] == [1, 2]
    assert rows[0]["joined"] == 5 and rows[0]["frames_decrypted"] == 240 and rows[0]["lost"] == 1
    assert rows[0]["fps"] == 30 and rows[0]["cpu_percent"] == 30
    assert rows[0]["latency_p50"] == pytest.approx(10, rel=0.002)
    assert rows[0]["latency_p95"] == pytest.approx(50, rel=0.002)
    assert rows[1]["latency_p50"] is None and rows[1]["fps"] == 29


def test_a_worker_with_two_snapshots_in_one_tick_is_counted_once() -> None:
    """A late worker loop can put two snapshots in one tick: deltas add, levels do not."""
    snaps = [
        {"t": 6, "worker": 0, "joined": 3, "intruders": 1, "frames_decrypted": 50, "cpu_percent": 90.0},
        {"t": 6, "worker": 1, "joined": 3, "intruders": 1, "frames_decrypted": 40, "cpu_percent": 50.0},
        {"t": 6, "worker": 0, "joined": 3, "intruders": 1, "frames_decrypted": 5, "cpu_percent": 70.0},
    ]
    (row,) = [row.to_json() for row in merge_intervals(map(WorkerSnapshot.from_json, snaps))]
    assert row["joined"] == 6 and row["intruders"] == 2 and row["workers"] == 2
    assert row["frames_decrypted"] == 95 and row["cpu_percent"] == 60


def test_saturation_reasons() -> None:
    idle = histogram(*[1.0] * 100)
    assert saturation_reasons(0, 50.0, idle, [20.0, 95.0, 30.0, 40.0, 50.0]) == []
    spiky = histogram(*[1.0] * 90, *[150.0] * 10)
    assert "lagged 150 ms at p99" in saturation_reasons(3, 50.0, spiky)[0]
    never_idle = histogram(*[30.0] * 100)
    assert "at the median" in saturation_reasons(1, 50.0, never_idle)[0]
    busy = saturation_reasons(2, 70.0, idle, [30.0, 100.0, 104.0, 98.0, 110.0])
    assert busy == ["worker 2 used >= 90% of a core in 4 of its 5 seconds"]


def test_exporter_turns_interval_histograms_into_cumulative_buckets() -> None:
    from prometheus_client.registry import CollectorRegistry

    from sealrtc.load.exporter import LoadMetrics

    metrics = LoadMetrics("3")
    room = {"joined": 2, "failed": 0, "intruders": 1, "joins": [120.0], "frames_decrypted": 90, "lost": 1,
            "intruder_decrypts": 0, "decrypt_failures": {"unknown_key": 0},
            "latency": pack(histogram(4, 40, 400))}  # fmt: skip
    metrics.take(WorkerSnapshot.from_json({"worker": 0, "cpu_percent": 55.0, "loop_lag": pack(histogram(2)),
                                           "rooms": {"r1": room}}))  # fmt: skip
    metrics.take(WorkerSnapshot.from_json({"worker": 0, "cpu_percent": 60.0, "rooms": {"r1": room | {"joins": []}}}))
    registry = CollectorRegistry()
    registry.register(metrics)
    get = registry.get_sample_value
    labels = {"shard": "3", "room": "r1"}
    assert get("sealrtc_load_participants", labels | {"state": "joined"}) == 2
    assert get("sealrtc_load_frames_total", labels | {"kind": "decrypted"}) == 180
    assert get("sealrtc_load_latency_seconds_bucket", labels | {"le": "0.005"}) == 2
    assert get("sealrtc_load_latency_seconds_bucket", labels | {"le": "0.05"}) == 4
    assert get("sealrtc_load_latency_seconds_bucket", labels | {"le": "+Inf"}) == 6
    assert get("sealrtc_load_latency_seconds_count", labels) == 6
    assert get("sealrtc_load_join_seconds_count", labels) == 1
    assert get("sealrtc_load_generator_cpu_percent", {"shard": "3", "worker": "0"}) == 60


def test_auto_workers_never_exceed_the_cores_this_process_may_use() -> None:
    import os

    from sealrtc.load.runner import available_cpus, worker_count

    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    assert worker_count("auto") == available_cpus() and worker_count("3") == 3
