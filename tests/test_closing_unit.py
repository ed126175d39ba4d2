"""close_peer's contract without a network: fake peer connections whose close is slow, fails,
or was interrupted elsewhere (the real-aiortc hazards are in test_closing.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sealrtc.rtc import closing
from sealrtc.rtc.closing import close_peer

pytestmark = pytest.mark.unit


class FakePeer:
    def __init__(self, delay: float = 0.05, error: BaseException | None = None) -> None:
        self.delay, self.error, self.closed, self.calls = delay, error, False, 0
        self.started = asyncio.Event()

    async def close(self) -> None:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.delay)  # stands for aiortc's chain of awaits
        if self.error is not None:
            raise self.error
        self.closed = True


async def test_a_caller_that_swallowed_an_earlier_cancel_is_not_cancelled_again() -> None:
    """A cleanup path after a swallowed cancel (cancelling() stays > 0) meets a close that was
    interrupted elsewhere: close_peer returns, the rest of the cleanup runs."""
    entered = asyncio.Event()

    async def cleanup() -> str:
        try:
            entered.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallowed, as cleanup code after Ctrl-C does
        await close_peer(FakePeer(error=asyncio.CancelledError()), timeout=1)
        return "cleanup finished"

    task = asyncio.ensure_future(cleanup())
    await entered.wait()
    task.cancel()
    assert await task == "cleanup finished"


async def test_the_close_goes_on_when_its_caller_is_cancelled() -> None:
    peer = FakePeer(delay=0.2)
    caller = asyncio.ensure_future(close_peer(peer))
    await peer.started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await close_peer(peer)  # waits for the same close: one call, and it completed
    assert peer.closed and peer.calls == 1


async def test_slow_and_failing_closes_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=closing.__name__)
    slow = FakePeer(delay=0.3)
    await close_peer(slow, timeout=0.05)
    assert "did not close within" in caplog.text and not slow.closed
    await close_peer(FakePeer(error=RuntimeError("boom")))
    assert "closing a peer connection failed" in caplog.text
    await close_peer(slow)  # the abandoned close finished meanwhile (or is waited for)
    assert slow.closed and id(slow) not in closing._closing
