"""Closing peer connections: a close cancelled half-way must not poison later closes."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from sealrtc.media import ToneAudioTrack
from sealrtc.rtc.closing import close_peer

from .rtc_helpers import connect, new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network


async def connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection]:
    require_namespace()
    pub, sub = new_pc(), new_pc()
    changed = asyncio.Event()
    for pc in (pub, sub):
        pc.on("connectionstatechange", changed.set)
    pub.addTrack(ToneAudioTrack())
    await connect(pub, sub)
    await eventually(
        lambda: pub.connectionState == sub.connectionState == "connected",
        timeout=15,
        what="both peers to connect",
        event=changed,
    )
    return pub, sub


async def interrupted(close: asyncio.Future[None]) -> None:
    """Let ``close`` start (it suspends inside aiortc's close), then cancel it."""
    await asyncio.sleep(0)  # one turn of the loop: the task runs up to its first await
    close.cancel()
    with pytest.raises(asyncio.CancelledError):
        await close


async def test_aiortc_close_cancelled_half_way_poisons_the_next_close() -> None:
    """The hazard close_peer exists for (aiortc 1.16): the next close() never returns."""
    pub, sub = await connected_pair()
    try:
        await interrupted(asyncio.ensure_future(pub.close()))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pub.close(), 2)
    finally:
        await close_peer(sub)


async def test_close_peer_cancelled_half_way_still_closes_and_the_next_close_returns() -> None:
    pub, sub = await connected_pair()
    try:
        await interrupted(asyncio.ensure_future(close_peer(pub)))
        await asyncio.wait_for(close_peer(pub), 5)  # returns: no CancelledError, no hang
        assert pub.connectionState == "closed"
        await asyncio.wait_for(pub.close(), 1)  # aiortc's own close agrees: it is closed
    finally:
        await close_peer(sub)


async def test_close_peer_after_interrupted_raw_closes_returns_without_raising() -> None:
    """Closes interrupted elsewhere (not through close_peer): the second one cancels aiortc's
    "closed" future, so every later close() raises CancelledError in a task nobody cancelled.
    close_peer returns instead (what an agent's close met when a Janus room task was cancelled)."""
    pub, sub = await connected_pair()
    try:
        await interrupted(asyncio.ensure_future(pub.close()))
        await interrupted(asyncio.ensure_future(pub.close()))
        with pytest.raises(asyncio.CancelledError):
            await pub.close()
        await asyncio.wait_for(close_peer(pub, timeout=1), 5)
    finally:
        await close_peer(sub)
