"""``sealrtc.attach(pc, keys)``: end-to-end encryption for every track of an RTCPeerConnection.

A thin async shell over the sans-I/O :mod:`sealrtc.transform`; every aiortc private it needs is
reached through :mod:`sealrtc.rtc.internals`. Hooks are per instance: the peer connection's own
``addTrack`` / ``addTransceiver`` / ``set*Description`` are wrapped so tracks added before and
after :func:`attach` are covered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from pyee.asyncio import AsyncIOEventEmitter

from ..errors import InvalidFrame, UnsupportedCodec
from ..keys import SharedSecret
from ..layout import Codec, codec_from_name, is_keyframe
from ..metrics import ProbeStamper, ReceiveMetrics
from ..metrics.probe import split_probe_fields
from ..metrics.sniff import EncryptionSniffer
from ..ratelimit import RateLimiter
from ..transform import FrameDecryptor, FrameEncryptor, SecretEvent
from . import internals
from .frames import EncodedFrame

logger = logging.getLogger(__name__)

UNSUPPORTED_MIME_TYPES = frozenset({"video/h264"})
"""Codecs whose frames cannot be protected yet (H.264 needs the NAL-aware layout)."""
KEYFRAME_REQUEST_INTERVAL = 1.0


@dataclass(frozen=True)
class TrackSecretEvent:
    """``secret_mismatch`` / ``secret_match`` as emitted by an :class:`E2EESession`."""

    type: str
    kind: str
    track_id: str
    kid: int
    reason: str | None
    at: float


@dataclass
class _SendState:
    sender: RTCRtpSender
    encryptors: dict[str, FrameEncryptor] = field(default_factory=dict)
    stamper: ProbeStamper | None = None
    frames_sent: int = 0
    bytes_sent: int = 0
    keyframes_sent: int = 0
    keyframe_requests: int = 0
    frames_dropped: int = 0
    unsupported: int = 0
    codec: str | None = None
    track_id: str | None = None

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": "send",
            "kind": self.sender.kind,
            "track_id": self.track_id,
            "codec": self.codec,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "keyframes_sent": self.keyframes_sent,
            "keyframe_requests_received": self.keyframe_requests,
            "probe_stream": self.stamper.stream_id if self.stamper is not None else None,
            "frames_encrypted": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "kid_switches": 0,
            "frames_dropped": self.frames_dropped,
            "frames_unsupported_codec": self.unsupported,
        }
        for enc in self.encryptors.values():
            for key, value in enc.stats.as_dict().items():
                if key == "frames_refused":
                    out["frames_dropped"] += value
                else:
                    out[key] += value
        return out


@dataclass
class _ReceiveState:
    receiver: RTCRtpReceiver
    decryptors: dict[str, FrameDecryptor] = field(default_factory=dict)
    keyframes: RateLimiter = field(default_factory=lambda: RateLimiter(KEYFRAME_REQUEST_INTERVAL))
    frames_received: int = 0
    unsupported: int = 0
    keyframe_requests: int = 0
    codec: str | None = None
    layout: Codec = Codec.GENERIC
    first_received_at: float | None = None
    first_frame_at: float | None = None
    metrics: ReceiveMetrics | None = None
    sniffer: EncryptionSniffer | None = None

    def stats(self, since: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": "recv",
            "kind": self.receiver.track.kind,
            "track_id": self.receiver.track.id,
            "codec": self.codec,
            "frames_received": self.frames_received,
            "frames_decrypted": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "decrypt_failures": {},
            "frames_unsupported_codec": self.unsupported,
            "keyframe_requests": self.keyframe_requests,
            "first_received_at": self.first_received_at,
            "first_frame_at": self.first_frame_at,
            "looks_encrypted": self.sniffer.looks_encrypted if self.sniffer is not None else None,
        }
        if self.metrics is not None:
            out.update(self.metrics.summary(since))
        for dec in self.decryptors.values():
            for key, value in dec.stats.as_dict().items():
                if key == "decrypt_failures":
                    assert isinstance(value, dict)
                    for reason, count in value.items():
                        out[key][reason] = out[key].get(reason, 0) + count
                else:
                    out[key] += value
        return out


class E2EESession(AsyncIOEventEmitter):
    """The E2EE state of one peer connection. Events (pyee, like aiortc's own):

    * ``"secret_mismatch"`` / ``"secret_match"`` with a :class:`TrackSecretEvent`;
    * ``"error"``-free by design: problems such as an unsupported codec are raised from
      ``setRemoteDescription`` or counted in :meth:`stats`, never emitted as ``"error"``
      (pyee raises unhandled ``"error"`` events).
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        keys: SharedSecret | None,
        *,
        decode: bool = True,
        probe: bool = False,
        measure: bool = True,
    ) -> None:
        super().__init__()
        self.pc = pc
        self.keys = keys
        self.decode = decode
        self.probe = probe
        self.measure = measure
        """Record per-frame metrics (False: probes are still stripped, nothing is measured)."""
        self.created_at = time.monotonic()
        """Monotonic time of :func:`attach`: the origin of ``first_frame_ms``."""
        self.plaintext_observer: Callable[[bytes], None] | None = None
        """Called with every plaintext frame before it is encrypted (the demo hashes them)."""
        self.received_frame_observer: Callable[[Any, EncodedFrame], None] | None = None
        """Called with ``(remote track, EncodedFrame)`` for every frame that decrypted (probe
        stripped), before decoding: what ``subscribe --record`` remuxes."""
        self._senders: dict[int, _SendState] = {}
        self._receivers: dict[int, _ReceiveState] = {}
        self._remove_rotation_listener = (
            keys.add_rotation_listener(self._on_rotation) if keys is not None else lambda: None
        )
        self._wrap_peer_connection()
        self._scan()

    # -- wiring -------------------------------------------------------------------------------

    def _wrap_peer_connection(self) -> None:
        pc = self.pc
        add_track = pc.addTrack
        add_transceiver = pc.addTransceiver
        set_local = pc.setLocalDescription
        set_remote = pc.setRemoteDescription

        def wrapped_add_track(track: Any) -> RTCRtpSender:
            sender = add_track(track)
            self._scan()
            return sender

        def wrapped_add_transceiver(*args: Any, **kwargs: Any) -> RTCRtpTransceiver:
            transceiver = add_transceiver(*args, **kwargs)
            self._scan()
            return transceiver

        async def wrapped_set_local(*args: Any, **kwargs: Any) -> None:
            self._scan()
            await set_local(*args, **kwargs)
            self._scan()

        async def wrapped_set_remote(*args: Any, **kwargs: Any) -> None:
            await set_remote(*args, **kwargs)
            self._scan()
            self._check_codecs()

        pc.addTrack = wrapped_add_track  # type: ignore[method-assign]
        pc.addTransceiver = wrapped_add_transceiver  # type: ignore[method-assign]
        pc.setLocalDescription = wrapped_set_local  # type: ignore[method-assign]
        pc.setRemoteDescription = wrapped_set_remote  # type: ignore[method-assign]

    def _scan(self) -> None:
        for transceiver in self.pc.getTransceivers():
            sender, receiver = transceiver.sender, transceiver.receiver
            if id(sender) not in self._senders:
                self._senders[id(sender)] = state = _SendState(sender, stamper=ProbeStamper() if self.probe else None)
                internals.hook_sender(
                    sender,
                    partial(self._make_send_hook, state),
                    partial(self._on_keyframe_request, state),
                    drop_audio_level=self.keys is not None,
                )
                if self.keys is not None:
                    self._prefer_supported_codecs(transceiver)
            if id(receiver) not in self._receivers:
                self._receivers[id(receiver)] = rstate = _ReceiveState(receiver)
                internals.hook_receiver(receiver, partial(self._make_receive_hook, rstate))

    @staticmethod
    def _prefer_supported_codecs(transceiver: RTCRtpTransceiver) -> None:
        if transceiver.kind != "video":
            return
        codecs = RTCRtpSender.getCapabilities("video").codecs
        allowed = [c for c in codecs if c.mimeType.lower() not in UNSUPPORTED_MIME_TYPES]
        try:
            transceiver.setCodecPreferences(allowed)
        except Exception:  # e.g. a stopped transceiver: negotiation check still applies
            logger.debug("could not set codec preferences", exc_info=True)

    def _check_codecs(self) -> None:
        if self.keys is None:
            return
        for transceiver in self.pc.getTransceivers():
            names = internals.negotiated_codec_names(transceiver)
            if names and names[0].lower() in UNSUPPORTED_MIME_TYPES:
                raise UnsupportedCodec(
                    f"{names[0]} was negotiated for {transceiver.kind} (mid {transceiver.mid}), but sealrtc "
                    "cannot end-to-end encrypt it yet: offer VP8"
                )

    # -- send path ----------------------------------------------------------------------------

    def _on_rotation(self) -> None:
        for state in self._senders.values():
            if state.sender.track is not None and state.sender.kind == "video":
                internals.request_sender_keyframe(state.sender)

    def _on_keyframe_request(self, state: _SendState) -> None:
        state.keyframe_requests += 1
        request = getattr(state.sender.track, "request_keyframe", None)
        if callable(request):
            request()

    def _make_send_hook(self, state: _SendState, codec: Any) -> internals.FrameHook:
        """The frame hook of one sender, specialised once for its codec and this session's mode.

        It sees each encoded frame whole, before packetization (VP8 as encoded, audio packet by
        packet): observe, count, stamp a probe, encrypt. On the ``encode()`` path it runs in
        aiortc's encoder thread, so it only touches this sender's own state.
        """
        state.codec = codec.mimeType
        track = state.sender.track
        state.track_id = track.id if track is not None else None
        mime = codec.mimeType.lower()
        keys = self.keys
        if mime in UNSUPPORTED_MIME_TYPES:
            if keys is not None:  # never negotiated under E2EE (setRemoteDescription raises); never sent

                def refuse(frame: bytes) -> bytes | None:
                    state.unsupported += 1
                    return None

                return refuse

            def count(frame: bytes) -> bytes | None:  # plain: sent as is (no probe: a NAL stream)
                state.frames_sent += 1
                state.bytes_sent += len(frame)
                return frame

            return count
        layout = codec_from_name(mime)
        video = layout is Codec.VP8
        stamper = state.stamper
        encryptor: FrameEncryptor | None = None
        if keys is not None:
            encryptor = state.encryptors[mime] = FrameEncryptor(keys, codec=layout)
        loop = asyncio.get_running_loop()
        sender = state.sender
        session = self
        time_ns = time.time_ns

        def hook(frame: bytes) -> bytes | None:
            observe = session.plaintext_observer
            if observe is not None:
                observe(frame)
            if video and frame and not frame[0] & 0x01:
                state.keyframes_sent += 1
            try:
                # A probe goes after the clear prefix (clear_prefix_length, inlined: VP8 3 or 10 bytes).
                if stamper is not None and frame and (not video or len(frame) >= (3 if frame[0] & 0x01 else 10)):
                    frame = stamper.stamp(frame, time_ns())
                if encryptor is not None:
                    frame = encryptor.encrypt(frame)
                    if encryptor.keyframe_wanted:  # a fresh KID: start it with a key frame
                        encryptor.keyframe_wanted = False
                        if video:
                            loop.call_soon_threadsafe(internals.request_sender_keyframe, sender)
            except InvalidFrame:  # counted by the encryptor (frames_refused)
                return None
            except ValueError:
                state.frames_dropped += 1
                return None
            state.frames_sent += 1
            state.bytes_sent += len(frame)
            return frame

        return hook

    # -- receive path -------------------------------------------------------------------------

    def _make_receive_hook(self, state: _ReceiveState, codec: Any) -> Callable[[internals.JitterFrame], bool]:
        """The frame hook of one receiver, specialised once for its codec and this session's mode:
        decrypt (or drop, counted), strip the probe, measure, then hand the frame to the decoder
        or, with ``decode=False``, to the track as an :class:`EncodedFrame`. Per frame it
        allocates only the plaintext (and that EncodedFrame) and does no string work."""
        if state.codec is None:
            state.codec = codec.mimeType
            state.layout = codec_from_name(codec.mimeType)
            state.metrics = ReceiveMetrics(video=state.receiver.track.kind == "video")
            if self.keys is None:
                state.sniffer = EncryptionSniffer(state.layout)
        mime = codec.mimeType.lower()
        monotonic = time.monotonic
        if self.keys is not None and mime in UNSUPPORTED_MIME_TYPES:

            def refuse(frame: internals.JitterFrame) -> bool:
                state.frames_received += 1
                if state.first_received_at is None:
                    state.first_received_at = monotonic()
                state.unsupported += 1
                return False

            return refuse
        layout = codec_from_name(mime)
        decryptor: FrameDecryptor | None = None
        if self.keys is not None:
            decryptor = state.decryptors.get(mime)
            if decryptor is None:
                decryptor = state.decryptors[mime] = FrameDecryptor(self.keys, codec=layout)
                decryptor.add_listener(partial(self._on_secret_event, state))
        decrypt = decryptor.decrypt_or_drop if decryptor is not None else None
        sniff = state.sniffer.frame if state.sniffer is not None else None
        record = state.metrics.frame if self.measure and state.metrics is not None else None
        decode = self.decode
        session = self
        mime_type, clock_rate = codec.mimeType, codec.clockRate
        split, time_ns, keyframe_of = split_probe_fields, time.time_ns, is_keyframe
        receiver = state.receiver
        push = internals.track_pusher(receiver) if not decode else None

        def on_frame(frame: internals.JitterFrame) -> bool:
            # The clock is read only when something uses it (metrics, or a first frame).
            at = monotonic() if record is not None or state.first_frame_at is None else 0.0
            state.frames_received += 1
            if state.first_received_at is None:
                state.first_received_at = at
            data: bytes | None
            if decrypt is not None:
                data = decrypt(frame.data)
                if data is None:
                    return False
            else:
                data = frame.data
                if sniff is not None:
                    sniff(data)
            if state.first_frame_at is None:
                state.first_frame_at = at
            data, probe = split(data)
            if record is not None:
                record(at, time_ns(), len(data), probe)
            observe = session.received_frame_observer
            if decode and observe is None:
                frame.data = data
                return True
            encoded = EncodedFrame(
                data,
                frame.timestamp,
                mime_type,
                clock_rate,
                keyframe_of(layout, data),
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

    def _on_secret_event(self, state: _ReceiveState, event: SecretEvent) -> None:
        track = state.receiver.track
        self.emit(
            event.type,
            TrackSecretEvent(
                type=event.type,
                kind=track.kind,
                track_id=track.id,
                kid=event.kid,
                reason=getattr(event, "reason", None),
                at=event.at,
            ),
        )
        if event.type == "secret_match" and track.kind == "video":
            self.request_keyframe(state)

    def request_keyframe(self, state: _ReceiveState) -> None:
        if state.keyframes.allow(time.monotonic()):
            state.keyframe_requests += 1
            internals.send_pli(state.receiver)

    # -- public -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Plain-dict statistics: ``{"tracks": [...per sender and receiver...]}``."""
        tracks = [s.stats() for s in self._senders.values() if s.sender.track is not None or s.codec]
        tracks += [r.stats(self.created_at) for r in self._receivers.values() if r.codec is not None]
        return {"tracks": tracks}

    def receive_counters(self) -> list[dict[str, Any]]:
        """Per receiving track: kind, frames received/decrypted, failures by reason and the
        :class:`ReceiveMetrics` — no percentiles computed, so cheap enough to call every second
        for every track of a load worker."""
        out: list[dict[str, Any]] = []
        for r in self._receivers.values():
            if r.codec is None:
                continue
            failures: dict[str, int] = {}
            decrypted = 0
            for dec in r.decryptors.values():
                decrypted += dec.stats.frames
                for reason, count in dec.stats.failures.items():
                    failures[reason] = failures.get(reason, 0) + count
            out.append(
                {
                    "kind": r.receiver.track.kind,
                    "frames_received": r.frames_received,
                    "frames_decrypted": decrypted if self.keys is not None else r.frames_received,
                    "decrypt_failures": failures,
                    "metrics": r.metrics,
                }
            )
        return out

    def receive_metrics(self) -> list[tuple[Any, ReceiveMetrics]]:
        """``(remote track, metrics)`` per receiving track that got media (for histograms)."""
        return [(r.receiver.track, r.metrics) for r in self._receivers.values() if r.metrics is not None]

    def first_received_at(self) -> float | None:
        """Monotonic time of the first frame any receiver reassembled (None before)."""
        times = [r.first_received_at for r in self._receivers.values() if r.first_received_at is not None]
        return min(times) if times else None

    def first_decrypted_at(self) -> float | None:
        """Monotonic time of the first frame that decrypted (None before)."""
        times = [r.first_frame_at for r in self._receivers.values() if r.first_frame_at is not None]
        return min(times) if times else None

    def close(self) -> None:
        """Stop following key rotations (the peer connection's hooks die with it)."""
        self._remove_rotation_listener()


def attach(
    pc: RTCPeerConnection,
    keys: SharedSecret | None,
    *,
    decode: bool = True,
    probe: bool = False,
    measure: bool = True,
) -> E2EESession:
    """Make every sender of ``pc`` encrypt and every receiver decrypt, now and later.

    With ``decode=False`` received tracks yield decrypted :class:`EncodedFrame` objects instead
    of decoded media (verify-only agents, forwarding). With ``probe=True`` every sent frame
    carries a probe trailer inside its ciphertext (sequence and capture time, see
    :mod:`sealrtc.metrics.probe`); every receiver strips probes and measures latency, loss and
    freezes from them. ``keys=None`` is a plain session: nothing is encrypted, but probes and
    measurements work the same (a baseline), and receivers notice media that looks encrypted.
    """
    return E2EESession(pc, keys, decode=decode, probe=probe, measure=measure)
