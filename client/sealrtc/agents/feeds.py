"""A source track sent over one peer connection after another.

aiortc stops the track of a sender whose connection closes; a publisher that reconnects must
go on sending the same source (its frame count, its clip position). Each connection gets a
:class:`Feed` of the source instead: stopping the feed leaves the source live.

A paced source that nobody read during an outage is behind its clock: it would hand out the
outage's frames at once, a burst the new connection's first seconds would pay for (queues,
loss, latency). A feed made after an outage skips that backlog: the frames a source returns
without waiting, until the first one it had to wait for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Feed"]

BACKLOG_GAP = 0.005
"""A frame that took at least this long (seconds) to come was waited for: the backlog is over."""
MAX_SKIPPED = 3000
"""At most this many frames skipped (a minute of audio): a source that never waits is not paced."""


class Feed(MediaStreamTrack):
    """One connection's view of ``source``: its frames, and key-frame requests passed back."""

    def __init__(self, source: Any, *, skip_backlog: bool = False, on_skip: Callable[[], None] | None = None) -> None:
        """``on_skip``: called for each frame of the backlog skipped (the publisher leaves a
        probe sequence number unused for it)."""
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.skipped = 0
        """Frames of the backlog taken from the source and never sent."""
        self._skip_backlog = skip_backlog
        self._on_skip = on_skip

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        while self._skip_backlog:
            asked = time.monotonic()
            frame = await self.source.recv()
            if time.monotonic() - asked >= BACKLOG_GAP or self.skipped >= MAX_SKIPPED:
                self._skip_backlog = False
                return frame
            self.skipped += 1
            if self._on_skip is not None:
                self._on_skip()
        return await self.source.recv()

    def request_keyframe(self) -> None:
        """Pre-encoded sources make key frames themselves (see :mod:`sealrtc.rtc.keyframes`)."""
        request = getattr(self.source, "request_keyframe", None)
        if callable(request):
            request()
