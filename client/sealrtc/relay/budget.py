"""Per-client shares and the file-descriptor reserve: one client must not lock everyone out.

Global limits alone let a single address take every slot (256 idle sockets, 256 candidate-less
offers) and so deny service to all others for as long as it likes. The relay therefore also
budgets per *client*: open connections and pending (not yet connected) sessions. A client is an
IPv4 address or an IPv6 /64 (one host usually owns a whole /64). Loopback clients are budgeted
only globally: they are this host (the demo, ``sealrtc load``'s embedded relay, a local reverse
proxy), whose joins may legitimately come all from one address.

Near the process's open-file limit ``accept()`` fails and nothing can be answered any more, so
the relay keeps a reserve: new sessions (which cost descriptors for their ICE sockets) stop
when fewer than ``reserve`` descriptors are left, new connections only when fewer than a quarter
of it (:data:`CONNECTION_FLOOR`) are: the rest of the reserve is there for requests (one client's
share of connections included, so others are still answered) and for refusals. Offers
being answered count with the descriptors they are about to open (:func:`session_fds`): 300
offers at once would otherwise all pass the check before any of them had opened a socket.
"""

from __future__ import annotations

import ipaddress
import os
import resource
from collections import Counter

FD_DIR = "/proc/self/fd"
CONNECTION_FLOOR = 0.25
"""New connections stop when fewer than this fraction of the reserve is left."""


def session_fds() -> int:
    """Descriptors a session being answered may still open: an ICE socket per local address for
    each of a typical offer's two media sections (the estimate that keeps concurrent offers from
    all passing the reserve check at once)."""
    try:
        from aioice.ice import get_host_addresses

        addresses = len(get_host_addresses(use_ipv4=True, use_ipv6=True))
    except Exception:  # no interface list: assume a few
        addresses = 4
    return 2 * max(addresses, 1)


def client_of(peername: object) -> str | None:
    """The budget key of a socket peer (``transport.get_extra_info("peername")``).

    ``None`` for loopback peers and for anything that is not an IP address (a Unix socket):
    those share only the global limits.
    """
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return None
    try:
        address = ipaddress.ip_address(peername[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Shares:
    """How many units (connections, pending sessions) each client holds, against a per-client cap."""

    __slots__ = ("_held", "cap")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("a per-client limit must be >= 1")
        self.cap = cap
        self._held: Counter[str] = Counter()

    def full(self, client: str | None) -> bool:
        return client is not None and self._held[client] >= self.cap

    def take(self, client: str | None) -> None:
        if client is not None:
            self._held[client] += 1

    def give(self, client: str | None) -> None:
        if client is not None and self._held[client] > 0:
            self._held[client] -= 1
            if not self._held[client]:
                del self._held[client]

    def held(self, client: str | None) -> int:
        return 0 if client is None else self._held[client]


class FdReserve:
    """Descriptors left before the open-file limit; ``low()`` when fewer than ``reserve`` remain."""

    __slots__ = ("limit", "reserve")

    def __init__(self, reserve: int, limit: int | None = None) -> None:
        if reserve < 0:
            raise ValueError("fd_reserve must be >= 0")
        self.reserve = reserve
        if limit is None:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            limit = None if soft == resource.RLIM_INFINITY else soft
        self.limit = limit

    def left(self) -> int | None:
        """Descriptors still available, or ``None`` when unknown (no limit, or no ``/proc``)."""
        if self.limit is None:
            return None
        try:
            used = len(os.listdir(FD_DIR))
        except OSError:
            return None
        return self.limit - used

    def low(self, fraction: float = 1.0, extra: int = 0) -> bool:
        """Whether fewer than ``fraction * reserve`` descriptors are left once ``extra`` more
        (promised to work in progress) are used."""
        left = self.left()
        return left is not None and left - extra < self.reserve * fraction
