"""Start-up latency through a real Janus, E2EE on: median and p95 over N runs.

Run inside a private namespace: ``scripts/isolated python benchmarks/janus.py``.
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

* subscribe -> first decrypted frame: a publisher is already streaming; time from the start of
  the subscription (Janus session creation included) to the subscriber's first decrypted frame.
* publish -> first frame at subscriber: a subscriber is already in the room; time from the start
  of the publication to the subscriber's first decrypted frame.
Each run uses a fresh room participant set on one private Janus; runs are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from machine import describe  # benchmarks/machine.py
from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.testing.janus_server import RoomConfig, cleanup, start_janus

ROOM = 4242


def first_decrypted(agent: SubscriberAgent) -> float | None:
    times = [t["first_frame_at"] for t in agent.track_stats() if t.get("first_frame_at") is not None]
    return min(times) if times else None


async def wait_first(agent: SubscriberAgent, timeout: float = 15) -> float:
    async def loop() -> float:
        while (t := first_decrypted(agent)) is None:
            await agent.changed.wait()
            agent.changed.clear()
        return t

    return await asyncio.wait_for(loop(), timeout)


async def one_run(url: str, publish_first: bool) -> float:
    keys = SharedSecret("benchmark")
    pub, sub = PublisherAgent(keys), SubscriberAgent(keys)
    try:
        if publish_first:
            await pub.publish_janus(url, ROOM)
            start = time.monotonic()
            await sub.subscribe_janus(url, ROOM)
        else:
            await sub.subscribe_janus(url, ROOM)
            start = time.monotonic()
            await pub.publish_janus(url, ROOM)
        return await wait_first(sub) - start
    finally:
        await sub.close()
        await pub.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main(runs: int) -> None:
    if os.environ.get("SEALRTC_NETNS") != "1":
        raise SystemExit(f"run inside a private namespace: scripts/isolated {sys.executable} benchmarks/janus.py")
    server = await start_janus([RoomConfig(ROOM, require_e2ee=True)])
    table = Table(title=f"Janus start-up latency, E2EE on ({runs} runs each)")
    for col in ("measure", "median ms", "p95 ms", "min ms", "max ms"):
        table.add_column(col, justify="right")
    try:
        for name, publish_first in (
            ("subscribe -> first decrypted frame", True),
            ("publish -> first frame at subscriber", False),
        ):
            samples = [await one_run(server.url, publish_first) for _ in range(runs)]
            table.add_row(
                name,
                f"{statistics.median(samples) * 1e3:.0f}",
                f"{p95(samples) * 1e3:.0f}",
                f"{min(samples) * 1e3:.0f}",
                f"{max(samples) * 1e3:.0f}",
            )
    finally:
        cleanup(server)
    console = Console(width=140)
    console.print(describe())
    console.print("media: the publisher agent's test pattern (VP8 encoded live by aiortc) and Opus tone")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per measure (default 20)")
    asyncio.run(main(parser.parse_args().runs))
