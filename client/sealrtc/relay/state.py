"""The relay's bookkeeping: counters, sessions, rooms, and which publisher a room forwards.

A room forwards exactly one publisher, the *active* one, elected among publishers whose peer
connection is **connected** — never a session that merely got its ``201``. The election policy
is explicit (:data:`POLICIES`): ``"first"`` (the default: the room keeps its connected
publisher; others are refused while it lasts, so whoever reaches the relay cannot take a live
room over) or ``"newest"`` (the most recently connected publisher takes over). Either way an
offer that never connects cannot silence a room.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCPeerConnection

from ..rtc.passthrough import ForwardingTrack, PassthroughSession

PublisherPolicy = Literal["newest", "first"]
POLICIES: tuple[PublisherPolicy, ...] = ("first", "newest")

_order = itertools.count(1)


@dataclass
class RelayStats:
    frames_forwarded: int = 0
    bytes_forwarded: int = 0
    frames_received: int = 0
    frames_dropped_slow_subscriber: int = 0
    keyframe_requests_upstream: int = 0
    publishers: int = 0
    subscribers: int = 0
    sessions_timed_out: int = 0
    """Sessions closed because they did not connect within the negotiation deadline."""
    requests_unauthorized: int = 0
    requests_refused_full: int = 0
    publishers_refused: int = 0
    """Publishers refused or closed by the ``"first"`` policy (the room had one)."""
    connections_timed_out: int = 0
    connections_refused: int = 0
    connections_refused_client: int = 0
    """Connections refused (``429``) because their client held its share of connections."""
    connections_refused_fds: int = 0
    """Connections refused (``503``) because the process was close to its open-file limit."""
    requests_timed_out: int = 0
    """Requests whose body did not arrive within the body deadline (``408``)."""
    requests_refused_client: int = 0
    """Offers refused (``429``) because their client held its share of pending sessions."""
    requests_refused_fds: int = 0
    """Offers refused (``503``) to keep the file-descriptor reserve."""
    candidates_refused: int = 0
    """Trickle PATCHes refused (``422``) because they would pass the session's candidate cap."""

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(eq=False)
class Session:
    id: str
    pc: RTCPeerConnection
    client: str | None = None
    """The budget key of the client that made the session (see :func:`.budget.client_of`)."""
    candidates: set[str] = field(default_factory=set)
    """The remote ICE candidates it was given (offer and trickle), bounded by the relay."""
    connected: bool = False
    connected_order: int = 0
    deadline: asyncio.TimerHandle | None = None

    def mark_connected(self) -> None:
        self.connected = True
        self.connected_order = next(_order)
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


@dataclass(eq=False)
class Publisher(Session):
    passthrough: PassthroughSession | None = None
    receivers: dict[str, Any] = field(default_factory=dict)  # kind -> RTCRtpReceiver
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass(eq=False)
class Subscriber(Session):
    tracks: dict[str, ForwardingTrack] = field(default_factory=dict)


@dataclass(eq=False)
class Room:
    name: str
    policy: PublisherPolicy = "first"
    publishers: dict[str, Publisher] = field(default_factory=dict)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    negotiating: int = 0
    """Offers being answered right now (they hold a slot before they are registered)."""
    active: Publisher | None = None

    @property
    def sessions(self) -> int:
        return len(self.publishers) + len(self.subscribers) + self.negotiating

    @property
    def empty(self) -> bool:
        return self.sessions == 0

    def current_publisher(self) -> Publisher | None:
        """The publisher whose frames this room forwards (connected, elected by the policy)."""
        return self.active

    def elect(self) -> bool:
        """Recompute :attr:`active` from the connected publishers; True if it changed."""
        connected = [p for p in self.publishers.values() if p.connected]
        if not connected:
            chosen = None
        elif self.policy == "first":
            chosen = min(connected, key=lambda p: p.connected_order)
        else:
            chosen = max(connected, key=lambda p: p.connected_order)
        changed = chosen is not self.active
        self.active = chosen
        return changed
