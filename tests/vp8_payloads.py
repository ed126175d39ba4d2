"""VP8 RTP payloads for tests: aiortc's packetizer, and the inverse built on the inspector's
descriptor parser (sealrtc's one VP8 payload-descriptor parser)."""

from __future__ import annotations

from aiortc.codecs import vpx

from sealrtc.inspect import parse_vp8_descriptor


def vp8_packetize(frame: bytes, picture_id: int) -> list[bytes]:
    """Split a frame into VP8 RTP payloads the way aiortc's own encoder does."""
    payloads: list[bytes] = vpx.Vp8Encoder._packetize(frame, picture_id)
    return payloads


def vp8_depacketize(payloads: list[bytes]) -> tuple[bytes, int | None]:
    """Join VP8 RTP payloads back into one frame; return it and the first picture id."""
    descriptors = [parse_vp8_descriptor(payload) for payload in payloads]
    frame = b"".join(payload[d.length :] for payload, d in zip(payloads, descriptors, strict=True))
    return frame, descriptors[0].picture_id if descriptors else None
