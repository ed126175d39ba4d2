"""Faults in real load runs against the embedded relay: participants recover, and the report's
faults section and recovery metrics say who lost media and how fast it came back. Each run is
a real `sealrtc load` process (the pure half: test_load_faults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealrtc.report import first_problem

from .test_load import load

pytestmark = pytest.mark.network


async def test_a_relay_restart_mid_run_is_recovered_and_reported(tmp_path: Path) -> None:
    run = await load(
        tmp_path, "restart", "--rooms", "2", "--subscribers", "3", "--fault", "relay-restart@8s", "--duration", "20",
        "--assert", "reconnects >= 6", "--assert", "count(time_to_recover_ms) >= 6",
    )  # fmt: skip
    await run.wait(timeout=150)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert first_problem(report) is None
    assert report["participants"] == {"planned": 8, "joined": 8, "failed": 0, "intruders": 0}
    (fault,) = report["faults"]
    assert (fault["kind"], fault["at_s"]) == ("relay-restart", 8.0)
    # every subscriber had video, lost it with the relay and got it back on a new connection
    assert fault["watched"] == fault["lost_media"] == fault["recovered"] == 6, fault
    assert fault["recovery_ms"]["count"] == 6 and fault["recovery_ms"]["p50"] >= 500
    metrics = report["metrics"]
    assert metrics["reconnects"] >= 8  # publishers reconnect too
    assert metrics["time_to_recover_ms"]["count"] == 6
    assert metrics["outage_ms"] > 6 * 500
    assert 50 < metrics["availability_percent"] < 99.9, metrics["availability_percent"]
    assert sum(metrics["decrypt_failures"].values()) == 0  # new connections, new replay windows: no replays
    # after recovery the frame rate per track is the source's again (the dead connections' tracks
    # do not count): the best of the last seconds is near 30 fps, not halved
    assert max(i["fps"] or 0 for i in report["intervals"][-4:]) > 22, report["intervals"][-4:]
    # publishers' bytes add up over their connections: the mean sent is not cut to what the
    # new connection carried (about half of it, over the whole window)
    bitrate = metrics["bitrate"]
    assert bitrate["sent_video_kbps"] > 0.7 * bitrate["received_video_kbps"], bitrate


async def test_a_paused_relay_freezes_media_and_it_comes_back(tmp_path: Path) -> None:
    run = await load(tmp_path, "pause", "--subscribers", "2", "--fault", "relay-pause@5s+3s", "--duration", "14")
    await run.wait(timeout=120)
    assert run.returncode == 0, run.stderr
    (fault,) = run.report["faults"]
    assert fault["watched"] == fault["lost_media"] == fault["recovered"] == 2, fault
    # frozen for 3 s: the gap is the pause (the relay kept its sessions: no reconnect needed)
    assert 2500 <= fault["recovery_ms"]["max"] <= 10_000, fault
    assert first_problem(run.report) is None


async def test_an_impaired_downlink_shows_its_drops(tmp_path: Path) -> None:
    run = await load(tmp_path, "lossy", "--rooms", "2", "--subscribers", "3", "--impair-down", "lossy",
                     "--duration", "10")  # fmt: skip
    await run.wait(timeout=120)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert first_problem(report) is None
    (row,) = report["profiles"]
    assert row["profile"] == "down=lossy" and row["participants"]["planned"] == 8
    down = row["impairment"]["down"]
    # lossy: 5% in bursts of 4 on what every participant receives (a few thousand datagrams)
    assert down["offered"] > 1000 and 1.5 <= down["dropped_percent"] <= 12, down
    assert row["impairment"]["up"]["offered"] == 0  # the uplink is left alone
    assert row["metrics"]["frames"]["decrypted"] > 0 and sum(row["metrics"]["decrypt_failures"].values()) == 0
    assert report["scenario"]["impair_down"] == "lossy"


async def test_an_impaired_share_and_a_fault_in_one_run(tmp_path: Path) -> None:
    scenario = tmp_path / "share.toml"
    scenario.write_text('rooms = 2\nsubscribers = 4\nimpair = [{share = 0.25, down = "3g"}]\n')
    run = await load(tmp_path, "share", "--scenario", str(scenario), "--fault", "relay-restart@6s",
                     "--duration", "16")  # fmt: skip
    await run.wait(timeout=150)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert first_problem(report) is None
    rows = {row["profile"]: row for row in report["profiles"]}
    assert list(rows) == ["down=3g", "none"]
    # a quarter of each role: 2 of 8 subscribers, and half a publisher of 2 rounds up to one
    assert rows["down=3g"]["participants"]["planned"] == 3 and rows["none"]["participants"]["planned"] == 7
    assert rows["down=3g"]["impairment"]["down"]["offered"] > 500
    assert rows["down=3g"]["impairment"]["down"]["mean_delay_ms"] >= 100  # 3g: 100 ms one way, plus queueing
    assert rows["none"]["impairment"]["down"]["offered"] == 0
    (fault,) = report["faults"]
    assert fault["watched"] == fault["lost_media"] == fault["recovered"] == 8, fault
    assert all(row["metrics"]["reconnects"] > 0 for row in rows.values())
