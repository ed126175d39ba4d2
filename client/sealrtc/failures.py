"""Dropped frames counted by reason: the one type every layer sums them with.

A decryptor counts each rejected frame under its :attr:`DecryptError.reason
<sealrtc.errors.DecryptError.reason>`; sessions, agents, load workers, reports and the Prometheus
exporter add those counts up. They all use :class:`FailureCounts`, so "add two failure counts"
and "which failures are key failures" are written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import DECRYPT_FAILURE_REASONS, AuthenticationFailed, UnknownKey

KEY_FAILURE_REASONS: tuple[str, ...] = (UnknownKey.reason, AuthenticationFailed.reason)
"""Failures that say "this receiver does not hold the sender's key" (as opposed to replays and
malformed frames, which any forwarder can cause)."""


class FailureCounts(dict[str, int]):
    """``{reason: frames}`` with every known reason present (0 when none), summable.

    A ``dict`` so that JSON writers and readers need nothing special; unknown reasons read from
    a report of a newer version are kept, not dropped.
    """

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        super().__init__(dict.fromkeys(DECRYPT_FAILURE_REASONS, 0))
        if counts:
            self.add(counts)

    @classmethod
    def sum(cls, many: Iterable[Mapping[str, int]]) -> FailureCounts:
        """The reason-by-reason sum of ``many`` counts."""
        total = cls()
        for counts in many:
            total.add(counts)
        return total

    def add(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` in place, reason by reason."""
        for reason, n in counts.items():
            self[reason] = self.get(reason, 0) + int(n)

    def count(self, reason: str) -> None:
        """One more frame dropped for ``reason``."""
        self[reason] = self.get(reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.values())

    @property
    def key_failures(self) -> int:
        """Frames dropped because no held key verified them (unknown key or bad tag)."""
        return sum(self.get(reason, 0) for reason in KEY_FAILURE_REASONS)
