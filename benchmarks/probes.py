"""CPU of probes and metrics in a verify-only subscriber (budget: < 5% of its CPU).

Run inside a private namespace: ``scripts/isolated python benchmarks/probes.py``.
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

The relay and two publishers run as separate processes (pre-encoded VP8 640x360 30 fps + Opus,
E2EE): one publishes with ``--probe``, one without. This process holds only verify-only
subscribers, so its CPU time (``time.process_time``) is theirs. Rounds alternate in ABBA order:
A = no probes, metrics off (``attach(measure=False)``); B = probes on, metrics on. The cost of
probes + metrics is (B - A) / B per frame. Everything is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from rich.console import Console
from rich.table import Table

import sealrtc
from machine import describe  # benchmarks/machine.py
from media_clip import describe_cached_clip, make_movie  # benchmarks/media_clip.py
from sealrtc import pipeline as pipeline_module
from sealrtc.media.clips import load_clip
from sealrtc.metrics import ReceiveMetrics
from sealrtc.signaling.whip import delete_resource, whep_subscribe

SECRET = "probe benchmark"
INSIDE_NS = [0]
"""Nanoseconds spent inside probe stripping and metrics recording (instrumented, same run)."""


def instrument() -> None:
    """Time the two calls probes and metrics add to the receive hook, in the live subscribers."""
    split, record = pipeline_module.split_probe, ReceiveMetrics.frame  # type: ignore[attr-defined]
    clock = time.perf_counter_ns

    def timed_split(data: bytes) -> object:
        t0 = clock()
        out = split(data)
        INSIDE_NS[0] += clock() - t0
        return out

    def timed_record(self: ReceiveMetrics, *args: object) -> None:
        t0 = clock()
        record(self, *args)  # type: ignore[arg-type]
        INSIDE_NS[0] += clock() - t0

    pipeline_module.split_probe = timed_split  # type: ignore[attr-defined,assignment]
    ReceiveMetrics.frame = timed_record  # type: ignore[method-assign,assignment]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


INSIDE_SHARE: list[float] = []


async def subscriber_round(url: str, count: int, measure: bool, seconds: float) -> tuple[float, int]:
    pcs: list[RTCPeerConnection] = []
    resources: list[str] = []
    frames = 0
    tasks: list[asyncio.Task[None]] = []

    async def drain(track: MediaStreamTrack) -> None:
        nonlocal frames
        try:
            while True:
                await track.recv()
                frames += 1
        except MediaStreamError:
            pass

    for _ in range(count):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sealrtc.attach(pc, sealrtc.SharedSecret(SECRET), decode=False, measure=measure)
        pc.on("track", lambda track: tasks.append(asyncio.ensure_future(drain(track))))
        resources.append(await whep_subscribe(pc, url))
        pcs.append(pc)
    await asyncio.sleep(2.0)  # warm-up: connect, first key frame (a measurement window, not a sync)
    cpu0, frames0, inside0 = time.process_time(), frames, INSIDE_NS[0]
    await asyncio.sleep(seconds)  # the measurement window
    cpu, got = time.process_time() - cpu0, frames - frames0
    INSIDE_SHARE.append((INSIDE_NS[0] - inside0) / 1e9 / cpu * 100 if measure else 0.0)
    for task in tasks:
        task.cancel()
    for resource in resources:
        await delete_resource(resource)
    for pc in pcs:
        await pc.close()
    return cpu, got


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="ABBA rounds in total (even; default 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per round (default 5)")
    parser.add_argument("--subscribers", type=int, default=4, help="verify-only subscribers per round (default 4)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sealrtc-probes-"))
    movie = make_movie(work / "movie.webm")
    load_clip(movie, cache_dir=work / "cache")  # transcoded now: the publishers start from the cache
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"SEALRTC_SECRET": SECRET}
    total = args.rounds * (args.seconds + 4) + 30
    exe = [sys.executable, "-m", "sealrtc"]
    relay = await asyncio.create_subprocess_exec(
        *exe, "relay", "--listen", f"127.0.0.1:{port}", "--duration", str(total), stderr=asyncio.subprocess.PIPE
    )
    assert relay.stderr is not None
    await relay.stderr.readline()  # "sealrtc relay on ...": it listens
    media = ["--media", str(movie), "--cache-dir", str(work / "cache"), "--duration", str(total), "--quiet"]
    publishers = [
        await asyncio.create_subprocess_exec(*exe, "publish", "--whip", f"{base}/whip/plain", *media, env=env),
        await asyncio.create_subprocess_exec(
            *exe, "publish", "--whip", f"{base}/whip/probe", "--probe", *media, env=env
        ),
    ]
    await asyncio.sleep(3.0)  # the clip is cached: let both publishers start
    instrument()
    per_frame: dict[str, list[float]] = {"A": [], "B": []}
    order = ["A", "B", "B", "A"] * (args.rounds // 4 or 1)
    console = Console(width=180)
    try:
        for mode in order:
            room = "probe" if mode == "B" else "plain"
            cpu, frames = await subscriber_round(f"{base}/whep/{room}", args.subscribers, mode == "B", args.seconds)
            if frames == 0:
                raise SystemExit(f"round {mode}: no frame arrived (is the {room} publisher running?)")
            per_frame[mode].append(cpu / max(frames, 1) * 1e6)
            console.print(f"round {mode}: {frames} frames, {per_frame[mode][-1]:.1f} µs CPU per frame")
    finally:
        for proc in [*publishers, relay]:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
    a, b = statistics.median(per_frame["A"]), statistics.median(per_frame["B"])
    shares = [x for x, mode in zip(INSIDE_SHARE, order, strict=True) if mode == "B"]
    for line in (describe(), *describe_cached_clip(work / "cache")):
        console.print(line)
    table = Table(title="verify-only subscriber: CPU of probes + metrics (same run)")
    for col in ("A: no probes/metrics µs/frame", "B: probes+metrics µs/frame", "B-A / B", "inside probe+metrics code"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{a:.1f} ({min(per_frame['A']):.0f}-{max(per_frame['A']):.0f})",
        f"{b:.1f} ({min(per_frame['B']):.0f}-{max(per_frame['B']):.0f})",
        f"{(b - a) / b * 100:.1f}%",
        f"{statistics.median(shares):.2f}% ({min(shares):.2f}-{max(shares):.2f}%)",
    )
    console.print(table)
    console.print(
        "The last column is exact (instrumented time inside split_probe + ReceiveMetrics.frame over the "
        "process CPU); B-A is the same quantity by subtraction and carries the run's noise."
    )


if __name__ == "__main__":
    asyncio.run(main())
