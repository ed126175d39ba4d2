"""Sharded load: two shard processes against one relay, scraped live, merged exactly."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sealrtc.cli.load import _shard
from sealrtc.metrics import Histogram
from sealrtc.report import first_problem

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

SECRET = "shard-secret-5c2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def sealrtc(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    full = {k: v for k, v in os.environ.items() if k not in ("SEALRTC_SECRET", "JOB_COMPLETION_INDEX")}
    full |= {"SEALRTC_SECRET": SECRET} | (env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full,
    )  # fmt: skip


async def finish(proc: asyncio.subprocess.Process, timeout: float = 120) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The sum over every series of ``name`` with these labels (e.g. over rooms); None if none."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    ]
    return sum(values) if values else None


async def test_two_shards_merge_to_the_whole_scenario(tmp_path: Path) -> None:
    require_namespace()
    relay_port, m0, m1 = free_port(), free_port(), free_port()
    relay = await sealrtc("relay", "--listen", f"127.0.0.1:{relay_port}", "--duration", "90")
    assert relay.stderr is not None
    assert b"sealrtc relay on" in await asyncio.wait_for(relay.stderr.readline(), 30)
    start = str(time.time() + 4)
    common = ["load", "--server", f"http://127.0.0.1:{relay_port}", "--rooms", "3", "--subscribers", "2",
              "--intruders", "1", "--duration", "8", "--run-id", "merge-test", "--start-at", start, "--quiet",
              "--workers", "1"]  # fmt: skip
    shard0 = await sealrtc(*common, "--shard", "0/2", "--metrics-port", str(m0), "--json", str(tmp_path / "s0.json"))
    shard1 = await sealrtc(
        *common, "--shard", "2", "--metrics-port", str(m1), "--json", str(tmp_path / "s1.json"),
        env={"JOB_COMPLETION_INDEX": "1"},
    )  # fmt: skip
    # scrape both shards while they run: joined participants and decrypted frames appear
    scraped: dict[int, str] = {}

    async def both_shards_decrypt() -> bool:  # polling HTTP endpoints: no event crosses processes
        for port in (m0, m1):
            try:
                scraped[port] = await scrape(port)
            except aiohttp.ClientError:
                continue
        decrypted = (sample(scraped.get(p, ""), "sealrtc_load_frames_total", kind="decrypted") for p in (m0, m1))
        return all((n or 0) > 0 for n in decrypted)

    await eventually(both_shards_decrypt, timeout=20, what="both shards' /metrics to show decrypted frames")
    for port, shard in ((m0, "0"), (m1, "1")):
        text = scraped[port]
        assert (sample(text, "sealrtc_load_participants", shard=shard, state="joined") or 0) >= 1
        assert (sample(text, "sealrtc_load_latency_seconds_count", shard=shard) or 0) > 0
        assert sample(text, "sealrtc_load_intruder_decrypts_total", shard=shard) == 0
        assert "sealrtc_load_generator_loop_lag_seconds" in text
    (rc0, err0), (rc1, err1) = await finish(shard0), await finish(shard1)
    relay.terminate()
    await relay.wait()
    assert rc0 == 0, err0
    assert rc1 == 0, err1
    reports = [json.loads((tmp_path / f"s{i}.json").read_text()) for i in (0, 1)]
    assert [first_problem(r) for r in reports] == [None, None]
    parts = [r["participants"]["planned"] for r in reports]
    assert sum(parts) == 3 * 3 and all(p > 0 for p in parts)  # each shard planned its own part
    assert reports[0]["scenario"]["shard"] == {"index": 0, "count": 2}
    assert [r["room"] for r in reports[0]["rooms"]] == [r["room"] for r in reports[1]["rooms"]]  # same rooms

    merge = await sealrtc(
        "report", "merge", str(tmp_path / "s0.json"), str(tmp_path / "s1.json"),
        "--json", str(tmp_path / "all.json"), "--html", str(tmp_path / "all.html"),
        "--assert", "joined == planned", "--assert", "intruder_decrypts == 0",
    )  # fmt: skip
    rc, err = await finish(merge)
    assert rc == 0, err
    merged: dict[str, Any] = json.loads((tmp_path / "all.json").read_text())
    assert first_problem(merged) is None
    assert merged["participants"] == {"planned": 9, "joined": 9, "failed": 0, "intruders": 3}
    union = Histogram()
    for r in reports:
        union.merge(Histogram.decode(r["histograms"]["latency_ms"], max_ms=r["metrics"]["latency_ms"]["max"]))
    assert merged["metrics"]["latency_ms"] == union.summary()
    assert merged["metrics"]["frames"]["decrypted"] == sum(r["metrics"]["frames"]["decrypted"] for r in reports)
    assert all(a["ok"] for a in merged["assertions"]) and merged["verdict"] == "pass"
    assert (tmp_path / "all.html").read_text().count("<svg") >= 5

    missing = await sealrtc("report", "merge", str(tmp_path / "s0.json"), "--json", str(tmp_path / "part.json"))
    rc, err = await finish(missing)
    assert rc == 1 and "shard(s) 1 missing" in err
    twice = await sealrtc("report", "merge", str(tmp_path / "s0.json"), str(tmp_path / "s0.json"))
    rc, err = await finish(twice)
    assert rc == 1 and "repeats shard 0" in err and "Traceback" not in err


@pytest.mark.unit
def test_shard_argument(monkeypatch: Any) -> None:
    from sealrtc.cli.common import CliError

    assert _shard("1/4") == (1, 4) and _shard(None) == (0, 1)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert _shard("4") == (3, 4)
    for bad in ("4/4", "x", "-1/2"):
        try:
            _shard(bad)
        except CliError as exc:
            assert exc.status == 2
        else:
            raise AssertionError(bad)
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    try:
        _shard("4")
    except CliError as exc:
        assert "JOB_COMPLETION_INDEX" in str(exc)
