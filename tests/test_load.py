"""`sealrtc load` end to end: the embedded relay and a real Janus, intruders, assertions and exit
codes, a saturated generator, Ctrl-C. Each run is a real `sealrtc load` process."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sealrtc.load.keying import epoch_schedule
from sealrtc.load.plan import churn_plan, plan
from sealrtc.load.scenario import Scenario
from sealrtc.report import first_problem
from sealrtc.signaling.janus import JanusError, JanusSession
from sealrtc.testing.janus_server import JanusServer, cleanup, start_janus

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

SECRET = "load-test-secret-77e1"


class Load:
    def __init__(self, proc: asyncio.subprocess.Process, json_path: Path) -> None:
        self.proc, self.json_path = proc, json_path
        self.stderr = ""
        self.returncode: int | None = None

    async def wait(self, timeout: float = 120) -> Load:
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.stderr, self.returncode = err.decode(), self.proc.returncode
        return self

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.json_path.read_text())
        return data


async def load(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Load:
    require_namespace()
    base = {k: v for k, v in os.environ.items() if k not in ("SEALRTC_SECRET", "SEALRTC_LOOP")}
    env = base | {"SEALRTC_SECRET": SECRET} | (env or {})
    json_path = tmp_path / f"{name}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "load", *args, "--json", str(json_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    return Load(proc, json_path)


async def test_multi_room_run_with_intruders_and_assertions(tmp_path: Path) -> None:
    passing = await load(
        tmp_path, "pass", "--rooms", "2", "--subscribers", "2", "--intruders", "1", "--duration", "6",
        "--workers", "2", "--csv", str(tmp_path / "pass.csv"), "--html", str(tmp_path / "pass.html"),
        "--assert", "p95(latency_ms) < 2000", "--assert", "intruder_decrypts == 0", "--assert", "joined == planned",
    )  # fmt: skip
    await passing.wait()
    # one run at a time: two concurrent runs on 2 cores can (rightly) flag each other's generator
    scenario = tmp_path / "failing.toml"  # its pass criteria in the scenario file
    scenario.write_text('subscribers = 1\nduration = 4\nassert = ["p50(latency_ms) < 0.001"]\n')
    failing = await load(tmp_path, "fail", "--scenario", str(scenario), "--workers", "1")
    await failing.wait()

    assert passing.returncode == 0, passing.stderr
    report = passing.report
    assert report["participants"] == {"planned": 6, "joined": 6, "failed": 0, "intruders": 2}
    metrics = report["metrics"]
    assert metrics["intruder_decrypts"] == 0 and metrics["intruder_failures"]["unknown_key"] > 50
    assert sum(metrics["decrypt_failures"].values()) == 0
    assert metrics["frames"]["decrypted"] > 300 and metrics["frames"]["sent"] > 300
    assert metrics["latency_ms"]["count"] == metrics["frames"]["decrypted"]  # every frame carried a probe
    assert metrics["join_ms"]["count"] == 6 and metrics["first_frame_ms"]["count"] == 4
    assert len(report["rooms"]) == 2 and all(r["participants"]["intruders"] == 1 for r in report["rooms"])
    assert [a["ok"] for a in report["assertions"]] == [True] * 5  # the three asked for, then two defaults
    assert [a.get("default", False) for a in report["assertions"]] == [False] * 3 + [True] * 2
    assert report["verdict"] == "pass" and report["generator"]["workers"] == 2
    assert report["generator"]["event_loop"] == "uvloop" and report["schema"] == 1
    assert first_problem(report) is None and first_problem(failing.report) is None
    assert len(report["intervals"]) >= 5 and report["intervals"][-1]["joined"] == 6
    with open(tmp_path / "pass.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report["intervals"]) and rows[-1]["joined"] == "6"
    html = (tmp_path / "pass.html").read_text()
    assert all(r["room"] in html for r in report["rooms"]) and html.count("<svg") >= 5
    assert SECRET not in passing.stderr and "Traceback" not in passing.stderr

    assert failing.returncode == 1, failing.stderr
    result = failing.report["assertions"][0]
    assert result["ok"] is False and result["value"] > 0.001
    assert failing.report["verdict"] == "fail"
    assert "assertion(s) failed" in failing.stderr


async def test_sealrtc_loop_asyncio_reaches_the_workers(tmp_path: Path) -> None:
    run = await load(tmp_path, "asyncio", "--subscribers", "1", "--duration", "3", "--workers", "1", "--quiet",
                     env={"SEALRTC_LOOP": "asyncio"})  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["generator"]["event_loop"] == "asyncio" and first_problem(report) is None
    assert report["metrics"]["frames"]["decrypted"] > 0


async def test_h264_run_from_a_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "h264.toml"
    scenario.write_text('video-codec = "h264"\nsubscribers = 2\nduration = 5\ndecode-every = 2\n')
    run = await load(tmp_path, "h264", "--scenario", str(scenario), "--workers", "1", "--quiet")
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["scenario"]["video_codec"] == "h264" and report["scenario"]["e2ee"] is True
    metrics = report["metrics"]
    assert sum(metrics["decrypt_failures"].values()) == 0 and metrics["latency_video_ms"]["count"] > 50
    assert first_problem(report) is None


async def test_rotating_secrets_cause_no_failure_and_no_freeze(tmp_path: Path) -> None:
    run = await load(
        tmp_path, "rotate", "--rotate-every", "2", "--duration", "7", "--subscribers", "2", "--intruders", "1",
        "--workers", "2", "--quiet", "--assert", "rotations == 3", "--assert", "rotation_failures == 0",
        "--assert", "rotation_freezes == 0", "--assert", "decrypt_failures == 0", "--assert", "intruder_decrypts == 0",
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    keys = report["metrics"]["keys"]
    assert keys["rotations"] == 3 and keys["epochs"] == 0 and report["scenario"]["rotate_every"] == 2
    assert 0 < keys["near_change"]["longest_gap_ms"] < 2000  # measured, and no window went dark
    assert report["metrics"]["frames"]["decrypted"] > 200 and SECRET not in run.stderr


async def test_ratcheting_epochs_with_churn_joiners(tmp_path: Path) -> None:
    run = await load(
        tmp_path, "ratchet", "--keying", "v2", "--ratchet-every", "2", "--churn", "1", "--duration", "8",
        "--subscribers", "2", "--intruders", "1", "--workers", "2", "--quiet",
        "--assert", "epochs >= 3", "--assert", "rotation_failures == 0", "--assert", "churn_joins > 0",
        "--assert", "joined == planned", "--assert", "decrypt_failures == 0", "--assert", "intruder_decrypts == 0",
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    keys = report["metrics"]["keys"]
    scenario = Scenario(subscribers=2, intruders=1, duration=8, keying=2, ratchet_every=2, churn=1)
    churn = churn_plan(scenario, plan(scenario))
    steps = epoch_schedule(1, 8, 2, ((c.at, c.joiner.room) for c in churn))
    assert keys["epochs"] == steps[-1].epoch == 3 + len(churn)  # three timer steps, one per join
    joins = keys["joins_during_run"]
    assert joins["count"] >= 3 and joins["first_frame_ms"]["count"] == joins["count"]  # every joiner decrypted
    assert report["participants"]["joined"] == report["participants"]["planned"] == 3
    assert report["metrics"]["intruder_failures"]["unknown_key"] > 0


async def test_every_churn_join_advances_the_epoch_and_joiners_decrypt_from_theirs(tmp_path: Path) -> None:
    from .test_shards import free_port, sample, scrape

    port = free_port()
    run = await load(
        tmp_path, "join", "--keying", "2", "--churn", "1", "--duration", "12", "--subscribers", "2",
        "--intruders", "1", "--workers", "2", "--quiet", "--metrics-port", str(port),
    )  # fmt: skip
    live: dict[str, float | None] = {}

    async def epochs_move_live() -> bool:  # polling the exporter: no event crosses processes
        with contextlib.suppress(aiohttp.ClientError):
            text = await scrape(port)
            live.update(epoch=sample(text, "sealrtc_key_epoch"), joins=sample(text, "sealrtc_churn_joins_total"))
        return (live.get("epoch") or 0) >= 2 and (live.get("joins") or 0) >= 2

    await eventually(epochs_move_live, timeout=30, what="/metrics to show the join ratchet's epochs and joins")
    await run.wait()
    assert run.returncode == 0, run.stderr
    scenario = Scenario(subscribers=2, intruders=1, duration=12, keying=2, churn=1)
    churn = churn_plan(scenario, plan(scenario))
    join_steps = [s for s in epoch_schedule(1, 12, 0, ((c.at, c.joiner.room) for c in churn)) if s.join]
    report = run.report
    keys = report["metrics"]["keys"]
    assert len(join_steps) >= 8 and keys["epochs"] >= len(join_steps)  # no timer: every step was a join
    near = keys["near_change"]
    assert 0 < near["longest_gap_ms"] < 2000 and sum(near["decrypt_failures"].values()) == 0  # measured, no dark window
    assert sum(report["metrics"]["decrypt_failures"].values()) == 0  # legitimate subscribers, joiners too
    joins = keys["joins_during_run"]
    assert joins["count"] == len(churn) and joins["first_frame_ms"]["count"] == joins["count"]
    assert report["metrics"]["intruder_decrypts"] == 0 and SECRET not in run.stderr


async def test_a_run_from_an_epoch_file_needs_no_secret(tmp_path: Path) -> None:
    from sealrtc.epochs import EpochKeys

    data = EpochKeys.from_secret("only-the-app-server-knows", epoch=7).export_epoch()
    path = tmp_path / "epoch.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    run = await load(
        tmp_path, "epoch-file", "--epoch-file", str(path), "--churn", "1", "--duration", "8", "--subscribers", "2",
        "--intruders", "1", "--workers", "2", "--quiet", env={"SEALRTC_SECRET": ""},
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    keys = report["metrics"]["keys"]
    scenario = Scenario(subscribers=2, intruders=1, duration=8, keying=2, churn=1)
    churn = churn_plan(scenario, plan(scenario))
    assert report["scenario"]["keying"] == 2 and keys["epochs"] == 7 + len(churn)  # from the file's epoch on
    assert sum(report["metrics"]["decrypt_failures"].values()) == 0 and report["metrics"]["frames"]["decrypted"] > 100
    assert keys["joins_during_run"]["first_frame_ms"]["count"] == len(churn) > 0  # later epochs, derived from it
    assert report["metrics"]["intruder_decrypts"] == 0 and report["metrics"]["intruder_failures"]["unknown_key"] > 0
    assert data["key"] not in run.stderr and data["key"] not in run.json_path.read_text()


async def test_bad_expressions_and_settings_are_refused_before_the_run(tmp_path: Path) -> None:
    bad = await load(tmp_path, "bad", "--assert", "p95(latncy_ms) < 250")
    await bad.wait(timeout=30)
    assert bad.returncode == 2 and "latency_ms" in bad.stderr  # a suggestion
    assert not bad.json_path.exists()
    zero = await load(tmp_path, "zero", "--rooms", "0")
    await zero.wait(timeout=30)
    assert zero.returncode == 2 and "rooms must be >= 1" in zero.stderr
    scenario = tmp_path / "typo.toml"
    scenario.write_text('assert = ["p95(latncy_ms) < 250"]\n')
    typo = await load(tmp_path, "typo", "--scenario", str(scenario))
    await typo.wait(timeout=30)
    assert typo.returncode == 2 and f"assert in {scenario}:" in typo.stderr and "latency_ms" in typo.stderr


async def test_a_saturated_generator_is_flagged(tmp_path: Path) -> None:
    absurd = await load(
        tmp_path, "absurd", "--workers", "1", "--subscribers", "50", "--decode-every", "1", "--ramp", "100",
        "--duration", "6", "--quiet",
    )  # fmt: skip
    await absurd.wait()
    assert absurd.returncode == 4, absurd.stderr
    generator = absurd.report["generator"]
    assert generator["saturated"] is True and generator["saturation_reasons"]
    assert absurd.report["verdict"] == "saturated"
    assert "generator saturated" in absurd.stderr and "not trustworthy" in absurd.stderr


async def test_ctrl_c_keeps_the_partial_report(tmp_path: Path) -> None:
    run = await load(tmp_path, "int", "--subscribers", "2", "--duration", "60")
    assert run.proc.stderr is not None
    line = await asyncio.wait_for(run.proc.stderr.readline(), 60)  # the first progress line (5 s in)
    assert b"joined" in line
    run.proc.send_signal(signal.SIGINT)
    await run.wait(timeout=90)
    assert run.returncode == 130
    report = run.report
    assert report["verdict"] == "interrupted" and report["exit_status"] == 130
    assert report["participants"]["joined"] == 3 and report["metrics"]["frames"]["decrypted"] > 0
    assert report["duration_s"] < 30


@pytest.fixture
async def janus() -> Any:
    require_namespace()
    server = await start_janus([])
    yield server
    cleanup(server)


async def room_exists(server: JanusServer, room: int) -> bool:
    session = await JanusSession.connect(server.url)
    try:
        handle = await session.attach()
        data, _ = await handle.message({"request": "exists", "room": room})
        return bool(data.get("exists"))
    except JanusError:
        return False
    finally:
        await session.close()


@pytest.mark.network
@pytest.mark.janus
async def test_janus_target_creates_e2ee_rooms_and_destroys_them(janus: JanusServer, tmp_path: Path) -> None:
    run = await load(
        tmp_path, "janus", "--janus", janus.url, "--rooms", "2", "--subscribers", "2", "--intruders", "1",
        "--duration", "6", "--workers", "2",
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["participants"] == {"planned": 6, "joined": 6, "failed": 0, "intruders": 2}
    assert report["metrics"]["frames"]["decrypted"] > 200 and report["metrics"]["intruder_decrypts"] == 0
    assert report["scenario"]["target"] == f"janus {janus.url}"
    for room in report["rooms"]:
        assert not await room_exists(janus, int(room["room"]))  # destroyed at the end


@pytest.mark.network
@pytest.mark.janus
async def test_janus_join_ratchet_follows_the_plan(janus: JanusServer, tmp_path: Path) -> None:
    run = await load(
        tmp_path, "janus-join", "--janus", janus.url, "--keying", "2", "--churn", "1", "--duration", "10",
        "--subscribers", "2", "--intruders", "1", "--workers", "2", "--quiet",
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    scenario = Scenario(subscribers=2, intruders=1, duration=10, keying=2, churn=1)
    churn = churn_plan(scenario, plan(scenario))
    steps = epoch_schedule(1, 10, 0, ((c.at, c.joiner.room) for c in churn))
    report = run.report
    keys = report["metrics"]["keys"]
    assert keys["epochs"] == steps[-1].epoch == len(churn)  # the plan's steps, not also Janus' join events
    assert sum(report["metrics"]["decrypt_failures"].values()) == 0 and report["metrics"]["intruder_decrypts"] == 0
    assert keys["joins_during_run"]["first_frame_ms"]["count"] == len(churn)
