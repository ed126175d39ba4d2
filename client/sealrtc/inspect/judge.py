"""Is a recorded frame ciphertext? Frame format v1, KID/CTR runs, and plain media.

Every frame gets one label, decided in this order:

* **ciphertext** — it parses as frame format v1 (a plausible clear prefix for its codec, a valid
  SFrame header after it, room for at least the tag) *and* its KID and CTR continue those of a
  neighbouring frame: same KID, CTR 1 to :data:`MAX_CTR_STEP` higher than the frame before (or
  lower than the frame after). A sender gives each frame the next CTR of its KID, so ciphertext
  comes in runs; random bytes parse as an SFrame header most of the time, but they do not.
* **plain** — otherwise, when a decoder without any key gets media out of it: VP8, a picture;
  Opus, audio (any bytes after a valid TOC byte decode to audio, which is why the run above is
  checked first).
* **not_v1** — anything else: not frame format v1, or a lone SFrame-looking header that
  continues no run, or a frame no decoder accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from ..errors import MalformedFrame
from ..layout import Codec, clear_prefix_length, is_keyframe
from ..media.recorder import vp8_keyframe_size
from ..sframe import CipherSuite, decode_header, suite_params

MAX_CTR_STEP = 16
"""Largest CTR step between neighbouring frames of one KID: up to 15 frames lost in between."""
SHORTEST_TAG = min(suite_params(suite).nt for suite in CipherSuite)
"""The tag length assumed when the suite is not known: the shortest of any suite (4 bytes)."""


class Label(Enum):
    CIPHERTEXT = "ciphertext"
    PLAIN = "plain"
    NOT_V1 = "not_v1"


def v1_header(codec: Codec, frame: bytes, tag_length: int = SHORTEST_TAG) -> tuple[int, int] | None:
    """``(kid, ctr)`` when ``frame`` parses as frame format v1 of ``codec``, else None.

    Parsing: the clear prefix (its length from :func:`sealrtc.layout.clear_prefix_length`), a
    VP8 key frame's prefix must be a key-frame header (start code and a size), then a valid
    SFrame header, then at least ``tag_length`` bytes.
    """
    prefix = clear_prefix_length(codec, frame)
    if len(frame) < prefix:
        return None
    if codec is Codec.VP8 and is_keyframe(codec, frame) and vp8_keyframe_size(frame) is None:
        return None
    try:
        kid, ctr, header_length = decode_header(frame, prefix)
    except MalformedFrame:
        return None
    if len(frame) < prefix + header_length + tag_length:
        return None
    return kid, ctr


@dataclass(slots=True)
class _Frame:
    header: tuple[int, int] | None
    decodes: bool
    in_run: bool = False


class FrameJudge:
    """Labels the frames of one track in order, one frame behind (a label needs the next frame).

    ``decodes(frame)`` says whether a keyless decoder gets media from the frame; it sees every
    frame, in order, so that a decoder can keep its references.
    """

    def __init__(self, codec: Codec, decodes: Callable[[bytes], bool], tag_length: int = SHORTEST_TAG) -> None:
        self.codec = codec
        self.tag_length = tag_length
        self._decodes = decodes
        self._previous: _Frame | None = None

    def feed(self, data: bytes) -> Iterator[tuple[Label, tuple[int, int] | None]]:
        """Take the next frame; yield the label (and KID, CTR) of the frame before it."""
        frame = _Frame(v1_header(self.codec, data, self.tag_length), self._decodes(data))
        previous = self._previous
        if previous is not None:
            if continues(previous.header, frame.header):
                previous.in_run = frame.in_run = True
            yield _label(previous), previous.header
        self._previous = frame

    def finish(self) -> Iterator[tuple[Label, tuple[int, int] | None]]:
        """Yield the label of the last frame."""
        if self._previous is not None:
            yield _label(self._previous), self._previous.header
            self._previous = None


def continues(before: tuple[int, int] | None, after: tuple[int, int] | None) -> bool:
    """Whether ``after`` can be the next frame of the sender of ``before`` (same KID, CTR up by
    1 to :data:`MAX_CTR_STEP`)."""
    return (
        before is not None and after is not None and before[0] == after[0] and 0 < after[1] - before[1] <= MAX_CTR_STEP
    )


def _label(frame: _Frame) -> Label:
    if frame.in_run:
        return Label.CIPHERTEXT
    return Label.PLAIN if frame.decodes else Label.NOT_V1
