"""Agents that recover: how long to wait between attempts, and what the outages cost.

When an agent loses its media path or its signaling connection, it tries again after a capped
exponential backoff with jitter (many agents losing the same server must not come back in lock
step), until it is connected again or ``recover_within`` seconds have passed since the loss.
:class:`RecoveryLog` counts what the report shows: ``reconnects``, ``time_to_recover_ms`` (from
losing media to the next decrypted frame; for a publisher, to the next established connection)
and ``outage_ms`` (every outage's length, the one still going included).

It also counts ``frames_missed``: the video frames a subscriber did not get during its outages,
apart from the frames lost on a working link (a new connection's receive tracks start their own
loss count, so an outage's frames would otherwise be counted nowhere). Exact when the publisher
numbers its frames with probes across reconnects (same stream id, continuing sequence): the
first probe on the new connection minus the last one before the loss, less one. Otherwise
(no probes, a foreign publisher, a new stream id) an estimate: the outage's length times the
video frame rate before the loss, marked as such.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ..metrics import Histogram

__all__ = ["DEFAULT_RECOVER_WITHIN", "Backoff", "RecoveryLog", "estimate_missed", "frames_missed_between", "retry"]

logger = logging.getLogger(__name__)

DEFAULT_RECOVER_WITHIN = 30.0

_U32 = 1 << 32
_HALF = 1 << 31


def frames_missed_between(last: Mapping[int, int], first: Mapping[int, int]) -> int | None:
    """Frames sent between the last probe before an outage and the first one after it.

    ``last`` and ``first`` map a probe stream id to a sequence number (the highest one received
    before the loss, the first one received on the new connection). Streams found in both are
    the same publisher's track numbered across its reconnects: each one missed
    ``first - last - 1`` frames (32-bit wrap-aware; a sequence that went backwards, a
    publisher that restarted its numbering, counts none). None when no stream is in both: the
    count cannot be exact."""
    common = last.keys() & first.keys()
    if not common:
        return None
    missed = 0
    for stream in common:
        delta = (first[stream] - last[stream]) % _U32
        if 0 < delta < _HALF:
            missed += delta - 1
    return missed


def estimate_missed(outage_s: float, frame_rate: float | None) -> int:
    """The frames an outage of ``outage_s`` seconds cost a track of ``frame_rate`` frames per
    second (None: no video before the loss, nothing to estimate from)."""
    if frame_rate is None or frame_rate <= 0 or outage_s <= 0:
        return 0
    return round(outage_s * frame_rate)


@dataclass(frozen=True)
class _Missed:
    """An outage that ended, waiting for the new connection's first video probe."""

    outage_s: float
    frame_rate: float | None
    last: Mapping[int, int]

    def estimate(self) -> int:
        return estimate_missed(self.outage_s, self.frame_rate)


@dataclass(frozen=True)
class Backoff:
    """Delays before each attempt: ``first``, doubled each time up to ``cap``, each one less a
    random share of up to ``jitter`` (so the mean stays below the cap)."""

    first: float = 0.5
    cap: float = 5.0
    jitter: float = 0.5

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        delay = self.first
        while True:
            yield delay * (1.0 - self.jitter * rng.random())
            delay = min(self.cap, delay * 2)


@dataclass
class RecoveryLog:
    """One agent's outages: when each began, when media came back."""

    clock: Callable[[], float] = time.monotonic
    reconnects: int = 0
    time_to_recover: Histogram = field(default_factory=Histogram)
    outages_ms: list[float] = field(default_factory=list)
    lost_at: float | None = None
    """When the current outage began (None: media flows, or never lost)."""
    reason: str | None = None
    """Why the current (or last) outage began."""
    frames_missed: int = 0
    """Video frames not received during the outages settled so far (see :meth:`missed_frames`)."""
    frames_missed_estimated: bool = False
    """True when some settled outage's count is an estimate (not matched by probes)."""
    _frame_rate: float | None = field(default=None, init=False, repr=False)
    _last_probes: Mapping[int, int] = field(default_factory=dict, init=False, repr=False)
    _pending: _Missed | None = field(default=None, init=False, repr=False)

    def lost(
        self,
        reason: str,
        *,
        since: float | None = None,
        frame_rate: float | None = None,
        last_probes: Mapping[int, int] | None = None,
    ) -> None:
        """The media path is lost (``since``: when the last media arrived, on the same clock;
        default now: a loss is noticed seconds after media stopped, and the outage began then).

        ``frame_rate``: the video frame rate before the loss; ``last_probes``: the highest
        video probe sequence received per stream id before it (what :meth:`first_probes` will
        match)."""
        if self.lost_at is None:
            self.settle()  # a previous outage still unmatched: its estimate stands
            now = self.clock()
            self.lost_at = now if since is None else min(since, now)
            self.reason = reason
            self._frame_rate = frame_rate
            self._last_probes = dict(last_probes or {})

    def reconnected(self) -> None:
        self.reconnects += 1

    def recovered(self, at: float | None = None) -> None:
        """Media is back (``at``: when, on the same clock; default now)."""
        if self.lost_at is None:
            return
        at = self.clock() if at is None else at
        elapsed_ms = max(0.0, (at - self.lost_at) * 1000)
        self.time_to_recover.record(elapsed_ms)
        self.outages_ms.append(elapsed_ms)
        self.lost_at = None
        self.settle()
        self._pending = _Missed(elapsed_ms / 1000, self._frame_rate, self._last_probes)

    @property
    def awaiting_probes(self) -> bool:
        """An outage ended and waits for :meth:`first_probes` (or :meth:`settle`)."""
        return self._pending is not None

    def first_probes(self, first: Mapping[int, int]) -> None:
        """The new connection's first video probe sequence per stream id (empty: its video came
        without probes): the last ended outage's missed frames, exact when a stream matches the
        one before the loss, else estimated."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        exact = frames_missed_between(pending.last, first)
        if exact is None:
            self._add_missed(pending.estimate(), estimated=True)
        else:
            self._add_missed(exact, estimated=False)

    def settle(self) -> None:
        """Count the last ended outage by its estimate if no probe came to match it."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._add_missed(pending.estimate(), estimated=True)

    def _add_missed(self, frames: int, *, estimated: bool) -> None:
        self.frames_missed += frames
        self.frames_missed_estimated = self.frames_missed_estimated or estimated

    def missed_frames(self) -> tuple[int, bool]:
        """``(frames missed, estimated)`` over every outage: the settled ones, plus the
        estimate of one awaiting its probes and of one still going."""
        frames, estimated = self.frames_missed, self.frames_missed_estimated
        if self._pending is not None:
            frames, estimated = frames + self._pending.estimate(), True
        if self.lost_at is not None:
            frames += estimate_missed(self.outage_seconds(), self._frame_rate)
            estimated = True
        return frames, estimated

    def outage_seconds(self) -> float:
        """How long the current outage has lasted (0 when media flows)."""
        return 0.0 if self.lost_at is None else self.clock() - self.lost_at

    def as_dict(self) -> dict[str, object]:
        ongoing = [self.outage_seconds() * 1000] if self.lost_at is not None else []
        outages = [round(ms, 1) for ms in [*self.outages_ms, *ongoing]]
        summary = self.time_to_recover.summary() if self.time_to_recover.count else None
        missed, estimated = self.missed_frames()
        return {
            "reconnects": self.reconnects,
            "time_to_recover_ms": summary,
            "outage_ms": {"total": round(sum(outages), 1), "outages": outages},
            "recovering": self.lost_at is not None,
            "frames_missed": missed,
            "frames_missed_estimated": estimated,
        }


async def retry(
    attempt: Callable[[], Awaitable[None]], log: RecoveryLog, within: float, backoff: Backoff = Backoff()
) -> bool:
    """Call ``attempt`` after each backoff delay until it succeeds (True) or ``within`` seconds
    have passed since ``log``'s loss (False). Each attempt gets the time that is left."""
    for delay in backoff.delays():
        left = within - log.outage_seconds()
        if left <= 0:
            return False
        await asyncio.sleep(min(delay, left))  # the backoff itself: nothing to wait for but time
        left = within - log.outage_seconds()
        if left <= 0:
            return False
        try:
            await asyncio.wait_for(attempt(), left)
            return True
        except (Exception, TimeoutError) as exc:  # any failure of an attempt means: try again
            logger.info("reconnect attempt failed: %s", exc)
    return False
