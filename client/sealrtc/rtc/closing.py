"""Closing an ``RTCPeerConnection`` so that it always ends closed, and its closer always returns.

aiortc's ``close()`` is a sequence of awaits (senders, receivers, DTLS, ICE) that marks the
connection closed with a future it resolves only at the very end. Two things go wrong with it:

* **Cancelled mid-way** (its caller's task is cancelled: a Janus room's event task when the agent
  stops, an HTTP handler when the client goes away), it stops half done and leaves that future
  pending or cancelled: every later ``close()`` then waits forever or raises ``CancelledError``
  in a task nobody cancelled. So the close runs in a task of its own, shielded from its caller.
* **Never finishing**: a sender's ``stop()`` waits for an RTP loop that a sender which never got
  going does not run (seen once with a publisher whose media never reached Janus). So the wait
  is bounded; past it the connection is abandoned with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0
"""Seconds to wait for a peer connection to close before abandoning it."""

_closing: dict[int, asyncio.Task[None]] = {}
"""The close task of each peer connection being closed (by id): later closers wait for it."""


async def close_peer(pc: Any, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close ``pc`` fully, whoever else closes it or cancels us; return within ``timeout``.

    ``asyncio.wait`` neither cancels the close task nor hands its outcome to us: if the calling
    task is cancelled, the cancellation propagates and the close goes on in its own task; a close
    that failed, or that another caller interrupted before this helper existed (a cancelled
    aiortc future), is logged and abandoned, never raised into the caller.
    """
    task = _closing.get(id(pc))
    if task is None:
        task = _closing[id(pc)] = asyncio.ensure_future(pc.close())
        task.add_done_callback(lambda done: _forget(id(pc), done))
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        logger.warning("a peer connection did not close within %.0f s; abandoned", timeout)
    elif task.cancelled():
        logger.warning("a peer connection's close had been interrupted elsewhere; abandoned")
    elif task.exception() is not None:
        logger.warning("closing a peer connection failed; abandoned", exc_info=task.exception())


def _forget(key: int, task: asyncio.Task[None]) -> None:
    _closing.pop(key, None)
    if not task.cancelled():
        task.exception()  # retrieved: a failure was logged by the closer that waited for it
