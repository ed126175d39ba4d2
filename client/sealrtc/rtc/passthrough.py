"""Key-less forwarding: receive encoded frames without decrypting or decoding, send them as-is.

What an SFU does with E2EE media, and what the relay and the tampering tests build on. This
module must never import :mod:`sealrtc.keys`: it cannot read what it forwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..layout import keyframe_function
from ..ratelimit import RateLimiter
from . import internals
from .frames import EncodedFrame
from .keyframes import forward_keyframe_request

logger = logging.getLogger(__name__)


class ForwardingTrack(MediaStreamTrack):
    """A track fed with :class:`EncodedFrame` objects, bounded: when full, the oldest frame is
    dropped (a slow consumer loses backlog instead of growing memory).

    ``request_keyframe()`` (called by sealrtc's sender hook on PLI/FIR) is forwarded upstream
    through ``on_keyframe_request``, at most once per ``keyframe_interval`` seconds.
    """

    def __init__(
        self,
        kind: str,
        *,
        maxsize: int = 64,
        on_keyframe_request: Callable[[], None] | None = None,
        keyframe_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue(maxsize)
        self._on_keyframe_request = on_keyframe_request
        self._keyframes = RateLimiter(keyframe_interval)

    def feed(self, frame: EncodedFrame) -> None:
        self.frames_in += 1
        while self._queue.full():
            self._queue.get_nowait()
            self.frames_dropped += 1
        self._queue.put_nowait(frame)

    def end(self) -> None:
        """No more frames: the consumer's ``recv`` raises ``MediaStreamError`` after the backlog."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def request_keyframe(self) -> None:
        if self._on_keyframe_request is not None and self._keyframes.allow(time.monotonic()):
            self._on_keyframe_request()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        self.frames_out += 1
        return frame


class PassthroughSession:
    """Makes every receiver of ``pc`` yield raw :class:`EncodedFrame` objects (ciphertext as it
    arrived, no decryption, no decoding) and hooks senders so PLI/FIR reach the source track.
    """

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self._receivers: set[int] = set()
        self._senders: set[int] = set()
        self.frames_received = 0
        set_remote = pc.setRemoteDescription
        add_track = pc.addTrack

        async def wrapped_set_remote(*args: Any, **kwargs: Any) -> None:
            await set_remote(*args, **kwargs)
            self._scan()

        def wrapped_add_track(track: Any) -> Any:
            sender = add_track(track)
            self._scan()
            return sender

        pc.setRemoteDescription = wrapped_set_remote  # type: ignore[method-assign]
        pc.addTrack = wrapped_add_track  # type: ignore[method-assign]
        self._scan()

    def _scan(self) -> None:
        for transceiver in self.pc.getTransceivers():
            receiver, sender = transceiver.receiver, transceiver.sender
            if id(receiver) not in self._receivers:
                self._receivers.add(id(receiver))
                internals.hook_receiver(receiver, partial(self._make_forward, receiver))
            if id(sender) not in self._senders:
                self._senders.add(id(sender))
                internals.hook_sender(sender, _untouched, partial(forward_keyframe_request, sender))

    def _make_forward(self, receiver: RTCRtpReceiver, codec: Any) -> Callable[[Any], bool]:
        mime_type, clock_rate = codec.mimeType, codec.clockRate
        keyframe_of = keyframe_function(mime_type)
        push = internals.push_to_track

        def forward(frame: Any) -> bool:
            self.frames_received += 1
            data: bytes = frame.data
            push(receiver, EncodedFrame(data, frame.timestamp, mime_type, clock_rate, keyframe_of(data)))
            return False

        return forward

    @staticmethod
    def request_keyframe(receiver: RTCRtpReceiver) -> None:
        """Send a PLI upstream for ``receiver``'s stream."""
        internals.send_pli(receiver)


def follow_codecs(pc: RTCPeerConnection, source: RTCPeerConnection) -> None:
    """Between ``setRemoteDescription`` and ``createAnswer`` of ``pc``: answer with the video codec
    ``source`` receives, when the offer has it, so that forwarded frames are re-packetized with
    their own codec (a sender uses its first negotiated codec for every frame)."""
    received = [
        names[0]
        for transceiver in source.getTransceivers()
        if transceiver.kind == "video" and (names := internals.negotiated_codec_names(transceiver))
    ]
    if not received:
        return
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            internals.put_codec_first(transceiver, received[0])


def _untouched(codec: Any) -> None:
    """Forwarded frames are sent exactly as they arrived: no frame hook."""
    return None
