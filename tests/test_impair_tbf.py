"""In-process shaping against the kernel's: the same 300 kbit/s bottleneck made by the ``tbf``
qdisc on a veth and by ``--impair-down rate=300kbit``, on two subscribers of one relay stream.

Two addresses of one namespace talk over ``lo`` whatever their interfaces, so the kernel-shaped
subscriber runs in a namespace of its own, behind a veth pair made for this test (the relay's
side has the ``tbf``). A third, unshaped subscriber shows what the stream carries without a
bottleneck. Root inside the test namespace is enough (scripts/isolated): no netem needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .rtc_helpers import require_namespace
from .test_agents_cli import SECRET, Run, relay_stats, sealrtc
from .waiting import eventually

pytestmark = pytest.mark.network

RELAY_SIDE, SUBSCRIBER_SIDE = "sealrtc2", "sealrtc3"
RELAY_ADDRESS, SUBSCRIBER_ADDRESS = "10.78.0.1", "10.78.0.2"
TBF = ["tbf", "rate", "300kbit", "burst", "16kb", "latency", "200ms"]


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def shaped_namespace() -> Any:
    """A namespace behind a veth whose relay side sends through ``tbf``; yields its holder's pid."""
    if not all(shutil.which(tool) for tool in ("ip", "tc", "unshare", "nsenter")):
        pytest.skip("needs ip, tc, unshare and nsenter")
    # The holder says "ready" from inside its new namespace, then holds it until killed.
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "echo ready; exec sleep 600"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        sh("ip", "link", "add", RELAY_SIDE, "type", "veth", "peer", "name", SUBSCRIBER_SIDE)
        sh("ip", "addr", "add", f"{RELAY_ADDRESS}/24", "dev", RELAY_SIDE)
        sh("ip", "link", "set", RELAY_SIDE, "up")
        sh("ip", "link", "set", SUBSCRIBER_SIDE, "netns", str(holder.pid))
        inside = ["nsenter", "-t", str(holder.pid), "-n"]
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "addr", "add", f"{SUBSCRIBER_ADDRESS}/24", "dev", SUBSCRIBER_SIDE)
        sh(*inside, "ip", "link", "set", SUBSCRIBER_SIDE, "up")
        try:
            sh("tc", "qdisc", "add", "dev", RELAY_SIDE, "root", *TBF)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"no tbf qdisc here: {exc.stderr.decode().strip()}")
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            sh("ip", "link", "del", RELAY_SIDE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def received(report: dict[str, Any]) -> tuple[float, float]:
    """(video fps, video + audio kbit/s) a subscriber received."""
    tracks = report["tracks"]
    video = next(t for t in tracks if t["kind"] == "video")
    return float(video["fps"] or 0), sum(float(t["bitrate_kbps"] or 0) for t in tracks)


async def test_kernel_tbf_and_in_process_rate_limit_give_comparable_results(tmp_path: Path) -> None:
    require_namespace()
    port = free_port()
    with shaped_namespace() as pid:
        relay = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sealrtc", "relay", "--listen", f"0.0.0.0:{port}", "--open", "--duration", "90",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert relay.stderr is not None
        assert b"sealrtc relay on" in await asyncio.wait_for(relay.stderr.readline(), 30)
        base = f"http://127.0.0.1:{port}"
        publisher = await sealrtc("publish", "--whip", f"{base}/whip/r", "--duration", "45")
        try:

            async def sending() -> bool:
                return int((await relay_stats(base))["frames_received"]) > 30

            await eventually(sending, timeout=30, what="the publisher's frames reaching the relay")
            whep = ["subscribe", "--no-decode", "--duration", "20", "--json"]
            env = {"SEALRTC_SECRET": SECRET}
            kernel_json = tmp_path / "kernel.json"
            kernel = Run(
                await asyncio.create_subprocess_exec(
                    "nsenter", "-t", str(pid), "-n", sys.executable, "-m", "sealrtc", *whep, str(kernel_json),
                    "--whep", f"http://{RELAY_ADDRESS}:{port}/whep/r",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
                ),
                kernel_json,
            )  # fmt: skip
            shaping = ["--impair-down", "rate=300kbit,queue=200ms"]
            in_process = await sealrtc("subscribe", "--whep", f"{base}/whep/r", "--no-decode", "--duration", "20",
                                       *shaping, json_path=tmp_path / "in.json")  # fmt: skip
            free = await sealrtc("subscribe", "--whep", f"{base}/whep/r", "--no-decode", "--duration", "20",
                                 json_path=tmp_path / "free.json")  # fmt: skip
            for run in (kernel, in_process, free):
                await run.wait(timeout=90)
                assert run.returncode == 0, run.stderr
        finally:
            publisher.proc.kill()
            relay.kill()
            await publisher.proc.wait()
            await relay.wait()
    (kernel_fps, kernel_kbps), (in_fps, in_kbps), (free_fps, free_kbps) = (
        received(r.report) for r in (kernel, in_process, free)
    )
    assert free_kbps > 350, free_kbps  # the stream needs more than the bottleneck gives
    for fps, kbps in ((kernel_fps, kernel_kbps), (in_fps, in_kbps)):
        assert fps < 0.6 * free_fps and kbps < 330, (fps, kbps, free_fps)  # both bottlenecks bite
    # ... and bite alike: within a factor of three of each other (a loaded 2-core machine)
    assert 1 / 3 <= kernel_kbps / in_kbps <= 3, (kernel_kbps, in_kbps)
    assert 1 / 3 <= kernel_fps / in_fps <= 3, (kernel_fps, in_fps)
