"""The Janus ``.mjr`` container (version 2): a JSON header, then the RTP packets as stored.

Layout: ``b"MJR00002"``, a big-endian u16 header length, a JSON object (``"t"``: ``"v"`` video,
``"a"`` audio or ``"d"`` data; ``"c"``: the codec; Janus adds timestamps), then records
``b"MEET"`` + u32 milliseconds + u16 length + one RTP packet as the server held it after SRTP
decryption: what the server stored, packet by packet.

Pure: it reads a buffer (bytes or an ``mmap``) and never copies more than one packet at a time.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mmap

    Buffer = bytes | mmap.mmap
    """What the engine reads: the file's bytes, or the file mapped read-only."""

MAGIC = b"MJR00002"
LEGACY_MAGIC = b"MJR00001"
RECORD = b"MEET"
_RECORD_HEADER = struct.Struct("!4sIH")
KINDS = {"v": "video", "a": "audio", "d": "data"}


class NotARecording(ValueError):
    """The bytes are not a Janus version-2 recording, or end inside its header.

    The message is one line for the user; it may quote (sanitise before printing) the codec
    name found in the file, never more than a few dozen characters of it.
    """


@dataclass(frozen=True)
class MjrHeader:
    """What the JSON header says about the recorded track."""

    kind: str
    """``"video"``, ``"audio"`` or ``"data"``."""
    codec: str
    """The codec name as Janus wrote it (``"vp8"``, ``"opus"``...), at most 32 characters."""
    packets_offset: int
    """Where the first record starts."""


def read_header(data: Buffer) -> MjrHeader:
    """Parse the header; :class:`NotARecording` when ``data`` is not a version-2 recording."""
    magic = data[: len(MAGIC)]
    if magic == LEGACY_MAGIC:
        raise NotARecording("an MJR00001 recording (Janus before 0.5): not supported, convert it with a newer Janus")
    if magic != MAGIC:
        raise NotARecording("not a Janus recording (no MJR00002 header)")
    if len(data) < len(MAGIC) + 2:
        raise NotARecording("a Janus recording cut inside its header")
    (length,) = struct.unpack_from("!H", data, len(MAGIC))
    start = len(MAGIC) + 2
    if start + length > len(data):
        raise NotARecording("a Janus recording cut inside its header")
    try:
        fields = json.loads(data[start : start + length])
    except (ValueError, RecursionError):  # RecursionError: a deeply nested header
        raise NotARecording("a Janus recording with an unreadable JSON header") from None
    kind, codec = (fields.get("t"), fields.get("c")) if isinstance(fields, dict) else (None, None)
    if not isinstance(kind, str) or kind not in KINDS or not isinstance(codec, str):
        raise NotARecording("a Janus recording whose header names no track kind and codec")
    return MjrHeader(KINDS[kind], codec[:32], start + length)


class MjrPackets:
    """Iterates ``(milliseconds, rtp_packet)`` records from ``offset``; after the iteration,
    :attr:`truncated` says whether the file ended (or broke) inside a record.

    Janus appends records as packets arrive, so a server stopped mid-write leaves a partial last
    record: everything before it is read, and the report says the file was truncated.
    """

    def __init__(self, data: Buffer, offset: int) -> None:
        self._data = data
        self._offset = offset
        self.truncated = False

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        data, pos, end = self._data, self._offset, len(self._data)
        while pos < end:
            if pos + _RECORD_HEADER.size > end:
                break
            tag, ms, size = _RECORD_HEADER.unpack_from(data, pos)
            if tag != RECORD or pos + _RECORD_HEADER.size + size > end:
                break
            pos += _RECORD_HEADER.size
            yield ms, data[pos : pos + size]
            pos += size
        else:
            return
        self.truncated = True
