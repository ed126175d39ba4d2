"""Keyless decoders: does a recorded frame give media to anyone who holds no key?

FFmpeg's decoders through PyAV, one per track, fed every frame in order (VP8 delta frames need
their references). "Gives media" means the decoder *output* something — a picture for VP8,
samples for Opus — not that it accepted a header. Even so, decoding alone cannot tell
ciphertext: a ciphertext VP8 key frame keeps its clear 10-byte header and FFmpeg turns a good
share of them (a quarter in the tests) into garbage pictures, and any bytes after an Opus TOC
decode to audio. The judge therefore asks the decoder only about frames that are not in a
KID/CTR run (:mod:`sealrtc.inspect.judge`).
"""

from __future__ import annotations

from collections.abc import Callable

import av

from ..layout import Codec

MAX_PICTURE_PIXELS = 4096 * 2304
"""Pictures larger than this are refused before any allocation: a recorded VP8 key frame can
claim up to 16383 x 16383 pixels in a few bytes."""

DECODERS = {Codec.VP8: "vp8", Codec.H264: "h264", Codec.OPUS: "opus"}
"""FFmpeg's decoder for each codec the inspector reads: a codec without one is not inspected."""


def keyless_decoder(codec: Codec) -> Callable[[bytes], bool]:
    """``decodes(frame) -> bool`` for one track of ``codec`` (VP8, H.264 or Opus)."""
    context = av.CodecContext.create(DECODERS[codec], "r")
    assert isinstance(context, av.VideoCodecContext | av.AudioCodecContext)
    context.thread_count = 1  # one output per input, never a frame late
    context.options = {"max_pixels": str(MAX_PICTURE_PIXELS)}

    def decodes(frame: bytes) -> bool:
        try:
            return bool(context.decode(av.Packet(frame)))
        except av.FFmpegError:
            return False

    return decodes
