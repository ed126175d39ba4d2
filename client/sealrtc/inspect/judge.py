"""Is a recorded frame ciphertext? Frame format v1, KID/CTR runs, and plain media.

Every frame gets one label, decided in this order:

* **ciphertext** — it parses as frame format v1 (a plausible clear prefix for its codec, a valid
  SFrame header after it, room for at least the tag) *and* it belongs to a run of at least
  :data:`MIN_RUN` such frames in which each has the KID of the one before and a CTR 1 to
  :data:`MAX_CTR_STEP` higher. A sender gives each frame the next CTR of its KID, so ciphertext
  comes in long runs. Random bytes parse as an SFrame header most of the time, and slowly
  changing plain bytes (noise encoded by Opus) make short runs; they do not make runs of 8.
* **plain** — otherwise, when a decoder without any key gets media out of it: VP8 or H.264, a
  picture; Opus, audio. Decoding comes second because it cannot tell on its own: a ciphertext VP8 key
  frame keeps its clear header and often still decodes to a garbage picture, and any bytes after
  a valid Opus TOC byte decode to audio.
* **not_v1** — anything else: not frame format v1, a run too short to tell (fewer than
  :data:`MIN_RUN` frames of a KID), or a frame no decoder accepts. A fragment (a frame whose
  first packet never reached the server) is not_v1 too, but it does not break the run of the
  frames around it: packet loss upstream of the server costs the lost frames only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from ..errors import InvalidFrame, MalformedFrame
from ..layout import Codec, clear_prefix_length, is_keyframe, layout_of
from ..media.recorder import vp8_keyframe_size
from ..sframe import CipherSuite, decode_header, suite_params

MAX_CTR_STEP = 16
"""Largest CTR step between neighbouring frames of one KID: up to 15 frames lost in between."""
MIN_RUN = 8
"""Frames in a KID/CTR run before they count as ciphertext (none of 30 000 plain Opus frames of
tones, noise, chirps and speech-like signals made a run of 6; noise and chirps make runs of 2 to
4)."""
MAX_PENDING = 1024
"""Frames (a run not yet :data:`MIN_RUN` long, fragments within it) waiting for their label."""
SHORTEST_TAG = min(suite_params(suite).nt for suite in CipherSuite)
"""The tag length assumed when the suite is not known: the shortest of any suite (4 bytes)."""


class Label(Enum):
    CIPHERTEXT = "ciphertext"
    PLAIN = "plain"
    NOT_V1 = "not_v1"


def v1_header(codec: Codec, frame: bytes, tag_length: int = SHORTEST_TAG) -> tuple[int, int] | None:
    """``(kid, ctr)`` when ``frame`` parses as frame format v1 of ``codec``, else None.

    Parsing: the clear prefix (its length from :func:`sealrtc.layout.clear_prefix_length`), a
    VP8 key frame's prefix must be a key-frame header (start code and a size), then (H.264: once
    the escaped part is unescaped) a valid SFrame header, then at least ``tag_length`` bytes.
    """
    try:
        prefix = clear_prefix_length(codec, frame)
    except InvalidFrame:
        return None
    if len(frame) < prefix:
        return None
    unescape = layout_of(codec).unescape
    if unescape is not None:
        try:
            frame = frame[:prefix] + unescape(frame[:prefix], frame[prefix:])
        except InvalidFrame:
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
    fragment: bool = False


Judged = tuple[Label, tuple[int, int] | None]
"""A frame's label, and its ``(kid, ctr)`` when it parsed as frame format v1."""


class FrameJudge:
    """Labels the frames of one track in order. A label may wait for later frames (a run is
    ciphertext once it is :data:`MIN_RUN` long): at most :data:`MAX_PENDING` frames wait, as
    their headers, never their bytes.

    ``decodes(frame)`` says whether a keyless decoder gets media from the frame; it sees every
    frame, in order, so that a decoder can keep its references.
    """

    def __init__(self, codec: Codec, decodes: Callable[[bytes], bool], tag_length: int = SHORTEST_TAG) -> None:
        self.codec = codec
        self.tag_length = tag_length
        self._decodes = decodes
        self._pending: list[_Frame] = []
        self._last: tuple[int, int] | None = None
        self._length = 0

    def feed(self, data: bytes, *, starts: bool = True) -> Iterator[Judged]:
        """Take the next frame; yield the labels that are now known, in frame order.

        ``starts=False`` marks a fragment (its first packet is missing): labelled not_v1, never
        decoded, and transparent to the run around it.
        """
        if not starts:
            fragment = _Frame(None, False, fragment=True)
            if not self._pending:
                yield _label(fragment, in_run=False)
                return
            self._pending.append(fragment)
            if len(self._pending) >= MAX_PENDING:
                yield from self._release(in_run=False)
                self._last, self._length = None, 0
            return
        frame = _Frame(v1_header(self.codec, data, self.tag_length), self._decodes(data))
        if not continues(self._last, frame.header):
            yield from self._release(in_run=False)  # the run before stayed short
            self._length = 0
        self._last = frame.header
        if frame.header is None:
            yield _label(frame, in_run=False)
            return
        self._length += 1
        self._pending.append(frame)
        if self._length >= MIN_RUN:
            yield from self._release(in_run=True)

    def finish(self) -> Iterator[Judged]:
        """Yield the labels still pending at the end of the track."""
        yield from self._release(in_run=False)
        self._last, self._length = None, 0

    def _release(self, *, in_run: bool) -> Iterator[Judged]:
        pending, self._pending = self._pending, []
        for frame in pending:
            yield _label(frame, in_run=in_run)


def continues(before: tuple[int, int] | None, after: tuple[int, int] | None) -> bool:
    """Whether ``after`` can be the next frame of the sender of ``before`` (same KID, CTR up by
    1 to :data:`MAX_CTR_STEP`)."""
    return (
        before is not None and after is not None and before[0] == after[0] and 0 < after[1] - before[1] <= MAX_CTR_STEP
    )


def _label(frame: _Frame, *, in_run: bool) -> Judged:
    if in_run and not frame.fragment:
        return Label.CIPHERTEXT, frame.header
    return (Label.PLAIN if frame.decodes else Label.NOT_V1), frame.header
