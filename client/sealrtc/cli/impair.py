"""The ``--impair*`` options of the agents' commands: the link shape they ask for, and what the
impairment did, told at the end of a run."""

from __future__ import annotations

import argparse
from typing import Any

from ..agents.impairing import LinkShape, impairment_lines

__all__ = ["link_shape", "tell_impairment"]


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
