"""Per-codec clear prefix: the codec bytes an SFU may read, authenticated but not encrypted.

The receiver computes the prefix length from the clear bytes themselves, with the same rule as
the sender, so nothing about the layout is signalled (frame format v1, DESIGN.md):

* Opus: 1 byte (the TOC byte);
* VP8: 10 bytes on a key frame (bit 0 of byte 0 is 0), 3 bytes on a delta frame;
* anything else: 0 bytes (generic).

H.264 needs a NAL-aware layout and is not supported yet: :func:`codec_from_name` maps it to
:attr:`Codec.GENERIC` and the aiortc adapter refuses to negotiate it under E2EE.
"""

from __future__ import annotations

from enum import Enum


class Codec(Enum):
    OPUS = "opus"
    VP8 = "vp8"
    GENERIC = "generic"


def codec_from_name(name: str | Codec) -> Codec:
    """Map a codec name (``"opus"``, ``"VP8"``, ``"audio/opus"``...) to a layout; unknown is generic."""
    if isinstance(name, Codec):
        return name
    short = name.lower().rsplit("/", 1)[-1]
    for codec in (Codec.OPUS, Codec.VP8):
        if short == codec.value:
            return codec
    return Codec.GENERIC


def clear_prefix_length(codec: Codec, frame: bytes) -> int:
    """Length of the clear prefix of ``frame`` (which may be longer than ``frame`` itself).

    An empty Opus/VP8 frame needs at least one byte, so it reports 1: callers compare the result
    with ``len(frame)`` and refuse frames that are shorter than their prefix.
    """
    if codec is Codec.OPUS:
        return 1
    if codec is Codec.VP8:
        if not frame:
            return 1
        return 10 if frame[0] & 0x01 == 0 else 3
    return 0


def is_keyframe(codec: Codec, frame: bytes) -> bool:
    """Whether a (clear-prefixed) frame is a key frame: VP8 by its P bit; audio frames always are."""
    if codec is Codec.VP8:
        return bool(frame) and frame[0] & 0x01 == 0
    return codec is Codec.OPUS
