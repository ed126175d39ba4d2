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


_FU_A = 28
_STAP_A = 24
_ANNEX_B = b"\x00\x00\x00\x01"


def parse_h264_payload(payload: bytes) -> tuple[bool, bytes]:
    """``(starts_nal, annex_b_bytes)`` of one H.264 RTP payload (RFC 6184 single NAL, STAP-A,
    FU-A), the way receivers rebuild the stream: every NAL behind ``00 00 00 01``.
    ``starts_nal`` is False for an FU-A fragment other than the first. ``ValueError`` for
    anything else (an empty or cut payload, another packetization)."""
    if len(payload) < 2:
        raise ValueError("H.264 payload too short")
    kind = payload[0] & 0x1F
    if 1 <= kind <= 23:
        return True, _ANNEX_B + payload
    if kind == _FU_A:
        fu = payload[1]
        if fu & 0x80:
            return True, _ANNEX_B + bytes([(payload[0] & 0xE0) | (fu & 0x1F)]) + payload[2:]
        return False, payload[2:]
    if kind == _STAP_A:
        parts = []
        pos = 1
        while pos < len(payload):
            if pos + 2 > len(payload):
                raise ValueError("STAP-A length cut")
            size = int.from_bytes(payload[pos : pos + 2], "big")
            pos += 2
            if size == 0 or pos + size > len(payload):
                raise ValueError("STAP-A NAL cut")
            parts += [_ANNEX_B, payload[pos : pos + size]]
            pos += size
        return True, b"".join(parts)
    raise ValueError(f"H.264 packetization type {kind} is not read")
