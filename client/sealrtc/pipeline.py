"""The per-frame path of one track, sans-I/O: what happens to each encoded frame between the
codec and the packetizer (send) and between the jitter buffer and the decoder (receive).

Send: normalise the encoder's frame (H.264), observe the plaintext, count key frames, stamp a
probe after the clear prefix, encrypt, ask for a key frame after a KID switch, count what was
sent, refused or dropped. Receive: decrypt or drop (E2EE) or accept and sniff (plain), split
off the probe, record metrics, count, note the first frame times. Bytes in, bytes (or None: drop the frame) out.

Each step is a closure specialised once per track and codec, with everything it needs bound
as locals: per frame it does no string work and allocates only the bytes it returns. Clocks
are injected callables (``monotonic()`` seconds, ``now_ns()`` Unix nanoseconds), read only
when something uses them. The aiortc adapter (:mod:`sealrtc.rtc`) only plugs these steps into
aiortc; tests drive them with bytes and fake clocks.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import InvalidFrame
from .layout import Codec, layout_of
from .metrics.probe import ProbeFields, ProbeStamper, split_probe
from .transform import FrameDecryptor, FrameEncryptor

FrameStep = Callable[[bytes], "bytes | None"]
"""One frame in, the bytes to pass on (or None: the frame is dropped, and counted) out."""
Clock = Callable[[], float]
ClockNs = Callable[[], int]
RecordFrame = Callable[[float, int, int, "ProbeFields | None"], None]
"""``record(at, now_ns, size, probe)``: :meth:`sealrtc.metrics.ReceiveMetrics.frame`."""


class PlaintextObserver:
    """Where the send steps of a session find the observer of plaintext frames, which the user
    may set or clear at any time (read once per frame)."""

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: Callable[[bytes], None] | None = None


class SendCounters:
    """What one sending track did (its encryptors count the rest)."""

    __slots__ = (
        "bytes_sent",
        "frames_dropped",
        "frames_refused",
        "frames_sent",
        "frames_unsupported",
        "keyframe_requests",
        "keyframes_sent",
    )

    def __init__(self) -> None:
        self.frames_sent = 0
        self.bytes_sent = 0
        self.keyframes_sent = 0
        self.keyframe_requests = 0
        """Key-frame requests (PLI/FIR) received from the other side."""
        self.frames_dropped = 0
        """Frames the step could not process (an error other than a refusal)."""
        self.frames_refused = 0
        """Frames refused as not a frame of the codec (shorter than its clear prefix...)."""
        self.frames_unsupported = 0
        """Frames of a codec that cannot be protected, never sent under E2EE."""


class ReceiveCounters:
    """What one receiving track did (its decryptors count failures by reason)."""

    __slots__ = (
        "first_frame_at",
        "first_received_at",
        "frames_accepted",
        "frames_received",
        "frames_unsupported",
        "keyframe_requests",
    )

    def __init__(self) -> None:
        self.frames_received = 0
        """Frames reassembled by the transport, before anything checked them."""
        self.frames_accepted = 0
        """Frames that passed the receive path: decrypted under E2EE, received when plain."""
        self.frames_unsupported = 0
        self.keyframe_requests = 0
        """Key-frame requests (PLI) this track sent."""
        self.first_received_at: float | None = None
        self.first_frame_at: float | None = None
        """Monotonic time of the first accepted frame."""


def send_step(
    codec: Codec,
    counters: SendCounters,
    *,
    encryptor: FrameEncryptor | None,
    stamper: ProbeStamper | None,
    observer: PlaintextObserver,
    now_ns: ClockNs,
    request_keyframe: Callable[[], object] | None = None,
) -> FrameStep:
    """The send step of one track for ``codec``: plain when ``encryptor`` is None.

    ``request_keyframe`` is called (from the step, so possibly on an encoder thread) when the
    encryptor switched to a fresh KID, which should start with a key frame.
    """
    layout = layout_of(codec)
    prefix, keyframe, video, normalise = layout.prefix, layout.keyframe, layout.video, layout.normalise
    if encryptor is None and not layout.probe_in_clear:
        stamper = None

    def step(frame: bytes) -> bytes | None:
        if normalise is not None:
            try:
                frame = normalise(frame)
            except InvalidFrame:
                counters.frames_refused += 1
                return None
        observe = observer.call
        if observe is not None:
            observe(frame)
        if video and keyframe(frame):
            counters.keyframes_sent += 1
        try:
            # The probe trails the frame, never one too short to have its clear prefix.
            if stamper is not None and frame and len(frame) >= prefix(frame):
                frame = stamper.stamp(frame, now_ns())
            if encryptor is not None:
                frame = encryptor.encrypt(frame)
                if encryptor.keyframe_wanted:
                    encryptor.keyframe_wanted = False
                    if request_keyframe is not None:
                        request_keyframe()
        except InvalidFrame:
            counters.frames_refused += 1
            return None
        except ValueError:
            counters.frames_dropped += 1
            return None
        counters.frames_sent += 1
        counters.bytes_sent += len(frame)
        return frame

    return step


def counting_send_step(counters: SendCounters) -> FrameStep:
    """Frames of a codec without a layout, sent as they are in a plain session (no probe)."""

    def step(frame: bytes) -> bytes | None:
        counters.frames_sent += 1
        counters.bytes_sent += len(frame)
        return frame

    return step


def refusing_send_step(counters: SendCounters) -> FrameStep:
    """Frames of a codec that cannot be protected, under E2EE: never sent, counted."""

    def step(frame: bytes) -> bytes | None:
        counters.frames_unsupported += 1
        return None

    return step


def receive_step(
    counters: ReceiveCounters,
    *,
    decryptor: FrameDecryptor | None,
    sniff: Callable[[bytes], bool] | None,
    record: RecordFrame | None,
    monotonic: Clock,
    now_ns: ClockNs,
) -> FrameStep:
    """The receive step of one track: the accepted frame without its probe, or None.

    With a ``decryptor`` every frame is decrypted or dropped (counted by reason, by the
    decryptor); without one (a plain session) every frame is accepted and fed to ``sniff``.
    ``record`` (None: nothing measured) gets every accepted frame's size and probe.
    """
    decrypt = decryptor.decrypt_or_drop if decryptor is not None else None
    split = split_probe

    def step(data: bytes) -> bytes | None:
        # The clock is read only when something uses it (metrics, or a first frame).
        at = monotonic() if record is not None or counters.first_frame_at is None else 0.0
        counters.frames_received += 1
        if counters.first_received_at is None:
            counters.first_received_at = at
        if decrypt is not None:
            plaintext = decrypt(data)
            if plaintext is None:
                return None
        else:
            plaintext = data
            if sniff is not None:
                sniff(data)
        counters.frames_accepted += 1
        if counters.first_frame_at is None:
            counters.first_frame_at = at
        plaintext, probe = split(plaintext)
        if record is not None:
            record(at, now_ns(), len(plaintext), probe)
        return plaintext

    return step


def refusing_receive_step(counters: ReceiveCounters, *, monotonic: Clock) -> FrameStep:
    """Frames of a codec that cannot be protected, under E2EE: counted, never accepted."""

    def step(data: bytes) -> bytes | None:
        counters.frames_received += 1
        if counters.first_received_at is None:
            counters.first_received_at = monotonic()
        counters.frames_unsupported += 1
        return None

    return step
