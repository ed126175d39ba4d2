"""Per-codec clear prefix: the codec bytes an SFU may read, authenticated but not encrypted.

The receiver computes the prefix length from the clear bytes themselves, with the same rule as
the sender, so nothing about the layout is signalled (frame format v1, DESIGN.md):

* Opus: 1 byte (the TOC byte);
* VP8: 10 bytes on a key frame (bit 0 of byte 0 is 0), 3 bytes on a delta frame;
* anything else: 0 bytes (generic).

This module is the only owner of those rules. :func:`clear_prefix_length` and :func:`is_keyframe`
say them readably; the per-frame path uses the functions a codec registers in :data:`LAYOUTS`
(:func:`prefix_function`, :func:`keyframe_function`), specialised closures that the tests prove
equal to the readable rules. Adding a codec means one :class:`CodecLayout` (its prefix and
key-frame functions), its entry in :data:`LAYOUTS` and its tests; a prefix function may raise
:class:`~sealrtc.errors.InvalidFrame` for bytes that are not a frame of its codec.

H.264 needs a NAL-aware layout and is not supported yet: :func:`codec_from_name` maps it to
:attr:`Codec.GENERIC` and it is listed in :data:`E2EE_UNSUPPORTED_MIME_TYPES`, so the aiortc
adapter refuses to negotiate it under E2EE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Codec(Enum):
    OPUS = "opus"
    VP8 = "vp8"
    GENERIC = "generic"


PrefixFunction = Callable[[bytes], int]
"""``prefix(frame) -> n``: the clear prefix length of ``frame``, which may exceed ``len(frame)``
(the caller refuses such a frame); may raise :class:`~sealrtc.errors.InvalidFrame`."""
KeyframeFunction = Callable[[bytes], bool]


@dataclass(frozen=True)
class CodecLayout:
    """What one codec registers: its clear-prefix and key-frame rules, and whether it is video
    (key frames are counted and requested for video only)."""

    codec: Codec
    prefix: PrefixFunction
    keyframe: KeyframeFunction
    video: bool


def _vp8_prefix(frame: bytes) -> int:
    # P bit (bit 0 of byte 0): 0 on a key frame (10-byte prefix), 1 on a delta frame (3 bytes).
    return (3 if frame[0] & 1 else 10) if frame else 1


def _vp8_keyframe(frame: bytes) -> bool:
    return bool(frame) and not frame[0] & 1


def _opus_prefix(frame: bytes) -> int:
    return 1


def _generic_prefix(frame: bytes) -> int:
    return 0


def _always(frame: bytes) -> bool:
    return True


def _never(frame: bytes) -> bool:
    return False


LAYOUTS: dict[Codec, CodecLayout] = {
    Codec.OPUS: CodecLayout(Codec.OPUS, _opus_prefix, _always, video=False),
    Codec.VP8: CodecLayout(Codec.VP8, _vp8_prefix, _vp8_keyframe, video=True),
    Codec.GENERIC: CodecLayout(Codec.GENERIC, _generic_prefix, _never, video=False),
}
"""Every codec's registered layout."""

E2EE_UNSUPPORTED_MIME_TYPES = frozenset({"video/h264"})
"""Codecs whose frames cannot be protected yet: never negotiated under E2EE (H.264 needs the
NAL-aware layout)."""


def codec_from_name(name: str | Codec) -> Codec:
    """Map a codec name (``"opus"``, ``"VP8"``, ``"audio/opus"``...) to a layout; unknown is generic."""
    if isinstance(name, Codec):
        return name
    short = name.lower().rsplit("/", 1)[-1]
    for codec in (Codec.OPUS, Codec.VP8):
        if short == codec.value:
            return codec
    return Codec.GENERIC


def e2ee_supported(mime_type: str) -> bool:
    """Whether frames of ``mime_type`` (e.g. ``"video/VP8"``) can be end-to-end encrypted."""
    return mime_type.lower() not in E2EE_UNSUPPORTED_MIME_TYPES


def layout_of(codec: str | Codec) -> CodecLayout:
    return LAYOUTS[codec_from_name(codec)]


def prefix_function(codec: str | Codec) -> PrefixFunction:
    """The per-frame clear-prefix function of ``codec`` (equal to :func:`clear_prefix_length`)."""
    return layout_of(codec).prefix


def keyframe_function(codec: str | Codec) -> KeyframeFunction:
    """The per-frame key-frame test of ``codec`` (equal to :func:`is_keyframe`)."""
    return layout_of(codec).keyframe


def clear_prefix_length(codec: Codec, frame: bytes) -> int:
    """Length of the clear prefix of ``frame`` (which may be longer than ``frame`` itself).

    The readable rule. An empty Opus/VP8 frame needs at least one byte, so it reports 1: callers
    compare the result with ``len(frame)`` and refuse frames that are shorter than their prefix.
    """
    if codec is Codec.OPUS:
        return 1
    if codec is Codec.VP8:
        if len(frame) == 0:
            return 1
        keyframe = (frame[0] & 0b1) == 0
        return 10 if keyframe else 3
    return 0


def is_keyframe(codec: Codec, frame: bytes) -> bool:
    """Whether a (clear-prefixed) frame is a key frame: VP8 by its P bit; audio frames always are."""
    if codec is Codec.VP8:
        return len(frame) > 0 and (frame[0] & 0b1) == 0
    return codec is Codec.OPUS
