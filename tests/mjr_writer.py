"""Synthetic Janus recordings for tests: RTP packets, ``.mjr`` files, and real VP8/Opus frames
(libvpx and libopus through PyAV) to put in them."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from fractions import Fraction
from functools import cache

import av
import numpy as np

from sealrtc.media import pattern_image

from .vp8_payloads import vp8_packetize


def rtp(
    sequence: int,
    timestamp: int,
    payload: bytes,
    *,
    marker: bool = False,
    csrcs: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """One RTP v2 packet (payload type 96). ``extension`` is the body (a multiple of 4 bytes)."""
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | csrcs
    out = struct.pack("!BBHII", first, 96 | (0x80 if marker else 0), sequence & 0xFFFF, timestamp & 0xFFFFFFFF, 0x1234)
    out += b"".join(struct.pack("!I", 1000 + i) for i in range(csrcs))
    if extension is not None:
        out += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    out += payload
    if padding:
        out += bytes(padding - 1) + bytes([padding])
    return out


def mjr(kind: str, codec: str, packets: Iterable[bytes], *, header: bytes | None = None) -> bytes:
    """A version-2 ``.mjr`` file: ``kind`` is ``"v"``, ``"a"`` or ``"d"``."""
    head = header if header is not None else json.dumps({"t": kind, "c": codec, "s": 1, "u": 2}).encode()
    out = [b"MJR00002", struct.pack("!H", len(head)), head]
    for i, packet in enumerate(packets):
        out += [b"MEET", struct.pack("!IH", 20 * i, len(packet)), packet]
    return b"".join(out)


def vp8_packets(frames: Iterable[bytes], *, sequence: int = 1, timestamp: int = 0) -> list[bytes]:
    """The RTP packets aiortc would send for ``frames`` (marker on each frame's last packet)."""
    packets = []
    for index, frame in enumerate(frames):
        payloads = vp8_packetize(frame, index & 0x7FFF)
        for j, payload in enumerate(payloads):
            packets.append(rtp(sequence, timestamp + 3000 * index, payload, marker=j == len(payloads) - 1))
            sequence += 1
    return packets


def opus_packets(frames: Iterable[bytes], *, sequence: int = 1) -> list[bytes]:
    return [rtp(sequence + i, 960 * i, frame, marker=i == 0) for i, frame in enumerate(frames)]


@cache
def vp8_frames(count: int = 90, key_every: int = 30) -> tuple[bytes, ...]:
    """A moving test pattern, 320x240, encoded by libvpx with a key frame every ``key_every``."""
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 30), Fraction(30)
    encoder.gop_size = key_every
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frames: list[bytes] = []
    for index in range(count):
        image = av.VideoFrame.from_ndarray(pattern_image(320, 240, index), format="rgb24").reformat(format="yuv420p")
        image.pts = index
        frames += [bytes(p) for p in encoder.encode(image)]
    frames += [bytes(p) for p in encoder.encode(None)]
    return tuple(frames)


TONE: Callable[[np.ndarray], np.ndarray] = lambda t: np.sin(2 * np.pi * 440 * t)  # noqa: E731


@cache
def opus_frames(count: int = 100, signal: str = "tone") -> tuple[bytes, ...]:
    """20 ms libopus frames of a 440 Hz tone, or of white noise (seeded)."""
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.time_base = Fraction(1, 48_000)
    rng = np.random.default_rng(7)
    frames: list[bytes] = []
    for index in range(count):
        t = np.arange(960 * index, 960 * (index + 1)) / 48_000
        wave = TONE(t) * 0.3 if signal == "tone" else rng.normal(0, 0.1, 960)
        pcm = (wave * 32767).astype(np.int16).reshape(1, -1)
        chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        chunk.sample_rate, chunk.pts = 48_000, 960 * index
        frames += [bytes(p) for p in encoder.encode(chunk)]
    return tuple(frames)
