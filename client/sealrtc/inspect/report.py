"""What the inspector says about one recording: typed, frozen, with its JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_KIDS = 256
"""KIDs listed per recording; more (only a forged or broken file has them) are counted."""


@dataclass(frozen=True)
class KidSummary:
    """One key id seen on ciphertext frames.

    The KID is public (RFC 9605 puts it in clear in every frame), and so is keying v2's key
    epoch in it: :attr:`epoch` reads it without any key.
    """

    kid: int
    frames: int
    first_ctr: int
    last_ctr: int

    @property
    def epoch(self) -> int:
        """The KID's epoch byte: the key epoch mod 256 under keying v2 (``tag << 16 | epoch << 8 |
        fp2``). Without a key nothing tells v1 from v2, and under keying v1 this byte is part of
        the sender's random tag: only read it as an epoch for a room known to use keying v2."""
        return (self.kid >> 8) & 0xFF

    def to_json(self) -> dict[str, int]:
        return {
            "kid": self.kid,
            "epoch": self.epoch,
            "frames": self.frames,
            "first_ctr": self.first_ctr,
            "last_ctr": self.last_ctr,
        }


@dataclass(frozen=True)
class RecordingReport:
    """Per-frame labels of one recorded track, counted (see :mod:`sealrtc.inspect.judge`)."""

    kind: str
    """``"video"`` or ``"audio"``."""
    codec: str
    """``"vp8"`` or ``"opus"``."""
    packets: int
    unusable_packets: int
    """Records that were not RTP, had no payload or a broken VP8 descriptor, or came twice."""
    frames: int
    ciphertext_frames: int
    not_v1_frames: int
    plain_frames: int
    incomplete_frames: int
    """Frames reassembled with a packet missing (they are labelled like the others)."""
    kids: tuple[KidSummary, ...]
    kids_not_listed: int
    """Further KIDs beyond :data:`MAX_KIDS` (their frames are counted above)."""
    truncated: bool
    """The file ends (or breaks) inside a record: everything before was read."""

    @property
    def only_ciphertext(self) -> bool:
        """Every frame is ciphertext (also true of a recording without frames)."""
        return self.ciphertext_frames == self.frames

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epoch bytes of the listed KIDs, each once, in the order they first appeared
        (keying v2's epochs seen; see :attr:`KidSummary.epoch`)."""
        return tuple(dict.fromkeys(k.epoch for k in self.kids))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "codec": self.codec,
            "packets": self.packets,
            "unusable_packets": self.unusable_packets,
            "frames": self.frames,
            "ciphertext_frames": self.ciphertext_frames,
            "not_v1_frames": self.not_v1_frames,
            "plain_frames": self.plain_frames,
            "incomplete_frames": self.incomplete_frames,
            "kids": [kid.to_json() for kid in self.kids],
            "kids_not_listed": self.kids_not_listed,
            "epochs": list(self.epochs),
            "truncated": self.truncated,
        }
