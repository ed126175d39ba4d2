"""The one way tests wait for something to happen: :func:`eventually`.

Tests never sleep to let something happen. They wait for the state they need, and when it does
not come in time they fail naming what they waited for (a bare ``TimeoutError`` says nothing).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Predicate = Callable[[], object] | Callable[[], Awaitable[object]]
POLL_INTERVAL = 0.05
"""Seconds between checks when no event says the state changed: about one media frame."""


async def eventually(
    predicate: Predicate, *, timeout: float, what: str, event: asyncio.Event | tuple[asyncio.Event, ...] = ()
) -> None:
    """Return as soon as ``predicate()`` (plain or async) is true; raise AssertionError naming
    ``what`` after ``timeout`` seconds.

    With ``event`` (one or several, set by whoever changes the state: an agent's or the relay's
    ``changed``, a peer connection's state change), the predicate is checked again each time one
    is set. Without, it is checked every :data:`POLL_INTERVAL`: for state held by another process
    (a relay's /stats, a browser page) or by objects that announce nothing.
    """
    events = (event,) if isinstance(event, asyncio.Event) else event
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for e in events:
            e.clear()  # before the check: a change during the check is not missed
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        if not events:
            await asyncio.sleep(min(POLL_INTERVAL, remaining))
            continue
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
