"""A scenario's impaired shares (``impair = [{share = 0.25, down = "3g"}, ...]``) as read from
its file or flags, and the names of link profiles. Pure: below the scenario, which reads them, and
the plan's link assignment (:mod:`.profiles`), which uses them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..impairment import ImpairmentError, parse_impairment

__all__ = ["NO_PROFILE", "ImpairShare", "parse_shares", "profile_name"]

NO_PROFILE = "none"
"""The profile of participants whose link is not impaired."""


@dataclass(frozen=True)
class ImpairShare:
    """A share of the participants and the link they get (impairment specs, as written)."""

    share: float
    up: str | None = None
    down: str | None = None

    @property
    def name(self) -> str:
        return profile_name(self.up, self.down)


def profile_name(up: str | None, down: str | None) -> str:
    """``up=4g,down=3g``-style name of a link (``none`` when neither direction is impaired)."""
    parts = [f"{name}={spec}" for name, spec in (("up", up), ("down", down)) if spec]
    return " ".join(parts) or NO_PROFILE


def _spec(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ImpairmentError(f'{where} must be an impairment, e.g. "3g" or "loss=5%,delay=100ms"')
    try:
        parse_impairment(value)  # refused here, before the run, with the model's own message
    except ImpairmentError as exc:
        raise ImpairmentError(f"{where}: {exc}") from None
    return value.strip()


def parse_shares(value: object) -> tuple[ImpairShare, ...]:
    """A scenario's ``impair`` list: tables with ``share`` (0 < share <= 1) and ``up``, ``down``
    or ``both``; the shares add up to at most 1. Raises :class:`ImpairmentError` (one line)."""
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise ImpairmentError('expected a list of shares, e.g. [{share = 0.25, down = "3g"}]')
    shares = []
    for i, item in enumerate(items, 1):
        if isinstance(item, ImpairShare):  # read already (a scenario file's, under the flags)
            shares.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ImpairmentError(f'item {i} must be a table, e.g. {{share = 0.25, down = "3g"}}')
        unknown = set(item) - {"share", "up", "down", "both"}
        if unknown:
            raise ImpairmentError(f"item {i}: unknown key {sorted(unknown)[0]!r} (known: share, up, down, both)")
        share = item.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ImpairmentError(f"item {i}: share must be a number in (0, 1], e.g. 0.25")
        both = _spec(item.get("both"), f"item {i}: both")
        up = _spec(item.get("up"), f"item {i}: up") or both
        down = _spec(item.get("down"), f"item {i}: down") or both
        if up is None and down is None:
            raise ImpairmentError(f"item {i}: give up, down or both (the link of that share)")
        shares.append(ImpairShare(float(share), up, down))
    if sum(s.share for s in shares) > 1 + 1e-9:
        raise ImpairmentError("the shares add up to more than 1")
    return tuple(shares)
