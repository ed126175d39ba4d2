"""What the inspector says about one recording: typed, frozen, with its JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_KIDS = 256
"""KIDs listed per recording; more (only a forged or broken file has them) are counted."""


@dataclass(frozen=True)
class KidSummary:
    """One key id seen on ciphertext frames.

    The KID is public (RFC 9605 puts it in clear in every frame). Key epochs (keying v2) will
    be read from the KID here and added as a field of this summary.
    """

    kid: int
    frames: int
    first_ctr: int
    last_ctr: int

    def to_json(self) -> dict[str, int]:
        return {"kid": self.kid, "frames": self.frames, "first_ctr": self.first_ctr, "last_ctr": self.last_ctr}


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
            "truncated": self.truncated,
        }
