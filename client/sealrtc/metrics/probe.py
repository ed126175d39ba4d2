"""The probe trailer (design v2): ``stream_id u32 || sequence u32 || capture_ns u64 || b"sRp1"``.

A publisher appends it to each *plaintext* frame before encryption; a receiver strips it after
decryption and before decoding. Inside the ciphertext the SFU can neither read nor forge it, so
every authenticated frame carries its own sequence number and capture time. Frames without the
trailer pass unchanged (a frame of a foreign sender that happens to end in the 4-byte magic would
be misread: a 2^-32 chance per frame, and only for frames shorter than nothing we cannot check).
"""

from __future__ import annotations

import secrets
import struct
from typing import NamedTuple

PROBE_MAGIC = b"sRp1"
PROBE_SIZE = 20
_STRUCT = struct.Struct(">IIQ4s")
_FIELDS = struct.Struct(">IIQ")
_U32 = 1 << 32


ProbeFields = tuple[int, int, int]
"""``(stream_id, sequence, capture_ns)``."""


class Probe(NamedTuple):
    stream_id: int
    sequence: int
    capture_ns: int


def encode_probe(stream_id: int, sequence: int, capture_ns: int) -> bytes:
    """The 20-byte trailer (``sequence`` wraps at 2^32; ``capture_ns`` is Unix time in ns)."""
    return _STRUCT.pack(stream_id % _U32, sequence % _U32, capture_ns, PROBE_MAGIC)


def split_probe(frame: bytes) -> tuple[bytes, ProbeFields | None]:
    """``(frame without trailer, (stream_id, sequence, capture_ns))``, or ``(frame, None)`` when
    there is no trailer. The per-frame path's splitter: the fields are a plain tuple (equal to
    a :class:`Probe`, which :func:`read_probe` builds)."""
    if len(frame) < PROBE_SIZE or frame[-4:] != PROBE_MAGIC:
        return frame, None
    fields: ProbeFields = _FIELDS.unpack_from(frame, len(frame) - PROBE_SIZE)
    return frame[:-PROBE_SIZE], fields


def read_probe(frame: bytes) -> Probe | None:
    """The typed view of :func:`split_probe`: the frame's :class:`Probe`, or None."""
    fields = split_probe(frame)[1]
    return Probe._make(fields) if fields is not None else None


class ProbeStamper:
    """Numbers one outgoing stream's frames: a random stream id, a sequence from 0."""

    __slots__ = ("sequence", "stream_id")

    def __init__(self, stream_id: int | None = None) -> None:
        self.stream_id = secrets.randbits(32) if stream_id is None else stream_id % _U32
        self.sequence = 0

    def stamp(self, frame: bytes, capture_ns: int) -> bytes:
        """``frame || trailer`` for the next sequence number."""
        out = frame + encode_probe(self.stream_id, self.sequence, capture_ns)
        self.sequence += 1
        return out

    def skip(self) -> None:
        """Leave one sequence number unused: a frame of the source that is not sent (a backlog
        skipped after an outage) is a gap, counted as missed by whoever matches the numbers."""
        self.sequence += 1
