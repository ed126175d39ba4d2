"""Link impairment, sans-I/O: for each datagram, drop it or say when to deliver it.

The tools load testers compare us with shape links with ``tc netem``, which needs root and a
kernel with netem. sealrtc impairs in process instead: a participant's ICE datagrams go through
an :class:`ImpairedLink` per direction (the shell lives in :mod:`sealrtc.rtc.impair`), so DTLS,
SRTP, RTCP, NACK/RTX and PLI all see the impaired link, unprivileged, in containers, per
participant.

The model is deterministic given its seed and the packet times (``now`` is a parameter):

* **loss** — independent (``burst`` 1), or bursty with the Gilbert model (two states; every
  datagram in the bad state is lost; ``burst`` is the mean length of a loss burst and ``loss``
  the long-run share lost);
* **rate** — a bottleneck of ``rate`` bit/s with a FIFO queue: a datagram waits for the ones
  before it, and is dropped (tail drop) when it would wait more than ``queue`` seconds;
* **delay** and **jitter** — one-way delay plus a uniform jitter in ``[-jitter, +jitter]``; the
  link keeps datagrams in order unless ``reorder`` is set;
* **duplicate** — the share of datagrams delivered twice.

Applied in that order: a datagram lost on the way never reaches the bottleneck.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field, fields, replace

__all__ = ["PROFILES", "ImpairedLink", "Impairment", "ImpairmentError", "LinkCounters", "parse_impairment"]


class ImpairmentError(ValueError):
    """An impairment specification that cannot be used (the message says which part and why)."""


@dataclass(frozen=True)
class Impairment:
    """What one direction of a link does to datagrams (times in seconds, rate in bit/s)."""

    loss: float = 0.0
    """Long-run share of datagrams lost, 0 .. 1 (before the bottleneck)."""
    burst: float = 1.0
    """Mean length of a loss burst in datagrams (1: independent losses)."""
    delay: float = 0.0
    jitter: float = 0.0
    reorder: bool = False
    """Let jitter reorder datagrams (off: a datagram never overtakes the one before it)."""
    rate: float | None = None
    """Bottleneck rate in bit/s (None: unlimited)."""
    queue: float = 0.2
    """Longest wait in the bottleneck's queue before a datagram is dropped (with ``rate``)."""
    duplicate: float = 0.0
    """Share of datagrams delivered twice, 0 .. 1."""

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ImpairmentError(f"{name} must be at least 0% and below 100%")
        if not math.isfinite(self.burst) or self.burst < 1.0:
            raise ImpairmentError("burst must be a mean burst length of at least 1 datagram")
        for name in ("delay", "jitter", "queue"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 60.0:
                raise ImpairmentError(f"{name} must be between 0 and 60 s")
        if self.rate is not None and (not math.isfinite(self.rate) or self.rate < 1000.0):
            raise ImpairmentError("rate must be at least 1kbit")

    @property
    def is_identity(self) -> bool:
        """True when this impairment changes nothing (no need to hook a link)."""
        return self == Impairment()

    def describe(self) -> str:
        """The specification in the syntax :func:`parse_impairment` reads (defaults left out)."""
        parts: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name in ("loss", "duplicate"):
                parts.append(f"{f.name}={value * 100:g}%")
            elif f.name in ("delay", "jitter", "queue"):
                parts.append(f"{f.name}={value * 1000:g}ms")
            elif f.name == "rate":
                parts.append(f"rate={value / 1000:g}kbit")
            elif f.name == "reorder":
                parts.append("reorder=true")
            else:
                parts.append(f"{f.name}={value:g}")
        return ",".join(parts) or "none"


PROFILES: dict[str, Impairment] = {
    "good": Impairment(delay=0.010, jitter=0.002),
    "wifi": Impairment(delay=0.015, jitter=0.010, loss=0.01, burst=2),
    "4g": Impairment(delay=0.040, jitter=0.015, loss=0.005, rate=10_000_000, queue=0.2),
    "3g": Impairment(delay=0.100, jitter=0.030, loss=0.015, burst=2, rate=1_000_000, queue=0.3),
    "lossy": Impairment(delay=0.020, jitter=0.005, loss=0.05, burst=4),
    "satellite": Impairment(delay=0.300, jitter=0.010, loss=0.005, rate=5_000_000, queue=0.6),
}
"""Named links (one direction each). Values are typical, not measurements of any network."""

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def _time(name: str, text: str) -> float:
    match = re.fullmatch(_NUMBER + r"(us|ms|s)", text)
    if match is None:
        raise ImpairmentError(f"{name}: give a time such as 100ms or 1.5s")
    return float(match[1]) * _TIME_UNITS[match[2]]


def _share(name: str, text: str) -> float:
    match = re.fullmatch(_NUMBER + "%", text)
    if match is None:
        raise ImpairmentError(f"{name}: give a percentage such as 5%")
    return float(match[1]) / 100


def _rate(text: str) -> float:
    match = re.fullmatch(_NUMBER + r"(bit|kbit|mbit|gbit)", text.lower())
    if match is None:
        raise ImpairmentError("rate: give a rate such as 300kbit or 2mbit")
    return float(match[1]) * _RATE_UNITS[match[2]]


def parse_impairment(text: str) -> Impairment:
    """Read ``"3g"``, ``"loss=5%,burst=4,delay=100ms"`` or ``"4g,loss=2%"`` (a profile, then
    settings that override it). Keys: loss, burst, delay, jitter, reorder, rate, queue,
    duplicate. Raises :class:`ImpairmentError` naming the part it cannot read."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or not all(items):
        raise ImpairmentError("empty impairment: give a profile (" + ", ".join(PROFILES) + ") or key=value settings")
    base = Impairment()
    if "=" not in items[0]:
        name = items.pop(0).lower()
        if name not in PROFILES:
            known = ", ".join(PROFILES)
            raise ImpairmentError(f"unknown profile (known: {known}; or settings such as loss=5%,delay=100ms)")
        base = PROFILES[name]
    settings: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key in settings:
            raise ImpairmentError(f"{key} is given twice")
        if key in ("loss", "duplicate"):
            settings[key] = _share(key, value)
        elif key in ("delay", "jitter", "queue"):
            settings[key] = _time(key, value)
        elif key == "rate":
            settings[key] = _rate(value)
        elif key == "burst":
            if re.fullmatch(_NUMBER, value) is None:
                raise ImpairmentError("burst: give a mean burst length in datagrams, such as 4")
            settings[key] = float(value)
        elif key == "reorder":
            if value.lower() not in ("true", "false"):
                raise ImpairmentError("reorder: give true or false")
            settings[key] = value.lower() == "true"
        else:
            raise ImpairmentError(
                "unknown setting (known: loss, burst, delay, jitter, reorder, rate, queue, duplicate)"
            )
    return replace(base, **settings)  # type: ignore[arg-type]


@dataclass
class LinkCounters:
    """What an :class:`ImpairedLink` did; ``offered`` = every datagram it was asked about."""

    offered: int = 0
    delivered: int = 0
    lost: int = 0
    """Dropped by the loss model."""
    queue_dropped: int = 0
    """Dropped by the bottleneck's full queue."""
    duplicated: int = 0
    delay_total: float = field(default=0.0, repr=False)
    """Sum of the delivery delays of delivered datagrams (seconds), for their mean."""

    @property
    def dropped(self) -> int:
        return self.lost + self.queue_dropped

    @property
    def mean_delay_ms(self) -> float | None:
        return self.delay_total / self.delivered * 1000 if self.delivered else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "offered": self.offered,
            "delivered": self.delivered,
            "lost": self.lost,
            "queue_dropped": self.queue_dropped,
            "duplicated": self.duplicated,
            "mean_delay_ms": None if self.mean_delay_ms is None else round(self.mean_delay_ms, 3),
        }


class ImpairedLink:
    """One direction of an impaired link: :meth:`decide` per datagram, in sending order."""

    def __init__(self, impairment: Impairment, seed: int = 0) -> None:
        self.impairment = impairment
        self.counters = LinkCounters()
        self._random = random.Random(seed)
        self._bad = False  # Gilbert model state
        # Gilbert model: leave the bad state with 1/burst (mean burst = burst datagrams), enter it
        # with the probability that makes the long-run share of bad datagrams equal ``loss``.
        self._leave_bad = 1.0 / impairment.burst
        self._enter_bad = impairment.loss * self._leave_bad / (1.0 - impairment.loss)
        self._busy_until = -math.inf  # when the bottleneck has sent everything queued
        self._last_delivery = -math.inf

    def decide(self, now: float, size: int) -> tuple[float, ...]:
        """The delivery times (absolute, same clock as ``now``) of a datagram of ``size`` bytes
        sent at ``now``: ``()`` drops it, two times duplicate it."""
        imp = self.impairment
        counters = self.counters
        counters.offered += 1
        if self._lost():
            counters.lost += 1
            return ()
        departure = now
        if imp.rate is not None:
            start = max(now, self._busy_until)
            if start - now > imp.queue:
                counters.queue_dropped += 1
                return ()
            departure = start + size * 8 / imp.rate
            self._busy_until = departure
        arrival = departure + self._one_way_delay()
        if not imp.reorder:
            arrival = max(arrival, self._last_delivery)
        self._last_delivery = max(self._last_delivery, arrival)
        counters.delivered += 1
        counters.delay_total += arrival - now
        if imp.duplicate and self._random.random() < imp.duplicate:
            counters.duplicated += 1
            return (arrival, arrival)
        return (arrival,)

    def _lost(self) -> bool:
        imp = self.impairment
        if not imp.loss:
            return False
        if imp.burst <= 1.0:
            return self._random.random() < imp.loss
        if self._bad:
            self._bad = self._random.random() >= self._leave_bad
        else:
            self._bad = self._random.random() < self._enter_bad
        return self._bad

    def _one_way_delay(self) -> float:
        imp = self.impairment
        if not imp.jitter:
            return imp.delay
        return max(0.0, imp.delay + self._random.uniform(-imp.jitter, imp.jitter))
