"""A real Janus killed (SIGKILL) in the middle of a load run and started again on the same
ports: the runner creates its rooms again, the participants recover, and the report says how
long Janus was away (an external fault) and how long media took to come back (recovery)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sealrtc.report import first_problem
from sealrtc.testing.janus_server import JanusServer, cleanup, start_janus

from .rtc_helpers import require_namespace
from .test_janus import restart
from .test_load import load

pytestmark = [pytest.mark.network, pytest.mark.janus]

FLOWING = re.compile(r"joined 3/3, (\d+\.\d) fps")


@pytest.fixture
async def janus() -> AsyncIterator[JanusServer]:
    require_namespace()
    server = await start_janus([])
    yield server
    cleanup(server)


async def video_flows(stderr: asyncio.StreamReader | None) -> None:
    """Until a live line (one every few seconds) says everyone joined and video flows."""
    assert stderr is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(stderr.readline(), 40)).decode()
        assert line, f"the run ended before video flowed: {seen}"
        seen.append(line)
        match = FLOWING.search(line)
        if match is not None and float(match.group(1)) >= 10:
            return


async def test_janus_killed_mid_run_rooms_come_back_and_participants_recover(
    janus: JanusServer, tmp_path: Path
) -> None:
    run = await load(tmp_path, "janus-killed", "--janus", janus.url, "--subscribers", "2", "--duration", "30",
                     "--workers", "1")  # fmt: skip
    await video_flows(run.proc.stderr)
    janus.kill()
    await restart(janus)  # the same ports; the rooms the runner created are gone with the old process
    await run.wait(timeout=120)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert first_problem(report) is None
    assert report["participants"] == {"planned": 3, "joined": 3, "failed": 0, "intruders": 0}
    (fault,) = report["faults"]
    assert (fault["kind"], fault["spec"]) == ("external", "janus-restart")
    assert 0 < fault["at_s"] < 30 and fault["length_s"] > 0, fault
    metrics = report["metrics"]
    assert metrics["reconnects"] >= 3  # the publisher and both subscribers
    assert metrics["time_to_recover_ms"]["count"] == 2, metrics["time_to_recover_ms"]
    assert metrics["time_to_recover_ms"]["max"] >= fault["length_s"] * 1000 * 0.5
    assert metrics["availability_percent"] < 100
    assert sum(metrics["decrypt_failures"].values()) == 0
