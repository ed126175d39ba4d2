"""EncodedFrame: what a ``decode=False`` receiver track yields instead of decoded media."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple


class EncodedFrame(NamedTuple):
    """One encoded frame (decrypted, unless it came from a key-less pass-through receiver).

    It quacks like the ``av.Packet`` aiortc's ``encoder.pack()`` accepts (``bytes(frame)``,
    ``pts``, ``time_base``), so a track of these can be added to another peer connection and is
    re-packetized without decoding: the basis of verify-only agents and of the relay.

    Immutable, and a named tuple rather than a frozen dataclass: one is made per received frame,
    and a tuple costs a third of the time to build.
    """

    data: bytes
    timestamp: int
    """RTP timestamp (clock-rate units, starting near 0 per stream)."""
    codec: str
    """Codec mime type, e.g. ``"video/VP8"``."""
    clock_rate: int
    keyframe: bool
    kid: int | None = None
    """SFrame KID (None for frames that were not decrypted)."""
    ctr: int | None = None

    def __bytes__(self) -> bytes:
        return self.data

    @property
    def pts(self) -> int:
        return self.timestamp

    @property
    def time_base(self) -> Fraction:
        return _time_base(self.clock_rate)


@lru_cache(maxsize=16)
def _time_base(clock_rate: int) -> Fraction:
    return Fraction(1, clock_rate)
