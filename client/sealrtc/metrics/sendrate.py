"""The bitrate a publisher sent, per kind: over the time it was sending, and over the last seconds.

Sans-I/O: the caller samples byte counters with its own clock. The counters are those of the
current connection, so they start again from zero after a reconnect; a counter that goes down is
read as a fresh connection, and the bytes it counts are added to what went before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

RECENT_S = 5.0


class _Kind:
    def __init__(self) -> None:
        self.total = 0  # bytes over every connection
        self.last_raw = 0  # the counter of the current connection, as last seen
        self.first_at: float | None = None  # when bytes were first seen
        self.first_total = 0  # the bytes counted then, sent before it
        self.last_at: float | None = None
        self.history: deque[tuple[float, int]] = deque()

    def sample(self, now: float, raw: int, keep_s: float) -> None:
        self.total += raw - self.last_raw if raw >= self.last_raw else raw
        self.last_raw = raw
        if self.total == 0:
            return
        if self.first_at is None:
            self.first_at, self.first_total = now, self.total
        self.last_at = now
        self.history.append((now, self.total))
        # Keep one sample at or before the window's start, so the window is measured whole.
        while len(self.history) > 2 and self.history[1][0] <= now - keep_s:
            self.history.popleft()


class SendRate:
    """Sampled byte counters -> kbit/s.

    The mean counts from the first sample that saw bytes: the time before the connection carried
    media is not averaged in, so a short run is not reported slower than it sent."""

    def __init__(self, recent_s: float = RECENT_S) -> None:
        self.recent_s = recent_s
        self._kinds: dict[str, _Kind] = {}

    def sample(self, now: float, bytes_sent: Mapping[str, int]) -> None:
        for kind, raw in bytes_sent.items():
            self._kinds.setdefault(kind, _Kind()).sample(now, raw, self.recent_s)

    def kbps(self, kind: str) -> float | None:
        """Bits sent since bytes were first seen, over that time (None before two samples)."""
        k = self._kinds.get(kind)
        if k is None or k.first_at is None or k.last_at is None or k.last_at <= k.first_at:
            return None
        # The bytes already counted at the first sample were sent before it: left out.
        return (k.total - k.first_total) * 8 / (k.last_at - k.first_at) / 1000

    def recent_kbps(self, kind: str) -> float | None:
        """Bits sent over the last :attr:`recent_s` seconds (or as much of them as was sampled)."""
        k = self._kinds.get(kind)
        if k is None or len(k.history) < 2:
            return None
        now, after = k.history[-1]
        then, before = k.history[0]
        for at, total in k.history:
            if at > now - self.recent_s:
                break
            then, before = at, total
        if now <= then:
            return None
        return (after - before) * 8 / (now - then) / 1000
