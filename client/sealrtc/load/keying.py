"""The key lifecycle of a load run: when keys change, which secret comes next, and what users saw
around each change. Pure (no I/O, no clock of its own): the worker drives it.

Rotation (keying v1, ``--rotate-every S``): change ``n`` (n = 1, 2, ...) happens ``n * S``
seconds after the start and switches every room to secret ``n``, which is
``base64url(HMAC-SHA256(key = UTF-8(secret 0), "sealrtc/v1/rotation/" + n))`` without padding
(secret 0 is the run's secret). Every participant gets secret ``n`` decrypt-only
:data:`PREINSTALL` seconds before the switch, the way an application hands out the next key.
Anyone holding secret 0 can compute the sequence: it models rotation, not removal (removing a
member needs a secret they never saw). ``sealrtc publish --rotate-every`` uses the same rule.

Epochs (keying v2): the timer (``--ratchet-every S``) advances every room's epoch every ``S``
seconds, and each planned churn join (:func:`sealrtc.load.plan.churn_plan`) advances its room's,
debounced: :func:`epoch_schedule` plans both, so every worker (and shard) knows each room's epoch
at any second and gives a joiner the epoch file of the epoch it joins in (:func:`joiner_epoch`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..epochs import JOIN_DEBOUNCE, EpochKey, ratchet
from ..failures import FailureCounts
from ..sframe import CipherSuite

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


JOIN_LEAD = 0.5
"""Seconds before a planned join at which its room's epoch advances: the joiner's epoch file is
for the new epoch, and the lead covers the skew between workers' clocks and the frames in
flight, so a joiner is not sent frames of an epoch it was never given."""


@dataclass(frozen=True)
class EpochStep:
    """A planned keying v2 change: at ``at`` seconds, room ``room`` moves to epoch ``epoch``."""

    at: float
    room: int
    epoch: int
    join: bool
    """Caused by a join (else by the ``--ratchet-every`` timer)."""


def epoch_schedule(
    rooms: int, duration: float, ratchet_every: float, joins: Iterable[tuple[float, int]], *, start: int = 0
) -> list[EpochStep]:
    """Every room's epoch changes, in time order: the timer's (every room at once) and one per
    planned join (``(join_at, room)``), :data:`JOIN_LEAD` before it, debounced per room to one step
    per :data:`~sealrtc.epochs.JOIN_DEBOUNCE` second as :meth:`EpochKeys.advance_on_join` does.

    The debounce is applied here, to planned times, rather than by each publisher's clock: joins
    exactly one second apart would otherwise step or not depending on a wake-up's jitter, and
    publishers on different workers would disagree. ``start``: the run's first epoch.
    """
    events: list[tuple[float, int, bool]] = [(t, room, False) for t in change_times(duration, every=ratchet_every)
                                             for room in range(rooms)]  # fmt: skip
    last_join: dict[int, float] = {}
    for join_at, room in sorted(joins):
        at = round(max(0.0, join_at - JOIN_LEAD), 6)
        if room in last_join and at - last_join[room] < JOIN_DEBOUNCE - 1e-9:
            continue
        last_join[room] = at
        events.append((at, room, True))
    epochs = dict.fromkeys(range(rooms), start)
    steps = []
    for at, room, join in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        epochs[room] += 1
        steps.append(EpochStep(at, room, epochs[room], join))
    return steps


def epoch_at(steps: Iterable[EpochStep], room: int, at: float, *, start: int = 0) -> int:
    """Room ``room``'s planned epoch at ``at`` seconds (a step at exactly ``at`` has happened)."""
    return max((s.epoch for s in steps if s.room == room and s.at <= at + 1e-9), default=start)


def joiner_epoch(steps: Iterable[EpochStep], room: int, join_at: float, *, start: int = 0) -> int:
    """The epoch file a joiner of ``room`` at ``join_at`` gets: its room's epoch once its own
    join has advanced it (:data:`JOIN_LEAD` before). Publishers may be one step further by the
    time it receives (the timer, a later join, a worker's clock ahead): it derives forward."""
    return epoch_at(steps, room, max(0.0, join_at - JOIN_LEAD), start=start)


def forward(key: EpochKey, epoch: int, suite: CipherSuite | int) -> EpochKey:
    """``key`` ratcheted forward to ``epoch`` (never back: the ratchet is one-way)."""
    if epoch < key.epoch:
        raise ValueError(f"epoch {epoch} is before the key's epoch {key.epoch}: the ratchet only goes forward")
    material = key.material
    for _ in range(epoch - key.epoch):
        material = ratchet(material, suite)
    return EpochKey(material, key.fingerprint, epoch)
