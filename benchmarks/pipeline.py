"""CPU per frame of an E2EE aiortc publisher+subscriber pair against a plain pair.

Run inside a private namespace: ``scripts/isolated python benchmarks/pipeline.py``.
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

Both pairs run in this process, alternating, with the same media: a pre-encoded VP8 clip
(640x360, 30 fps: aiortc's ``pack()`` path, so no encoder hides the cost) and an Opus tone.
CPU time is the process's (``time.process_time``) while frames stream; it is divided by the
frames the subscribing application received. Rounds are bounded and stop by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from rich.console import Console
from rich.table import Table

import sealrtc
from sealrtc.media import PreEncodedVideoTrack, ToneAudioTrack
from sealrtc.media.sources import encode_vp8_clip


async def run_pair(make_track: Callable[[], MediaStreamTrack], e2ee: bool, seconds: float) -> tuple[float, int]:
    pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if e2ee:
        sealrtc.attach(pub, sealrtc.SharedSecret("benchmark"))
        sealrtc.attach(sub, sealrtc.SharedSecret("benchmark"))
    pub.addTrack(make_track())
    frames = 0
    first = asyncio.Event()

    async def pump(track: MediaStreamTrack) -> None:
        nonlocal frames
        try:
            while True:
                await track.recv()
                frames += 1
                first.set()
        except MediaStreamError:
            pass

    tasks: list[asyncio.Task[None]] = []
    sub.on("track", lambda t: tasks.append(asyncio.ensure_future(pump(t))))
    await pub.setLocalDescription(await pub.createOffer())
    await sub.setRemoteDescription(pub.localDescription)
    await sub.setLocalDescription(await sub.createAnswer())
    await pub.setRemoteDescription(sub.localDescription)
    try:
        await asyncio.wait_for(first.wait(), 15)
        await asyncio.sleep(0.5)  # let start-up (DTLS, first key frame) settle before measuring
        cpu0, n0 = time.process_time(), frames
        await asyncio.sleep(seconds)  # the measurement window: media streams in real time
        cpu, n = time.process_time() - cpu0, frames - n0
    finally:
        for task in tasks:
            task.cancel()
        await pub.close()
        await sub.close()
    return cpu, n


async def main(rounds: int, seconds: float) -> None:
    if os.environ.get("SEALRTC_NETNS") != "1":
        raise SystemExit(f"run inside a private namespace: scripts/isolated {sys.executable} benchmarks/pipeline.py")
    clip = encode_vp8_clip(frames=90, width=640, height=360, gop=90)
    media: dict[str, Callable[[], MediaStreamTrack]] = {
        "pre-encoded VP8 640x360": lambda: PreEncodedVideoTrack(clip),
        "Opus tone (encoded live)": lambda: ToneAudioTrack(),
    }
    table = Table(title=f"CPU per frame, E2EE vs plain aiortc ({rounds} rounds x {seconds:.0f} s each, ABBA order)")
    for col in ("media", "plain µs/frame", "E2EE µs/frame", "E2EE / plain", "per-round ratios (min-max)", "frames"):
        table.add_column(col, justify="right")
    for name, make in media.items():
        totals = {False: [0.0, 0], True: [0.0, 0]}
        ratios: list[float] = []
        for r in range(rounds):
            per_frame = {}
            for e2ee in (False, True) if r % 2 == 0 else (True, False):  # ABBA: no order bias
                cpu, frames = await run_pair(make, e2ee, seconds)
                totals[e2ee][0] += cpu
                totals[e2ee][1] += frames
                per_frame[e2ee] = cpu / max(1, frames)
            ratios.append(per_frame[True] / per_frame[False])
        plain = totals[False][0] / max(1, int(totals[False][1]))
        sealed = totals[True][0] / max(1, int(totals[True][1]))
        table.add_row(
            name,
            f"{plain * 1e6:.0f}",
            f"{sealed * 1e6:.0f}",
            f"{sealed / plain:.3f}x",
            f"{min(ratios):.2f}-{max(ratios):.2f}",
            f"{int(totals[False][1])}/{int(totals[True][1])}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="rounds, each one plain and one E2EE run (default 8)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measurement window per round (default 4)")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
