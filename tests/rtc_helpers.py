"""Helpers for tests with real aiortc peers (inside the private network namespace)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from .waiting import eventually


def require_namespace() -> None:
    """Fail loudly (never skip) when not run through scripts/test or scripts/isolated."""
    if os.environ.get("SEALRTC_NETNS") != "1":
        pytest.fail("network tests must run inside the private namespace: use scripts/test")


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Non-trickle offer/answer between two in-process peers."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def wait_until(predicate: Callable[[], bool], event: asyncio.Event, timeout: float) -> None:
    """:func:`tests.waiting.eventually` woken by ``event``, for callers that name no ``what``."""
    await eventually(predicate, timeout=timeout, what=getattr(predicate, "__name__", "the condition"), event=event)
