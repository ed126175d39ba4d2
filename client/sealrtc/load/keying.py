"""The key lifecycle of a load run: when keys change, which secret comes next, and what users saw
around each change. Pure (no I/O, no clock of its own): the worker drives it.

Rotation (keying v1, ``--rotate-every S``): change ``n`` (n = 1, 2, ...) happens ``n * S``
seconds after the start and switches every room to secret ``n``, which is
``base64url(HMAC-SHA256(key = UTF-8(secret 0), "sealrtc/v1/rotation/" + n))`` without padding
(secret 0 is the run's secret). Every participant gets secret ``n`` decrypt-only
:data:`PREINSTALL` seconds before the switch, the way an application hands out the next key.
Anyone holding secret 0 can compute the sequence: it models rotation, not removal (removing a
member needs a secret they never saw). ``sealrtc publish --rotate-every`` uses the same rule.

Epochs (keying v2, ``--ratchet-every S``): change ``n`` advances every room to epoch ``n``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from ..failures import FailureCounts

PREINSTALL = 1.0
"""Seconds before a rotation at which participants get the next secret, decrypt-only."""
WINDOW = 2.0
"""Seconds after a key change in which failures, losses, freezes and gaps are attributed to it."""
ROTATION_INFO = b"sealrtc/v1/rotation/"


def rotation_secret(secret: str, n: int) -> str:
    """Secret ``n`` of the rotation sequence (``n == 0``: ``secret`` itself)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return secret
    mac = hmac.new(secret.encode("utf-8", "surrogatepass"), ROTATION_INFO + str(n).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def change_times(duration: float, every: float) -> list[float]:
    """Seconds after the start at which keys change: ``every``, ``2 * every``... before the end."""
    if every <= 0:
        return []
    times = []
    n = 1
    while n * every < duration:
        times.append(round(n * every, 6))
        n += 1
    return times


@dataclass
class NearChange:
    """What legitimate subscribers of one room saw within :data:`WINDOW` of key changes."""

    failures: FailureCounts = field(default_factory=FailureCounts)
    lost: int = 0
    freezes: int = 0
    longest_gap_ms: float = 0.0
    """The longest time without a decrypted video frame, for any subscriber, in any window."""

    def add(self, other: NearChange) -> None:
        self.failures.add(other.failures)
        self.lost += other.lost
        self.freezes += other.freezes
        self.longest_gap_ms = max(self.longest_gap_ms, other.longest_gap_ms)


class GapMeter:
    """The longest stretch without progress in a counter, sampled (the worker samples every few
    tens of milliseconds during a window: the gap is known to that resolution)."""

    def __init__(self, start: float, count: int) -> None:
        self._last_change = start
        self._count = count
        self.longest = 0.0

    def sample(self, now: float, count: int) -> None:
        if count != self._count:
            self._count = count
            self.longest = max(self.longest, now - self._last_change)
            self._last_change = now

    def finish(self, now: float) -> float:
        """The longest gap in seconds, the open one up to ``now`` included."""
        return max(self.longest, now - self._last_change)
