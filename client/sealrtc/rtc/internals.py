"""The ONLY module that touches aiortc's private internals (tested against aiortc 1.16).

aiortc has no insertable-streams API (aiortc#374 declined one), so sealrtc hooks, per instance
and never globally, the points listed here. At import every name is checked and a clear
:class:`AiortcIncompatible` names the installed aiortc version if one is missing.

Private names used:

* ``RTCRtpSender._RTCRtpSender__encoder`` — the sender's encoder, created lazily by
  ``_next_encoded_frame`` only while it is None. sealrtc creates it itself (with aiortc's public
  ``aiortc.codecs.get_encoder``) when ``send()`` starts the sender, and overrides, on that one
  encoder instance, the step that turns an encoded frame into payloads, so every encoded frame
  is transformed whole before aiortc packetizes it — on both the ``encode()`` path (decoded
  frames, run in the default thread pool) and the ``pack()`` path (pre-encoded ``av.Packet``
  objects, run on the event loop). No per-frame coroutine is added:
  * ``Vp8Encoder._packetize(buffer, picture_id)`` — instance override (VP8);
  * ``H264Encoder._packetize(packages)`` and ``H264Encoder._split_bitstream`` — instance
    override; the frame is seen as Annex-B;
  * ``Encoder.encode`` / ``Encoder.pack`` — instance overrides for codecs whose payloads are
    whole frames (Opus, G.711, G.722).
* ``H264Encoder.pack`` — instance override so that it accepts packet-like frames, not only
  ``av.Packet`` (it asserts the type; VP8's does not), with aiortc's own split and packetizer.
* ``RTCRtpSender._RTCRtpSender__started`` — whether ``send()`` already ran (a session attached
  late then installs the encoder hook from ``_next_encoded_frame``'s first call, and audio
  senders keep that wrapper to clear the audio level).
* ``RTCRtpSender._next_encoded_frame(codec)`` — wrapped per sender only when attached late.
* ``RTCRtpSender._send_keyframe()`` — wrapped per sender so PLI/FIR also reach pre-encoded
  sources (``encoder.pack()`` ignores key-frame requests); called after a secret rotation.
* ``RTCRtpSender.send(parameters)`` (public) — wrapped per sender to install the encoder and,
  under E2EE, to leave out the audio-level header extension (it leaks voice activity in clear).
* ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` (its ``put``) — wrapped per receiver: each
  reassembled ``JitterFrame`` is decrypted (or dropped) before the decoder thread sees it.
* ``RTCRtpReceiver._RTCRtpReceiver__active_ssrc`` — the remote SSRC to address a PLI to.
* ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` — asks the remote sender for a key frame.
* ``RTCRtpReceiver._track._queue`` — where encoded frames go when decoding is bypassed.
* ``Vp8Encoder._Vp8Encoder__target_bitrate`` and ``H264Encoder._H264Encoder__target_bitrate`` —
  the encoders' bitrate behind their ``target_bitrate`` property (which clamps to aiortc's
  250 kbit/s..1.5 Mbit/s for VP8, 0.5..3 Mbit/s for H.264, and follows every REMB):
  :func:`fix_video_bitrate` gives a sender an encoder whose target is the user's bitrate
  (REMB does not move it). libvpx's ``bufsize`` option reads the private directly.
* ``RTCRtpTransceiver._codecs`` — the negotiated codecs (to refuse codecs without a layout
  under E2EE; the relay puts its publisher's codec first in a subscriber's answer).
* ``aiortc.jitterbuffer.JitterFrame`` (``data``, ``timestamp``).
* ``RTCIceTransport._send`` and ``RTCIceTransport._connection.data_received`` (aioice) — wrapped
  per transport by :func:`wrap_ice_datagrams` for link impairment (:mod:`sealrtc.rtc.impair`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import aioice
import aiortc
from aiortc import RTCIceTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import get_encoder, h264, vpx
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

from ..errors import SealError

logger = logging.getLogger(__name__)

__all__ = [
    "AiortcIncompatible",
    "FrameHook",
    "JitterFrame",
    "encoder_target_bps",
    "fix_video_bitrate",
    "hook_encoder",
    "hook_receiver",
    "hook_sender",
    "ice_transports",
    "negotiated_codec_names",
    "push_to_track",
    "put_codec_first",
    "request_sender_keyframe",
    "send_pli",
    "track_pusher",
    "wrap_ice_datagrams",
]

TESTED_MINOR = "1.16"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
_ANNEX_B_START = b"\x00\x00\x00\x01"

FrameHook = Callable[[bytes], "bytes | None"]
"""Transforms one encoded frame before packetization: the bytes to packetize, or None to drop."""


class AiortcIncompatible(SealError, ImportError):
    """The installed aiortc lacks an internal sealrtc hooks into."""


def _check() -> None:
    missing: list[str] = []
    for owner, name in [
        (RTCRtpSender, "_next_encoded_frame"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "send"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (vpx.Vp8Encoder, "_packetize"),
        (h264.H264Encoder, "_packetize"),
        (h264.H264Encoder, "_split_bitstream"),
        (Encoder, "encode"),
        (Encoder, "pack"),
    ]:
        if not callable(getattr(owner, name, None)):
            missing.append(f"{owner.__name__}.{name}")
    # The encoder is created lazily (only while None) and used through the attribute: a
    # pre-installed encoder is the one that runs.
    next_frame = RTCRtpSender._next_encoded_frame.__code__.co_names
    if not {"_RTCRtpSender__encoder", "get_encoder", "encode", "pack"} <= set(next_frame):
        missing.append("RTCRtpSender._next_encoded_frame(__encoder)")
    for encoder, names in [(vpx.Vp8Encoder, ("encode", "pack")), (h264.H264Encoder, ("encode", "pack"))]:
        for name in names:
            if "_packetize" not in getattr(encoder, name).__code__.co_names:
                missing.append(f"{encoder.__name__}.{name}(_packetize)")
    for private in ("_RTCRtpSender__encoder", "_RTCRtpSender__started"):
        if private not in RTCRtpSender.__init__.__code__.co_names:
            missing.append(f"RTCRtpSender.{private}")
    if not {"headerExtensions", "codecs"} <= {f.name for f in dataclasses.fields(RTCRtpSendParameters)}:
        missing.append("RTCRtpSendParameters(codecs, headerExtensions)")
    if not all(a in vars(JitterFrame)["__init__"].__code__.co_names for a in ("data", "timestamp")):
        missing.append("JitterFrame(data, timestamp)")
    source_names = RTCRtpReceiver.__init__.__code__.co_names
    for private in ("_RTCRtpReceiver__decoder_queue", "_RTCRtpReceiver__active_ssrc", "_track"):
        if private not in source_names:
            missing.append(f"RTCRtpReceiver.{private}")
    for encoder_class in (vpx.Vp8Encoder, h264.H264Encoder):
        private = f"_{encoder_class.__name__}__target_bitrate"
        if private not in encoder_class.__init__.__code__.co_names or not isinstance(
            vars(encoder_class).get("target_bitrate"), property
        ):
            missing.append(f"{encoder_class.__name__}.{private}")
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
    make_frame_hook: Callable[[RTCRtpCodecParameters], FrameHook | None],
    on_keyframe_request: Callable[[], None],
    *,
    drop_audio_level: bool = False,
) -> None:
    """Route every encoded frame of ``sender`` through a frame hook, before packetization.

    ``make_frame_hook(codec)`` is called once, when the sender starts with its negotiated codec,
    and returns the hook (or None: frames pass untouched). The hook sees each encoded frame
    whole — VP8 as the encoder produced it, H.264 as Annex-B, audio one packet at a time — and
    returns the bytes to packetize, or None to drop the frame. On the ``encode()`` path (decoded
    frames) it runs in aiortc's encoder thread, on the ``pack()`` path on the event loop; it must
    not raise, but if it does the frame is dropped and logged (never sent as it was).

    ``on_keyframe_request`` runs after aiortc's own handling of PLI/FIR. ``drop_audio_level``
    leaves the audio-level RTP header extension out of what the sender writes.
    """
    original_send: Callable[[RTCRtpSendParameters], Any] = sender.send
    original_next: Callable[[Any], Any] = sender._next_encoded_frame
    original_keyframe: Callable[[], None] = sender._send_keyframe
    installed = False

    def install(codec: RTCRtpCodecParameters) -> None:
        nonlocal installed
        if installed:
            return
        installed = True
        hook = make_frame_hook(codec)
        encoder = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
        if encoder is None:
            encoder = sender._RTCRtpSender__encoder = get_encoder(codec)  # type: ignore[attr-defined]
        # else attached to a sender that already sends: hook its encoder where it is
        if isinstance(encoder, h264.H264Encoder):
            accept_encoded_frames(encoder)
        if hook is not None:
            hook_encoder(encoder, hook)

    if not sender._RTCRtpSender__started:  # type: ignore[attr-defined]

        async def send(parameters: RTCRtpSendParameters) -> None:
            if drop_audio_level:
                parameters = dataclasses.replace(
                    parameters,
                    headerExtensions=[h for h in parameters.headerExtensions if h.uri != AUDIO_LEVEL_URI],
                )
            await original_send(parameters)
            if parameters.codecs:
                install(parameters.codecs[0])

        sender.send = send  # type: ignore[method-assign]
    else:
        # Attached late: the codec is known at the next frame, before its encoder runs. Audio
        # senders keep this wrapper to clear the audio level (configured before we came).
        keep_wrapper = drop_audio_level and sender.kind == "audio"

        async def next_encoded_frame(codec: Any) -> Any:
            install(codec)
            if not keep_wrapper:
                del sender._next_encoded_frame  # back to the class's method: no per-frame wrapper
            frame = await original_next(codec)
            if frame is not None and keep_wrapper:
                frame.audio_level = None
            return frame

        sender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]

    def send_keyframe() -> None:
        original_keyframe()
        try:
            on_keyframe_request()
        except Exception:
            logger.exception("key frame request hook failed")

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def hook_encoder(encoder: Encoder, hook: FrameHook) -> Encoder:
    """Apply ``hook`` to each frame ``encoder`` makes, before packetization (in place).

    A hook that raises drops its frame (logged); the wrappers stay one call deep per frame.
    """
    if isinstance(encoder, vpx.Vp8Encoder):
        packetize_vp8 = vpx.Vp8Encoder._packetize

        def vp8_hooked(buffer: bytes, picture_id: int) -> list[bytes]:
            try:
                out = hook(buffer)
            except Exception:
                logger.exception("sealrtc send transform failed; frame dropped")
                return []
            return [] if out is None else packetize_vp8(out, picture_id)  # []: aiortc sends nothing

        encoder._packetize = vp8_hooked  # type: ignore[method-assign]
    elif isinstance(encoder, h264.H264Encoder):
        packetize_h264 = h264.H264Encoder._packetize
        split = h264.H264Encoder._split_bitstream

        def h264_hooked(packages: Iterable[bytes]) -> list[bytes]:
            nals = list(packages)
            frame = b"".join([_ANNEX_B_START + nal for nal in nals])
            try:
                out = hook(frame)
            except Exception:
                logger.exception("sealrtc send transform failed; frame dropped")
                return []
            if out is None:
                return []
            return packetize_h264(nals if out is frame else split(out))

        encoder._packetize = h264_hooked  # type: ignore[method-assign]
    else:  # audio: every payload is one whole frame
        encode, pack = encoder.encode, encoder.pack

        def hooked(payloads: list[bytes]) -> list[bytes]:
            out = []
            for payload in payloads:
                try:
                    sealed = hook(payload)
                except Exception:
                    logger.exception("sealrtc send transform failed; frame dropped")
                    continue
                if sealed is not None:
                    out.append(sealed)
            return out

        def encode_hooked(frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            payloads, timestamp = encode(frame, force_keyframe)
            return hooked(payloads), timestamp

        def pack_hooked(packet: Any) -> tuple[list[bytes], int]:
            payloads, timestamp = pack(packet)
            return hooked(payloads), timestamp

        encoder.encode = encode_hooked  # type: ignore[method-assign]
        encoder.pack = pack_hooked  # type: ignore[method-assign]
    return encoder


def accept_encoded_frames(encoder: h264.H264Encoder) -> None:
    """Let ``encoder.pack`` take any packet-like frame (``bytes(p)``, ``pts``, ``time_base``), as
    VP8's does: aiortc's H.264 ``pack`` asserts an ``av.Packet``, so a forwarded
    :class:`~sealrtc.rtc.frames.EncodedFrame` killed the sender (and every later frame backed up
    in the relay as a "slow subscriber"). Same packetization, through the instance's
    ``_packetize`` (so a frame hook still applies)."""
    split = h264.H264Encoder._split_bitstream

    def pack(packet: Any) -> tuple[list[bytes], int]:
        timestamp = convert_timebase(packet.pts, packet.time_base, VIDEO_TIME_BASE)
        return encoder._packetize(split(bytes(packet))), timestamp

    encoder.pack = pack  # type: ignore[method-assign]


class _FixedBitrate:
    """Mixed into aiortc's video encoders: ``target_bitrate`` is the user's bitrate, whatever REMB
    says. aiortc follows every REMB, and an aiortc receiver's estimate tracks what arrives: a
    simple picture that undershoots its target is walked down to aiortc's floor (250 kbit/s for
    VP8), whatever was asked. The last estimate is kept in :attr:`remb_bps`. The private the
    encoder reads itself is set to the same value."""

    _private = ""

    def _fix(self, bitrate_bps: int) -> None:
        self._bitrate_bps = bitrate_bps
        self.remb_bps: int | None = None
        setattr(self, self._private, bitrate_bps)

    @property
    def target_bitrate(self) -> int:
        return self._bitrate_bps

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.remb_bps = bitrate


class _FixedVp8Encoder(_FixedBitrate, vpx.Vp8Encoder):
    _private = "_Vp8Encoder__target_bitrate"

    def __init__(self, bitrate_bps: int) -> None:
        vpx.Vp8Encoder.__init__(self)
        self._fix(bitrate_bps)


class _FixedH264Encoder(_FixedBitrate, h264.H264Encoder):
    _private = "_H264Encoder__target_bitrate"

    def __init__(self, bitrate_bps: int) -> None:
        h264.H264Encoder.__init__(self)
        self._fix(bitrate_bps)


def fix_video_bitrate(sender: RTCRtpSender, bitrate_bps: int) -> None:
    """Make ``sender``'s video encoder (VP8 or H.264, live-encoded) hold ``bitrate_bps``.

    Call after the session hooked the sender (:func:`hook_sender`) and before it starts: the
    encoder is made when ``send()`` names the negotiated codec, before aiortc would make its own,
    and the session's frame hook is then installed on it. aiortc's bounds do not apply, and REMB
    does not move it (see :class:`_FixedBitrate`). Pre-encoded media (``pack()``) is not
    re-encoded: a clip's bitrate is set when it is made.
    """
    inner_send: Callable[[RTCRtpSendParameters], Any] = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        if parameters.codecs and sender._RTCRtpSender__encoder is None:  # type: ignore[attr-defined]
            mime = parameters.codecs[0].mimeType.lower()
            if mime == "video/vp8":
                sender._RTCRtpSender__encoder = _FixedVp8Encoder(bitrate_bps)  # type: ignore[attr-defined]
            elif mime == "video/h264":
                sender._RTCRtpSender__encoder = _FixedH264Encoder(bitrate_bps)  # type: ignore[attr-defined]
        await inner_send(parameters)

    sender.send = send  # type: ignore[method-assign]


def encoder_target_bps(sender: RTCRtpSender) -> int | None:
    """The bitrate ``sender``'s live video encoder aims at now: aiortc moves it with every REMB
    (the receiver's bandwidth estimate), so it shows a live source adapting. None before the
    encoder exists and for other encoders; a :func:`fix_video_bitrate` encoder says its fixed
    target. A pre-encoded source goes through the encoder's ``pack()``, which ignores it."""
    encoder = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
    if isinstance(encoder, (vpx.Vp8Encoder, h264.H264Encoder)):
        return int(encoder.target_bitrate)
    return None


def request_sender_keyframe(sender: RTCRtpSender) -> None:
    """Ask ``sender``'s encoder (and, through the hook, a pre-encoded source) for a key frame."""
    sender._send_keyframe()


def hook_receiver(
    receiver: RTCRtpReceiver, make_frame_hook: Callable[[RTCRtpCodecParameters], Callable[[JitterFrame], bool]]
) -> None:
    """Run a frame hook on every reassembled frame of ``receiver`` before decoding.

    ``make_frame_hook(codec)`` is called on the first frame of each codec and returns the hook:
    it edits ``jitter_frame.data`` in place and returns True to pass it to the decoder, or False
    to drop it (it may have queued it elsewhere). The decoder thread's stop sentinel passes
    untouched. Nothing raises into aiortc's RTP loop.
    """
    queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    original_put = queue.put
    last_codec: Any = None
    hook: Callable[[JitterFrame], bool] | None = None

    def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
        nonlocal last_codec, hook
        if item is None:
            original_put(item, block, timeout)
            return
        try:
            codec = item[0]
            if codec is not last_codec or hook is None:
                hook = make_frame_hook(codec)
                last_codec = codec
            keep = hook(item[1])
        except Exception:
            logger.exception("sealrtc receive transform failed; frame dropped")
            return
        if keep:
            original_put(item, block, timeout)

    queue.put = put


def push_to_track(receiver: RTCRtpReceiver, item: object) -> None:
    """Hand ``item`` straight to the receiver's remote track (bypassing the decoder)."""
    track_pusher(receiver)(item)


def track_pusher(receiver: RTCRtpReceiver) -> Callable[[object], None]:
    """:func:`push_to_track` for one receiver, looked up once (for the per-frame path)."""
    track = receiver._track
    assert track is not None
    put: Callable[[object], None] = track._queue.put_nowait
    return put


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


def put_codec_first(transceiver: RTCRtpTransceiver, mime_type: str) -> bool:
    """Between ``setRemoteDescription`` (of an offer) and ``createAnswer``: make the first
    negotiated codec of ``mime_type`` the one the answer lists first and the sender uses.
    False when the offer did not include it."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    wanted = mime_type.lower()
    for i, codec in enumerate(codecs):
        if codec.mimeType.lower() == wanted:
            codecs.insert(0, codecs.pop(i))
            return True
    return False


def negotiated_codec_names(transceiver: RTCRtpTransceiver) -> list[str]:
    """Negotiated codec mime types of ``transceiver``, preferred first (RTX excluded)."""
    return [c.mimeType for c in transceiver._codecs if not c.mimeType.lower().endswith("/rtx")]


# -- ICE datagrams (link impairment) --------------------------------------------------------
# Private names: ``RTCIceTransport._send`` (aiortc: the coroutine DTLS sends every datagram
# with, bound to aioice's ``Connection.send`` at construction) and ``RTCIceTransport._connection``
# (aioice's ``Connection``), whose ``data_received(data, component)`` every received data datagram
# goes through. ICE's own checks (STUN) bypass both: impairment never breaks consent.

SendDatagram = Callable[[bytes], Coroutine[Any, Any, None]]
ReceiveDatagram = Callable[[bytes, int], None]


def _check_ice() -> None:
    missing: list[str] = []
    if not {"_send", "_recv", "_connection"} <= set(RTCIceTransport.__init__.__code__.co_names):
        missing.append("RTCIceTransport(_connection, _send, _recv)")
    if not callable(getattr(aioice.Connection, "data_received", None)):
        missing.append("aioice.Connection.data_received")
    if missing:
        raise AiortcIncompatible(
            f"sealrtc's link impairment was tested with aiortc {TESTED_MINOR}.x; the installed aiortc "
            f"{getattr(aiortc, '__version__', '?')} lacks {', '.join(missing)}. Install aiortc=={TESTED_MINOR}.*"
        )


_check_ice()


def ice_transports(pc: Any) -> list[RTCIceTransport]:
    """Every ICE transport of ``pc`` in use now (media and data channels; bundled ones once)."""
    found: dict[int, RTCIceTransport] = {}
    for transceiver in pc.getTransceivers():
        for part in (transceiver.sender, transceiver.receiver):
            dtls = getattr(part, "transport", None)
            if dtls is not None:
                found.setdefault(id(dtls.transport), dtls.transport)
    if pc.sctp is not None:
        found.setdefault(id(pc.sctp.transport.transport), pc.sctp.transport.transport)
    return list(found.values())


def wrap_ice_datagrams(
    transport: RTCIceTransport,
    wrap_send: Callable[[SendDatagram], SendDatagram],
    wrap_receive: Callable[[ReceiveDatagram], ReceiveDatagram],
) -> None:
    """Route every data datagram ``transport`` sends through ``wrap_send(send)`` and every one it
    receives through ``wrap_receive(deliver)``, for this transport only."""
    setattr(transport, "_send", wrap_send(transport._send))  # noqa: B010 (an instance attribute, patched)
    connection = transport._connection
    setattr(connection, "data_received", wrap_receive(connection.data_received))  # noqa: B010
