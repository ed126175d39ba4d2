"""The media the benchmarks publish, and the line that describes it next to their figures.

Video is a moving test pattern with a little seeded grain (+-4 levels, as a camera's sensor noise):
without it, a realtime VP8 encoder compresses the bare pattern to ~240 kbit/s whatever bitrate it
is asked for, one RTP packet per frame, which is not what a real 640x360 session sends. With the
grain, the encoder's rate control meets the requested bitrate (``--video-bitrate``, default
:data:`DEFAULT_VIDEO_KBPS`) and frames span several RTP packets, as real ones do. Audio is a
440 Hz Opus tone. Every benchmark prints :func:`describe_video` (codec, resolution, frame rate,
bitrate *measured from the clip*, RTP packets per frame as aiortc packetizes it).

Imported by ``pipeline.py``, ``load.py`` and ``probes.py`` (run them with the project's Python,
see their docstrings).
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

DEFAULT_VIDEO_KBPS = 600
"""Default video bitrate at 640x360 (real sessions of that size send 500-800 kbit/s)."""
GRAIN = 4
"""Amplitude of the seeded noise added to the pattern (levels of 255)."""

Clip = list[tuple[bytes, bool]]
"""``[(encoded frame, is_keyframe), ...]``, as ``sealrtc.media.PreEncodedVideoTrack`` takes it."""


def _image(width: int, height: int, index: int, rng: np.random.Generator) -> np.ndarray:
    from sealrtc.media import pattern_image

    image = pattern_image(width, height, index).astype(np.int16)
    image += rng.integers(-GRAIN, GRAIN + 1, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode_clip(
    codec: str = "vp8",
    kbps: int = DEFAULT_VIDEO_KBPS,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    frames: int = 90,
    gop: int = 90,
) -> Clip:
    """Encode the grainy pattern once with the encoders' realtime settings (libvpx as aiortc and
    sealrtc's transcoder configure it; libx264 constrained baseline, zerolatency)."""
    if codec == "vp8":
        context = av.CodecContext.create("libvpx", "w")
        options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        context = av.CodecContext.create("libx264", "w")
        context.profile = "Baseline"
        options = {"tune": "zerolatency", "preset": "veryfast", "keyint_min": str(gop)}
    context.width, context.height, context.pix_fmt = width, height, "yuv420p"
    context.framerate, context.time_base = fractions.Fraction(fps, 1), fractions.Fraction(1, fps)
    context.bit_rate, context.gop_size, context.options = kbps * 1000, gop, options
    rng = np.random.default_rng(2021)
    out: Clip = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(_image(width, height, i, rng), format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(None)]
    return out


def rtp_packets(codec: str, frames: Sequence[bytes], fps: int = 30) -> list[int]:
    """How many RTP packets aiortc's packetizer makes of each frame (plain; an E2EE frame is
    ~17 bytes longer)."""
    from aiortc.codecs.h264 import H264Encoder
    from aiortc.codecs.vpx import Vp8Encoder

    encoder = Vp8Encoder() if codec == "vp8" else H264Encoder()
    counts = []
    for i, data in enumerate(frames):
        packet = av.Packet(data)
        packet.pts, packet.time_base = i, fractions.Fraction(1, fps)
        counts.append(len(encoder.pack(packet)[0]))
    return counts


def describe_video(codec: str, frames: Sequence[bytes], width: int, height: int, fps: float, *, label: str = "") -> str:
    """``video: VP8 640x360 30 fps, 603 kbit/s (measured over the clip), 2.2 RTP packets per
    frame (max 9)``."""
    if not frames:
        return "video: none"
    kbps = sum(len(f) for f in frames) * 8 * fps / len(frames) / 1000
    packets = rtp_packets(codec, frames, round(fps))
    name = {"vp8": "VP8", "h264": "H.264"}.get(codec, codec)
    return (
        f"video{label}: {name} {width}x{height} {fps:g} fps, {kbps:.0f} kbit/s (measured over the clip's "
        f"{len(frames)} frames), {sum(packets) / len(packets):.2f} RTP packets per frame (max {max(packets)})"
    )


def describe_opus(packets: Sequence[bytes], *, ms: int = 20, label: str = "") -> str:
    if not packets:
        return "audio: none"
    kbps = sum(len(p) for p in packets) * 8 / (len(packets) * ms / 1000) / 1000
    return f"audio{label}: Opus {ms} ms frames, {kbps:.0f} kbit/s, one RTP packet per frame"


def describe_cached_clip(cache_dir: Path) -> list[str]:
    """The media lines of the clip ``sealrtc`` transcoded into ``cache_dir`` most recently
    (what a ``sealrtc load`` / ``publish --media`` run with that cache really sent)."""
    from sealrtc.media.clips import decode_entry

    entries = sorted(cache_dir.glob("*.clip"), key=lambda p: p.stat().st_mtime)
    if not entries:
        return ["media: no clip in the cache (the run did not transcode one)"]
    clip = decode_entry(entries[-1].read_bytes(), entries[-1].stem)
    lines = []
    if clip.video:
        frames = [f.data for f in clip.video]
        lines.append(describe_video(clip.video_codec, frames, clip.width or 0, clip.height or 0, clip.fps or 30))
    lines.append(describe_opus(clip.audio or []))
    return lines


def make_movie(path: Path, seconds: float = 4.0) -> Path:
    """A media file for ``--media``: the grainy pattern at a high bitrate (4 Mbit/s VP8, so the
    transcoder's rate control, not this source, decides what is sent) and a mono Opus tone."""
    rng = np.random.default_rng(2021)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=30)
        video.width, video.height, video.pix_fmt, video.bit_rate = 640, 360, "yuv420p", 4_000_000
        audio = out.add_stream("libopus", rate=48_000, layout="mono")
        for i in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(_image(640, 360, i, rng), format="rgb24")
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


if __name__ == "__main__":
    for codec in ("vp8", "h264"):
        clip = encode_clip(codec)
        print(describe_video(codec, [f for f, _ in clip], 640, 360, 30))
