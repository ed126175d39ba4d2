"""Decrypted recording: remux encoded frames into files, without re-encoding.

VP8 goes to WebM (``.webm``), H.264 to MPEG-TS (``.ts``: Annex-B as it is, parameter sets in
band), Opus to Ogg (``.ogg``, RFC 7845). This is the archive an SFU
cannot make under E2EE: a subscriber writes the frames it decrypted. Frames come with their RTP
timestamps (90 kHz video, 48 kHz Opus), starting anywhere and wrapping at 2^32.

A recorder never raises on a frame: a frame it cannot use (empty, not of its codec, before the
first video key frame, out of order) is counted in :attr:`TrackRecorder.frames_skipped`. A jump of
the RTP clock (more than 5 s back or 5 min forward: a restarted sender) is counted in
:attr:`TrackRecorder.discontinuities` and the file carries on one frame later. The file is
created with the first written frame, so a recorder closed with no frame leaves no file.
"""

from __future__ import annotations

import logging
import struct
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from av.container import OutputContainer
from av.stream import Stream

from ..layout import Codec, is_keyframe
from .errors import MediaError

log = logging.getLogger(__name__)

_WRAP = 1 << 32
_CODECS = {
    "video/vp8": ("vp8", ".webm", "webm", 90_000),
    "video/h264": ("h264", ".ts", "mpegts", 90_000),
    "audio/opus": ("opus", ".ogg", "ogg", 48_000),
}
_BACK_JUMP = 5.0  # seconds: a timestamp this far back is a restarted clock, not reordering
_FORWARD_JUMP = 300.0  # seconds: a gap this long is a restarted clock, not a pause
_OPUS_SAMPLES = (480, 960, 1920, 2880)  # SILK frame sizes at 48 kHz: 10, 20, 40, 60 ms


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is a VP8 key frame (RFC 6386 9.1), else None."""
    if len(data) < 10 or not is_keyframe(Codec.VP8, data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", data, 6)
    width, height = width & 0x3FFF, height & 0x3FFF
    return (width, height) if width and height else None


def opus_packet_samples(data: bytes) -> int | None:
    """Samples at 48 kHz in an Opus packet (RFC 6716 3.1), None if it is not a valid packet."""
    if not data:
        return None
    toc = data[0]
    config = toc >> 3
    if config < 12:
        per_frame = _OPUS_SAMPLES[config & 3]
    elif config < 16:
        per_frame = 480 << (config & 1)
    else:
        per_frame = 120 << (config & 3)
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    elif len(data) < 2 or not data[1] & 0x3F:
        return None
    else:
        count = data[1] & 0x3F
    samples = per_frame * count
    return samples if samples <= 5760 else None  # at most 120 ms


def opus_head(channels: int, pre_skip: int = 0) -> bytes:
    """The 19-byte Ogg Opus identification header (RFC 7845 5.1), channel mapping family 0."""
    if channels not in (1, 2):
        raise ValueError("mapping family 0 has 1 or 2 channels")
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, 48_000, 0, 0)


class TrackRecorder:
    """Writes one track's encoded frames to a file (see the module docstring)."""

    def __init__(self, path: Path, codec: str) -> None:
        """Use :meth:`open`."""
        self.path = path
        self.codec = codec
        self.frames_written = 0
        self.frames_skipped = 0
        self.discontinuities = 0
        """Times the RTP clock jumped (a restarted sender); the file carries on without a gap."""
        self._kind, _, self._format, self._clock_rate = _CODECS[codec]
        self._container: OutputContainer | None = None
        self._stream: Stream | None = None
        self._failed = False
        self._closed = False
        self._last_raw: int | None = None
        self._extended = 0
        self._origin: int | None = None
        self._last_pts = -1

    @classmethod
    def open(cls, path_without_ext: Path, codec: str) -> TrackRecorder:
        """A recorder for ``codec`` ("video/VP8" -> ``.webm``, "video/H264" -> ``.ts``,
        "audio/opus" -> ``.ogg``)."""
        key = codec.lower()
        if key not in _CODECS:
            raise MediaError(f"cannot record {codec}: only {', '.join(sorted(_CODECS))}")
        base = Path(path_without_ext)
        if not base.parent.is_dir():
            raise MediaError(f"cannot record to {base}: {base.parent} is not a directory")
        return cls(base.with_name(base.name + _CODECS[key][1]), key)

    def write(self, data: bytes, timestamp: int, keyframe: bool = False) -> None:
        """Add one frame. ``keyframe`` is a hint: video key frames are recognised in the data."""
        if self._closed or self._failed:
            self.frames_skipped += 1
            return
        extended = self._unwrap(timestamp & (_WRAP - 1))
        if self._kind == "vp8":
            size = vp8_keyframe_size(data)
            is_key = size is not None
            if self._container is None and (size is None or not self._start(size, 0)):
                self.frames_skipped += 1  # nothing decodes before the first key frame
                return
            duration = None
        elif self._kind == "h264":
            is_key = is_keyframe(Codec.H264, data)
            if self._container is None and (not is_key or not self._start((0, 0), 0)):
                self.frames_skipped += 1  # nothing decodes before the first IDR frame
                return
            duration = None
        else:
            samples = opus_packet_samples(data)
            is_key = True
            if samples is None or (self._container is None and not self._start(None, 2 if data[0] & 4 else 1)):
                self.frames_skipped += 1
                return
            duration = samples
        if self._origin is None:
            self._origin = extended
        pts = extended - self._origin
        if self._last_pts >= 0 and not -_BACK_JUMP < (pts - self._last_pts) / self._clock_rate < _FORWARD_JUMP:
            # The sender's clock restarted (a new source): carry on one nominal frame later.
            self.discontinuities += 1
            pts = self._last_pts + (duration or self._clock_rate // 30)
            self._origin = extended - pts
        if pts <= self._last_pts:
            self.frames_skipped += 1  # out of order or repeated: containers need increasing times
            return
        if self._container is None or self._stream is None:
            self.frames_skipped += 1
            return
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = Fraction(1, self._clock_rate)
        packet.is_keyframe = is_key
        if duration is not None:
            packet.duration = duration
        try:
            self._container.mux_one(packet)
        except (av.FFmpegError, ValueError, OSError) as exc:
            self.frames_skipped += 1
            log.debug("%s: frame not written: %s", self.path.name, exc)
            return
        self._last_pts = pts
        self.frames_written += 1

    def _unwrap(self, timestamp: int) -> int:
        if self._last_raw is not None:
            delta = (timestamp - self._last_raw) % _WRAP
            self._extended += delta - _WRAP if delta >= _WRAP // 2 else delta
        else:
            self._extended = timestamp
        self._last_raw = timestamp
        return self._extended

    def _start(self, size: tuple[int, int] | None, channels: int) -> bool:
        try:
            container = av.open(str(self.path), mode="w", format=self._format)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._failed = True
            log.warning("cannot record to %s: %s", self.path, exc)
            return False
        try:
            if size is not None:
                # H.264 in MPEG-TS needs no size: its SPS travels in band.
                stream: Stream = container.add_mux_stream(self._kind, width=size[0], height=size[1])
            else:
                audio = container.add_stream("libopus", rate=48_000, layout="mono" if channels == 1 else "stereo")
                # The encoder is opened only so that its parameters reach the muxer; the packets
                # are ours, and so is the OpusHead (pre-skip 0: the stream starts mid-way anyway).
                audio.codec_context.open()
                audio.codec_context.extradata = opus_head(channels)
                stream = audio
            stream.time_base = Fraction(1, self._clock_rate)
            container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._failed = True
            log.warning("cannot record to %s: %s", self.path, exc)
            container.close()
            self.path.unlink(missing_ok=True)
            return False
        self._container, self._stream = container, stream
        return True

    def close(self) -> None:
        """Finish the file (idempotent). With no frame written, no file is left behind."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.warning("closing %s: %s", self.path, exc)
        if self.frames_written == 0:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> TrackRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TrackRecorder({str(self.path)!r}, {self.codec}, written={self.frames_written}, "
            f"skipped={self.frames_skipped})"
        )
