"""A sliding anti-replay window over SFrame CTR values (RFC 3711 3.3.2, adapted to CTR).

Sans-I/O and per KID. :meth:`check` is side-effect free and runs before the tag is verified;
:meth:`accept` runs only after the frame authenticated, so forged frames cannot move the window.
"""

from __future__ import annotations

DEFAULT_WINDOW = 128


class ReplayWindow:
    __slots__ = ("_highest", "_mask", "size")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("replay window must hold at least one counter")
        self.size = size
        self._highest = -1
        self._mask = 0  # bit i set: counter (highest - i) was seen

    def check(self, ctr: int) -> bool:
        """True if ``ctr`` is new and inside (or ahead of) the window."""
        if ctr > self._highest:
            return True
        offset = self._highest - ctr
        if offset >= self.size:
            return False
        return not (self._mask >> offset) & 1

    def accept(self, ctr: int) -> None:
        """Record ``ctr`` as seen (call only after authentication)."""
        if ctr > self._highest:
            shift = ctr - self._highest
            self._mask = ((self._mask << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self._highest = ctr
        else:
            self._mask |= 1 << (self._highest - ctr)
