"""A source track sent over one peer connection after another.

aiortc stops the track of a sender whose connection closes; a publisher that reconnects must
go on sending the same source (its frame count, its clip position). Each connection gets a
:class:`Feed` of the source instead: stopping the feed leaves the source live.
"""

from __future__ import annotations

from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Feed"]


class Feed(MediaStreamTrack):
    """One connection's view of ``source``: its frames, and key-frame requests passed back."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.source.recv()

    def request_keyframe(self) -> None:
        """Pre-encoded sources make key frames themselves (see :mod:`sealrtc.rtc.keyframes`)."""
        request = getattr(self.source, "request_keyframe", None)
        if callable(request):
            request()
