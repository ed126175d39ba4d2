"""Media files as pre-encoded clips (VP8 or H.264, + Opus), transcoded once and cached on disk.

:func:`load_clip` opens anything PyAV opens, transcodes it with :mod:`.transcode` and stores the
result in the clip cache; the next call for the same file content is a cache hit that decodes
nothing. ``load_clip`` is CPU-bound and blocking: async callers run it in a thread.

Cache directory: ``cache_dir`` if given, else ``$SEALRTC_CACHE_DIR``, else
``$XDG_CACHE_HOME/sealrtc/clips``, else ``~/.cache/sealrtc/clips``.

Cache key: SHA-256 over the format version, the transcoding parameters (JSON; for H.264 also
the video codec and its encoder settings; the :class:`~sealrtc.media.shape.MediaShape`'s size,
frame rate and bitrate when given) and the SHA-256 of the file *content* (not its name
or time stamp); the entry is ``<key>.clip``. Entries are written to a temporary file in the
same directory and renamed into place, so a crash never leaves a partial entry; an entry that
fails its checks (e.g. truncated or edited) is made again. The cache is bounded: after a write,
least recently used entries (a hit refreshes an entry's mtime) are removed while the directory
holds more than :data:`MAX_CACHE_BYTES`, and temporary files older than an hour (left by a
crash) go too.

Entry format (version 1; integers big-endian)::

    b"SEALCLIP"  u16 version  u32 n  metadata: n bytes of UTF-8 JSON
    video frames (metadata.video.frames of them): u8 flags (bit 0: key frame)  u64 pts  u32 n  data
    audio packets (metadata.audio.packets of them): u32 n  data
    SHA-256 of all the bytes before it (32 bytes)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import transcode
from .errors import MediaError
from .shape import DEFAULT_SHAPE, MediaShape

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"SEALCLIP"
_HEAD = struct.Struct(">8sHI")
_VIDEO = struct.Struct(">BQI")
_AUDIO = struct.Struct(">I")
_DIGEST = 32
MAX_ENTRY_BYTES = 1 << 30  # a cache entry larger than this is not read
MAX_CACHE_BYTES = 4 << 30  # the clip cache is pruned (least recently used first) above this
_STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True)
class ClipFrame:
    """One video frame of a clip (VP8, or an H.264 access unit)."""

    data: bytes
    keyframe: bool
    pts: int
    """Presentation time in 90 kHz units from the start of the clip."""


@dataclass(frozen=True, eq=False)
class Clip:
    """A pre-encoded clip: VP8 or H.264 video and/or 20 ms Opus packets (48 kHz), ready to loop."""

    video: list[ClipFrame] | None
    audio: list[bytes] | None
    """Opus packets, 20 ms (960 samples at 48 kHz) each."""
    width: int = 0
    height: int = 0
    fps: int = 0
    channels: int = 0
    duration: float = 0.0
    """Seconds (the longer of the two streams)."""
    source: str = ""
    """File name the clip was made from (for reports)."""
    key: str = ""
    """Cache key (hex SHA-256)."""
    video_codec: str = "vp8"
    """``"vp8"`` or ``"h264"``."""
    from_cache: bool = field(default=False, compare=False)
    """True when this clip was read from the cache rather than transcoded."""


def default_cache_dir() -> Path:
    """Where clips are cached when no ``cache_dir`` is given (see the module docstring)."""
    if explicit := os.environ.get("SEALRTC_CACHE_DIR"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sealrtc" / "clips"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise MediaError(f"cannot read {path.name}: {transcode.reason(exc)}") from None
    return digest.hexdigest()


def cache_key(content_sha256: str, video_codec: str = "vp8", shape: MediaShape = DEFAULT_SHAPE) -> str:
    """The cache key of a file with this content digest under the current parameters."""
    fields: dict[str, object] = {"format": FORMAT_VERSION, "params": transcode.PARAMS, "content": content_sha256}
    if video_codec != "vp8":
        fields.update(video_codec=video_codec, encoder=transcode.X264_PARAMS)
    if shape.transcode_params:
        fields["shape"] = shape.transcode_params
    material = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def load_clip(
    path: str | Path,
    *,
    cache_dir: Path | None = None,
    video_codec: str = "vp8",
    shape: MediaShape = DEFAULT_SHAPE,
    progress: transcode.Progress | None = None,
) -> Clip:
    """The clip of a media file in ``shape``, from the cache or transcoded now (and then cached).

    Raises :class:`MediaError` (one-line message) for a missing, unreadable or non-media file
    and for a file with neither video nor audio. A cache that cannot be written is logged and
    the clip is still returned (:func:`cache_dir_problem` lets a caller say so first).
    ``progress`` hears how far a transcode got (not called on a cache hit).
    """
    source = Path(path)
    if not source.is_file():
        raise MediaError(f"{source} is not a file" if source.exists() else f"{source}: no such file")
    if video_codec not in transcode.VIDEO_CODECS:
        raise MediaError(f"cannot transcode to {video_codec!r}: choose one of {', '.join(transcode.VIDEO_CODECS)}")
    key = cache_key(_file_digest(source), video_codec, shape)
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    entry = directory / f"{key}.clip"
    if entry.exists():
        try:
            clip = _read_entry(entry, key)
            _touch(entry)
            return clip
        except (_Corrupt, OSError) as exc:
            log.warning("clip cache entry %s is unusable (%s): making it again", entry.name, exc)
    result = transcode.transcode(source, video_codec, shape, progress)
    clip = Clip(
        video=[ClipFrame(data, key_, pts) for data, key_, pts in result.video] if result.video else None,
        audio=result.audio,
        width=result.width,
        height=result.height,
        fps=result.fps,
        channels=result.channels,
        duration=transcode.duration_of(result),
        source=source.name,
        key=key,
        video_codec=video_codec,
    )
    try:
        _write_entry(directory, entry, clip)
        prune_cache(directory, keep=entry)
    except OSError as exc:
        log.warning("cannot write the clip cache in %s: %s", directory, transcode.reason(exc))
    return clip


def cache_dir_problem(directory: Path) -> str | None:
    """Why clips cannot be cached in ``directory`` (made if missing), or None when they can: a
    trial file is created and removed, so an unwritable directory or a file in its place is found
    before a transcode rather than after it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, trial = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".probe")
        os.close(fd)
        os.unlink(trial)
    except OSError as exc:
        if isinstance(exc, (FileExistsError, NotADirectoryError)) or (directory.exists() and not directory.is_dir()):
            return "it is not a directory"
        return transcode.reason(exc)
    return None


class _Corrupt(Exception):
    pass


def encode_entry(clip: Clip) -> bytes:
    """The cache entry bytes of a clip (the format in the module docstring)."""
    meta = {
        "source": clip.source,
        "duration": clip.duration,
        "video": None
        if clip.video is None
        else {
            "frames": len(clip.video),
            "width": clip.width,
            "height": clip.height,
            "fps": clip.fps,
            "codec": clip.video_codec,
        },
        "audio": None if clip.audio is None else {"packets": len(clip.audio), "channels": clip.channels},
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    parts = [_HEAD.pack(MAGIC, FORMAT_VERSION, len(meta_bytes)), meta_bytes]
    for frame in clip.video or ():
        parts += [_VIDEO.pack(1 if frame.keyframe else 0, frame.pts, len(frame.data)), frame.data]
    for packet in clip.audio or ():
        parts += [_AUDIO.pack(len(packet)), packet]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def decode_entry(blob: bytes, key: str = "") -> Clip:
    """Parse cache entry bytes; :class:`_Corrupt` (internal) if they are not a valid entry."""
    if len(blob) < _HEAD.size + _DIGEST or hashlib.sha256(blob[:-_DIGEST]).digest() != blob[-_DIGEST:]:
        raise _Corrupt("checksum mismatch")
    magic, version, meta_len = _HEAD.unpack_from(blob)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise _Corrupt("not a clip entry of this version")
    end = len(blob) - _DIGEST
    offset = _HEAD.size + meta_len
    try:
        meta = json.loads(blob[_HEAD.size : offset])
        video_meta, audio_meta = meta["video"], meta["audio"]
        video: list[ClipFrame] | None = None
        if video_meta is not None:
            video = []
            for _ in range(int(video_meta["frames"])):
                flags, pts, size = _VIDEO.unpack_from(blob, offset)
                offset += _VIDEO.size
                video.append(ClipFrame(blob[offset : offset + size], bool(flags & 1), pts))
                offset += size
        audio: list[bytes] | None = None
        if audio_meta is not None:
            audio = []
            for _ in range(int(audio_meta["packets"])):
                (size,) = _AUDIO.unpack_from(blob, offset)
                offset += _AUDIO.size
                audio.append(blob[offset : offset + size])
                offset += size
        if offset != end:
            raise _Corrupt("length mismatch")
        return Clip(
            video=video,
            audio=audio,
            width=int(video_meta["width"]) if video_meta else 0,
            height=int(video_meta["height"]) if video_meta else 0,
            fps=int(video_meta["fps"]) if video_meta else 0,
            channels=int(audio_meta["channels"]) if audio_meta else 0,
            duration=float(meta["duration"]),
            source=str(meta["source"]),
            key=key,
            video_codec=str(video_meta.get("codec", "vp8")) if video_meta else "vp8",
            from_cache=True,
        )
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise _Corrupt(f"bad structure: {exc}") from None


def _read_entry(entry: Path, key: str) -> Clip:
    if entry.stat().st_size > MAX_ENTRY_BYTES:
        raise _Corrupt("too large")
    return decode_entry(entry.read_bytes(), key)


def _write_entry(directory: Path, entry: Path, clip: Clip) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".clip")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encode_entry(clip))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, entry)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _touch(entry: Path) -> None:
    try:
        os.utime(entry)
    except OSError:
        pass  # a read-only cache still serves hits


def prune_cache(directory: Path, *, keep: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """Remove least recently used entries above ``max_bytes`` (default :data:`MAX_CACHE_BYTES`)
    and stale temporary files; ``keep`` is never removed. Returns what was removed."""
    limit = MAX_CACHE_BYTES if max_bytes is None else max_bytes
    removed: list[Path] = []
    entries: list[tuple[float, int, Path]] = []
    now = time.time()
    for path in directory.iterdir():
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.name.startswith(".tmp-"):
            if now - stat.st_mtime > _STALE_TEMP_SECONDS:
                path.unlink(missing_ok=True)
                removed.append(path)
        elif path.suffix == ".clip":
            entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            removed.append(path)
            total -= size
    return removed
