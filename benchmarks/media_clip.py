"""The clip the benchmarks publish: a moving VP8 640x360 30 fps pattern and a 440 Hz Opus tone.

Imported by ``load.py`` and ``probes.py`` (run them with the project's Python, see their docstrings).
"""

from __future__ import annotations

from pathlib import Path


def make_movie(path: Path, seconds: float = 4.0) -> Path:
    import av
    import numpy as np

    from sealrtc.media import pattern_image

    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=30)
        video.width, video.height, video.pix_fmt, video.bit_rate = 640, 360, "yuv420p", 800_000
        audio = out.add_stream("libopus", rate=48_000, layout="mono")
        for i in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(pattern_image(640, 360, i), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in range(0, int(seconds * 48_000), 960):
            t = (np.arange(960) + start) / 48_000
            pcm = (np.sin(2 * np.pi * 440 * t) * 0.3).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48_000, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path
