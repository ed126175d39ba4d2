"""The inspector: a recording's bytes in, a :class:`RecordingReport` out (no files, no output)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..layout import Codec, codec_from_name
from .decoders import DECODERS, keyless_decoder
from .frames import FrameAssembler, RecordedFrame
from .judge import SHORTEST_TAG, FrameJudge, Judged, Label
from .mjr import MjrHeader, MjrPackets, read_header
from .report import MAX_KIDS, KidSummary, RecordingReport

if TYPE_CHECKING:
    from .mjr import Buffer


class UnsupportedRecording(ValueError):
    """A valid recording of a track the inspector cannot judge (data, or a codec other than
    VP8, H.264 and Opus). The message may quote the codec name from the file: sanitise it."""


class RecordedTrack:
    """The frames of one recording, read lazily from its buffer.

    After :meth:`frames` is exhausted, :attr:`packets` says what was read and whether the file
    was truncated.
    """

    def __init__(self, data: Buffer) -> None:
        self.header: MjrHeader = read_header(data)
        codec = codec_from_name(self.header.codec)
        if self.header.kind == "data" or codec not in DECODERS:
            what = "a data channel" if self.header.kind == "data" else f"{self.header.kind} in {self.header.codec!r}"
            raise UnsupportedRecording(f"a recording of {what}: inspect reads VP8, H.264 and Opus")
        self.codec = codec
        self.packets = MjrPackets(data, self.header.packets_offset)
        self.assembler = FrameAssembler(codec)

    def frames(self) -> Iterator[RecordedFrame]:
        return self.assembler.frames(packet for _, packet in self.packets)


def inspect_recording(
    data: Buffer, *, tag_length: int = SHORTEST_TAG, decoder: Callable[[Codec], Callable[[bytes], bool]] | None = None
) -> RecordingReport:
    """Read and judge one ``.mjr`` recording.

    ``tag_length`` is the suite's tag length when it is known (default: the shortest of any
    suite). ``decoder`` makes the keyless decoder of a track (default: FFmpeg's, through PyAV).
    Raises :class:`~sealrtc.inspect.mjr.NotARecording` or :class:`UnsupportedRecording`.
    """
    track = RecordedTrack(data)
    judge = FrameJudge(track.codec, (decoder or keyless_decoder)(track.codec), tag_length)
    counts = dict.fromkeys(Label, 0)
    kids: dict[int, list[int]] = {}  # kid -> [frames, first_ctr, last_ctr]
    unlisted: set[int] = set()
    frames = incomplete = 0

    def count(labels: Iterator[Judged]) -> None:
        for label, header in labels:
            counts[label] += 1
            if label is not Label.CIPHERTEXT or header is None:
                continue
            kid, ctr = header
            entry = kids.get(kid)
            if entry is not None:
                entry[0] += 1
                entry[2] = ctr
            elif len(kids) < MAX_KIDS:
                kids[kid] = [1, ctr, ctr]
            elif len(unlisted) < MAX_KIDS:
                unlisted.add(kid)

    for frame in track.frames():
        frames += 1
        incomplete += not frame.complete
        count(judge.feed(frame.data, starts=frame.starts))
    count(judge.finish())
    return RecordingReport(
        kind=track.header.kind,
        codec=track.codec.value,
        packets=track.assembler.packets,
        unusable_packets=track.assembler.unusable_packets,
        frames=frames,
        ciphertext_frames=counts[Label.CIPHERTEXT],
        not_v1_frames=counts[Label.NOT_V1],
        plain_frames=counts[Label.PLAIN],
        incomplete_frames=incomplete,
        kids=tuple(KidSummary(kid, *entry) for kid, entry in kids.items()),
        kids_not_listed=len(unlisted),
        truncated=track.packets.truncated,
    )
