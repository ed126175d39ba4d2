"""The send hook: one sender's :mod:`sealrtc.pipeline` send step, plugged into aiortc's encoder.

:func:`make_send_hook` runs once, when the sender starts with its negotiated codec, and returns
the pipeline's step itself (no extra call per frame). On the ``encode()`` path the step runs in
aiortc's encoder thread, so it touches only this sender's own state, and a key frame wanted
after a KID switch is requested through the event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import partial

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from ..epochs import FrameKeys
from ..layout import codec_from_name, e2ee_supported, layout_of
from ..metrics import ProbeStamper
from ..pipeline import PlaintextObserver, SendCounters, counting_send_step, refusing_send_step, send_step
from ..transform import FrameEncryptor
from . import internals
from .stats import SendTrackStats


@dataclass
class SendState:
    """One sender: its counters, and an encryptor per codec it sent (E2EE)."""

    sender: RTCRtpSender
    stamper: ProbeStamper | None = None
    counters: SendCounters = field(default_factory=SendCounters)
    encryptors: dict[str, FrameEncryptor] = field(default_factory=dict)
    codec: str | None = None
    track_id: str | None = None

    def snapshot(self, e2ee: bool) -> SendTrackStats:
        c = self.counters
        encrypted = [enc.stats for enc in self.encryptors.values()]
        return SendTrackStats(
            kind=self.sender.kind,
            track_id=self.track_id,
            codec=self.codec,
            frames_sent=c.frames_sent,
            bytes_sent=c.bytes_sent,
            keyframes_sent=c.keyframes_sent,
            keyframe_requests_received=c.keyframe_requests,
            probe_stream=self.stamper.stream_id if self.stamper is not None else None,
            frames_encrypted=sum(s.frames for s in encrypted) if e2ee else None,
            bytes_in=sum(s.bytes_in for s in encrypted) if e2ee else None,
            bytes_out=sum(s.bytes_out for s in encrypted) if e2ee else None,
            kid_switches=sum(s.kid_switches for s in encrypted) if e2ee else None,
            frames_dropped=c.frames_dropped + c.frames_refused,
            frames_unsupported_codec=c.frames_unsupported,
        )


def make_send_hook(
    state: SendState, codec: RTCRtpCodecParameters, *, keys: FrameKeys | None, observer: PlaintextObserver
) -> internals.FrameHook:
    """The frame hook of one sender, specialised once for its codec and the session's mode."""
    state.codec = codec.mimeType
    track = state.sender.track
    state.track_id = track.id if track is not None else None
    mime = codec.mimeType.lower()
    counters = state.counters
    if not e2ee_supported(mime):
        # Under E2EE never negotiated (setRemoteDescription raises) and never sent; plain: sent
        # as is, without a probe (a stream of the codec's own framing).
        return refusing_send_step(counters) if keys is not None else counting_send_step(counters)
    layout = codec_from_name(mime)
    encryptor: FrameEncryptor | None = None
    if keys is not None:
        encryptor = state.encryptors[mime] = FrameEncryptor(keys, codec=layout)
    request = None
    if layout_of(layout).video:
        loop = asyncio.get_running_loop()
        request = partial(loop.call_soon_threadsafe, internals.request_sender_keyframe, state.sender)
    return send_step(
        layout,
        counters,
        encryptor=encryptor,
        stamper=state.stamper,
        observer=observer,
        now_ns=time.time_ns,
        request_keyframe=request,
    )
