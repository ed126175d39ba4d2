"""RTP packets as a server stored them: the payload (RFC 3550) and the VP8 descriptor (RFC 7741).

This is sealrtc's one VP8 payload-descriptor parser: the inspector reassembles recorded frames
with it, and the tests use it to check aiortc's packetizer.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

_FIXED = struct.Struct("!BBHI")


class RtpPacket(NamedTuple):
    sequence: int
    timestamp: int
    marker: bool
    payload: bytes


def parse_rtp(packet: bytes) -> RtpPacket | None:
    """Sequence number, timestamp, marker and payload of an RTP v2 packet, with CSRCs, header
    extension and padding removed; None when ``packet`` is not a well-formed RTP v2 packet."""
    if len(packet) < _FIXED.size:
        return None
    first, second, sequence, timestamp = _FIXED.unpack_from(packet)
    if first >> 6 != 2:
        return None
    pos = _FIXED.size + 4 + 4 * (first & 0x0F)  # SSRC, then the CSRCs
    if first & 0x10:  # header extension: profile u16, length u16 in 32-bit words
        if pos + 4 > len(packet):
            return None
        (words,) = struct.unpack_from("!H", packet, pos + 2)
        pos += 4 + 4 * words
    end = len(packet)
    if first & 0x20:  # padding: the last byte counts the padding bytes, itself included
        padding = packet[-1]
        if padding == 0:
            return None
        end -= padding
    if pos > end:
        return None
    return RtpPacket(sequence, timestamp, bool(second & 0x80), bytes(packet[pos:end]))


class Vp8Descriptor(NamedTuple):
    """The VP8 payload descriptor at the start of an RTP payload."""

    length: int
    """Bytes to skip to reach the VP8 data."""
    start: bool
    """S bit: this packet starts a VP8 partition."""
    partition: int
    """PID: the partition index (0 for the first, which starts the frame)."""
    picture_id: int | None
    """7- or 15-bit picture id, when present."""

    @property
    def starts_frame(self) -> bool:
        return self.start and self.partition == 0


def parse_vp8_descriptor(payload: bytes) -> Vp8Descriptor:
    """Parse the descriptor; ``ValueError`` if the payload is empty or ends inside it."""
    if not payload:
        raise ValueError("empty VP8 payload")
    first = payload[0]
    pos = 1
    picture_id: int | None = None
    if first & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            raise ValueError("VP8 descriptor cut inside its extension")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 15 bits when M is set
            if len(payload) <= pos:
                raise ValueError("VP8 descriptor cut inside its picture id")
            if payload[pos] & 0x80:
                if len(payload) < pos + 2:
                    raise ValueError("VP8 descriptor cut inside its picture id")
                picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                pos += 2
            else:
                picture_id = payload[pos]
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    if pos > len(payload):
        raise ValueError("VP8 descriptor longer than its payload")
    return Vp8Descriptor(pos, bool(first & 0x10), first & 0x07, picture_id)
