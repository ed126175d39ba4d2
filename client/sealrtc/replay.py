"""A sliding anti-replay window over SFrame CTR values (RFC 3711 3.3.2, adapted to CTR).

Sans-I/O and per KID. :meth:`check` is side-effect free and runs before the tag is verified;
:meth:`accept` runs only after the frame authenticated, so forged frames cannot move the window.
:attr:`highest` and :meth:`restore` let a receiver keep a compact floor for a KID whose window
it had to forget, so an old frame of that KID stays refused when the KID comes back.
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

    @property
    def highest(self) -> int:
        """The highest accepted counter (-1 before the first)."""
        return self._highest

    def restore(self, highest: int) -> None:
        """Treat every counter at or below ``highest`` as already seen (fail closed).

        Used when a forgotten KID returns: only its highest counter was kept, so the counters
        below it that the lost window had not seen are refused too.
        """
        full = (1 << self.size) - 1
        if highest > self._highest:
            self._highest = highest
            self._mask = full
            return
        offset = self._highest - highest  # bits at and beyond this offset are <= highest
        if offset < self.size:
            self._mask |= full & ~((1 << offset) - 1)

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
