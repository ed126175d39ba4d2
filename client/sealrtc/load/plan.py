"""Who joins which room, when, on which worker: pure functions of the scenario.

Join order: every room's publishers first (so subscribers find media), then subscribers and
intruders interleaved across rooms (rooms fill evenly under a ramp). Participant ``i`` joins at
``i / ramp`` seconds. Workers get whole rooms where that keeps them within one participant of
even; otherwise participants are dealt round-robin. Deterministic: the same scenario gives the
same plan everywhere (shards of one run agree without talking).

Churn (``--churn R``) is planned the same way (:func:`churn_plan`): which subscriber leaves, and
which joiner takes its place, at which second. Every worker therefore knows every join of the run,
and keying v2 publishers advance their room's epoch on each one (:mod:`sealrtc.load.keying`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .keying import WINDOW
from .scenario import Scenario

PUBLISHER, SUBSCRIBER, INTRUDER = "publisher", "subscriber", "intruder"
CHURN_INDEX = 10_000_000
"""Participant indexes of churn joiners start here (planned ones are below 100000)."""
CHURN_START = 1.0
"""Seconds after the last planned join at which churn starts."""


@dataclass(frozen=True)
class Participant:
    index: int
    """Position in the global join order (0-based)."""
    room: int
    """Room index (0-based)."""
    role: str
    decode: bool
    join_at: float
    """Seconds after the run's start."""

    @property
    def legitimate(self) -> bool:
        return self.role != INTRUDER


def plan(scenario: Scenario) -> list[Participant]:
    order: list[tuple[int, str]] = []
    for room in range(scenario.rooms):
        order += [(room, PUBLISHER)] * scenario.publishers
    per_room: list[list[str]] = []
    for _ in range(scenario.rooms):
        roles = [SUBSCRIBER] * scenario.subscribers + [INTRUDER] * scenario.intruders
        per_room.append(_spread(roles))
    for position in range(max((len(r) for r in per_room), default=0)):
        for room, roles in enumerate(per_room):
            if position < len(roles):
                order.append((room, roles[position]))
    participants: list[Participant] = []
    subscriber_count = 0
    for i, (room, role) in enumerate(order):
        decode = False
        if role == SUBSCRIBER:
            decode = scenario.decode_every > 0 and subscriber_count % scenario.decode_every == 0
            subscriber_count += 1
        participants.append(Participant(i, room, role, decode, round(i / scenario.ramp, 6)))
    return participants


def _spread(roles: list[str]) -> list[str]:
    """Intruders evenly among subscribers (not all at the end of the ramp)."""
    subs = [r for r in roles if r == SUBSCRIBER]
    intruders = [r for r in roles if r == INTRUDER]
    if not intruders:
        return subs
    out: list[str] = []
    step = (len(subs) + len(intruders)) / len(intruders)
    slots = {int(k * step) for k in range(len(intruders))}
    si = ii = 0
    for position in range(len(roles)):
        if position in slots and ii < len(intruders):
            out.append(intruders[ii])
            ii += 1
        elif si < len(subs):
            out.append(subs[si])
            si += 1
        else:
            out.append(intruders[ii])
            ii += 1
    return out


def assign(participants: list[Participant], workers: int) -> list[list[Participant]]:
    """Split participants over ``workers``: every participant in exactly one part.

    Whole rooms (largest first onto the lightest part) when that is even to within 10% of a
    part's share or one participant; otherwise round-robin by join order (perfectly even, rooms
    split). Each part keeps the global join order.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    rooms: dict[int, list[Participant]] = {}
    for p in participants:
        rooms.setdefault(p.room, []).append(p)
    loads = [0] * workers
    layout: list[list[int]] = [[] for _ in range(workers)]
    for room in sorted(rooms, key=lambda r: (-len(rooms[r]), r)):
        lightest = loads.index(min(loads))
        layout[lightest].append(room)
        loads[lightest] += len(rooms[room])
    share = len(participants) / workers
    if max(loads) - min(loads) <= max(1.0, 0.1 * share):
        return [sorted((p for r in part for p in rooms[r]), key=lambda p: p.index) for part in layout]
    parts: list[list[Participant]] = [[] for _ in range(workers)]
    for p in participants:
        parts[p.index % workers].append(p)
    return parts


def shard(participants: list[Participant], index: int, count: int) -> list[Participant]:
    """Shard ``index`` of ``count`` (0-based): :func:`assign`'s part, for multi-machine runs."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} outside 0..{count - 1}")
    return assign(participants, count)[index]


@dataclass(frozen=True)
class Churn:
    """One planned churn: at ``at`` seconds, participant ``leaves`` (a planned subscriber or an
    earlier joiner) leaves and ``joiner`` joins the same room in its place."""

    at: float
    leaves: int
    joiner: Participant


def churn_plan(scenario: Scenario, participants: list[Participant]) -> list[Churn]:
    """The run's churn: ``scenario.churn`` per second, from :data:`CHURN_START` after the last
    planned join until :data:`~sealrtc.load.keying.WINDOW` before the end (a joiner needs the
    time to connect and get a frame). The subscriber who has been in the call longest leaves
    (planned subscribers in join order, then joiners in theirs), so rooms take turns; its joiner
    keeps its room and its ``decode``. No randomness: every worker and shard computes the same."""
    if scenario.churn <= 0:
        return []
    present = deque(p for p in participants if p.role == SUBSCRIBER and p.join_at < scenario.duration)
    if not present:
        return []
    first = max((p.join_at for p in participants), default=0.0) + CHURN_START
    events: list[Churn] = []
    while (at := round(first + len(events) / scenario.churn, 6)) < scenario.duration - WINDOW:
        leaving = present.popleft()
        joiner = Participant(CHURN_INDEX + len(events), leaving.room, SUBSCRIBER, leaving.decode, at)
        present.append(joiner)
        events.append(Churn(at, leaving.index, joiner))
    return events


def churn_for(events: list[Churn], part: list[Participant]) -> list[Churn]:
    """The churn a worker (or shard) holding ``part`` carries out: the events whose leaver is
    one of its participants or one of its earlier joiners (a joiner stays where its leaver was)."""
    mine = {p.index for p in part}
    out = []
    for event in events:
        if event.leaves in mine:
            mine.add(event.joiner.index)
            out.append(event)
    return out
