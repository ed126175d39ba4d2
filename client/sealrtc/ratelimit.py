"""A sans-I/O rate limiter: key-frame requests at most once per interval (no PLI storms)."""

from __future__ import annotations


class RateLimiter:
    __slots__ = ("_last", "interval")

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """True (and remember ``now``) if the last allowed call is at least ``interval`` ago."""
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True
