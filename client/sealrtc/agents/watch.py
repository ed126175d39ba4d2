"""Is the signaling server gone? A WHIP/WHEP session has no channel that would tell.

An agent's liveness is its media path: while packets keep arriving on its peer connections'
transports (media, RTCP reports, DTLS), the session is alive, whatever else happens to the server
(a relay under a connection flood refuses new TCP connections, yet forwards the established
session's media). But once media flows, WebRTC itself only notices a dead server after ~30 s (ICE
consent freshness), longer than many runs. So every couple of seconds the agent looks at both:
whether packets arrived since the last look (:class:`MediaActivity`), and whether the server
still accepts TCP connections on its port. The run fails with a reason only when the server
refused (or timed out) twice in a row *and* nothing arrived meanwhile: a dead server is still
found in ~4 s, a busy one never ends a session whose media flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0
CONNECT_TIMEOUT = 2.0
FAILURES = 2


class MediaActivity:
    """Whether packets arrived on the transports of some peer connections since the last look
    (aiortc's transport statistics: every datagram received, media, RTCP and DTLS alike)."""

    def __init__(self, pcs: Callable[[], Iterable[RTCPeerConnection]]) -> None:
        self._pcs = pcs
        self._last = 0

    async def received(self) -> int:
        total = 0
        for pc in list(self._pcs()):
            if pc.connectionState == "closed":
                continue
            with contextlib.suppress(Exception):  # a peer closing meanwhile counts nothing
                report = await pc.getStats()
                seen: set[str] = set()
                for stats in report.values():
                    if getattr(stats, "type", None) == "transport" and stats.id not in seen:
                        seen.add(stats.id)
                        total += int(getattr(stats, "packetsReceived", 0) or 0)
        return total

    async def arrived(self) -> bool:
        """True when more packets arrived than at the previous call."""
        total = await self.received()
        moved = total > self._last
        self._last = max(self._last, total)
        return moved


async def _reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def server_gone(
    url: str,
    *,
    media: Callable[[], Awaitable[bool]] | None = None,
    interval: float = CHECK_INTERVAL,
    failures: int = FAILURES,
) -> str:
    """Return (only) when the HTTP server of ``url`` stopped accepting connections and ``media``
    (e.g. :meth:`MediaActivity.arrived`) says nothing arrived between two refused checks.

    ``media`` is asked only while the server refuses (a healthy run costs no statistics): the
    first refusal sets its baseline, each following one asks what arrived since."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    missed = 0
    baseline = False
    while True:
        await asyncio.sleep(interval)  # a polling period: there is no event to wait for
        if await _reachable(host, port):
            missed, baseline = 0, False
            continue
        missed += 1
        flowing = await media() if media is not None else False
        fresh = baseline or media is None  # "since the previous look" means something
        baseline = True
        if missed >= failures and fresh and not flowing:
            return f"lost the connection to the server at {host}:{port} (it no longer accepts connections)"
        if missed >= failures and flowing:
            logger.info("%s:%s refuses new connections, but media still arrives: the session lives", host, port)


async def media_path_lost(pc: RTCPeerConnection) -> str:
    """Return when ``pc``'s media path is gone: ICE consent failed or DTLS closed."""
    gone = asyncio.Event()

    def check() -> None:
        if pc.connectionState in ("failed", "closed"):
            gone.set()

    pc.on("connectionstatechange", check)
    try:
        check()
        await gone.wait()
    finally:
        pc.remove_listener("connectionstatechange", check)
    return "the media connection to the server failed (ICE/DTLS)"


async def connected(pc: RTCPeerConnection) -> None:
    """Return once ``pc`` is connected; raise ConnectionError if it fails first."""
    done = asyncio.Event()
    pc.on("connectionstatechange", done.set)
    try:
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise ConnectionError("the media connection failed while reconnecting")
            done.clear()
            await done.wait()
    finally:
        pc.remove_listener("connectionstatechange", done.set)


async def first_of(*waits: Awaitable[str]) -> str:
    """The result of whichever of ``waits`` ends first (the others are cancelled)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
