from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from .rtc_helpers import require_namespace


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


@pytest.fixture
async def pcs() -> AsyncIterator[list[RTCPeerConnection]]:
    """Peer connections a test makes (inside the private namespace), closed at its end."""
    require_namespace()
    made: list[RTCPeerConnection] = []
    yield made
    for pc in made:
        await pc.close()
