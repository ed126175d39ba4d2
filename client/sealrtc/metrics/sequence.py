"""Loss and reordering from probe sequence numbers (per stream id, 32-bit wrap-aware)."""

from __future__ import annotations

_U32 = 1 << 32
_HALF = 1 << 31
MAX_TRACKED_GAPS = 4096
"""Bound on remembered missing sequence numbers (a late frame is recognised only if its gap is
still remembered; beyond that it counts as out of order and the loss stays counted)."""


class SequenceTracker:
    """Counts frames lost (gaps never filled) and out of order (arrived after a later one).

    A frame that arrives late fills its gap: it is no longer lost, but counted out of order.
    """

    __slots__ = (
        "_highest", "_missing", "_missing_in_outage", "duplicates", "first", "lost", "missed", "out_of_order",
        "received",
    )  # fmt: skip

    def __init__(self) -> None:
        self.first: int | None = None
        """The first sequence number received (where this receiver's count begins)."""
        self._highest: int | None = None
        self._missing: set[int] = set()
        self._missing_in_outage: set[int] = set()
        self.received = 0
        self.lost = 0
        self.missed = 0
        """Frames of gaps that ended an outage (see :meth:`add`): not lost on a working link."""
        self.out_of_order = 0
        self.duplicates = 0

    def add(self, sequence: int, *, after_outage: bool = False) -> None:
        """One received ``sequence``; ``after_outage``: it ended an outage (nothing came for
        a long time), so a gap before it is the outage's (``missed``), not the link's (``lost``)."""
        self.received += 1
        highest = self._highest
        if highest is None:
            self._highest = self.first = sequence
            return
        delta = (sequence - highest) % _U32
        if delta == 0:
            self.duplicates += 1
            self.received -= 1
        elif delta < _HALF:  # ahead of everything seen
            gap = delta - 1
            if gap:
                if after_outage:
                    self.missed += gap
                else:
                    self.lost += gap
                if len(self._missing) + len(self._missing_in_outage) + gap <= MAX_TRACKED_GAPS:
                    into = self._missing_in_outage if after_outage else self._missing
                    into.update((highest + i) % _U32 for i in range(1, delta))
            self._highest = sequence
        else:  # behind: a late frame (or a duplicate of an old one)
            if sequence in self._missing:
                self._missing.discard(sequence)
                self.lost -= 1
                self.out_of_order += 1
            elif sequence in self._missing_in_outage:
                self._missing_in_outage.discard(sequence)
                self.missed -= 1
                self.out_of_order += 1
            else:
                self.duplicates += 1
                self.received -= 1

    @property
    def highest(self) -> int | None:
        """The highest sequence number received (wrap-aware), None before the first."""
        return self._highest

    @property
    def expected(self) -> int:
        return self.received + self.lost
