"""Verify-only publisher->subscriber pairs per core under `sealrtc load`: E2EE vs --no-e2ee.

Run inside a private namespace: ``scripts/isolated python benchmarks/load.py``.
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

Each run is a real ``sealrtc load`` with N rooms of one publisher and one verify-only subscriber,
on ONE worker process (so its CPU is "per core"), against the embedded relay (its own process,
not counted: it plays the SFU). Media: ``media_clip.py``'s movie (a grainy moving pattern,
640x360 30 fps, + an Opus tone) as ``sealrtc load --media`` transcodes it: at sealrtc's default
bitrate, or ``--video-bitrate`` kbit/s (handed to ``sealrtc load``); the clip that was sent is read
back from the run's clip cache and described (bitrate, RTP packets per frame) above the table,
with the machine. For each N,
E2EE and plain runs alternate in ABBA order. Reported per run: the worker's CPU in the steady
state (median of the per-second CPU after the ramp), pairs per core = N / CPU, delivered frames
(100% - loss from probe sequences) and video fps. Bounded: every run stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from machine import describe  # benchmarks/machine.py
from media_clip import describe_cached_clip, make_movie  # benchmarks/media_clip.py


def run(pairs: int, e2ee: bool, movie: Path, work: Path, duration: float, kbps: int | None) -> dict[str, Any]:
    out = work / f"run-{pairs}-{'e2ee' if e2ee else 'plain'}-{len(list(work.glob('run-*')))}.json"
    cmd = [sys.executable, "-m", "sealrtc", "load", "--rooms", str(pairs), "--subscribers", "1",
           "--workers", "1", "--duration", str(duration), "--ramp", "20", "--media", str(movie),
           "--cache-dir", str(work / "cache"), "--quiet", "--json", str(out),
           "--assert", "joined == planned"]  # fmt: skip
    if not e2ee:
        cmd.append("--no-e2ee")
    if kbps is not None:
        cmd += ["--video-bitrate", str(kbps)]
    done = subprocess.run(cmd, env=os.environ | {"SEALRTC_SECRET": "load benchmark"}, capture_output=True, timeout=600)
    if not out.exists():
        raise SystemExit(f"sealrtc load wrote no report: {done.stderr.decode(errors='replace').strip()[-500:]}")
    report = json.loads(out.read_text())
    ramp_end = pairs * 2 / 20 + 2
    steady = [r for r in report["intervals"] if r["t"] > ramp_end and r["cpu_percent"] is not None]
    cpu = statistics.median(r["cpu_percent"] for r in steady) if steady else float("nan")
    fps = statistics.median(r["fps"] for r in steady if r["fps"] is not None) if steady else float("nan")
    frames = report["metrics"]["frames"]
    delivered = 100 * frames["decrypted"] / max(1, frames["decrypted"] + frames["lost"])
    return {
        "cpu": cpu, "per_core": pairs / (cpu / 100) if cpu else float("nan"), "delivered": delivered,
        "fps": fps, "joined": report["participants"]["joined"], "planned": report["participants"]["planned"],
        "saturated": report["generator"]["saturated"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="8,16,32", help="comma-separated N values (default 8,16,32)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA half-rounds per N (default 2 = AB BA)")
    parser.add_argument(
        "--video-bitrate",
        type=int,
        metavar="KBPS",
        help="video bitrate of the transcoded clip, kbit/s (sealrtc load --video-bitrate; default: sealrtc's, "
        "800 kbit/s at 640x360); what was sent is measured and printed",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sealrtc-loadbench-"))
    movie = make_movie(work / "movie.webm")
    console = Console(width=180)
    console.print(describe())
    table = Table(title="sealrtc load, one worker: verify-only pairs, E2EE vs plain (ABBA, same run)")
    for col in ("pairs", "plain CPU %", "E2EE CPU %", "E2EE / plain", "E2EE pairs/core", "plain pairs/core",
                "delivered E2EE / plain", "fps E2EE", "per-round ratios", "saturated runs"):  # fmt: skip
        table.add_column(col, justify="right")
    for pairs in (int(p) for p in args.pairs.split(",")):
        results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        order = [False, True, True, False] * max(1, args.rounds // 2)
        for e2ee in order:
            result = run(pairs, e2ee, movie, work, args.duration, args.video_bitrate)
            results[e2ee].append(result)
            console.print(f"{pairs} pairs {'E2EE ' if e2ee else 'plain'}: {result}")
        plain = statistics.median(r["cpu"] for r in results[False])
        sealed = statistics.median(r["cpu"] for r in results[True])
        ratios = [s["cpu"] / p["cpu"] for p, s in zip(results[False], results[True], strict=False)]
        table.add_row(
            str(pairs), f"{plain:.1f}", f"{sealed:.1f}", f"{sealed / plain:.3f}x",
            f"{pairs / (sealed / 100):.0f}", f"{pairs / (plain / 100):.0f}",
            f"{min(r['delivered'] for r in results[True]):.1f}% / {min(r['delivered'] for r in results[False]):.1f}%",
            f"{statistics.median(r['fps'] for r in results[True]):.1f}",
            f"{min(ratios):.2f}-{max(ratios):.2f}",
            f"{sum(bool(r['saturated']) for r in results[True] + results[False])}/{len(order)}",
        )  # fmt: skip
    for line in (describe(), *describe_cached_clip(work / "cache")):
        console.print(line)
    console.print(table)


if __name__ == "__main__":
    main()
