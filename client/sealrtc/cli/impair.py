"""The ``--impair*`` and ``--recover-within`` options of the agents' commands: the link shape they
ask for, and what the impairment and the recoveries did, told at the end of a run."""

from __future__ import annotations

import argparse
from typing import Any

from ..agents.impairing import LinkShape, impairment_lines

__all__ = ["link_shape", "tell_impairment", "tell_recovery"]


def link_shape(args: argparse.Namespace) -> LinkShape | None:
    """``--impair`` for both directions, ``--impair-up``/``--impair-down`` winning over it; None
    when nothing was asked (the agent's connections are left alone)."""
    up = args.impair_up or args.impair
    down = args.impair_down or args.impair
    if up is None and down is None:
        return None
    return LinkShape(up=up, down=down, seed=args.impair_seed)


def tell_impairment(say: Any, summary: dict[str, Any]) -> None:
    """One line per impaired direction (``say``: the display's)."""
    for line in impairment_lines(summary.get("impairment") or {}):
        say(line)


def tell_recovery(say: Any, summary: dict[str, Any]) -> None:
    """A line when the agent lost its server during the run: reconnects, time to recover, outage."""
    recovery = summary.get("recovery") or {}
    outages = (recovery.get("outage_ms") or {}).get("outages") or []
    if not outages:
        return
    ttr = recovery.get("time_to_recover_ms") or {}
    line = (
        f"lost the server {len(outages)} time(s): {recovery['reconnects']} reconnect(s), "
        f"outage {recovery['outage_ms']['total'] / 1000:.1f} s in total"
    )
    if ttr:
        line += f", time to recover p50 {ttr['p50']:.0f} ms, max {ttr['max']:.0f} ms"
    if recovery.get("frames_missed") is not None:
        about = "about " if recovery.get("frames_missed_estimated") else ""
        line += f", {about}{recovery['frames_missed']} video frame(s) missed during outages"
    if recovery.get("recovering"):
        line += "; the run ended during an outage"
    say(line)
