"""Per-codec clear prefix: the codec bytes an SFU may read, authenticated but not encrypted.

The receiver computes the prefix length from the clear bytes themselves, with the same rule as
the sender, so nothing about the layout is signalled (frame format v1, DESIGN.md):

* Opus: 1 byte (the TOC byte);
* VP8: 10 bytes on a key frame (bit 0 of byte 0 is 0), 3 bytes on a delta frame;
* H.264: from byte 0 through the header byte of the first VCL NAL (type 1 or 5), plus the
  fewest following bytes (as in the stream, emulation-prevention bytes included) that hold the
  last bit of ``pic_parameter_set_id``; the part after the prefix (SFrame header, ciphertext,
  tag) is escaped on the wire with H.264 emulation prevention (:mod:`sealrtc.h264`), so no
  packetizer on the way finds a start code in it;
* anything else: 0 bytes (generic).

This module is the only owner of those rules. :func:`clear_prefix_length` and :func:`is_keyframe`
say them readably; the per-frame path uses the functions a codec registers in :data:`LAYOUTS`
(:func:`prefix_function`, :func:`keyframe_function`), specialised closures that the tests prove
equal to the readable rules. Adding a codec means one :class:`CodecLayout` (its prefix and
key-frame functions, and, if its wire needs them, a normaliser and a wire escape), its entry in
:data:`LAYOUTS` and its tests; a prefix function may raise :class:`~sealrtc.errors.InvalidFrame`
for bytes that are not a frame of its codec. E2EE sessions negotiate exactly the codecs
registered here (:func:`e2ee_supported`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from . import h264


class Codec(Enum):
    OPUS = "opus"
    VP8 = "vp8"
    H264 = "h264"
    GENERIC = "generic"


PrefixFunction = Callable[[bytes], int]
"""``prefix(frame) -> n``: the clear prefix length of ``frame``, which may exceed ``len(frame)``
(the caller refuses such a frame); may raise :class:`~sealrtc.errors.InvalidFrame`."""
KeyframeFunction = Callable[[bytes], bool]
WireFunction = Callable[[bytes, bytes], bytes]
"""``wire(prefix, rest) -> rest'``: how the part after the clear prefix is written on the wire
(``escape``), or read back from it (``unescape``, which may raise
:class:`~sealrtc.errors.InvalidFrame`); ``prefix`` is the clear prefix in front of it."""
NormaliseFunction = Callable[[bytes], bytes]
"""``normalise(frame) -> frame'``: the encoder's frame as it is sent (may raise InvalidFrame)."""


@dataclass(frozen=True)
class CodecLayout:
    """What one codec registers: its clear-prefix and key-frame rules, whether it is video
    (key frames are counted and requested for video only), and, when its frames need them, the
    normaliser of an encoder's frame and the wire escape of the protected part (None: frames
    and wire bytes are used as they are)."""

    codec: Codec
    prefix: PrefixFunction
    keyframe: KeyframeFunction
    video: bool
    normalise: NormaliseFunction | None = None
    escape: WireFunction | None = None
    unescape: WireFunction | None = None
    probe_in_clear: bool = True
    """Whether a plain (not encrypted) frame may carry the probe trailer: not when arbitrary
    bytes in the frame could break the codec's framing (H.264 start codes)."""


def _vp8_prefix(frame: bytes) -> int:
    # P bit (bit 0 of byte 0): 0 on a key frame (10-byte prefix), 1 on a delta frame (3 bytes).
    return (3 if frame[0] & 1 else 10) if frame else 1


def _vp8_keyframe(frame: bytes) -> bool:
    return bool(frame) and not frame[0] & 1


def _h264_prefix(frame: bytes) -> int:
    vcl = h264.first_vcl(frame)
    return h264.parse_slice_header(frame, vcl + 1).end


def _h264_keyframe(frame: bytes) -> bool:
    try:
        return frame[h264.first_vcl(frame)] & 0x1F == h264.NAL_IDR
    except (ValueError, IndexError):
        return False


def _h264_escape(prefix: bytes, rest: bytes) -> bytes:
    return h264.escape(rest, h264.trailing_zeros(prefix))


def _h264_unescape(prefix: bytes, rest: bytes) -> bytes:
    return h264.unescape(rest, h264.trailing_zeros(prefix))


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
    Codec.H264: CodecLayout(
        Codec.H264,
        _h264_prefix,
        _h264_keyframe,
        video=True,
        normalise=h264.normalise,
        escape=_h264_escape,
        unescape=_h264_unescape,
        probe_in_clear=False,
    ),
    Codec.GENERIC: CodecLayout(Codec.GENERIC, _generic_prefix, _never, video=False),
}
"""Every codec's registered layout."""


def codec_from_name(name: str | Codec) -> Codec:
    """Map a codec name (``"opus"``, ``"VP8"``, ``"audio/opus"``...) to a layout; unknown is generic."""
    if isinstance(name, Codec):
        return name
    short = name.lower().rsplit("/", 1)[-1]
    for codec in (Codec.OPUS, Codec.VP8, Codec.H264):
        if short == codec.value:
            return codec
    return Codec.GENERIC


def e2ee_supported(mime_type: str) -> bool:
    """Whether frames of ``mime_type`` (e.g. ``"video/VP8"``) can be end-to-end encrypted: video
    only with a video layout (a generic prefix would let packetizers cut ciphertext)."""
    kind, _, name = mime_type.lower().partition("/")
    if kind != "video" or name == "rtx":
        return True  # audio frames are whole packets (generic layout at worst); RTX repeats packets
    return codec_from_name(name) is not Codec.GENERIC


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
    if codec is Codec.H264:
        # Through the first VCL NAL's header byte, plus the slice header up to pps_id's last bit.
        return h264.parse_slice_header(frame, h264.first_vcl(frame) + 1).end
    return 0


def is_keyframe(codec: Codec, frame: bytes) -> bool:
    """Whether a (clear-prefixed) frame is a key frame: VP8 by its P bit, H.264 when its first
    slice is an IDR slice; audio frames always are."""
    if codec is Codec.H264:
        return _h264_keyframe(frame)
    if codec is Codec.VP8:
        return len(frame) > 0 and (frame[0] & 0b1) == 0
    return codec is Codec.OPUS
