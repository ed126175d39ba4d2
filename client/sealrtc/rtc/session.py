"""``sealrtc.attach(pc, keys)``: end-to-end encryption for every track of an RTCPeerConnection.

The session wires the jobs of the adapter together: it wraps the peer connection's own
``addTrack`` / ``addTransceiver`` / ``set*Description`` (per instance, so tracks added before
and after :func:`attach` are covered), hooks every sender (:mod:`.sendhook`) and receiver
(:mod:`.receivehook`), applies the codec policy (:mod:`.policy`), turns secret events into
pyee events and answers key-frame requests. Each frame's work is the sans-I/O
:mod:`sealrtc.pipeline`; every aiortc private is reached through :mod:`.internals`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from pyee.asyncio import AsyncIOEventEmitter

from ..epochs import FrameKeys
from ..metrics import ProbeStamper
from ..pipeline import PlaintextObserver
from ..transform import SecretEvent
from . import internals
from .frames import EncodedFrame
from .keyframes import forward_keyframe_request
from .policy import check_negotiated_codecs, prefer_e2ee_codecs
from .receivehook import ReceivedFrameObserver, ReceiveState, make_receive_hook
from .sendhook import SendState, make_send_hook
from .stats import ReceiveTrackStats, SendTrackStats, TrackStats


@dataclass(frozen=True)
class TrackSecretEvent:
    """``secret_mismatch`` / ``secret_match`` as emitted by an :class:`E2EESession`."""

    type: str
    kind: str
    track_id: str
    kid: int
    reason: str | None
    at: float


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
        keys: FrameKeys | None,
        *,
        decode: bool = True,
        probe: bool = False,
        measure: bool = True,
        stampers: Mapping[str, ProbeStamper] | None = None,
    ) -> None:
        super().__init__()
        self.pc = pc
        self.keys = keys
        self.decode = decode
        self.probe = probe
        self.measure = measure
        """Record per-frame metrics (False: probes are still stripped, nothing is measured)."""
        self._stampers = dict(stampers or {})
        self.created_at = time.monotonic()
        """Monotonic time of :func:`attach`: the origin of ``first_frame_ms``."""
        self._plaintext = PlaintextObserver()
        self._received = ReceivedFrameObserver()
        self._senders: dict[int, SendState] = {}
        self._receivers: dict[int, ReceiveState] = {}
        self._remove_rotation_listener = (
            keys.add_rotation_listener(self._on_rotation) if keys is not None else lambda: None
        )
        self._wrap_peer_connection()
        self._scan()

    @property
    def plaintext_observer(self) -> Callable[[bytes], None] | None:
        """Called with every plaintext frame before it is encrypted (the demo hashes them)."""
        return self._plaintext.call

    @plaintext_observer.setter
    def plaintext_observer(self, observer: Callable[[bytes], None] | None) -> None:
        self._plaintext.call = observer

    @property
    def received_frame_observer(self) -> Callable[[Any, EncodedFrame], None] | None:
        """Called with ``(remote track, EncodedFrame)`` for every frame that decrypted (probe
        stripped), before decoding: what ``subscribe --record`` remuxes."""
        return self._received.call

    @received_frame_observer.setter
    def received_frame_observer(self, observer: Callable[[Any, EncodedFrame], None] | None) -> None:
        self._received.call = observer

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
            if self.keys is not None:
                check_negotiated_codecs(pc)

        pc.addTrack = wrapped_add_track  # type: ignore[method-assign]
        pc.addTransceiver = wrapped_add_transceiver  # type: ignore[method-assign]
        pc.setLocalDescription = wrapped_set_local  # type: ignore[method-assign]
        pc.setRemoteDescription = wrapped_set_remote  # type: ignore[method-assign]

    def _scan(self) -> None:
        for transceiver in self.pc.getTransceivers():
            sender, receiver = transceiver.sender, transceiver.receiver
            if id(sender) not in self._senders:
                self._senders[id(sender)] = state = SendState(sender, stamper=self._stamper(sender.kind))
                internals.hook_sender(
                    sender,
                    partial(self._make_send_hook, state),
                    partial(self._on_keyframe_request, state),
                    drop_audio_level=self.keys is not None,
                )
                if self.keys is not None:
                    prefer_e2ee_codecs(transceiver)
            if id(receiver) not in self._receivers:
                self._receivers[id(receiver)] = rstate = ReceiveState(receiver)
                internals.hook_receiver(receiver, partial(self._make_receive_hook, rstate))

    def _stamper(self, kind: str) -> ProbeStamper | None:
        """The sender's probe numbering: the caller's for its kind (kept across connections),
        else a new stream."""
        if not self.probe:
            return None
        return self._stampers.get(kind) or ProbeStamper()

    def _make_send_hook(self, state: SendState, codec: RTCRtpCodecParameters) -> internals.FrameHook:
        return make_send_hook(state, codec, keys=self.keys, observer=self._plaintext)

    def _make_receive_hook(
        self, state: ReceiveState, codec: RTCRtpCodecParameters
    ) -> Callable[[internals.JitterFrame], bool]:
        return make_receive_hook(
            state,
            codec,
            keys=self.keys,
            decode=self.decode,
            measure=self.measure,
            observer=self._received,
            on_secret_event=partial(self._on_secret_event, state),
        )

    # -- key frames and events ----------------------------------------------------------------

    def _on_rotation(self) -> None:
        for state in self._senders.values():
            if state.sender.track is not None and state.sender.kind == "video":
                internals.request_sender_keyframe(state.sender)

    def _on_keyframe_request(self, state: SendState) -> None:
        state.counters.keyframe_requests += 1
        forward_keyframe_request(state.sender)

    def _on_secret_event(self, state: ReceiveState, event: SecretEvent) -> None:
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
            state.request_keyframe(time.monotonic())

    # -- public -------------------------------------------------------------------------------

    def tracks(self) -> list[TrackStats]:
        """A statistics record per sending track and per receiving track that got a frame.

        Cheap (counters only, no percentiles): fine to call every second for every track."""
        e2ee = self.keys is not None
        out: list[TrackStats] = [
            s.snapshot(e2ee) for s in self._senders.values() if s.sender.track is not None or s.codec
        ]
        out += [r.snapshot(e2ee, self.created_at) for r in self._receivers.values() if r.codec is not None]
        return out

    def send_tracks(self) -> list[SendTrackStats]:
        return [t for t in self.tracks() if isinstance(t, SendTrackStats)]

    def receive_tracks(self) -> list[ReceiveTrackStats]:
        return [t for t in self.tracks() if isinstance(t, ReceiveTrackStats)]

    def stats(self) -> dict[str, Any]:
        """The JSON view of :meth:`tracks`: ``{"tracks": [...per sender and receiver...]}``."""
        return {"tracks": [t.as_dict() for t in self.tracks()]}

    def advance_epoch(self) -> int:
        """Move this participant to the next key epoch (keying v2) and return it: its senders
        switch to a new KID at once, and receivers everywhere follow the first frame under it.

        Raises :class:`TypeError` for keying v1 or a plain session: a secret has no epochs
        (change it with ``keys.set_secret``)."""
        from ..epochs import EpochKeys

        if not isinstance(self.keys, EpochKeys):
            raise TypeError("advance_epoch() needs keying v2 keys (sealrtc.epochs.EpochKeys)")
        return self.keys.advance()

    def close(self) -> None:
        """Stop following key rotations (the peer connection's hooks die with it)."""
        self._remove_rotation_listener()


def attach(
    pc: RTCPeerConnection,
    keys: FrameKeys | None,
    *,
    decode: bool = True,
    probe: bool = False,
    measure: bool = True,
    stampers: Mapping[str, ProbeStamper] | None = None,
) -> E2EESession:
    """Make every sender of ``pc`` encrypt and every receiver decrypt, now and later.

    With ``decode=False`` received tracks yield decrypted :class:`EncodedFrame` objects instead
    of decoded media (verify-only agents, forwarding). With ``probe=True`` every sent frame
    carries a probe trailer inside its ciphertext (sequence and capture time, see
    :mod:`sealrtc.metrics.probe`); every receiver strips probes and measures latency, loss and
    freezes from them. ``keys=None`` is a plain session: nothing is encrypted, but probes and
    measurements work the same (a baseline), and receivers notice media that looks encrypted.
    ``stampers``: with probes, the :class:`~sealrtc.metrics.ProbeStamper` per track kind to
    number sent frames with (default: a new stream per sender). An agent that reconnects
    passes the same ones to each new connection, so its streams keep their id and sequence and
    a subscriber can count the frames an outage cost it.
    """
    return E2EESession(pc, keys, decode=decode, probe=probe, measure=measure, stampers=stampers)
