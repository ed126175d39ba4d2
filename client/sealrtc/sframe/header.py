"""The SFrame header (RFC 9605 section 4.3): config byte, then minimal big-endian KID and CTR."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import MalformedFrame

MAX_VALUE = (1 << 64) - 1


def _byte_length(value: int) -> int:
    return (value.bit_length() + 7) // 8


def encode_header(kid: int, ctr: int) -> bytes:
    """Encode ``kid`` and ``ctr`` (both 0 .. 2**64-1) with the minimal number of bytes."""
    if not 0 <= kid <= MAX_VALUE or not 0 <= ctr <= MAX_VALUE:
        raise ValueError("SFrame KID and CTR must be 64-bit unsigned integers")
    config = 0
    tail = b""
    if kid < 8:
        config |= kid << 4
    else:
        n = _byte_length(kid)
        config |= 0x80 | ((n - 1) << 4)
        tail += kid.to_bytes(n, "big")
    if ctr < 8:
        config |= ctr
    else:
        n = _byte_length(ctr)
        config |= 0x08 | (n - 1)
        tail += ctr.to_bytes(n, "big")
    return bytes((config,)) + tail


def header_encoder(kid: int) -> Callable[[int], bytes]:
    """:func:`encode_header` for one fixed ``kid``, its part encoded once: ``encoder(ctr)``."""
    if not 0 <= kid <= MAX_VALUE:
        raise ValueError("SFrame KID and CTR must be 64-bit unsigned integers")
    if kid < 8:
        config, kid_bytes = kid << 4, b""
    else:
        n = _byte_length(kid)
        config, kid_bytes = 0x80 | ((n - 1) << 4), kid.to_bytes(n, "big")
    small = [bytes((config | ctr,)) + kid_bytes for ctr in range(8)]
    long = [bytes((config | 0x08 | (n - 1),)) + kid_bytes for n in range(1, 9)]  # by CTR length

    def encode(ctr: int) -> bytes:
        if ctr < 8:
            if ctr < 0:
                raise ValueError("SFrame KID and CTR must be 64-bit unsigned integers")
            return small[ctr]
        n = (ctr.bit_length() + 7) >> 3
        if n > 8:
            raise ValueError("SFrame KID and CTR must be 64-bit unsigned integers")
        return long[n - 1] + ctr.to_bytes(n, "big")

    return encode


def decode_header(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """Parse a header at ``offset``; return ``(kid, ctr, header_length)``.

    Rejects truncated and non-minimal encodings with :class:`MalformedFrame`, so that every
    (KID, CTR) has exactly one header and the AAD cannot be varied by a forwarder.
    """
    if offset >= len(data):
        raise MalformedFrame("frame too short for an SFrame header")
    config = data[offset]
    pos = offset + 1
    if config & 0x80:
        n = ((config >> 4) & 0x07) + 1
        end = pos + n
        if end > len(data):
            raise MalformedFrame("truncated SFrame KID")
        if data[pos] == 0:
            raise MalformedFrame("non-minimal SFrame KID")
        kid = int.from_bytes(data[pos:end], "big")
        if kid < 8:
            raise MalformedFrame("non-minimal SFrame KID")
        pos = end
    else:
        kid = (config >> 4) & 0x07
    if config & 0x08:
        n = (config & 0x07) + 1
        end = pos + n
        if end > len(data):
            raise MalformedFrame("truncated SFrame CTR")
        if data[pos] == 0:
            raise MalformedFrame("non-minimal SFrame CTR")
        ctr = int.from_bytes(data[pos:end], "big")
        if ctr < 8:
            raise MalformedFrame("non-minimal SFrame CTR")
        pos = end
    else:
        ctr = config & 0x07
    return kid, ctr, pos - offset


class HeaderReader:
    """:func:`decode_header` with a memory of one verified KID, for a stream's per-frame path.

    Consecutive frames of one sender share the header's KID part (the config byte's high nibble
    and the KID bytes). After :meth:`remember` has been told a header whose KID verified, a frame
    that starts the same way has that KID and only its CTR is parsed here; anything else, and
    every anomaly (truncated, non-minimal), goes to :func:`decode_header`, so :meth:`read` returns
    and raises exactly what :func:`decode_header` would.
    """

    __slots__ = ("_high", "_kid_bytes", "kid")

    def __init__(self) -> None:
        self.kid = -1
        """The remembered KID (-1: none yet)."""
        self._high = -1
        self._kid_bytes = b""

    def read(self, data: bytes, offset: int = 0) -> tuple[int, int, int]:
        """Parse a header at ``offset``; return ``(kid, ctr, end)`` with ``end`` the offset just
        after the header. Raises :class:`MalformedFrame` like :func:`decode_header`."""
        if offset < len(data):
            config = data[offset]
            kid_bytes = self._kid_bytes
            if config >> 4 == self._high and data.startswith(kid_bytes, offset + 1):
                start = offset + 1 + len(kid_bytes)
                if not config & 0x08:
                    return self.kid, config & 0x07, start
                end = start + (config & 0x07) + 1
                if end <= len(data) and data[start]:
                    ctr = int.from_bytes(data[start:end], "big")
                    if ctr >= 8:
                        return self.kid, ctr, end
        kid, ctr, length = decode_header(data, offset)
        return kid, ctr, offset + length

    def remember(self, data: bytes, offset: int, kid: int) -> None:
        """Remember the KID part of the valid header at ``offset`` (whose KID is ``kid``)."""
        config = data[offset]
        self.kid = kid
        self._high = config >> 4
        self._kid_bytes = data[offset + 1 : offset + 2 + ((config >> 4) & 0x07)] if config & 0x80 else b""
