"""Video freezes by the W3C webrtc-stats rule.

A freeze is an inter-frame delay >= max(3 x mean, mean + 150 ms), the mean taken over the last
30 inter-frame delays (``RTCInboundRtpStreamStats.freezeCount`` / ``totalFreezesDuration``). We
apply it to frames as they are decrypted, before any decoder.
"""

from __future__ import annotations

from collections import deque

WINDOW = 30
EXTRA_MS = 150.0
MIN_SAMPLES = 5
"""Delays seen before freezes are judged (as libwebrtc does: the first frames have no mean)."""


class FreezeDetector:
    __slots__ = ("_delays", "_last", "_sum", "count", "total_ms")

    def __init__(self) -> None:
        self._last: float | None = None
        self._delays: deque[float] = deque(maxlen=WINDOW)
        self._sum = 0.0
        self.count = 0
        self.total_ms = 0.0

    def frame(self, at: float) -> bool:
        """Record a frame at monotonic time ``at`` (seconds); True if it ended a freeze."""
        last, self._last = self._last, at
        if last is None:
            return False
        delay = (at - last) * 1000
        delays = self._delays
        frozen = False
        if len(delays) >= MIN_SAMPLES:
            mean = self._sum / len(delays)
            if delay >= max(3 * mean, mean + EXTRA_MS):
                self.count += 1
                self.total_ms += delay
                frozen = True
        if len(delays) == WINDOW:
            self._sum -= delays[0]
        delays.append(delay)
        self._sum += delay
        return frozen
