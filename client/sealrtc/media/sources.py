"""Sources: a test-pattern video track, a tone audio track, looping pre-encoded VP8 and Opus tracks.

They pace themselves in real time like aiortc's own ``VideoStreamTrack`` (that is media timing,
not synchronisation) and stop by themselves after ``duration`` seconds when one is given.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.codeccontext import VideoCodecContext

from .clips import Clip, ClipFrame
from .shape import DEFAULT_SHAPE, SYNTHETIC_FPS, SYNTHETIC_SIZE, MediaShape

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020  # one Opus packet per RTP timestamp (aiortc's jitter buffer merges more)
_TEXTURE_LEVELS = 64
_TEXTURE_STEP = 3
"""Pixels the texture scrolls per frame."""


def pattern_image(width: int, height: int, index: int = 0, moving: bool = True) -> npt.NDArray[np.uint8]:
    """An RGB24 frame: smooth colour gradients plus, if ``moving``, a bright square that moves."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    frame[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    frame[..., 2] = 128
    size = max(8, min(width, height) // 6)
    if moving:
        left = (index * 4) % max(1, width - size)
        top = (index * 2) % max(1, height - size)
    else:
        left, top = (width - size) // 2, (height - size) // 2
    frame[top : top + size, left : left + size] = (255, 255, 255)
    return frame


class _Paced(MediaStreamTrack):
    def __init__(self, duration: float | None) -> None:
        super().__init__()
        self._duration = duration
        self._start: float | None = None

    async def _wait_for(self, media_time: float) -> None:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        if self._duration is not None and media_time >= self._duration:
            self.stop()
            raise MediaStreamError
        delay = self._start + media_time - now
        if delay > 0:
            await asyncio.sleep(delay)


class TestPatternVideoTrack(_Paced):
    """Decoded RGB frames of :func:`pattern_image`, for aiortc to encode (VP8 by default)."""

    kind = "video"
    __test__ = False  # not a pytest class, despite its name

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        fps: int = 30,
        *,
        moving: bool = True,
        duration: float | None = None,
        texture: bool = False,
    ) -> None:
        """``texture``: lay a fine noise texture over the pattern that scrolls every frame, so an
        encoder has detail to spend a high bitrate on (the plain pattern is so simple that VP8
        stays near 300 kbit/s whatever its target). Seeded: every run sends the same pictures."""
        super().__init__(duration)
        self.width, self.height, self.fps, self.moving = width, height, fps, moving
        self.frames_sent = 0
        self._static = pattern_image(width, height, moving=False) if not moving else None
        self._texture = (
            np.random.default_rng(0).integers(0, _TEXTURE_LEVELS, size=(height, 2 * width, 1), dtype=np.uint8)
            if texture
            else None
        )

    def pattern(self, index: int) -> npt.NDArray[np.uint8]:
        image = self._static if self._static is not None else pattern_image(self.width, self.height, index, True)
        if self._texture is None:
            return image
        offset = (index * _TEXTURE_STEP) % self.width
        # 3/4 of the pattern + up to 1/4 of noise: never above 255
        return image // 4 * 3 + self._texture[:, offset : offset + self.width]

    async def recv(self) -> av.VideoFrame:
        index = self.frames_sent
        await self._wait_for(index / self.fps)
        frame = av.VideoFrame.from_ndarray(self.pattern(index), format="rgb24")
        frame.pts = index * VIDEO_CLOCK_RATE // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.frames_sent += 1
        return frame


class ToneAudioTrack(_Paced):
    """A sine tone in 20 ms mono frames at 48 kHz, for aiortc to encode with Opus."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3, *, duration: float | None = None) -> None:
        super().__init__(duration)
        self.frequency = frequency
        self.amplitude = amplitude
        self.frames_sent = 0
        self._samples = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)

    async def recv(self) -> av.AudioFrame:
        index = self.frames_sent
        await self._wait_for(index * AUDIO_PTIME)
        t = (np.arange(self._samples) + index * self._samples) / AUDIO_SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * self.frequency * t) * self.amplitude * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = index * self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self.frames_sent += 1
        return frame


def encode_vp8_clip(
    frames: int = 60, width: int = 320, height: int = 240, fps: int = 30, gop: int = 30
) -> list[tuple[bytes, bool]]:
    """Encode a moving test pattern to VP8 once: ``[(frame bytes, is_keyframe), ...]``."""
    options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return _encode_pattern("libvpx", options, None, frames, width, height, fps, gop)


def encode_h264_clip(
    frames: int = 60, width: int = 320, height: int = 240, fps: int = 30, gop: int = 30
) -> list[tuple[bytes, bool]]:
    """Encode a moving test pattern to H.264 (constrained baseline, libx264, parameter sets
    before every IDR frame) once: ``[(Annex-B access unit, is_keyframe), ...]``."""
    options = {"tune": "zerolatency", "preset": "veryfast", "keyint_min": str(gop)}
    return _encode_pattern("libx264", options, "Baseline", frames, width, height, fps, gop)


def _encode_pattern(
    encoder: str, options: dict[str, str], profile: str | None, frames: int, width: int, height: int, fps: int, gop: int
) -> list[tuple[bytes, bool]]:
    codec = av.CodecContext.create(encoder, "w")
    assert isinstance(codec, VideoCodecContext)
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(fps, 1)
    codec.time_base = fractions.Fraction(1, fps)
    codec.bit_rate = 500_000
    codec.gop_size = gop
    if profile is not None:
        codec.profile = profile
    codec.options = options
    out: list[tuple[bytes, bool]] = []
    for i in range(frames):
        image = av.VideoFrame.from_ndarray(pattern_image(width, height, i), format="rgb24").reformat(format="yuv420p")
        image.pts = i
        for packet in codec.encode(image):
            out.append((bytes(packet), bool(packet.is_keyframe)))
    for packet in codec.encode(None):
        out.append((bytes(packet), bool(packet.is_keyframe)))
    return out


class PreEncodedVideoTrack(_Paced):
    """Loops a pre-encoded VP8 or H.264 clip as ``av.Packet``s (aiortc's ``pack()`` path: no encoding).

    ``clip`` is ``[(frame bytes, is_keyframe), ...]`` (see :func:`encode_vp8_clip`,
    :func:`encode_h264_clip`) or the
    ``video`` of a :class:`~sealrtc.media.clips.Clip`. Timestamps are ``frames_sent / fps`` in
    90 kHz units, so they keep increasing when the clip loops.

    Implements ``request_keyframe()``: the hook sealrtc calls on PLI/FIR and after a secret
    rotation; the next packet sent is the clip's next key frame. That skips up to one key-frame
    interval of the picture (timestamps stay regular), so the video then runs ahead of a clip's
    audio by what it skipped.
    """

    kind = "video"

    def __init__(
        self, clip: Sequence[tuple[bytes, bool]] | Sequence[ClipFrame], fps: int = 30, *, duration: float | None = None
    ) -> None:
        super().__init__(duration)
        frames = [(item.data, item.keyframe) if isinstance(item, ClipFrame) else item for item in clip]
        if not frames or not any(key for _, key in frames):
            raise ValueError("a pre-encoded clip needs at least one key frame")
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.clip = frames
        self.fps = fps
        self.frames_sent = 0
        self.keyframes_sent = 0
        self.keyframe_requests = 0
        self._position = 0
        self._keyframe_wanted = False

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        index = self.frames_sent
        await self._wait_for(index / self.fps)
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            while not self.clip[self._position][1]:
                self._position = (self._position + 1) % len(self.clip)
        data, keyframe = self.clip[self._position]
        self._position = (self._position + 1) % len(self.clip)
        packet = av.Packet(data)
        packet.pts = index * VIDEO_CLOCK_RATE // self.fps
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.frames_sent += 1
        self.keyframes_sent += keyframe
        return packet


class PreEncodedAudioTrack(_Paced):
    """Loops 20 ms Opus packets as ``av.Packet``s (pts in 48 kHz units, increasing across loops).

    aiortc's ``OpusEncoder.pack()`` sends each packet as one RTP payload, unchanged.
    """

    kind = "audio"

    def __init__(self, packets: Sequence[bytes], channels: int = 2, *, duration: float | None = None) -> None:
        super().__init__(duration)
        if not packets:
            raise ValueError("a pre-encoded audio clip needs at least one packet")
        self.packets = list(packets)
        self.channels = channels
        self.frames_sent = 0
        self._samples = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        index = self.frames_sent
        await self._wait_for(index * AUDIO_PTIME)
        packet = av.Packet(self.packets[index % len(self.packets)])
        packet.pts = index * self._samples
        packet.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self.frames_sent += 1
        return packet


def tracks_for_clip(
    clip: Clip, *, duration: float | None = None, shape: MediaShape = DEFAULT_SHAPE
) -> tuple[PreEncodedVideoTrack | None, PreEncodedAudioTrack | None]:
    """Looping tracks for the streams a clip has (None for a stream it lacks or ``shape`` leaves out)."""
    video = PreEncodedVideoTrack(clip.video, clip.fps, duration=duration) if clip.video and shape.video else None
    audio = PreEncodedAudioTrack(clip.audio, clip.channels, duration=duration) if clip.audio and shape.audio else None
    return video, audio


def synthetic_tracks(
    shape: MediaShape = DEFAULT_SHAPE, *, moving: bool = True, duration: float | None = None
) -> tuple[TestPatternVideoTrack | None, ToneAudioTrack | None]:
    """The test pattern (in ``shape``'s size and rate) and the tone, each unless ``shape`` leaves
    it out. With a bitrate the pattern carries a moving texture, so the encoder can reach it; the
    bitrate itself is the encoder's business (:func:`sealrtc.rtc.internals.fix_video_bitrate`)."""
    width, height = (shape.width, shape.height) if shape.width and shape.height else SYNTHETIC_SIZE
    video = (
        TestPatternVideoTrack(
            width,
            height,
            shape.fps or SYNTHETIC_FPS,
            moving=moving,
            duration=duration,
            texture=shape.video_kbps is not None,
        )
        if shape.video
        else None
    )
    audio = ToneAudioTrack(duration=duration) if shape.audio else None
    return video, audio
