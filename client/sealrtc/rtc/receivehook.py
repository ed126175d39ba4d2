"""The receive hook: one receiver's :mod:`sealrtc.pipeline` receive step, plugged in between
aiortc's jitter buffer and its decoder.

Accepted frames go on to the decoder, or, with ``decode=False`` or a received-frame observer,
become :class:`EncodedFrame` objects (handed to the observer, and to the track instead of the
decoder). Per frame the hook allocates only the plaintext (and that EncodedFrame) and does no
string work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from ..epochs import FrameKeys
from ..failures import FailureCounts
from ..layout import codec_from_name, e2ee_supported, keyframe_function
from ..metrics import ReceiveMetrics
from ..metrics.sniff import EncryptionSniffer
from ..pipeline import ReceiveCounters, receive_step, refusing_receive_step
from ..ratelimit import RateLimiter
from ..transform import FrameDecryptor, SecretEvent
from . import internals
from .frames import EncodedFrame
from .stats import ReceiveTrackStats

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 1.0
"""A receiver asks for a key frame at most this often (seconds): no PLI storms."""


class ReceivedFrameObserver:
    """Where the receive hooks of a session find the observer of accepted frames, which the user
    may set or clear at any time (read once per frame)."""

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: Callable[[Any, EncodedFrame], None] | None = None


@dataclass
class ReceiveState:
    """One receiver: its counters, a decryptor per codec (E2EE), metrics and, plain, a sniffer."""

    receiver: RTCRtpReceiver
    counters: ReceiveCounters = field(default_factory=ReceiveCounters)
    decryptors: dict[str, FrameDecryptor] = field(default_factory=dict)
    keyframes: RateLimiter = field(default_factory=lambda: RateLimiter(KEYFRAME_REQUEST_INTERVAL))
    codec: str | None = None
    metrics: ReceiveMetrics | None = None
    sniffer: EncryptionSniffer | None = None

    def snapshot(self, e2ee: bool, since: float) -> ReceiveTrackStats:
        c = self.counters
        decrypted = [dec.stats for dec in self.decryptors.values()]
        return ReceiveTrackStats(
            kind=self.receiver.track.kind,
            track_id=self.receiver.track.id,
            codec=self.codec,
            frames_received=c.frames_received,
            frames_accepted=c.frames_accepted,
            frames_decrypted=sum(s.frames for s in decrypted) if e2ee else None,
            bytes_in=sum(s.bytes_in for s in decrypted) if e2ee else None,
            bytes_out=sum(s.bytes_out for s in decrypted) if e2ee else None,
            decrypt_failures=FailureCounts.sum(s.failures for s in decrypted),
            frames_unsupported_codec=c.frames_unsupported,
            keyframe_requests=c.keyframe_requests,
            first_received_at=c.first_received_at,
            first_frame_at=c.first_frame_at,
            looks_encrypted=self.sniffer.looks_encrypted if self.sniffer is not None else None,
            metrics=self.metrics,
            since=since,
        )

    def request_keyframe(self, now: float) -> None:
        """Send a PLI upstream, at most once per :data:`KEYFRAME_REQUEST_INTERVAL`."""
        if self.keyframes.allow(now):
            self.counters.keyframe_requests += 1
            internals.send_pli(self.receiver)


def make_receive_hook(
    state: ReceiveState,
    codec: RTCRtpCodecParameters,
    *,
    keys: FrameKeys | None,
    decode: bool,
    measure: bool,
    observer: ReceivedFrameObserver,
    on_secret_event: Callable[[SecretEvent], None],
) -> Callable[[internals.JitterFrame], bool]:
    """The frame hook of one receiver, specialised once for its codec and the session's mode."""
    if state.codec is None:
        state.codec = codec.mimeType
        state.metrics = ReceiveMetrics(video=state.receiver.track.kind == "video")
        if keys is None:
            state.sniffer = EncryptionSniffer(codec_from_name(codec.mimeType))
    mime = codec.mimeType.lower()
    counters = state.counters
    if keys is not None and not e2ee_supported(mime):
        refuse = refusing_receive_step(counters, monotonic=time.monotonic)

        def refused(frame: internals.JitterFrame) -> bool:
            refuse(frame.data)
            return False

        return refused
    layout = codec_from_name(mime)
    decryptor: FrameDecryptor | None = None
    if keys is not None:
        decryptor = state.decryptors.get(mime)
        if decryptor is None:
            decryptor = state.decryptors[mime] = FrameDecryptor(keys, codec=layout)
            decryptor.add_listener(on_secret_event)
    step = receive_step(
        counters,
        decryptor=decryptor,
        sniff=state.sniffer.frame if state.sniffer is not None else None,
        record=state.metrics.frame if measure and state.metrics is not None else None,
        monotonic=time.monotonic,
        now_ns=time.time_ns,
    )
    mime_type, clock_rate = codec.mimeType, codec.clockRate
    keyframe_of = keyframe_function(layout)
    receiver = state.receiver
    push = internals.track_pusher(receiver) if not decode else None

    def on_frame(frame: internals.JitterFrame) -> bool:
        data = step(frame.data)
        if data is None:
            return False
        observe = observer.call
        if decode and observe is None:
            frame.data = data
            return True
        encoded = EncodedFrame(
            data,
            frame.timestamp,
            mime_type,
            clock_rate,
            keyframe_of(data),
            decryptor.last_kid if decryptor is not None else None,
            decryptor.last_ctr if decryptor is not None else None,
        )
        if observe is not None:
            try:
                observe(receiver.track, encoded)
            except Exception:  # an observer (a recorder) must not break the media path
                logger.exception("received-frame observer failed")
            if decode:
                frame.data = data
                return True
        if push is not None:
            push(encoded)
        return False

    return on_frame
