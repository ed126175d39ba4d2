"""Transcode any file PyAV opens into the clip codecs (VP8 or H.264, + Opus), once, in memory.

Used by :func:`sealrtc.media.clips.load_clip`, which caches the result; nothing here touches
the cache. The settings are in :data:`PARAMS` (and, for H.264, :data:`X264_PARAMS`), which are
part of the cache key: change one and every cached clip is made again. A
:class:`~sealrtc.media.shape.MediaShape` overrides the size (scaled to exactly WxH), the frame
rate and the bitrate; its settings are part of the key too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.video.frame import PictureType
from av.video.stream import VideoStream

from .errors import MediaError
from .shape import DEFAULT_SHAPE, MediaShape

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
OPUS_RATE = 48_000
OPUS_FRAME = 960  # 20 ms at 48 kHz: one RTP timestamp per packet
SILENT_OPUS = {1: b"\xf8\xff\xfe", 2: b"\xfc\xff\xfe"}  # 20 ms of silence (CELT, mono/stereo)
ALIGN_SECONDS = 1.0

PARAMS: dict[str, int | float | str] = {
    "max_width": 1280,
    "max_height": 720,
    "max_fps": 60,
    "keyframe_seconds": 2.0,
    "video_bitrate_640x360": 800_000,  # scaled with the pixel count, clamped below
    "video_bitrate_min": 150_000,
    "video_bitrate_max": 2_500_000,
    "max_intra_rate": 300,  # libvpx: a key frame costs at most 3x an average frame
    "audio_bitrate_per_channel": 32_000,
    "opus_frame": OPUS_FRAME,
    "max_seconds": 600.0,  # clips live in memory: at most 10 minutes of a file is used
    "align": "video cut to whole 20 ms, audio cut/padded to it, if within 1 s",
    "vpx": "realtime/cpu-used=8/lag-in-frames=0/keyint_min=gop",
}
X264_PARAMS = "baseline/zerolatency/veryfast/keyint_min=gop/in-band SPS+PPS"
"""How H.264 clips are encoded: constrained baseline (what every H.264 WebRTC peer decodes), no
B-frames, parameter sets before every IDR frame (a receiver can start at any key frame)."""
VIDEO_CODECS = ("vp8", "h264")


@dataclass
class Transcoded:
    """What :func:`transcode` makes: video frames ``(data, keyframe, pts 90 kHz)`` (VP8, or H.264
    as Annex-B access units) and Opus packets."""

    video: list[tuple[bytes, bool, int]] | None
    width: int
    height: int
    fps: int
    audio: list[bytes] | None
    channels: int


def reason(exc: BaseException) -> str:
    """A one-line reason from an exception (FFmpeg's strerror when there is one)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def fit_size(width: int, height: int) -> tuple[int, int]:
    """Scale down (never up) to fit the maximum size, keeping the aspect; even dimensions."""
    max_w, max_h = int(PARAMS["max_width"]), int(PARAMS["max_height"])
    scale = min(1.0, max_w / width, max_h / height)
    w = max(2, round(width * scale) // 2 * 2)
    h = max(2, round(height * scale) // 2 * 2)
    return min(w, max_w), min(h, max_h)


def clip_fps(stream: VideoStream) -> int:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        return 30
    return max(1, min(int(PARAMS["max_fps"]), round(float(rate))))


def video_bitrate(width: int, height: int) -> int:
    bitrate = int(PARAMS["video_bitrate_640x360"]) * width * height / (640 * 360)
    return int(min(int(PARAMS["video_bitrate_max"]), max(int(PARAMS["video_bitrate_min"]), bitrate)))


class _VideoOut:
    """Decoded frames in, constant-rate VP8 or H.264 out (frames repeated or dropped to hold the
    rate)."""

    def __init__(self, stream: VideoStream, codec: str = "vp8", shape: MediaShape = DEFAULT_SHAPE) -> None:
        self.codec = codec
        self.shape = shape
        self.fps = shape.fps or clip_fps(stream)
        self.width = self.height = 0  # from the first decoded frame
        self.gop = max(1, round(float(PARAMS["keyframe_seconds"]) * self.fps))
        self.limit = int(float(PARAMS["max_seconds"]) * self.fps)
        self.frames: list[tuple[bytes, bool, int]] = []
        self._encoder: av.VideoCodecContext | None = None
        self._pending: av.VideoFrame | None = None
        self._next = 0  # next output frame index
        self._t0: float | None = None
        self._decoded = 0

    @property
    def bitrate(self) -> int:
        return self.shape.video_bps or video_bitrate(self.width, self.height)

    def _open(self, first: av.VideoFrame) -> av.VideoCodecContext:
        if self.shape.width is not None and self.shape.height is not None:
            self.width, self.height = self.shape.width, self.shape.height
        else:
            self.width, self.height = fit_size(first.width, first.height)
        if self.codec == "h264":
            return self._open_x264()
        encoder = av.CodecContext.create("libvpx", "w")
        encoder.width, encoder.height = self.width, self.height
        encoder.pix_fmt = "yuv420p"
        encoder.framerate = Fraction(self.fps, 1)
        encoder.time_base = Fraction(1, self.fps)
        encoder.bit_rate = self.bitrate
        encoder.gop_size = self.gop
        encoder.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "max-intra-rate": str(PARAMS["max_intra_rate"]),
            "keyint_min": str(self.gop),  # = gop_size: no extra key frames at scene cuts
        }
        return encoder

    def _open_x264(self) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = self.width, self.height
        encoder.pix_fmt = "yuv420p"
        encoder.framerate = Fraction(self.fps, 1)
        encoder.time_base = Fraction(1, self.fps)
        encoder.bit_rate = self.bitrate
        encoder.gop_size = self.gop
        encoder.profile = "Baseline"
        encoder.options = {"tune": "zerolatency", "preset": "veryfast", "keyint_min": str(self.gop)}
        return encoder

    @property
    def full(self) -> bool:
        return self._next >= self.limit

    def add(self, frame: av.VideoFrame) -> None:
        t = frame.time if frame.time is not None else self._decoded / self.fps
        self._decoded += 1
        if self._t0 is None:
            self._t0 = t
            self._encoder = self._open(frame)
        target = round((t - self._t0) * self.fps)
        if self._pending is not None:
            # The pending frame fills the output slots before this frame's slot; a frame for a
            # slot already filled replaces the pending one (a faster source is thinned out).
            while self._next < min(target, self.limit):
                self._encode(self._pending)
        self._pending = frame

    def _encode(self, frame: av.VideoFrame | None) -> None:
        assert self._encoder is not None
        if frame is not None:
            image = frame.reformat(width=self.width, height=self.height, format="yuv420p")
            image.pts = self._next
            image.time_base = Fraction(1, self.fps)
            image.pict_type = PictureType.I if self._next % self.gop == 0 else PictureType.NONE
            self._next += 1
        else:
            image = None
        for packet in self._encoder.encode(image):
            index = packet.pts if packet.pts is not None else len(self.frames)
            self.frames.append((bytes(packet), bool(packet.is_keyframe), index * VIDEO_CLOCK_RATE // self.fps))

    def finish(self) -> None:
        if self._pending is not None and self._next < self.limit:
            self._encode(self._pending)
        if self._encoder is not None:
            self._encode(None)


class _AudioOut:
    """Decoded audio in, 20 ms Opus packets out (48 kHz, mono or stereo as the source)."""

    def __init__(self, stream: AudioStream) -> None:
        source_channels = stream.codec_context.channels or 2
        self.channels = 1 if source_channels == 1 else 2
        layout = "mono" if self.channels == 1 else "stereo"
        self.limit = int(float(PARAMS["max_seconds"]) * OPUS_RATE)
        self.packets: list[bytes] = []
        self._resampler = av.AudioResampler(format="s16", layout=layout, rate=OPUS_RATE, frame_size=OPUS_FRAME)
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = OPUS_RATE
        encoder.layout = layout
        encoder.format = "s16"
        encoder.bit_rate = int(PARAMS["audio_bitrate_per_channel"]) * self.channels
        encoder.time_base = Fraction(1, OPUS_RATE)
        encoder.options = {"frame_duration": "20", "application": "audio"}
        self._encoder = encoder
        self._samples = 0

    @property
    def full(self) -> bool:
        return self._samples >= self.limit

    def add(self, frame: av.AudioFrame | None) -> None:
        for chunk in self._resampler.resample(frame):
            if self.full:
                return
            chunk.pts = self._samples
            chunk.time_base = Fraction(1, OPUS_RATE)
            self._samples += chunk.samples
            self._encode(chunk)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self._encoder.encode(frame):
            self.packets.append(bytes(packet))

    def finish(self) -> None:
        if not self.full:
            self.add(None)
        if self._samples:
            self._encode(None)


def _usable_video(container: av.container.InputContainer) -> VideoStream | None:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is no video
            return stream
    return None


Progress = Callable[[float], None]
"""Called with the share of the file (0..1) transcoded so far, from the transcoding thread."""


def transcode(
    path: Path, video_codec: str = "vp8", shape: MediaShape = DEFAULT_SHAPE, progress: Progress | None = None
) -> Transcoded:
    """Decode ``path`` and encode it to ``video_codec`` (``"vp8"`` or ``"h264"``) + Opus in
    ``shape``; :class:`MediaError` if that is impossible. ``progress`` hears how far it got
    (at most once per percent)."""
    if video_codec not in VIDEO_CODECS:
        raise MediaError(f"cannot transcode to {video_codec!r}: choose one of {', '.join(VIDEO_CODECS)}")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{path.name} is not a media file PyAV can open: {reason(exc)}") from None
    with container:
        video_stream = _usable_video(container)
        audio_stream = container.streams.audio[0] if container.streams.audio else None
        if video_stream is None and audio_stream is None:
            raise MediaError(f"{path.name} has neither a video nor an audio stream")
        try:
            video = _VideoOut(video_stream, video_codec, shape) if video_stream is not None else None
            audio = _AudioOut(audio_stream) if audio_stream is not None else None
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"{path.name}: cannot set up the encoders: {reason(exc)}") from None
        streams = [s for s in (video_stream, audio_stream) if s is not None]
        if video_stream is not None:
            video_stream.thread_type = "AUTO"
        errors = 0
        meter = _Meter(container, progress)
        try:
            for packet in container.demux(streams):
                if (video is None or video.full) and (audio is None or audio.full):
                    break
                if (video is not None and video.full and packet.stream is video_stream) or (
                    audio is not None and audio.full and packet.stream is audio_stream
                ):
                    continue  # that stream has all it may hold: do not decode it any further
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    errors += 1  # a damaged packet: skip it, as players do
                    continue
                for frame in frames:
                    if isinstance(frame, (av.VideoFrame, av.AudioFrame)):
                        meter.at(frame.time)
                    if isinstance(frame, av.VideoFrame) and video is not None and not video.full:
                        video.add(frame)
                    elif isinstance(frame, av.AudioFrame) and audio is not None and not audio.full:
                        audio.add(frame)
            if video is not None:
                video.finish()
            if audio is not None:
                audio.finish()
            meter.done()
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"{path.name}: transcoding failed: {reason(exc)}") from None
    if errors:
        log.info("%s: %d undecodable packets skipped", path.name, errors)
    video_frames = video.frames if video is not None and video.frames else None
    audio_packets = audio.packets if audio is not None and audio.packets else None
    if video_frames is None and audio_packets is None:
        raise MediaError(f"{path.name} has no decodable video or audio")
    if video_frames and audio_packets and video and audio:
        video_frames, audio_packets = align(video_frames, video.fps, audio_packets, audio.channels)
    return Transcoded(
        video=video_frames,
        width=video.width if video_frames and video else 0,
        height=video.height if video_frames and video else 0,
        fps=video.fps if video_frames and video else 0,
        audio=audio_packets,
        channels=audio.channels if audio_packets and audio else 0,
    )


class _Meter:
    """Turns decoded frames' times into a share of the file transcoded (the file's duration,
    capped at what a clip may hold, is the whole)."""

    def __init__(self, container: av.container.InputContainer, progress: Progress | None) -> None:
        self.progress = progress
        seconds = container.duration / 1_000_000 if container.duration else 0.0  # AV_TIME_BASE
        self.total = min(seconds, float(PARAMS["max_seconds"]))
        self.start: float | None = None
        self.reported = -1

    def at(self, time: float | None) -> None:
        if self.progress is None or time is None or self.total <= 0:
            return
        if self.start is None:
            self.start = time
        percent = min(100, max(0, int((time - self.start) / self.total * 100)))
        if percent > self.reported:
            self.reported = percent
            self.progress(percent / 100)

    def done(self) -> None:
        if self.progress is not None and self.reported < 100:
            self.reported = 100
            self.progress(1.0)


def align(
    video: list[tuple[bytes, bool, int]], fps: int, audio: list[bytes], channels: int
) -> tuple[list[tuple[bytes, bool, int]], list[bytes]]:
    """Give video and audio the same length, so that looping them never drifts apart.

    The video is cut to a whole number of 20 ms (at most ``fps / gcd(fps, 50)`` frames, < 1 s,
    are dropped) and the audio cut or padded with silent Opus packets to exactly that length.
    Streams that differ by more than :data:`ALIGN_SECONDS` are left alone (each loops alone).
    """
    unit = fps // math.gcd(fps, 50)  # the fewest frames lasting a whole number of 20 ms
    frames = len(video) // unit * unit
    if frames == 0 or abs(len(video) / fps - len(audio) * OPUS_FRAME / OPUS_RATE) > ALIGN_SECONDS:
        return video, audio
    packets = frames * 50 // fps
    silence = SILENT_OPUS[channels]
    return video[:frames], audio[:packets] + [silence] * (packets - len(audio))


def duration_of(result: Transcoded) -> float:
    """Seconds of the longer of the two streams."""
    video = len(result.video) / result.fps if result.video and result.fps else 0.0
    audio = len(result.audio) * OPUS_FRAME / OPUS_RATE if result.audio else 0.0
    return max(video, audio)
