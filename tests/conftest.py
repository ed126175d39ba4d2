from __future__ import annotations

import pytest


class FakeClock:
    """A manual clock for the sans-I/O core (no wall-clock sleeps in tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
