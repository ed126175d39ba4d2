"""Connect phases of one subscription, each the first time it happened, in ms from the start."""

from __future__ import annotations

PHASES = ("signaling", "ice", "dtls", "first_rtp", "first_decrypted", "first_decoded")


class ConnectPhases:
    """``mark(phase, at)`` keeps the first time of each phase (monotonic seconds).

    signaling: the answer was applied; ice: ICE connected; dtls: DTLS done (peer connection
    "connected"); first_rtp: the first frame was reassembled from RTP; first_decrypted: the first
    frame verified; first_decoded: the decoder produced the first picture or audio frame.
    """

    __slots__ = ("_times", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self._times: dict[str, float] = {}

    def mark(self, phase: str, at: float | None) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown connect phase {phase!r}")
        if at is not None and phase not in self._times:
            self._times[phase] = at

    def get(self, phase: str) -> float | None:
        return self._times.get(phase)

    def as_dict(self) -> dict[str, float | None]:
        """``{"signaling_ms", "ice_ms", ...}``; None for phases not reached."""
        return {
            f"{phase}_ms": round((self._times[phase] - self.start) * 1000, 1) if phase in self._times else None
            for phase in PHASES
        }
