"""CPU of E2EE aiortc publisher+subscriber pairs against plain ones, measured side by side.

Run inside a private namespace: ``scripts/isolated python benchmarks/pipeline.py``.
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

Every pair (a publishing and a subscribing ``RTCPeerConnection``) runs in this process; CPU time
is the process's (``time.process_time``, all threads) while media streams in real time, divided
by the frames the subscribing application received. Plain and E2EE runs alternate in ABBA order
(round r: plain then E2EE when r is even, E2EE then plain when odd), so drift in the machine's
load hits both alike; every round gives one E2EE/plain ratio and the table reports their median
and spread next to the ratio of the totals. Everything is bounded and stops by itself.

Modes:

Media: ``media_clip.py``'s clip (a grainy moving pattern, 640x360 30 fps, ``--video-bitrate``
kbit/s, default 600, so frames span several RTP packets as real ones do); the machine and the media,
as measured from the clip, are printed above every table.

* ``pair`` (default): one pair at a time, pre-encoded VP8 640x360 30 fps, the same in H.264
  (constrained baseline; aiortc's ``pack()`` path, so no encoder hides the cost) and an Opus
  tone encoded live. Subscribers either decode
  (plain = aiortc without sealrtc) or verify only (``attach(decode=False)``; plain = a sealrtc
  session without keys, which hands over the same encoded frames without decrypting them).
  An in-situ table follows, as in ``pairs``.
* ``pairs``: N verify-only pairs at once (the load case), each with pre-encoded VP8 + Opus.
  After the ABBA rounds, one more E2EE round per N times every ``encrypt`` and
  ``decrypt_or_drop`` call where it runs (thread CPU time, timer cost subtracted): the frame
  transform's own cost *in situ* (cold caches and all), next to plain's whole per-frame cost.
  ``1 + transform/plain`` is the ratio E2EE cannot go below while the transform costs that
  much; unlike the ABBA ratio it is measured directly, not as a difference of two noisy runs.
* ``sweep``: CPU per pair and frames delivered against the number of pairs, plain and E2EE, for
  verify-only and decoding subscribers (one round each, so a density curve, not a ratio).

The event loop is uvloop when installed (``SEALRTC_LOOP=asyncio`` for asyncio's own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from rich.console import Console
from rich.table import Table

import sealrtc
from machine import describe  # benchmarks/machine.py
from media_clip import DEFAULT_VIDEO_KBPS, describe_opus, describe_video, encode_clip  # benchmarks/media_clip.py
from sealrtc import transform
from sealrtc.media import PreEncodedVideoTrack, ToneAudioTrack
from sealrtc.media.sources import PreEncodedAudioTrack
from sealrtc.rtc.policy import prefer_video_codec
from sealrtc.shell import eventloop

SECRET = "benchmark"
SUITE = [6]
"""The SFrame cipher suite of E2EE runs (``--suite``; 6 = sealrtc's default)."""
SUSTAINED = 0.95
"""A sweep cell counts as a capacity only when at least this share of the frames arrived."""
Tracks = Callable[[], list[MediaStreamTrack]]
H264_CASES: set[int] = set()
"""``id()`` of the track factories whose video is H.264 (their publishers offer only H.264)."""


@dataclass
class Round:
    cpu: float
    received: int
    sent: int
    pairs: int
    seconds: float

    @property
    def per_frame_us(self) -> float:
        return self.cpu / max(1, self.received) * 1e6

    @property
    def core_per_pair(self) -> float:
        """Share of one core per pair (0.01 = 1%)."""
        return self.cpu / self.seconds / self.pairs

    @property
    def delivered(self) -> float:
        return min(1.0, self.received / max(1, self.sent))


def opus_packets(seconds: float = 1.0) -> list[bytes]:
    """A 440 Hz tone as 20 ms stereo Opus packets, encoded once."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48_000, "stereo", "s16", 64_000
    out: list[bytes] = []
    for start in range(0, int(seconds * 48_000), 960):
        t = (np.arange(960) + start) / 48_000
        pcm = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2)[None, :], format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48_000, start
        out += [bytes(p) for p in codec.encode(frame)]
    return out


async def run_round(make: Tracks, pairs: int, e2ee: bool, decode: bool, seconds: float) -> Round:
    """``pairs`` pairs streaming for ``seconds`` (after start-up has settled)."""
    pcs: list[RTCPeerConnection] = []
    sources: list[MediaStreamTrack] = []
    tasks: list[asyncio.Task[None]] = []
    received = 0
    first = asyncio.Event()
    started = 0

    async def pump(track: MediaStreamTrack) -> None:
        nonlocal received, started
        try:
            await track.recv()
            started += 1
            if started == expected_tracks:
                first.set()
            while True:
                await track.recv()
                received += 1
        except MediaStreamError:
            pass

    async def connect() -> None:
        pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.extend([pub, sub])
        if e2ee or not decode:  # plain + decoding = aiortc alone
            sealrtc.attach(pub, keys, measure=False)
            sealrtc.attach(sub, keys, decode=decode, measure=False)
        for track in make():
            sources.append(track)
            pub.addTrack(track)
        if id(make) in H264_CASES:
            prefer_video_codec(pub, "h264")
        sub.on("track", lambda t: tasks.append(asyncio.ensure_future(pump(t))))
        await pub.setLocalDescription(await pub.createOffer())
        await sub.setRemoteDescription(pub.localDescription)
        await sub.setLocalDescription(await sub.createAnswer())
        await pub.setRemoteDescription(sub.localDescription)

    expected_tracks = pairs * len(make())
    # One key set for the round (PBKDF2 once, not per peer): per-frame work is the same.
    keys = sealrtc.SharedSecret(SECRET, suite=SUITE[0]) if e2ee else None
    try:
        for start in range(0, pairs, 8):  # connect in batches: start-up is not what is measured
            await asyncio.gather(*(connect() for _ in range(min(8, pairs - start))))
        await asyncio.wait_for(first.wait(), 30 + pairs)
        await asyncio.sleep(1.0)  # let start-up (DTLS, first key frames) settle before measuring
        gc.collect()
        sent0 = sum(getattr(t, "frames_sent", 0) for t in sources)
        cpu0, n0 = time.process_time(), received
        await asyncio.sleep(seconds)  # the measurement window: media streams in real time
        cpu, n = time.process_time() - cpu0, received - n0
        sent = sum(getattr(t, "frames_sent", 0) for t in sources) - sent0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(pc.close() for pc in pcs))
        await asyncio.sleep(0.5)  # let the closed peers' last tasks finish outside the next window
    return Round(cpu, n, sent or n, pairs, seconds)


async def abba(make: Tracks, pairs: int, decode: bool, rounds: int, seconds: float) -> dict[bool, list[Round]]:
    out: dict[bool, list[Round]] = {False: [], True: []}
    for r in range(rounds):
        for e2ee in (False, True) if r % 2 == 0 else (True, False):  # ABBA: no order bias
            out[e2ee].append(await run_round(make, pairs, e2ee, decode, seconds))
    return out


@dataclass
class TransformTime:
    """Thread CPU time spent inside the frame transform, per direction."""

    encrypt_ns: int = 0
    encrypts: int = 0
    decrypt_ns: int = 0
    decrypts: int = 0


def _timer_cost_ns(n: int = 200_000) -> float:
    """What a timed call adds to its own measurement (an empty body, timed the same way)."""
    clock = time.thread_time_ns
    total = 0
    for _ in range(n):
        start = clock()
        total += clock() - start
    return total / n


@contextlib.contextmanager
def timed_transform() -> Iterator[TransformTime]:
    """Time every encrypt and decrypt call where it runs (the class methods, wrapped for the
    duration: benchmark instrumentation, never used by the measured ABBA rounds)."""
    spent = TransformTime()
    encrypt, decrypt = transform.FrameEncryptor.encrypt, transform.FrameDecryptor.decrypt_or_drop
    clock = time.thread_time_ns

    def timed_encrypt(self: transform.FrameEncryptor, frame: bytes) -> bytes:
        start = clock()
        out = encrypt(self, frame)
        spent.encrypt_ns += clock() - start
        spent.encrypts += 1
        return out

    def timed_decrypt(self: transform.FrameDecryptor, data: bytes) -> bytes | None:
        start = clock()
        out = decrypt(self, data)
        spent.decrypt_ns += clock() - start
        spent.decrypts += 1
        return out

    transform.FrameEncryptor.encrypt = timed_encrypt  # type: ignore[method-assign]
    transform.FrameDecryptor.decrypt_or_drop = timed_decrypt  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        transform.FrameEncryptor.encrypt = encrypt  # type: ignore[method-assign]
        transform.FrameDecryptor.decrypt_or_drop = decrypt  # type: ignore[method-assign]


async def in_situ_row(
    name: str, make: Tracks, pairs: int, decode: bool, seconds: float, plain: list[Round]
) -> list[str]:
    """One timed E2EE round: the transform's cost per call and per received frame, in situ."""
    overhead = _timer_cost_ns()
    with timed_transform() as spent:
        await run_round(make, pairs, True, decode, seconds)
    encrypt_us = (spent.encrypt_ns / max(1, spent.encrypts) - overhead) / 1000
    decrypt_us = (spent.decrypt_ns / max(1, spent.decrypts) - overhead) / 1000
    per_frame = encrypt_us + decrypt_us  # every received frame was encrypted once, decrypted once
    plain_us = sum(r.cpu for r in plain) / max(1, sum(r.received for r in plain)) * 1e6
    return [
        name,
        f"{encrypt_us:.1f}",
        f"{decrypt_us:.1f}",
        f"{per_frame:.1f}",
        f"{plain_us:.0f}",
        f"{1 + per_frame / plain_us:.3f}x",
    ]


def in_situ_table(title: str) -> Table:
    table = Table(title=title)
    for col in ("case", "encrypt µs/call", "decrypt µs/call", "transform µs/frame", "plain µs/frame", "floor"):
        table.add_column(col, justify="right")
    return table


def ratio_row(name: str, result: dict[bool, list[Round]]) -> list[str]:
    plain, sealed = result[False], result[True]
    ratios = [s.per_frame_us / p.per_frame_us for p, s in zip(plain, sealed, strict=True)]
    total_plain = sum(r.cpu for r in plain) / max(1, sum(r.received for r in plain)) * 1e6
    total_sealed = sum(r.cpu for r in sealed) / max(1, sum(r.received for r in sealed)) * 1e6
    delivered = min(r.delivered for r in plain + sealed)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return [
        name,
        f"{total_plain:.0f}",
        f"{total_sealed:.0f}",
        f"{total_sealed / total_plain:.3f}x",
        f"{statistics.median(ratios):.3f}x",
        f"{quartiles[0]:.2f}-{quartiles[2]:.2f}",
        f"{min(ratios):.2f}-{max(ratios):.2f}",
        " ".join(f"{x:.2f}" for x in ratios),
        f"{statistics.median(r.core_per_pair for r in plain) * 100:.2f}/"
        f"{statistics.median(r.core_per_pair for r in sealed) * 100:.2f}",
        f"{delivered * 100:.1f}",
    ]


def ratio_table(title: str) -> Table:
    table = Table(title=title)
    for col in (
        "case",
        "plain µs/frame",
        "E2EE µs/frame",
        "E2EE/plain (totals)",
        "median round",
        "IQR",
        "spread",
        "per-round ratios",
        "% core/pair plain/E2EE",
        "min delivered %",
    ):
        table.add_column(col, justify="right")
    return table


def media(clip: list[tuple[bytes, bool]], h264: list[tuple[bytes, bool]], opus: list[bytes]) -> dict[str, Tracks]:
    def h264_track() -> list[MediaStreamTrack]:
        return [PreEncodedVideoTrack(h264)]

    H264_CASES.add(id(h264_track))
    return {
        "VP8": lambda: [PreEncodedVideoTrack(clip)],
        "H.264": h264_track,
        "Opus": lambda: [ToneAudioTrack()],
        "VP8+Opus": lambda: [PreEncodedVideoTrack(clip), PreEncodedAudioTrack(opus)],
    }


async def main(args: argparse.Namespace) -> None:
    if os.environ.get("SEALRTC_NETNS") != "1":
        raise SystemExit(
            "run inside a private namespace: scripts/isolated python benchmarks/pipeline.py (the project's Python)"
        )
    clip = encode_clip("vp8", args.video_bitrate)
    h264 = encode_clip("h264", args.video_bitrate) if args.mode == "pair" else []
    opus = opus_packets()
    tracks = media(clip, h264, opus)
    console = Console(width=200)
    console.print(describe())
    console.print(describe_video("vp8", [f for f, _ in clip], 640, 360, 30, label=" (VP8 cases)"))
    if h264:
        console.print(describe_video("h264", [f for f, _ in h264], 640, 360, 30, label=" (H.264 cases)"))
    console.print(describe_opus(opus, label=" (VP8+Opus pairs; the Opus cases encode a tone live)"))
    loop = f"{eventloop.loop_name()}, suite {SUITE[0]:#06x}"
    load = os.getloadavg()[0]
    if args.mode == "pair":
        table = ratio_table(
            f"1 pair, E2EE vs plain ({args.rounds} rounds x {args.seconds:g} s, ABBA; {loop}; load {load:.1f})"
        )
        situ = in_situ_table("The frame transform in situ (one timed E2EE round per case)")
        for decode in (False, True):
            for name in ("VP8", "H.264", "Opus"):
                case = f"{name} {'decoding' if decode else 'verify-only'}"
                result = await abba(tracks[name], 1, decode, args.rounds, args.seconds)
                table.add_row(*ratio_row(case, result))
                situ.add_row(*await in_situ_row(case, tracks[name], 1, decode, args.seconds, result[False]))
        console.print(table)
        console.print(situ)
    elif args.mode == "pairs":
        table = ratio_table(
            f"N verify-only pairs (VP8 640x360 + Opus, pre-encoded), E2EE vs plain "
            f"({args.rounds} rounds x {args.seconds:g} s, ABBA; {loop}; load {load:.1f})"
        )
        situ = in_situ_table(
            "The frame transform in situ (one timed E2EE round per N; floor = 1 + transform/plain per frame)"
        )
        for pairs in args.pairs:
            result = await abba(tracks["VP8+Opus"], pairs, False, args.rounds, args.seconds)
            table.add_row(*ratio_row(f"{pairs} pairs", result))
            situ.add_row(*await in_situ_row(f"{pairs} pairs", tracks["VP8+Opus"], pairs, False, args.seconds,
                                            result[False]))  # fmt: skip
        console.print(table)
        console.print(situ)
    else:
        table = Table(
            title=f"Density: VP8 640x360 + Opus pairs in one process ({args.seconds:g} s each; {loop}; load {load:.1f})"
        )
        for col in ("subscribers", "pairs", "mode", "% core total", "% core/pair", "pairs/core", "delivered %"):
            table.add_column(col, justify="right")
        for decode, counts in ((False, args.pairs), (True, args.decode_pairs)):
            for pairs in (n for n in counts if n > 0):  # 0: none of that kind
                for e2ee in (False, True):
                    r = await run_round(tracks["VP8+Opus"], pairs, e2ee, decode, args.seconds)
                    table.add_row(
                        "decoding" if decode else "verify-only",
                        str(pairs),
                        "E2EE" if e2ee else "plain",
                        f"{r.cpu / r.seconds * 100:.0f}",
                        f"{r.core_per_pair * 100:.2f}",
                        f"{1 / r.core_per_pair:.0f}" if r.delivered >= SUSTAINED else "n/a",
                        f"{r.delivered * 100:.1f}",
                    )
        console.print(table)
        console.print(
            f"pairs/core is n/a where under {SUSTAINED:.0%} of the frames arrived: the process did not keep up, "
            "so its CPU share is not a capacity"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("pair", "pairs", "sweep"), default="pair")
    parser.add_argument("--rounds", type=int, default=8, help="ABBA rounds, each one plain and one E2EE run (8)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measurement window per run (default 4)")
    parser.add_argument("--pairs", type=int, nargs="+", default=None, help="pairs (pairs: 16 32; sweep: 8 32 64 100)")
    parser.add_argument("--decode-pairs", type=int, nargs="+", default=[2, 4, 8], help="sweep: decoding pairs")
    parser.add_argument("--suite", type=int, default=6, help="SFrame cipher suite of the E2EE runs (default 6)")
    parser.add_argument(
        "--video-bitrate",
        type=int,
        default=DEFAULT_VIDEO_KBPS,
        metavar="KBPS",
        help=f"video bitrate the clip is encoded at, kbit/s (default {DEFAULT_VIDEO_KBPS}; measured and printed)",
    )
    arguments = parser.parse_args()
    SUITE[0] = arguments.suite
    if arguments.pairs is None:
        arguments.pairs = [16, 32] if arguments.mode == "pairs" else [8, 32, 64, 100]
    eventloop.run(main(arguments))
