"""Impaired links in load runs: which participant gets which link, and the report's per-profile
rows. Pure (no I/O): the runner plans, the workers apply the links to their agents.

Every participant gets the run's link (``--impair``/``--impair-up``/``--impair-down``; none by
default), except the shares of a scenario's ``impair = [{share = 0.25, down = "3g"}, ...]``:
in each role (publishers, subscribers, intruders), ``share x count`` participants (rounded half
up) get
that share's link. Who they are follows the plan, not chance: participants are ranked by
``index x golden ratio mod 1`` (a sequence that spreads any share over rooms and join times)
and the shares take consecutive runs of that ranking. Each participant's impairment is seeded
from the run's seed (``--impair-seed``) and its index, so a run is repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .shares import NO_PROFILE, ImpairShare, profile_name

if TYPE_CHECKING:
    from ..report.model import ProfileReport
    from ..report.records import WorkerFinal
    from .plan import Participant

__all__ = ["LinkPlan", "assign_links", "profile_reports", "run_profiles"]

GOLDEN = (math.sqrt(5) - 1) / 2
SEED_STRIDE = 1000
"""Seeds per participant (each of its connections takes two: up and down)."""


@dataclass(frozen=True)
class LinkPlan:
    """One participant's link: its profile's name, the specs of both directions, its seed."""

    profile: str
    up: str | None
    down: str | None
    seed: int


def _half_up(x: float) -> int:
    """Rounded half up (a share of 0.5 of one publisher is that publisher; ``round`` says 0)."""
    return math.floor(x + 0.5 + 1e-9)


def assign_links(
    participants: Sequence[Participant],
    shares: Sequence[ImpairShare],
    *,
    up: str | None = None,
    down: str | None = None,
    seed: int = 0,
) -> dict[int, LinkPlan]:
    """Every impaired participant's link, by participant index (the rest keep a plain link)."""
    default = LinkPlan(profile_name(up, down), up, down, 0)
    out: dict[int, LinkPlan] = {}
    for role in sorted({p.role for p in participants}):
        ranked = sorted((p for p in participants if p.role == role), key=lambda p: ((p.index * GOLDEN) % 1, p.index))
        plans = [default] * len(ranked)
        taken = 0.0
        for share in shares:
            first, last = _half_up(taken * len(ranked)), _half_up((taken + share.share) * len(ranked))
            plans[first:last] = [LinkPlan(share.name, share.up, share.down, 0)] * (last - first)
            taken += share.share
        for p, plan in zip(ranked, plans, strict=True):
            if plan.up or plan.down:
                out[p.index] = LinkPlan(plan.profile, plan.up, plan.down, seed * 1_000_003 + p.index * SEED_STRIDE)
    return out


def profile_reports(finals: Sequence[WorkerFinal], order: Sequence[str]) -> tuple[ProfileReport, ...]:
    """The report's ``profiles`` rows: each profile's totals merged over workers, in ``order``
    (the run's profiles: the shares', then the others'), then any profile only workers know."""
    from ..report.model import ProfileReport
    from ..report.records import ProfileTotals
    from .aggregate import metrics, participants

    merged: dict[str, ProfileTotals] = {}
    for final in finals:
        for name, totals in final.profiles.items():
            merged.setdefault(name, ProfileTotals()).add(totals)
    names = [n for n in order if n in merged] + sorted(set(merged) - set(order))
    return tuple(
        ProfileReport(
            profile=name,
            participants=participants(merged[name].totals),
            metrics=metrics(merged[name].totals),
            impairment={"up": merged[name].up.to_json(), "down": merged[name].down.to_json()},
        )
        for name in names
    )


def run_profiles(links: Mapping[int, LinkPlan], shares: Sequence[ImpairShare], default: str) -> list[str]:
    """The profile names of a run, shares first (the order of the report's rows)."""
    names = [s.name for s in shares] + [default, NO_PROFILE] + sorted({plan.profile for plan in links.values()})
    return list(dict.fromkeys(names))
