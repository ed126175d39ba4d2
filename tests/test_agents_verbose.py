"""``-v`` in publish and subscribe: a stats line every second (issue 21 item 7)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator

import pytest

from sealrtc.relay.server import Relay, start_relay

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

SECRET = "verbose-secret-51c0"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    require_namespace()
    server, runner, port = await start_relay("127.0.0.1", 0, Relay())
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def sealrtc(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_TOKEN"} | {"SEALRTC_SECRET": SECRET}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )


async def test_verbose_runs_print_a_stats_line_every_second(relay: tuple[Relay, str]) -> None:
    server, base = relay
    publisher = await sealrtc("publish", "--whip", f"{base}/whip/v", "--probe", "--duration", "12", "--quiet", "-v")
    await eventually(lambda: server.stats.frames_received > 0, timeout=20, what="the publisher's media at the relay")
    subscriber = await sealrtc("subscribe", "--whep", f"{base}/whep/v", "--duration", "4", "--quiet", "-v")
    _, sub_err = await asyncio.wait_for(subscriber.communicate(), 60)
    _, pub_err = await asyncio.wait_for(publisher.communicate(), 60)
    assert subscriber.returncode == 0 and publisher.returncode == 0, sub_err.decode() + pub_err.decode()
    sub_lines = re.findall(r"\[\s*\d+\.\d s\] video \(stream 0x[0-9a-f]{8}\): \d+ received", sub_err.decode())
    pub_lines = re.findall(r"\[\s*\d+\.\d s\] video: \d+ frames, \d+ kB", pub_err.decode())
    assert len(sub_lines) >= 3 and len(pub_lines) >= 10
