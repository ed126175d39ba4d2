"""A source track sent over one peer connection after another.

aiortc stops the track of a sender whose connection closes; a publisher that reconnects must
go on sending the same source (its frame count, its clip position). Each connection gets a
:class:`Feed` of the source instead: stopping the feed leaves the source live.

A paced source that nobody read during an outage is behind its clock: it would hand out the
outage's frames at once, a burst the new connection's first seconds would pay for (queues,
loss, latency). A feed made after an outage skips that backlog: the frames a source returns
without waiting, until the first one it had to wait for (the first frame is always skipped:
it has nothing to be judged against). "Waiting" is judged against the
frames' own spacing (half the media time since the previous frame, at least
:data:`BACKLOG_GAP`): making a backlog frame (rendering the test pattern, a busy machine) may
take several milliseconds, yet a paced frame is waited for about a whole frame period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Feed"]

BACKLOG_GAP = 0.005
"""A frame that took at least this long (seconds), and half its spacing from the previous one,
to come was waited for: the backlog is over."""
MAX_SKIPPED = 3000
"""At most this many frames skipped (a minute of audio): a source that never waits is not paced."""


class Feed(MediaStreamTrack):
    """One connection's view of ``source``: its frames, and key-frame requests passed back."""

    def __init__(
        self,
        source: Any,
        *,
        skip_backlog: bool = False,
        on_skip: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_skip``: called for each frame of the backlog skipped (the publisher leaves a
        probe sequence number unused for it). ``clock``: monotonic seconds (tests)."""
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.skipped = 0
        """Frames of the backlog taken from the source and never sent."""
        self._skip_backlog = skip_backlog
        self._on_skip = on_skip
        self._clock = clock

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        first, previous = True, None
        while self._skip_backlog:
            asked = self._clock()
            frame = await self.source.recv()
            waited = self._clock() - asked
            media = _media_time(frame)
            spacing = media - previous if media is not None and previous is not None else 0.0
            # The first frame has no spacing to judge by: skipped (at worst one current frame).
            caught_up = not first and waited >= max(BACKLOG_GAP, spacing / 2)
            first, previous = False, media
            if caught_up or self.skipped >= MAX_SKIPPED:
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


def _media_time(frame: Any) -> float | None:
    """A frame's presentation time in seconds (None when it has no pts or time base)."""
    pts, base = getattr(frame, "pts", None), getattr(frame, "time_base", None)
    return float(pts * base) if pts is not None and base is not None else None
