"""Is the signaling server still there? A WHIP/WHEP session has no channel that would tell.

Once media flows, WebRTC does not notice a dead WHIP/WHEP server for ~30 s (ICE consent
freshness) — longer than many runs. So the agents check, every couple of seconds, that the
server still accepts TCP connections on its port; two refusals (or time-outs) in a row and the
run fails with a reason instead of running to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0
CONNECT_TIMEOUT = 2.0
FAILURES = 2


async def _reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def server_gone(url: str, *, interval: float = CHECK_INTERVAL, failures: int = FAILURES) -> str:
    """Return (only) when the HTTP server of ``url`` stopped accepting connections."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    missed = 0
    while True:
        await asyncio.sleep(interval)  # a polling period: there is no event to wait for
        missed = 0 if await _reachable(host, port) else missed + 1
        if missed >= failures:
            return f"lost the connection to the server at {host}:{port} (it no longer accepts connections)"
