"""Fault scenarios of a load run: what ``--fault SPEC`` asks for, when each fault's effects are
watched, and what legitimate subscribers saw. Pure (no I/O, no clock of its own): the runner
injects the faults, the workers sample, this module decides.

Specs: ``relay-restart@10s`` (the embedded relay is stopped 10 s after the start and started
again on the same address) and ``relay-pause@10s+3s`` (the relay process is frozen with SIGSTOP
for 3 s, then SIGCONT: a server that hangs without closing anything). Times take ``s`` or ``ms``.

What subscribers saw: from just before a fault until its effects are over, each legitimate
subscriber that had video is sampled every :data:`SAMPLE` seconds; it *lost media* when it went
:data:`LOST_GAP` seconds or more without a decrypted video frame, and it *recovered* when video
flows again before the window closes. Its recovery time is that gap: from the last frame before
to the first frame after (the outage as a user saw it, whatever the agent did meanwhile).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import SealError
from ..report.measures import Summary
from ..report.model import FaultReport
from ..report.records import FaultTotals, WorkerFinal

__all__ = [
    "KINDS",
    "LEAD",
    "LOST_GAP",
    "SAMPLE",
    "Fault",
    "FaultError",
    "GapWatch",
    "check_faults",
    "fault_reports",
    "may_close",
    "parse_fault",
    "windows",
]

KINDS = ("relay-restart", "relay-pause")
"""Faults the runner can cause; both act on the embedded relay."""
SAMPLE = 0.05
"""Seconds between samples of every watched subscriber's decrypted video frames."""
LOST_GAP = 0.5
"""A subscriber without a decrypted video frame for this long lost media (15 frames at 30 fps)."""
LEAD = 0.5
"""Seconds before a fault at which its watch begins (the baseline: media flowing)."""
SETTLE = 3.0
"""Seconds after a fault's end after which its watch may close early, when nobody is in a gap
(a stopping relay may forward for a moment: the gaps must have begun)."""
END_MARGIN = 0.5
"""Seconds before the run's end at which every watch closes (the numbers are taken before the close)."""

_SPEC = re.compile(
    r"^(?P<kind>[a-z-]+)@(?P<at>[0-9.]+)(?P<at_unit>ms|s)?(?:\+(?P<length>[0-9.]+)(?P<length_unit>ms|s)?)?$"
)


class FaultError(SealError):
    """A fault spec that cannot be used (one line: which spec and why)."""


@dataclass(frozen=True)
class Fault:
    """One fault: its kind, when (seconds after the run's start) and, for a pause, how long."""

    kind: str
    at_s: float
    length_s: float = 0.0
    spec: str = ""

    @property
    def target(self) -> str:
        """The target kind the fault acts on (``relay``)."""
        return self.kind.split("-", 1)[0]

    def to_json(self) -> dict[str, object]:
        return {"spec": self.spec, "kind": self.kind, "at_s": self.at_s, "length_s": self.length_s}


def _seconds(number: str, unit: str | None) -> float:
    value = float(number)
    return value / 1000 if unit == "ms" else value


def parse_fault(text: str) -> Fault:
    """``relay-restart@10s`` or ``relay-pause@10s+3s``; anything else raises :class:`FaultError`."""
    spec = text.strip()
    match = _SPEC.match(spec)
    if match is None:
        raise FaultError(f"--fault {text!r}: expected KIND@TIME, e.g. relay-restart@10s or relay-pause@10s+3s")
    kind = match["kind"]
    if kind not in KINDS:
        raise FaultError(f"--fault {text!r}: unknown fault {kind!r} (known: {', '.join(KINDS)})")
    try:
        at = _seconds(match["at"], match["at_unit"])
        length = _seconds(match["length"], match["length_unit"]) if match["length"] else 0.0
    except ValueError:
        raise FaultError(f"--fault {text!r}: times are numbers of seconds, e.g. 10s or 1500ms") from None
    if not math.isfinite(at) or not math.isfinite(length):
        raise FaultError(f"--fault {text!r}: times are numbers of seconds")
    if kind == "relay-pause" and length <= 0:
        raise FaultError(f"--fault {text!r}: a pause needs its length, e.g. relay-pause@10s+3s")
    if kind == "relay-restart" and match["length"]:
        raise FaultError(f"--fault {text!r}: a restart takes no length (relay-restart@10s)")
    return Fault(kind, at, length, spec)


def check_faults(faults: Sequence[Fault], *, duration: float, target: str) -> list[Fault]:
    """The faults in time order, if this run can have them: each one's target is the run's
    (``relay``: the embedded relay, the only server the runner owns), each starts within the
    run, and none starts before the previous one is over."""
    ordered = sorted(faults, key=lambda f: f.at_s)
    for fault in ordered:
        if fault.target != target:
            where = {"janus": "a Janus", "whip": "a WHIP/WHEP server"}.get(target, target)
            raise FaultError(f"--fault {fault.spec}: acts on the embedded relay, but this run's target is {where} "
                             "(the runner cannot restart a server it did not start)")  # fmt: skip
        if not 0 < fault.at_s < duration:
            raise FaultError(f"--fault {fault.spec}: must happen during the run (0 < time < {duration:g} s)")
    for before, after in itertools.pairwise(ordered):
        if after.at_s < before.at_s + before.length_s + LOST_GAP:
            raise FaultError(f"--fault {after.spec}: starts before {before.spec} is over")
    return ordered


def windows(faults: Sequence[Fault], duration: float) -> list[tuple[float, float]]:
    """Each fault's watch, in seconds after the start: from :data:`LEAD` before it to the next
    fault's watch or the run's end (a watch may close earlier: see :class:`GapWatch`)."""
    out = []
    end = max(0.0, duration - END_MARGIN)
    for i, fault in enumerate(faults):
        until = faults[i + 1].at_s - LEAD if i + 1 < len(faults) else end
        out.append((max(0.0, fault.at_s - LEAD), max(fault.at_s, min(until, end))))
    return out


class GapWatch:
    """One subscriber during one fault's watch: the longest stretch without a new decrypted
    video frame, and whether the last stretch is still open."""

    def __init__(self, now: float, count: int) -> None:
        self._last_change = now
        self._count = count
        self.longest_closed = 0.0

    def sample(self, now: float, count: int) -> None:
        if count != self._count:
            self._count = count
            self.longest_closed = max(self.longest_closed, now - self._last_change)
            self._last_change = now

    def in_gap(self, now: float) -> bool:
        """No frame for :data:`LOST_GAP` seconds or more, up to ``now``."""
        return now - self._last_change >= LOST_GAP

    def outcome(self, now: float) -> tuple[bool, float | None]:
        """(lost media, recovery seconds): None when it lost media and has not recovered by ``now``
        (or did not lose it: then the first is False)."""
        if self.in_gap(now):
            return True, None
        if self.longest_closed >= LOST_GAP:
            return True, self.longest_closed
        return False, None


def may_close(watches: Sequence[GapWatch], now: float, over_at: float) -> bool:
    """A watch may close :data:`SETTLE` seconds after its fault is over (``over_at``: on the
    watches' clock) once nobody is in a gap."""
    return now >= over_at + SETTLE and not any(w.in_gap(now) for w in watches)


def fault_reports(faults: Sequence[Fault], finals: Sequence[WorkerFinal]) -> tuple[FaultReport, ...]:
    """The report's ``faults`` section: each fault with every worker's watch of it merged."""
    out = []
    for i, fault in enumerate(faults):
        totals = FaultTotals()
        for final in finals:
            if i < len(final.faults):
                totals.add(final.faults[i])
        out.append(
            FaultReport(
                spec=fault.spec,
                kind=fault.kind,
                at_s=fault.at_s,
                length_s=fault.length_s,
                watched=totals.watched,
                lost_media=totals.lost_media,
                recovered=totals.recovered,
                recovery_ms=Summary.of(totals.recovery_ms),
            )
        )
    return tuple(out)
