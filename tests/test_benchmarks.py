"""The benchmarks' context lines: the machine (CPU model, cores, load) and the media (codec,
resolution, bitrate measured from the clip, RTP packets per frame), which every figure states."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from sealrtc.media.clips import Clip, ClipFrame, encode_entry

pytestmark = pytest.mark.unit

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import machine
        import media_clip

        yield machine, media_clip
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_machine_line_names_the_cpu_cores_and_load(bench: tuple[ModuleType, ModuleType]) -> None:
    machine, _ = bench
    line = machine.describe()
    assert machine.cpu_model() in line and f"{machine.usable_cores()} " in line and "load average" in line
    assert machine.cpu_model() and machine.cpu_model() != "unknown CPU"


def test_the_clip_meets_the_requested_bitrate_and_spans_several_packets(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    _, media_clip = bench
    low, default = (media_clip.encode_clip("vp8", kbps, frames=30) for kbps in (300, media_clip.DEFAULT_VIDEO_KBPS))

    def kbps(clip: list[tuple[bytes, bool]]) -> float:
        return sum(len(f) for f, _ in clip) * 8 * 30 / len(clip) / 1000

    assert media_clip.DEFAULT_VIDEO_KBPS >= 500
    assert 0.75 * media_clip.DEFAULT_VIDEO_KBPS <= kbps(default) <= 1.25 * media_clip.DEFAULT_VIDEO_KBPS
    assert kbps(low) < 0.6 * kbps(default)  # the bitrate moves with --video-bitrate
    packets = media_clip.rtp_packets("vp8", [f for f, _ in default])
    assert sum(packets) / len(packets) > 1.5  # a realistic 640x360 frame is more than one RTP packet
    line = media_clip.describe_video("vp8", [f for f, _ in default], 640, 360, 30)
    assert line.startswith("video: VP8 640x360 30 fps, ") and "kbit/s" in line and "RTP packets per frame" in line


def test_the_cached_clip_a_run_sent_is_described(bench: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    _, media_clip = bench
    frames = [ClipFrame(bytes(3000), i == 0, i) for i in range(30)]  # 3000 B at 30 fps = 720 kbit/s
    clip = Clip(video=frames, audio=[bytes(80)] * 50, width=640, height=360, fps=30, channels=1, key="k" * 64)
    (tmp_path / f"{'k' * 64}.clip").write_bytes(encode_entry(clip))
    video, audio = media_clip.describe_cached_clip(tmp_path)
    assert video.startswith("video: VP8 640x360 30 fps, 720 kbit/s") and "3.00 RTP packets per frame" in video
    assert audio.startswith("audio: Opus 20 ms frames, 32 kbit/s")
    assert media_clip.describe_cached_clip(tmp_path / "empty") == [
        "media: no clip in the cache (the run did not transcode one)"
    ]
