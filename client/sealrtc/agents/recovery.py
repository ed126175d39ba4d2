"""Agents that recover: how long to wait between attempts, and what the outages cost.

When an agent loses its media path or its signaling connection, it tries again after a capped
exponential backoff with jitter (many agents losing the same server must not come back in lock
step), until it is connected again or ``recover_within`` seconds have passed since the loss.
:class:`RecoveryLog` counts what the report shows: ``reconnects``, ``time_to_recover_ms`` (from
losing media to the next decrypted frame; for a publisher, to the next established connection)
and ``outage_ms`` (every outage's length, the one still going included).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from ..metrics import Histogram

__all__ = ["DEFAULT_RECOVER_WITHIN", "Backoff", "RecoveryLog", "retry"]

logger = logging.getLogger(__name__)

DEFAULT_RECOVER_WITHIN = 30.0


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

    def lost(self, reason: str, *, since: float | None = None) -> None:
        """The media path is lost (``since``: when the last media arrived, on the same clock;
        default now: a loss is noticed seconds after media stopped, and the outage began then)."""
        if self.lost_at is None:
            now = self.clock()
            self.lost_at = now if since is None else min(since, now)
            self.reason = reason

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

    def outage_seconds(self) -> float:
        """How long the current outage has lasted (0 when media flows)."""
        return 0.0 if self.lost_at is None else self.clock() - self.lost_at

    def as_dict(self) -> dict[str, object]:
        ongoing = [self.outage_seconds() * 1000] if self.lost_at is not None else []
        outages = [round(ms, 1) for ms in [*self.outages_ms, *ongoing]]
        summary = self.time_to_recover.summary() if self.time_to_recover.count else None
        return {
            "reconnects": self.reconnects,
            "time_to_recover_ms": summary,
            "outage_ms": {"total": round(sum(outages), 1), "outages": outages},
            "recovering": self.lost_at is not None,
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
