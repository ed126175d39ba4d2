"""The typed load report: one builder (a merge of shards equals one process's report of the same
workers, missing workers included), the JSON round trip, the shipped schema, the judge, the live
view's running merge and the displays. Pure: no sockets, no processes."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from sealrtc.cli.common import ExitStatus
from sealrtc.cli.display import LineDisplay, LiveView, NullDisplay, choose_display
from sealrtc.cli.main import main
from sealrtc.load.aggregate import LiveTotals, build_report, merge_intervals, relabel
from sealrtc.load.plan import INTRUDER, PUBLISHER, Participant, assign, plan, shard
from sealrtc.load.runner import LoadRun, planned_per_room, shard_report
from sealrtc.load.scenario import Scenario
from sealrtc.metrics import Histogram
from sealrtc.report import check_all, first_problem, judge
from sealrtc.report.judge import Verdict
from sealrtc.report.model import LoadReport, ScenarioInfo
from sealrtc.report.records import GeneratorFinal, RoomTotals, WorkerFinal, WorkerSnapshot, pack, read_message

from .report_fixture import sample_report

pytestmark = pytest.mark.unit

SCENARIO = Scenario(rooms=3, subscribers=3, intruders=1, duration=5)
NAMES = ["room-a", "room-b", "room-c"]
DEFAULTS = ("joined == planned", "decrypt_failures == 0", "intruder_decrypts == 0")


def _histogram(rng: random.Random, n: int, low: float, high: float) -> Histogram:
    h = Histogram()
    for _ in range(n):
        h.record(rng.uniform(low, high))
    return h


def _final(worker: int, part: list[Participant], rng: random.Random) -> WorkerFinal:
    """What a worker with these participants could have measured (one of them failed to join)."""
    rooms: dict[str, RoomTotals] = {}
    for i, p in enumerate(part):
        totals = rooms.setdefault(NAMES[p.room], RoomTotals())
        totals.planned += p.legitimate
        if p.role == INTRUDER:
            totals.intruders += 1
            totals.intruder_failures.add({"unknown_key": rng.randint(50, 90)})
        elif i == 1:
            totals.failed += 1
        else:
            totals.joined += 1
            totals.histograms["join_ms"].record(rng.uniform(100, 400))
            if p.role == PUBLISHER:
                totals.frames["sent"] += rng.randint(100, 150)
                continue
            received = rng.randint(100, 150)
            totals.frames["received"] += received
            totals.frames["decrypted"] += received - 1
            totals.frames["lost"] += rng.randint(0, 3)
            totals.decrypt_failures.add({"replayed": 1})
            totals.histograms["latency_ms"].merge(_histogram(rng, received - 1, 5, 80))
            totals.histograms["first_frame_ms"].record(rng.uniform(200, 600))
            totals.freezes_count += 1
            totals.freezes_ms += 250.5
    lag = _histogram(rng, 40, 0.1, 3)
    generator = GeneratorFinal(rng.uniform(20, 60), (30.0, 40.0), pack(lag), "uvloop")
    return WorkerFinal(worker, rooms, generator, ())


def _snapshots(worker: int, rng: random.Random) -> list[WorkerSnapshot]:
    return [
        WorkerSnapshot(
            worker,
            float(t),
            joined=t,
            video_tracks=2,
            frames_decrypted=rng.randint(50, 60),
            video_frames=60,
            lost=t % 2,
            cpu_percent=rng.uniform(20, 40),
            latency=pack(_histogram(rng, 30, 5, 60)),
            loop_lag=pack(_histogram(rng, 10, 0.1, 2)),
        )
        for t in range(1, 6)
    ]


def _shard_run(index: int, lost_worker: int | None) -> tuple[LoadRun, list[Participant]]:
    """Shard ``index`` of 2 run by 2 workers, ``lost_worker`` never reporting."""
    rng = random.Random(index)
    participants = shard(plan(SCENARIO), index, 2)
    run = LoadRun(SCENARIO, participants, NAMES)
    for worker, part in enumerate(assign(participants, 2)):
        final, snapshots = _final(worker, part, rng), _snapshots(worker, rng)
        if worker == lost_worker:
            continue  # it measured, but its final never arrived
        for message in (*snapshots, final):  # through the queue's form
            run.take(read_message(message.to_json()))
    return run, participants


def _info(index: int | None) -> ScenarioInfo:
    data = SCENARIO.as_dict() | {"target": "whip http://x", "workers": 2, "shard": {"index": index, "count": 2}}
    info = ScenarioInfo.from_json(data | {"run_id": "equal"})
    assert info is not None
    return info


def _judged(report: LoadReport) -> LoadReport:
    return judge(report, (), default_checks=check_all(DEFAULTS)).report


def _write(path: Path, report: LoadReport) -> Path:
    path.write_text(json.dumps(report.to_json()), encoding="utf-8")
    return path


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("participants", "metrics", "rooms", "intervals", "histograms", "histogram_max_ms")
    return {k: report[k] for k in keys} | {
        "generator": {k: report["generator"][k] for k in ("cpu_percent", "loop_lag_ms")}
    }


@pytest.mark.parametrize("lost_worker", [None, 1])
def test_merged_shards_equal_one_process_room_by_room(tmp_path: Path, lost_worker: int | None) -> None:
    shards = [_shard_run(0, None), _shard_run(1, lost_worker)]
    files = []
    for index, (run, _) in enumerate(shards):
        report = _judged(shard_report(run, _info(index), index, started_at="2026-12-07T13:00:00Z", duration_s=5))
        assert first_problem(report.to_json()) is None
        files.append(str(_write(tmp_path / f"s{index}.json", report)))
    people = tmp_path / "people.csv"
    status = main(["report", "merge", *files, "--json", str(tmp_path / "all.json"), "--csv-participants", str(people),
                   "--quiet"])  # fmt: skip
    merged = json.loads((tmp_path / "all.json").read_text())
    assert first_problem(merged) is None
    rows = people.read_text().splitlines()
    assert rows[0].startswith("id,") and len(rows) == 1 + len(merged["participant_rows"])

    # one process, the same workers (labelled as in the shards' raw sections), the same plan
    finals, snapshots = [], []
    for index, (run, _) in enumerate(shards):
        finals += [f.relabelled(f"{index}.{f.worker}") for _, f in sorted(run.finals.items())]
        snapshots += [relabel(s, f"{index}.{s.worker}") for s in run.snapshots]
    whole = build_report(
        scenario=_info(None), room_names=NAMES, finals=finals, snapshots=snapshots,
        planned_per_room=planned_per_room(plan(SCENARIO), NAMES), started_at="x", duration_s=5,
    ).to_json()  # fmt: skip
    assert _comparable(merged) == _comparable(whole)

    planned = SCENARIO.rooms * (SCENARIO.publishers + SCENARIO.subscribers)
    rooms = [r["participants"] for r in merged["rooms"]]
    for key in ("planned", "joined", "failed", "intruders"):  # the rooms add up to the total
        assert sum(r[key] for r in rooms) == merged["participants"][key]
    assert merged["participants"]["planned"] == planned
    parts = [part for run, _ in shards for part in assign(run.planned, 2)]
    failed_joins = sum(len(part) > 1 and part[1].legitimate for part in parts)  # see _final
    assert status == ExitStatus.FAILURE and failed_joins > 0  # joined < planned
    if lost_worker is None:
        assert merged["participants"]["failed"] == failed_joins
    else:
        lost_part = assign(shards[1][0].planned, 2)[lost_worker]
        lost = [p for p in lost_part if p.legitimate]
        expected = failed_joins - (len(lost_part) > 1 and lost_part[1].legitimate) + len(lost)
        assert merged["participants"]["failed"] == expected > failed_joins
        for name in {NAMES[p.room] for p in lost}:  # the per-room rows carry the missing worker
            room = next(r for r in merged["rooms"] if r["room"] == name)["participants"]
            assert room["planned"] == room["joined"] + room["failed"]
    assert merged["verdict"] == "fail" and merged["exit_status"] == 1


def test_loss_percent_and_json_round_trip() -> None:
    data = sample_report()
    report = LoadReport.from_json(data)
    assert report.metrics is not None and report.metrics.frames is not None
    frames = report.metrics.frames
    assert report.metrics.loss_percent == pytest.approx(100 * 9 / (frames.decrypted + 9))  # type: ignore[operator]
    again = LoadReport.from_json(report.to_json())
    assert again == report
    for key in ("participants", "intervals", "histograms", "verdict", "exit_status"):
        assert report.to_json()[key] == data[key]
    assert report.to_json()["rooms"][2]["metrics"]["frames"] == data["rooms"][2]["metrics"]["frames"]


def test_schema_accepts_the_fixture_and_names_the_first_problem() -> None:
    assert first_problem(sample_report()) is None
    wrong = sample_report()
    wrong["participants"]["joined"] = "15"
    assert first_problem(wrong) == "participants.joined: '15' is not of type 'integer'"
    missing = sample_report()
    del missing["metrics"]["frames"]
    problem = first_problem(missing)
    assert problem is not None and problem.startswith("metrics:") and "'frames' is a required property" in problem
    bad_row = sample_report()
    bad_row["intervals"][3]["fps"] = "fast"
    assert first_problem(bad_row) == "intervals[3].fps: 'fast' is not of type 'number', 'null'"
    assert first_problem([]) == "the report: [] is not of type 'object'"


def test_merge_refuses_an_invalid_report_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = sample_report()
    bad["rooms"][1]["participants"]["failed"] = None
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["report", "merge", str(path), "--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sealrtc report: error: {path} is not a valid sealrtc load report: "
        "rooms[1].participants.failed: None is not of type 'integer'"
    )
    assert not (tmp_path / "out.json").exists()


def test_judge_is_pure_and_orders_its_rules() -> None:
    report = LoadReport.from_json(sample_report())
    failing = check_all(["p99(latency_ms) < 50", "joined == planned"])
    judged = judge(report, failing)
    assert judged.verdict is Verdict.FAIL and judged.exit_status == 1 and judged.failed == 1
    assert [a.ok for a in judged.report.assertions] == [False, True]
    assert report.verdict == "fail" and len(report.assertions) == 5  # the input is unchanged
    assert judge(report, (), default_checks=check_all(["joined == planned"])).verdict is Verdict.PASS
    generator = report.generator
    assert generator is not None
    saturated = LoadReport.from_json(report.to_json() | {"generator": generator.to_json() | {"saturated": True}})
    assert judge(saturated, failing).verdict is Verdict.SATURATED
    assert judge(saturated, failing, interrupted=True).verdict is Verdict.INTERRUPTED
    incomplete = LoadReport.from_json(report.to_json() | {"missing_shards": [1]})
    assert judge(incomplete, (), default_checks=check_all(["joined == planned"])).verdict is Verdict.FAIL
    codes = {v: v.exit_status for v in Verdict}
    assert codes == {Verdict.PASS: ExitStatus.OK, Verdict.FAIL: ExitStatus.FAILURE,
                     Verdict.SATURATED: ExitStatus.SATURATED, Verdict.INTERRUPTED: ExitStatus.INTERRUPTED}  # fmt: skip


def test_live_totals_are_a_running_merge() -> None:
    rng = random.Random(3)
    snapshots = [s for worker in range(3) for s in _snapshots(worker, rng)]
    live = LiveTotals()
    for snap in snapshots:
        live.add(snap)
    (everything,) = merge_intervals(WorkerSnapshot.from_json(s.to_json() | {"t": 0}) for s in snapshots)
    whole = live.whole_run()
    assert whole is not None
    for key in ("latency_p50", "latency_p95", "lost", "decrypt_failures", "frames_decrypted", "loop_lag_ms"):
        assert whole.get(key) == everything.get(key), key
    last = live.last_second()
    assert last is not None and last.get("joined") == 15 and last.get("workers") == 3  # each worker's t = 5


def test_displays_are_chosen_once_and_read_only_their_view() -> None:
    out = io.StringIO()
    view = LiveView(lambda: (("", "n"), [("row", 1)]), lambda: "joined 3/3")
    assert isinstance(choose_display("load", quiet=True, view=view, stream=out), NullDisplay)
    line = choose_display("load", view=view, stream=out)
    assert isinstance(line, LineDisplay) and not isinstance(line, NullDisplay)
    with line:
        for second in range(11):
            line.tick(float(second))
    line.summary("title", ("", "value"), [("a", 1.25)], "every assertion holds", True, status=0)
    assert out.getvalue().splitlines() == [
        "[  5.0 s] joined 3/3",
        "[ 10.0 s] joined 3/3",
        "title",
        "  a: 1.2",
        "sealrtc load: OK: every assertion holds",
    ]
    quiet = io.StringIO()
    null = choose_display("load", quiet=True, view=view, stream=quiet)
    null.tick(10.0)
    null.say("a notice")
    null.summary("title", ("", "value"), [("a", 1)], "the generator saturated", False, status=4)
    assert quiet.getvalue().splitlines() == [
        "sealrtc load: a notice",
        "sealrtc load: SATURATED: the generator saturated",
    ]


def _shard_with_ids(tmp_path: Path, ids: tuple[str, str]) -> Path:
    """A valid shard report whose two workers each measured one participant with these ids."""
    import dataclasses

    from sealrtc.report.measures import ParticipantRow

    rng = random.Random(0)
    participants = shard(plan(SCENARIO), 0, 2)
    run = LoadRun(SCENARIO, participants, NAMES)
    for worker, part in enumerate(assign(participants, 2)):
        row = ParticipantRow(ids[worker], "subscriber", "+room", worker, latency_video_p50=-3.5)
        final = dataclasses.replace(_final(worker, part, rng), participants=(row,))
        for message in (*_snapshots(worker, rng), final):
            run.take(read_message(message.to_json()))
    report = _judged(shard_report(run, _info(0), 0, started_at="2026-12-07T13:00:00Z", duration_s=5))
    return _write(tmp_path / "shard.json", report)


def test_merge_writes_a_shards_text_inert_in_the_participant_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    path = _shard_with_ids(tmp_path, ('=HYPERLINK("http://evil.example","x")', "@sub"))
    main(["report", "merge", str(path), "--csv-participants", "-", "--quiet"])  # 1: half the plan joined
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert set(rows) == {'\'=HYPERLINK("http://evil.example","x")', "'@sub"}  # a spreadsheet shows them
    assert {r["room"] for r in rows.values()} == {"'+room"}
    assert {r["latency_video_p50"] for r in rows.values()} == {"-3.5"}  # a number, not text


def test_merge_refuses_a_participant_id_with_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _shard_with_ids(tmp_path, ("\x1b[31mred", "ok"))
    assert main(["report", "merge", str(path), "--csv-participants", "-", "--quiet"]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and "\x1b" not in captured.err and "participant_rows[0].id" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["--json", "-", "--csv", "-"], "--json - and --csv - cannot both go to stdout: give one of them a file"),
        (
            ["--json", "same.out", "--csv", "./same.out"],
            "--json and --csv name the same file (./same.out): one would overwrite the other; give each its own file",
        ),
        (
            ["--html", "-", "--csv-participants", "-", "--csv", "-"],
            "--csv -, --html - and --csv-participants - cannot all go to stdout: give all but one of them a file",
        ),
    ],
)
@pytest.mark.parametrize("command", ["load", "merge"])
def test_two_reports_to_stdout_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], outputs: list[str], message: str, command: str
) -> None:
    shard_file = _shard_with_ids(tmp_path, ("a", "b"))
    argv = ["load", "--server", "http://127.0.0.1:9"] if command == "load" else ["report", "merge", str(shard_file)]
    assert main([*argv, *outputs, "--quiet"]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().endswith(f"error: {message}")
    assert len(captured.err.strip().splitlines()) == 1
