"""An agent's impaired links: every peer connection it makes goes through the same shape.

An agent may make many peer connections (one per Janus feed, a new one after each reconnect);
each gets its own :class:`~sealrtc.rtc.impair.LinkImpairment` with its own seed (so two
connections do not lose the same datagrams), and the agent's report sums them per direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..impairment import Impairment, LinkCounters
from ..rtc.impair import LinkImpairment, impair

__all__ = ["AgentImpairment", "LinkShape", "impairment_lines"]


@dataclass(frozen=True)
class LinkShape:
    """What ``--impair-up``/``--impair-down``/``--impair-seed`` asked for."""

    up: Impairment | None = None
    down: Impairment | None = None
    seed: int = 0

    @property
    def is_identity(self) -> bool:
        return all(i is None or i.is_identity for i in (self.up, self.down))


class AgentImpairment:
    """Impairs each peer connection handed to :meth:`apply`; :meth:`stats` sums them."""

    def __init__(self, shape: LinkShape) -> None:
        self.shape = shape
        self.links: list[LinkImpairment] = []

    def apply(self, pc: Any) -> None:
        """Impair ``pc`` (call before it negotiates). Seeds differ per connection: 2 apart,
        since a link uses ``seed`` up and ``seed + 1`` down."""
        shape = self.shape
        self.links.append(impair(pc, up=shape.up, down=shape.down, seed=shape.seed + 2 * len(self.links)))

    def close(self) -> None:
        for link in self.links:
            link.close()

    def stats(self) -> dict[str, object]:
        """``{"connections": N, "up": {...}, "down": {...}}``: each direction's specification and
        its counters summed over every connection (mean delay over every delivered datagram)."""
        out: dict[str, object] = {"connections": len(self.links)}
        for name in ("up", "down"):
            spec: Impairment | None = getattr(self.shape, name)
            total = LinkCounters()
            for link in self.links:
                counters = getattr(link, name).counters
                total.offered += counters.offered
                total.delivered += counters.delivered
                total.lost += counters.lost
                total.queue_dropped += counters.queue_dropped
                total.duplicated += counters.duplicated
                total.delay_total += counters.delay_total
            out[name] = {"impairment": (spec or Impairment()).describe(), **total.as_dict()}
        return out


def impairment_lines(stats: dict[str, Any]) -> list[str]:
    """One line per impaired direction for a person: what the impairment did."""
    lines = []
    for name, what in (("up", "sent"), ("down", "received")):
        d = stats.get(name) or {}
        if not d or d.get("impairment") == "none":
            continue
        offered = int(d["offered"])
        share = f" ({d['lost'] / offered:.1%})" if offered else ""
        delay = d["mean_delay_ms"]
        lines.append(
            f"impairment {name} ({d['impairment']}): {offered} datagrams {what}, {d['lost']} lost{share}, "
            f"{d['queue_dropped']} queue-dropped, mean delay {'-' if delay is None else f'{delay:.1f} ms'}"
        )
    return lines
