"""The ONLY module that touches aiortc's private internals (tested against aiortc 1.16).

aiortc has no insertable-streams API (aiortc#374 declined one), so sealrtc hooks, per instance
and never globally, the points listed here. At import every name is checked and a clear
:class:`AiortcIncompatible` names the installed aiortc version if one is missing.

Private names used:

* ``RTCRtpSender._next_encoded_frame(codec)`` — wrapped per sender (instance attribute): its
  ``RTCEncodedFrame.payloads`` are encrypted between encoder and RTP packetizer.
* ``RTCRtpSender._send_keyframe()`` — wrapped per sender so PLI/FIR also reach pre-encoded
  sources (``encoder.pack()`` ignores key-frame requests); called after a secret rotation.
* ``aiortc.rtcrtpsender.RTCEncodedFrame`` — the encoded frame type (``payloads``).
* ``aiortc.codecs.vpx.VpxPayloadDescriptor.parse`` and ``Vp8Encoder._packetize`` — undo and
  redo the VP8 RTP payload descriptor around the frame transform.
* ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` (its ``put``) — wrapped per receiver: each
  reassembled ``JitterFrame`` is decrypted (or dropped) before the decoder thread sees it.
* ``RTCRtpReceiver._RTCRtpReceiver__active_ssrc`` — the remote SSRC to address a PLI to.
* ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` — asks the remote sender for a key frame.
* ``RTCRtpReceiver._track._queue`` — where encoded frames go when decoding is bypassed.
* ``RTCRtpTransceiver._codecs`` — the negotiated codecs (to refuse H.264 under E2EE).
* ``aiortc.jitterbuffer.JitterFrame`` (``data``, ``timestamp``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import vpx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpsender import RTCEncodedFrame

from ..errors import SealError

logger = logging.getLogger(__name__)

TESTED_MINOR = "1.16"


class AiortcIncompatible(SealError, ImportError):
    """The installed aiortc lacks an internal sealrtc hooks into."""


def _check() -> None:
    missing: list[str] = []
    for owner, name in [
        (RTCRtpSender, "_next_encoded_frame"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (vpx.VpxPayloadDescriptor, "parse"),
        (vpx.Vp8Encoder, "_packetize"),
    ]:
        if not callable(getattr(owner, name, None)):
            missing.append(f"{owner.__name__}.{name}")
    for cls, attrs in [(RTCEncodedFrame, ("payloads",)), (JitterFrame, ("data", "timestamp"))]:
        if not all(a in vars(cls)["__init__"].__code__.co_names for a in attrs):
            missing.append(f"{cls.__name__}({', '.join(attrs)})")
    source_names = RTCRtpReceiver.__init__.__code__.co_names
    for private in ("_RTCRtpReceiver__decoder_queue", "_RTCRtpReceiver__active_ssrc", "_track"):
        if private not in source_names:
            missing.append(f"RTCRtpReceiver.{private}")
    if "_codecs" not in RTCRtpTransceiver.__init__.__code__.co_names:
        missing.append("RTCRtpTransceiver._codecs")
    if missing:
        raise AiortcIncompatible(
            f"sealrtc's aiortc adapter was tested with aiortc {TESTED_MINOR}.x; the installed aiortc "
            f"{getattr(aiortc, '__version__', '?')} lacks {', '.join(missing)}. "
            f"Install aiortc=={TESTED_MINOR}.*"
        )


_check()


def hook_sender(
    sender: RTCRtpSender,
    transform: Callable[[Any, RTCEncodedFrame], RTCEncodedFrame | None],
    on_keyframe_request: Callable[[], None],
) -> None:
    """Route every encoded frame of ``sender`` through ``transform(codec, frame)``.

    ``transform`` returns the frame to send, or None to drop it; it must not raise (a raise
    would stop the track for good), but if it does the frame is dropped and logged.
    """
    original_next: Callable[[Any], Awaitable[RTCEncodedFrame | None]] = sender._next_encoded_frame
    original_keyframe: Callable[[], None] = sender._send_keyframe

    async def next_encoded_frame(codec: Any) -> RTCEncodedFrame | None:
        frame = await original_next(codec)
        if frame is None:
            return None
        try:
            return transform(codec, frame)
        except Exception:
            logger.exception("sealrtc send transform failed; frame dropped")
            return None

    def send_keyframe() -> None:
        original_keyframe()
        try:
            on_keyframe_request()
        except Exception:
            logger.exception("key frame request hook failed")

    sender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def request_sender_keyframe(sender: RTCRtpSender) -> None:
    """Ask ``sender``'s encoder (and, through the hook, a pre-encoded source) for a key frame."""
    sender._send_keyframe()


def hook_receiver(receiver: RTCRtpReceiver, transform: Callable[[Any, JitterFrame], bool]) -> None:
    """Call ``transform(codec, jitter_frame)`` for every reassembled frame before decoding.

    ``transform`` edits ``jitter_frame.data`` in place and returns True to pass it to the
    decoder, or False to drop it (it may have queued it elsewhere). The decoder thread's stop
    sentinel passes untouched. Nothing raises into aiortc's RTP loop.
    """
    queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    original_put = queue.put

    def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            original_put(item, block, timeout)
            return
        codec, frame = item
        try:
            keep = transform(codec, frame)
        except Exception:
            logger.exception("sealrtc receive transform failed; frame dropped")
            return
        if keep:
            original_put(item, block, timeout)

    queue.put = put


def push_to_track(receiver: RTCRtpReceiver, item: object) -> None:
    """Hand ``item`` straight to the receiver's remote track (bypassing the decoder)."""
    track = receiver._track
    assert track is not None
    track._queue.put_nowait(item)


def send_pli(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for the most recently active remote SSRC of ``receiver`` (no-op if none)."""
    active: dict[int, Any] = receiver._RTCRtpReceiver__active_ssrc  # type: ignore[attr-defined]
    if not active:
        return
    ssrc = max(active, key=lambda s: active[s])
    task = asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()


def negotiated_codec_names(transceiver: RTCRtpTransceiver) -> list[str]:
    """Negotiated codec mime types of ``transceiver``, preferred first (RTX excluded)."""
    return [c.mimeType for c in transceiver._codecs if not c.mimeType.lower().endswith("/rtx")]


def vp8_depacketize(payloads: list[bytes]) -> tuple[bytes, int]:
    """Join VP8 RTP payloads back into one frame; return it and the first picture id."""
    first = payloads[0] if payloads else b""
    # Fast path: aiortc's packetizer always writes X=1, I=1 and a 15-bit picture id (4 bytes).
    if all(len(p) > 4 and p[0] & 0x80 and p[1] == 0x80 and p[2] & 0x80 for p in payloads):
        return b"".join([p[4:] for p in payloads]), ((first[2] & 0x7F) << 8) | first[3]
    parts: list[bytes] = []
    picture_id = 0
    for i, payload in enumerate(payloads):
        descriptor, data = vpx.VpxPayloadDescriptor.parse(payload)
        if i == 0 and descriptor.picture_id is not None:
            picture_id = descriptor.picture_id
        parts.append(data)
    return b"".join(parts), picture_id


def vp8_packetize(frame: bytes, picture_id: int) -> list[bytes]:
    """Split a frame into VP8 RTP payloads the way aiortc's own encoder does."""
    payloads: list[bytes] = vpx.Vp8Encoder._packetize(frame, picture_id)
    return payloads
