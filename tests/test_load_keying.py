"""The load runner's key lifecycle, pure parts: the rotation sequence, the schedule, the gap meter,
the scenario's settings, the report's ``metrics.keys`` (wire, merge, JSON) and its assertion names."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sealrtc.epochs import EpochKeys, epoch_key_at
from sealrtc.failures import FailureCounts
from sealrtc.load import worker as worker_module
from sealrtc.load.aggregate import key_changes
from sealrtc.load.keying import (
    JOIN_LEAD,
    EpochStep,
    GapMeter,
    NearChange,
    change_times,
    epoch_at,
    epoch_schedule,
    forward,
    joiner_epoch,
    rotation_secret,
)
from sealrtc.load.plan import SUBSCRIBER, Participant, churn_plan, plan
from sealrtc.load.scenario import Scenario, ScenarioError, build
from sealrtc.load.worker import Worker, WorkerConfig, _Joined
from sealrtc.report import evaluate, parse
from sealrtc.report.measures import KeyChanges
from sealrtc.report.records import KeyTotals, RoomTotals
from sealrtc.rtc.stats import ReceiveTrackStats

from .report_fixture import sample_report
from .waiting import eventually

pytestmark = pytest.mark.unit


def test_rotation_secrets_follow_the_documented_rule() -> None:
    assert rotation_secret("s", 0) == "s"
    mac = hmac.new(b"s", b"sealrtc/v1/rotation/2", hashlib.sha256).digest()
    assert rotation_secret("s", 2) == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert len({rotation_secret("s", n) for n in range(50)}) == 50
    with pytest.raises(ValueError):
        rotation_secret("s", -1)


def test_change_times_stop_before_the_end() -> None:
    assert change_times(20, 3) == [3, 6, 9, 12, 15, 18]
    assert change_times(6, 3) == [3]
    assert change_times(20, 0) == []


def test_the_gap_meter_finds_the_longest_stretch_without_progress() -> None:
    meter = GapMeter(10.0, 5)
    meter.sample(10.02, 6)
    meter.sample(10.04, 6)
    meter.sample(10.30, 7)  # 0.28 s without a frame
    meter.sample(10.32, 8)
    assert meter.finish(10.40) == pytest.approx(0.28)
    open_gap = GapMeter(0.0, 1)
    assert open_gap.finish(2.0) == 2.0  # nothing ever came: the whole window


def test_near_change_adds_counts_and_keeps_the_longest_gap() -> None:
    a = NearChange(FailureCounts({"unknown_key": 2}), 1, 0, 0.3)
    a.add(NearChange(FailureCounts({"unknown_key": 1}), 2, 1, 0.1))
    assert (a.failures["unknown_key"], a.lost, a.freezes, a.longest_gap_ms) == (3, 3, 1, 0.3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"keying": 3}, "keying must be 1 or 2"),
        ({"rotate_every": -1}, "rotate-every"),
        ({"keying": 2, "rotate_every": 3}, "use ratchet-every"),
        ({"ratchet_every": 2}, "ratchet-every needs keying 2"),
        ({"e2ee": False, "keying": 2}, "key changes need E2EE"),
        ({"subscribers": 0, "churn": 1}, "churn needs subscribers"),
    ],
)
def test_bad_key_lifecycle_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        build(settings, {})


def test_key_lifecycle_settings_from_a_file_and_flags() -> None:
    scenario = build({"keying": 2, "ratchet_every": 2}, {"churn": 1.5, "rotate_every": None})
    assert (scenario.keying, scenario.ratchet_every, scenario.churn, scenario.rotate_every) == (2, 2.0, 1.5, 0.0)
    assert Scenario().keying == 1 and not Scenario().churn


def test_joins_advance_their_room_debounced_and_the_timer_every_room() -> None:
    joins = [(3.0, 0), (3.4, 0), (4.0, 0), (4.9, 0), (3.2, 1)]  # (join_at, room)
    steps = epoch_schedule(2, 10, 5, joins)
    by_room = {r: [(s.at, s.epoch, s.join) for s in steps if s.room == r] for r in (0, 1)}
    lead = JOIN_LEAD
    # room 0: 3.4 is within a second of 3.0's step, 4.0 is not, 4.9 is within a second of 4.0's
    assert by_room[0] == [(3 - lead, 1, True), (4 - lead, 2, True), (5, 3, False)]
    assert by_room[1] == [(3.2 - lead, 1, True), (5, 2, False)]
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert epoch_at(steps, 0, 0) == 0 and epoch_at(steps, 0, 3 - lead) == 1 and epoch_at(steps, 0, 9) == 3
    assert max(s.epoch for s in epoch_schedule(2, 10, 5, joins, start=7)) == 10  # a run from an epoch file
    assert epoch_schedule(1, 10, 0, [(t / 2, 0) for t in range(6, 16)]) == epoch_schedule(
        1, 10, 0, [(t / 2, 0) for t in reversed(range(6, 16))]
    )  # the same joins in any order: the same steps


def test_a_joiner_gets_the_epoch_its_join_moved_to() -> None:
    scenario = Scenario(subscribers=3, ramp=10, duration=12, churn=1, keying=2, ratchet_every=4)
    churn = churn_plan(scenario, plan(scenario))
    steps = epoch_schedule(1, 12, 4, ((c.at, c.joiner.room) for c in churn))
    joined = [s for s in steps if s.join]
    assert len(joined) == len(churn) >= 8  # one second apart: every join steps
    for c in churn:
        mine = joiner_epoch(steps, 0, c.at)
        # the epoch its own join made (publishers are there before it connects) ...
        assert mine == next(s.epoch for s in joined if abs(s.at - (c.at - JOIN_LEAD)) < 1e-6)
        # ... newer than anything sent before it came: it cannot read the past
        assert mine > epoch_at(steps, 0, c.at - JOIN_LEAD - 1e-3)


def test_forward_ratchets_an_epoch_key_and_never_back() -> None:
    start = epoch_key_at("s", 2, context=b"room")
    later = forward(start, 5, 6)
    assert later.epoch == 5 and later.material == epoch_key_at("s", 5, context=b"room").material
    assert forward(start, 2, 6).material == start.material
    with pytest.raises(ValueError, match="only goes forward"):
        forward(later, 4, 6)
    joiner = EpochKeys(later, suite=6)
    assert joiner.floor == 5 and joiner.candidates_for(joiner.new_sender_kid() & ~0xFF00 | (4 << 8)) == []


def test_key_totals_travel_and_merge() -> None:
    a = KeyTotals(
        rotations=3, epochs=0, near_failures=FailureCounts({"unknown_key": 1}), near_lost=2, longest_gap_ms=80
    )
    a.churn_joins = 2
    a.churn_join_ms.record(40.0)
    a.churn_first_frame_ms.record(70.0)
    b = KeyTotals.from_wire(a.to_wire())
    assert b.to_wire() == a.to_wire()
    b.add(KeyTotals(rotations=3, epochs=5, near_freezes=1, longest_gap_ms=120, churn_joins=1))
    assert (b.rotations, b.epochs, b.near_freezes, b.longest_gap_ms, b.churn_joins) == (3, 5, 1, 120, 3)
    room = RoomTotals(keys=b)
    again = RoomTotals.from_wire(room.to_wire()).keys
    assert again.to_wire() == b.to_wire()
    assert KeyTotals.from_wire(None).to_wire() == KeyTotals().to_wire()  # older reports have none
    section = key_changes(room)
    assert (section.rotations, section.epochs, section.joins, section.longest_gap_ms) == (3, 5, 3, 120)
    assert section.join_ms is not None and section.join_ms.count == 1
    assert KeyChanges.from_json(section.to_json()) == section


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("rotations == 3", True),
        ("epochs == 0", True),
        ("rotation_failures == 0", True),
        ("rotation_freezes == 0 and rotation_lost == 0", True),
        ("rotation_gap_ms < 500", True),
        ("rotation_gap_ms < 50", False),
        ("churn_joins == 0", True),
    ],
)
def test_key_lifecycle_assertions(text: str, ok: bool) -> None:
    assert evaluate(parse(text), sample_report()).ok is ok


def test_a_report_without_key_lifecycle_says_so() -> None:
    report = copy.deepcopy(sample_report())
    del report["metrics"]["keys"]
    result = evaluate(parse("rotation_gap_ms < 500"), report)
    assert not result.ok and result.reason == "no metrics.keys in the report"


def test_the_html_report_shows_the_key_lifecycle_only_when_keys_changed() -> None:
    from sealrtc.report.html import render_html

    report = sample_report()
    page = render_html(report)
    assert "<h2>Key lifecycle</h2>" in page and "rotations (keying v1)</td><td>3</td>" in page
    assert "62.5 ms" in page
    report["metrics"]["keys"]["rotations"] = 0
    assert "Key lifecycle" not in render_html(report)


def test_the_report_builder_merges_key_lifecycles_over_workers() -> None:
    from sealrtc.load.aggregate import build_report
    from sealrtc.report.model import ScenarioInfo
    from sealrtc.report.records import WorkerFinal

    def final(worker: int, keys: KeyTotals) -> WorkerFinal:
        return WorkerFinal(worker, {"room": RoomTotals(planned=2, joined=2, keys=keys)})

    a = KeyTotals(epochs=4, near_failures=FailureCounts({"unknown_key": 1}), longest_gap_ms=70.0, churn_joins=2)
    b = KeyTotals(epochs=5, near_lost=3, longest_gap_ms=90.0, churn_joins=1)
    report = build_report(
        scenario=ScenarioInfo(), room_names=["room"], finals=[final(0, a), final(1, b)], snapshots=[],
        started_at="x", duration_s=5,
    )  # fmt: skip
    assert report.metrics is not None and report.metrics.keys is not None
    keys = report.metrics.keys
    assert (keys.epochs, keys.frames_lost, keys.longest_gap_ms, keys.joins) == (5, 3, 90.0, 3)
    assert keys.decrypt_failures is not None and keys.decrypt_failures.total == 1
    room = report.rooms[0].metrics
    assert room is not None and room.keys == keys  # one room: the same numbers


def _epoch_file(tmp_path: Path, epoch: int, mode: int) -> tuple[Path, dict[str, Any]]:
    data = EpochKeys.from_secret("the-room-secret", suite=1, epoch=epoch).export_epoch()
    path = tmp_path / "epoch.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return path, data


def test_load_from_an_epoch_file_needs_no_secret_and_never_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sealrtc.load.runner
    from sealrtc.cli.main import main
    from sealrtc.epochs import EpochKey

    path, data = _epoch_file(tmp_path, 4, 0o644)
    given: dict[str, Any] = {}

    async def fake_run_load(scenario: Scenario, **kwargs: Any) -> Any:
        given.update(kwargs, scenario=scenario)
        raise sealrtc.load.runner.LoadError("stopped before the run")

    monkeypatch.setattr(sealrtc.load.runner, "run_load", fake_run_load)
    monkeypatch.delenv("SEALRTC_SECRET", raising=False)
    status = main(["load", "--server", "http://127.0.0.1:9", "--quiet", "--epoch-file", str(path), "--churn", "1"])
    err = capsys.readouterr().err
    assert status == 1 and "stopped before the run" in err
    scenario, secret = given["scenario"], given["secret"]
    assert (scenario.keying, scenario.suite) == (2, 1)  # implied by the file: no other flag
    assert isinstance(secret, EpochKey) and secret.epoch == 4 and secret.material == base64.b64decode(data["key"])
    assert "readable by other users" in err and data["key"] not in err and data["key"] not in repr(secret)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no-e2ee"], "--epoch-file and --no-e2ee exclude each other"),
        (["--keying", "1"], "drop --keying 1"),
        (["--secret-file", "s.txt"], "give one key source"),
        (["--suite", "6"], "differs from the epoch file's suite 1"),
    ],
)
def test_load_epoch_file_conflicts_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from sealrtc.cli.main import main

    path, _ = _epoch_file(tmp_path, 0, 0o600)
    status = main(["load", "--server", "http://127.0.0.1:9", "--quiet", "--epoch-file", str(path), *argv])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_exporter_counts_key_changes_as_they_happen() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from sealrtc.load.exporter import LoadMetrics
    from sealrtc.report.records import WorkerFinal, WorkerSnapshot

    def snapshot(worker: int, **levels: Any) -> WorkerSnapshot:
        return WorkerSnapshot.from_json({"worker": worker, "rooms": {"r1": {"joined": 2} | levels}})

    metrics = LoadMetrics("0")
    registry = CollectorRegistry()
    registry.register(metrics)
    labels = {"shard": "0", "room": "r1"}

    def get(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, labels | extra)

    metrics.take(snapshot(0, epoch=2, churn_joins=1))
    metrics.take(snapshot(1, epoch=2, churn_joins=2, near_failures={"unknown_key": 1}))
    assert get("sealrtc_key_epoch") == 2 and get("sealrtc_churn_joins_total") == 3  # joins of both workers
    assert get("sealrtc_key_change_decrypt_failures_total", reason="unknown_key") == 1
    assert get("sealrtc_key_rotations_total") == 0
    metrics.take(snapshot(0, epoch=3, churn_joins=2))  # a join: the epoch moves on in worker 0 first
    assert get("sealrtc_key_epoch") == 3 and get("sealrtc_churn_joins_total") == 4
    metrics.take(snapshot(1, epoch=3, churn_joins=2, near_failures={"unknown_key": 1}))
    assert get("sealrtc_key_epoch") == 3  # the highest, not a sum over workers
    last = KeyTotals(epochs=4, churn_joins=3, near_failures=FailureCounts({"unknown_key": 2}))
    metrics.take_final(WorkerFinal(1, {"r1": RoomTotals(keys=last)}))  # its last window, measured to the end
    assert get("sealrtc_key_epoch") == 4 and get("sealrtc_churn_joins_total") == 5
    assert get("sealrtc_key_change_decrypt_failures_total", reason="unknown_key") == 2
    rotating = LoadMetrics("1")
    rotating.take(WorkerSnapshot.from_json({"worker": 0, "rooms": {"r1": {"rotations": 3}}}))
    rotating.take(WorkerSnapshot.from_json({"worker": 1, "rooms": {"r1": {"rotations": 3}}}))
    other = CollectorRegistry()
    other.register(rotating)
    assert other.get_sample_value("sealrtc_key_rotations_total", {"shard": "1", "room": "r1"}) == 3  # not 6
    text = generate_latest(registry).decode()
    for name in ("sealrtc_key_rotations_total", "sealrtc_key_epoch", "sealrtc_key_change_decrypt_failures_total",
                 "sealrtc_churn_joins_total"):  # fmt: skip
        assert f"\n{name}{{" in text


class _FakeSubscriber:
    """What the worker reads of a subscriber agent: one video track's counters, set by the test,
    and how many times they were read."""

    def __init__(self) -> None:
        self.failures = FailureCounts()
        self.lost = 0
        self.freezes = 0
        self.frames = 30
        self.reads = 0
        self.sessions = [self]
        self.pc = SimpleNamespace(connectionState="connected")
        self.failed = SimpleNamespace(is_set=lambda: False)
        self.decoded: dict[str, int] = {}

    def receive_tracks(self) -> list[ReceiveTrackStats]:
        self.reads += 1
        metrics = SimpleNamespace(
            frames_lost=self.lost,
            freezes=SimpleNamespace(count=self.freezes, total_ms=0.0),
            video=True,
            frames_missed=0,
        )
        return [
            ReceiveTrackStats("video", "v", "vp8", self.frames, self.frames, self.frames, None, None,
                              FailureCounts(self.failures), 0, 0, None, None, True, metrics)  # type: ignore[arg-type]
        ]  # fmt: skip


def _two_room_worker(monkeypatch: pytest.MonkeyPatch) -> tuple[Worker, _FakeSubscriber, _FakeSubscriber]:
    """A worker with one subscriber in room "a" (index 0) and one in room "b" (index 1), and a
    short key-change window (the worker's own clock and timers run it: nothing here waits)."""
    monkeypatch.setattr(worker_module, "WINDOW", 0.05)
    a, b = _FakeSubscriber(), _FakeSubscriber()
    participants = [Participant(0, 0, SUBSCRIBER, False, 0.0), Participant(1, 1, SUBSCRIBER, False, 0.0)]
    config = WorkerConfig(worker=0, participants=participants, room_names=["a", "b"], target={}, start_at=0.0,
                          duration=60.0)  # fmt: skip
    worker = Worker(config, "secret", send=None, stop=None)
    worker.joined = [_Joined(p, agent, 0.0) for p, agent in zip(participants, (a, b), strict=True)]
    return worker, a, b


async def _windows_closed(worker: Worker) -> None:
    await asyncio.gather(*worker._background)


async def test_a_key_change_window_counts_only_its_own_rooms_subscribers(monkeypatch: pytest.MonkeyPatch) -> None:
    worker, a, b = _two_room_worker(monkeypatch)
    end = time.monotonic() + 60
    worker._changed([0], end)  # room a's key changed (a churn join's epoch step)
    a.failures.add({"unknown_key": 2})
    a.lost += 3
    b.failures.add({"unknown_key": 5})  # room b's keys never changed: not near a change
    b.lost += 7
    b.freezes += 1
    worker._changed([0], end)  # a's window is open: extended, not opened twice
    a.failures.add({"unknown_key": 1})
    a.freezes += 1
    await _windows_closed(worker)
    near_a = worker.near["a"]
    assert (near_a.failures.get("unknown_key"), near_a.lost, near_a.freezes) == (3, 3, 1)
    assert "b" not in worker.near  # nothing measured, not even a gap
    assert b.reads == 0  # and no sampler read room b's subscriber
    assert worker._key_totals("b").near_failures.total == 0 and worker._key_totals("b").near_lost == 0
    assert near_a.longest_gap_ms > 0  # a's gap was sampled (its frames never moved: the whole window)


async def test_a_change_of_every_room_opens_every_rooms_window(monkeypatch: pytest.MonkeyPatch) -> None:
    worker, a, b = _two_room_worker(monkeypatch)
    worker._changed([0, 1], time.monotonic() + 60)  # a timer step or a rotation
    a.failures.add({"unknown_key": 1})
    b.lost += 2
    await _windows_closed(worker)
    assert (worker.near["a"].failures.total, worker.near["a"].lost) == (1, 0)
    assert (worker.near["b"].failures.total, worker.near["b"].lost) == (0, 2)
    assert worker.near["a"].longest_gap_ms > 0 and worker.near["b"].longest_gap_ms > 0
    assert a.reads == b.reads  # one sampler over both rooms: each subscriber read once per sample


async def test_epoch_steps_at_one_time_are_one_change_of_their_rooms(monkeypatch: pytest.MonkeyPatch) -> None:
    worker, _, _ = _two_room_worker(monkeypatch)
    keys = {"a": SimpleNamespace(epoch=0), "b": SimpleNamespace(epoch=0)}
    for k in keys.values():
        k.advance = lambda k=k: setattr(k, "epoch", k.epoch + 1)
    worker._keys = dict(keys)
    worker.config.epoch_steps = [EpochStep(1.5, 0, 1, True), EpochStep(2.0, 0, 2, False), EpochStep(2.0, 1, 1, False)]
    changes: list[list[int]] = []
    monkeypatch.setattr(worker, "_changed", lambda rooms, end: changes.append(list(rooms)))
    await worker._epoch_changes(time.monotonic() - 10)  # every step is due: none waits
    assert changes == [[0], [0, 1]]  # a's join step alone, then the timer's step of both rooms
    assert (keys["a"].epoch, keys["b"].epoch) == (2, 1)


async def test_a_room_keyed_after_rotations_starts_at_the_current_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from sealrtc.keys import derive_base_key

    worker, _, _ = _two_room_worker(monkeypatch)
    worker.config.duration, worker.config.rotate_every = 7.0, 2.0
    worker._keys = {}  # nobody of either room has joined this worker yet
    monkeypatch.setattr(worker, "_changed", lambda rooms, end: None)
    await worker._key_changes(time.monotonic() - 10)  # rotations 1..3 are all due: none waits
    assert worker.rotations == 3
    keys = worker._keys_for("a", False)  # a late joiner: the room's others sent under secret 3 since
    assert keys.current == derive_base_key(rotation_secret("secret", 3), b"a")
    assert derive_base_key("secret", b"a") != keys.current


async def test_a_room_keyed_between_preinstall_and_switch_accepts_the_next_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sealrtc.keys import derive_base_key

    worker, _, _ = _two_room_worker(monkeypatch)
    worker.config.duration, worker.config.rotate_every = 7.0, 2.0
    worker._keys = {}
    monkeypatch.setattr(worker_module, "PREINSTALL", 31.0)
    # rotation 1 (2 s after the start) is 30 s ahead, its preinstall already due: the worker
    # installs secret 1 decrypt-only and waits for the switch
    task = asyncio.ensure_future(worker._key_changes(time.monotonic() + 28))
    try:
        await eventually(lambda: worker._next_secret is not None, timeout=5, what="the preinstall")
        keys = worker._keys_for("a", False)
        assert keys.current == derive_base_key("secret", b"a") and worker.rotations == 0
        assert derive_base_key(rotation_secret("secret", 1), b"a") in keys.decryption_keys()
    finally:
        task.cancel()
