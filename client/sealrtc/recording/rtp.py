"""RTP payload extraction and frame reassembly for recorded packets (VP8 and Opus)."""

from __future__ import annotations

import struct


def rtp_payload(packet: bytes) -> tuple[int, int, bool, bytes] | None:
    """Return ``(sequence, timestamp, marker, payload)`` or None if ``packet`` is not RTP v2."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    csrc = packet[0] & 0x0F
    marker = bool(packet[1] & 0x80)
    seq, ts = struct.unpack_from("!HI", packet, 2)
    pos = 12 + 4 * csrc
    if packet[0] & 0x10:  # header extension
        if pos + 4 > len(packet):
            return None
        (words,) = struct.unpack_from("!H", packet, pos + 2)
        pos += 4 + 4 * words
    end = len(packet)
    if packet[0] & 0x20 and end > pos:  # padding
        end -= packet[-1]
    if pos > end:
        return None
    return seq, ts, marker, packet[pos:end]


def vp8_descriptor_length(payload: bytes) -> int:
    """Length of the VP8 RTP payload descriptor (RFC 7741) at the start of ``payload``."""
    if not payload:
        raise ValueError("empty VP8 payload")
    pos = 1
    if payload[0] & 0x80:  # X
        if len(payload) < 2:
            raise ValueError("truncated VP8 descriptor")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I
            if len(payload) <= pos:
                raise ValueError("truncated VP8 picture id")
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L
            pos += 1
        if ext & 0x30:  # T or K
            pos += 1
    if pos > len(payload):
        raise ValueError("truncated VP8 descriptor")
    return pos


def assemble_frames(packets: list[bytes], codec: str) -> list[bytes]:
    """Reassemble encoded frames: VP8 payloads of one timestamp joined (descriptors removed),
    Opus one frame per packet. Packets are ordered by sequence number (with wrap-around)."""
    parsed = [p for p in (rtp_payload(raw) for raw in packets) if p is not None and p[3]]
    if not parsed:
        return []
    base = parsed[0][0]
    parsed.sort(key=lambda p: (p[0] - base) & 0xFFFF)
    if codec.lower() != "vp8":
        return [p[3] for p in parsed]
    frames: list[bytes] = []
    current: list[bytes] = []
    current_ts: int | None = None
    for _, ts, _, payload in parsed:
        if current_ts is not None and ts != current_ts and current:
            frames.append(b"".join(current))
            current = []
        current_ts = ts
        try:
            current.append(payload[vp8_descriptor_length(payload) :])
        except ValueError:
            continue
    if current:
        frames.append(b"".join(current))
    return frames
