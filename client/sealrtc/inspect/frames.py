"""Recorded RTP packets -> encoded frames: sequence order, then VP8 or H.264 reassembly (by
timestamp and marker) or one Opus frame per packet. Bounded: a reorder window of packets and
one frame under construction."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..layout import Codec
from .rtp import RtpPacket, parse_h264_payload, parse_rtp, parse_vp8_descriptor

REORDER_WINDOW = 512
"""Packets held back to put late arrivals (retransmissions) in sequence order."""
MAX_FRAME_BYTES = 16 << 20
"""A frame that grows beyond this is cut (and counted incomplete): no real VP8 frame is as big."""


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    data: bytes
    timestamp: int
    complete: bool
    """Every packet from the frame's first to its marker, without a sequence gap."""
    starts: bool = True
    """The frame's first packet is there (VP8: S=1, partition 0): its first bytes are the
    frame's first bytes. A fragment without them cannot be judged."""


class SequenceOrder:
    """Puts packets in sequence-number order across the 16-bit wrap, within a bounded window.

    Sequence numbers are extended to integers that keep counting past 65535 (RFC 3550 A.1).
    A duplicate, or a packet older than one already released, is dropped and counted. A packet
    more than twice the window behind is no late arrival but a new numbering (a restarted
    sender): what is held is released and the order starts again from it.
    """

    def __init__(self, window: int = REORDER_WINDOW) -> None:
        self.window = window
        self.dropped = 0
        self._highest: int | None = None
        self._released: int | None = None
        self._heap: list[tuple[int, int, RtpPacket]] = []
        self._held: set[int] = set()
        self._pushes = 0

    def _extend(self, sequence: int) -> int:
        highest = self._highest
        if highest is None:
            self._highest = sequence
            return sequence
        delta = (sequence - highest) & 0xFFFF
        if delta < 0x8000:
            self._highest = highest + delta
            return highest + delta
        return highest - (0x10000 - delta)

    def push(self, packet: RtpPacket) -> Iterator[tuple[int, RtpPacket]]:
        """Add a packet; yield ``(extended_sequence, packet)`` for those now due, in order."""
        ext = self._extend(packet.sequence)
        if self._released is not None and self._released - ext > 2 * self.window:
            yield from self.flush()
            self._highest = self._released = None
            ext = self._extend(packet.sequence)
        if ext in self._held or (self._released is not None and ext <= self._released):
            self.dropped += 1
            return
        self._pushes += 1
        heapq.heappush(self._heap, (ext, self._pushes, packet))
        self._held.add(ext)
        while len(self._heap) > self.window:
            yield self._pop()

    def flush(self) -> Iterator[tuple[int, RtpPacket]]:
        while self._heap:
            yield self._pop()

    def _pop(self) -> tuple[int, RtpPacket]:
        ext, _, packet = heapq.heappop(self._heap)
        self._held.discard(ext)
        self._released = ext
        return ext, packet


class FrameAssembler:
    """Turns the RTP packets of one recorded track into frames, counting what it cannot use."""

    def __init__(self, codec: Codec, window: int = REORDER_WINDOW) -> None:
        self.codec = codec
        self.packets = 0
        self.unusable_packets = 0
        """Not RTP v2, an empty payload, a broken VP8 descriptor, a duplicate or too late."""
        self._order = SequenceOrder(window)

    def frames(self, packets: Iterable[bytes]) -> Iterator[RecordedFrame]:
        ordered = self._ordered(packets)
        if self.codec is Codec.VP8:
            yield from self._video(ordered, _vp8_payload)
            return
        if self.codec is Codec.H264:
            yield from self._video(ordered, _h264_payload)
            return
        for _, packet in ordered:
            if packet.payload:
                yield RecordedFrame(packet.payload, packet.timestamp, True)
            else:
                self.unusable_packets += 1

    def _ordered(self, packets: Iterable[bytes]) -> Iterator[tuple[int, RtpPacket]]:
        order = self._order
        for raw in packets:
            self.packets += 1
            packet = parse_rtp(raw)
            if packet is None:
                self.unusable_packets += 1
                continue
            yield from order.push(packet)
        yield from order.flush()
        self.unusable_packets += order.dropped

    def _video(self, ordered: Iterator[tuple[int, RtpPacket]], depayload: _Depayload) -> Iterator[RecordedFrame]:
        """Join the payloads of one timestamp (depayloaded); a frame ends at its marker, at a new
        timestamp, or where a packet starts a new frame (VP8)."""
        parts: list[bytes] = []
        size = 0
        timestamp = 0
        starts = False  # the first packet starts partition 0
        whole = False  # ... and no gap so far
        last = -1
        for ext, packet in ordered:
            try:
                starts_frame, new_frame, data = depayload(packet.payload)
            except ValueError:
                self.unusable_packets += 1
                whole = False
                continue
            if parts and (packet.timestamp != timestamp or new_frame):
                yield RecordedFrame(b"".join(parts), timestamp, False, starts)  # its marker never came
                parts, size = [], 0
            if not parts:
                timestamp = packet.timestamp
                starts = whole = starts_frame
            elif ext != last + 1:
                whole = False
            last = ext
            if size + len(data) > MAX_FRAME_BYTES:
                whole = False
            elif data:
                parts.append(data)
                size += len(data)
            if packet.marker and parts:
                yield RecordedFrame(b"".join(parts), timestamp, whole, starts)
                parts, size = [], 0
        if parts:
            yield RecordedFrame(b"".join(parts), timestamp, False, starts)


_Depayload = Callable[[bytes], tuple[bool, bool, bytes]]
"""``(can_start_a_frame, surely_starts_a_new_frame, frame_bytes)`` of one payload."""


def _vp8_payload(payload: bytes) -> tuple[bool, bool, bytes]:
    descriptor = parse_vp8_descriptor(payload)
    return descriptor.starts_frame, descriptor.starts_frame, payload[descriptor.length :]


def _h264_payload(payload: bytes) -> tuple[bool, bool, bytes]:
    # Any whole NAL may start an access unit, but only the timestamp says one does.
    starts, data = parse_h264_payload(payload)
    return starts, False, data
