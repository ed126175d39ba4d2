"""The per-frame pipeline on bytes: send and receive steps, E2EE and plain, probes on and off,
refused frames, VP8 key/delta, Opus and generic frames, counters and first-frame times."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sealrtc import FrameDecryptor, FrameEncryptor, SharedSecret
from sealrtc.layout import Codec, clear_prefix_length, layout_of
from sealrtc.metrics import PROBE_SIZE, ProbeStamper, encode_probe, split_probe
from sealrtc.metrics.probe import ProbeFields
from sealrtc.metrics.sniff import EncryptionSniffer
from sealrtc.pipeline import (
    PlaintextObserver,
    ReceiveCounters,
    SendCounters,
    counting_send_step,
    receive_step,
    refusing_receive_step,
    refusing_send_step,
    send_step,
)

from .conftest import FakeClock

pytestmark = pytest.mark.unit

VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]) + bytes(range(100))
VP8_DELTA = bytes([0x31, 0x05, 0x00]) + bytes(range(40))
OPUS = bytes([0x78]) + bytes(range(30))
GENERIC = bytes(range(25))
H264_SPS = "00000001 6742c01fd90141fa10000003001000000303c8f1832480"  # libx264's
H264_IDR = bytes.fromhex(H264_SPS + "00000001 68ce3880 00000001 6588 8400") + bytes(range(1, 200))
H264_P = bytes.fromhex("00000001 419a 0000 0300 0003 01") + bytes(range(3, 90))  # with emulation prevention
FRAMES = {
    Codec.VP8: [VP8_KEY, VP8_DELTA, VP8_DELTA],
    Codec.OPUS: [OPUS, OPUS],
    Codec.GENERIC: [GENERIC],
    Codec.H264: [H264_IDR, H264_P],
}


class Clocks:
    """Counting fake clocks: seconds (monotonic) and Unix nanoseconds."""

    def __init__(self) -> None:
        self.seconds = FakeClock()
        self.ns = 5_000_000_000
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return self.seconds()

    def now_ns(self) -> int:
        self.reads += 1
        return self.ns


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, int, int, ProbeFields | None]] = []

    def __call__(self, at: float, now_ns: int, size: int, probe: ProbeFields | None) -> None:
        self.calls.append((at, now_ns, size, probe))


def sender(
    codec: Codec,
    keys: SharedSecret | None,
    *,
    probe: bool,
    clocks: Clocks,
    observer: PlaintextObserver | None = None,
    request_keyframe: Callable[[], object] | None = None,
) -> tuple[Callable[[bytes], bytes | None], SendCounters, FrameEncryptor | None, ProbeStamper | None]:
    counters = SendCounters()
    encryptor = FrameEncryptor(keys, codec=codec) if keys is not None else None
    stamper = ProbeStamper(stream_id=7) if probe else None
    step = send_step(
        codec,
        counters,
        encryptor=encryptor,
        stamper=stamper,
        observer=observer or PlaintextObserver(),
        now_ns=clocks.now_ns,
        request_keyframe=request_keyframe,
    )
    return step, counters, encryptor, stamper


def receiver(
    codec: Codec, keys: SharedSecret | None, *, clocks: Clocks, record: Recorder | None
) -> tuple[Callable[[bytes], bytes | None], ReceiveCounters, FrameDecryptor | None, EncryptionSniffer | None]:
    counters = ReceiveCounters()
    decryptor = FrameDecryptor(keys, codec=codec) if keys is not None else None
    sniffer = EncryptionSniffer(codec) if keys is None else None
    step = receive_step(
        counters,
        decryptor=decryptor,
        sniff=sniffer.frame if sniffer is not None else None,
        record=record,
        monotonic=clocks.monotonic,
        now_ns=clocks.now_ns,
    )
    return step, counters, decryptor, sniffer


@pytest.fixture(scope="module")
def keys() -> SharedSecret:
    return SharedSecret("pipeline", context=b"room")


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize("probe", [False, True])
@pytest.mark.parametrize("e2ee", [False, True])
def test_frames_round_trip_and_are_counted(keys: SharedSecret, codec: Codec, probe: bool, e2ee: bool) -> None:
    clocks = Clocks()
    send, sent, encryptor, _ = sender(codec, keys if e2ee else None, probe=probe, clocks=clocks)
    record = Recorder()
    receive, received, decryptor, sniffer = receiver(codec, keys if e2ee else None, clocks=clocks, record=record)
    frames = FRAMES[codec]
    stamped = probe and (e2ee or layout_of(codec).probe_in_clear)  # never in clear H.264
    wire = [send(frame) for frame in frames]
    assert all(w is not None for w in wire)
    for i, (frame, w) in enumerate(zip(frames, wire, strict=True)):
        assert w is not None
        n = clear_prefix_length(codec, frame)
        assert w[:n] == frame[:n]  # the clear prefix stays readable, also with a probe
        assert (w == frame + encode_probe(7, i, clocks.ns)) if (stamped and not e2ee) else (w != frame) is e2ee
        clocks.seconds.advance(0.033)
        assert receive(w) == frame  # probe split off after decryption
    assert (sent.frames_sent, sent.bytes_sent) == (len(frames), sum(len(w) for w in wire if w is not None))
    assert sent.keyframes_sent == (1 if layout_of(codec).video else 0)  # key frames are counted for video only
    assert (sent.frames_refused, sent.frames_dropped) == (0, 0)
    assert (received.frames_received, received.frames_accepted) == (len(frames), len(frames))
    assert received.first_received_at == received.first_frame_at == 1000.033
    assert [c[2] for c in record.calls] == [len(f) for f in frames]
    assert [c[3] for c in record.calls] == (
        [(7, i, clocks.ns) for i in range(len(frames))] if stamped else [None] * len(frames)
    )
    if e2ee:
        assert encryptor is not None and decryptor is not None
        assert encryptor.stats.frames == decryptor.stats.frames == len(frames)
    else:
        assert sniffer is not None and not sniffer.looks_encrypted


def test_probe_goes_inside_the_ciphertext_after_the_clear_prefix(keys: SharedSecret) -> None:
    clocks = Clocks()
    send, _, _, _ = sender(Codec.VP8, keys, probe=True, clocks=clocks)
    wire = send(VP8_DELTA)
    assert wire is not None and wire[:3] == VP8_DELTA[:3]
    plaintext = FrameDecryptor(keys, codec=Codec.VP8).decrypt(wire)
    assert plaintext == VP8_DELTA + encode_probe(7, 0, clocks.ns)
    assert split_probe(plaintext) == (VP8_DELTA, (7, 0, clocks.ns))


@pytest.mark.parametrize("e2ee", [False, True])
def test_frames_shorter_than_their_prefix_are_never_stamped(keys: SharedSecret, e2ee: bool) -> None:
    """A 2-byte VP8 "key frame" has no 10-byte header: no probe goes into it; under E2EE it is
    refused (counted, not sent), plain it is sent as it is."""
    clocks = Clocks()
    send, sent, encryptor, stamper = sender(Codec.VP8, keys if e2ee else None, probe=True, clocks=clocks)
    short = b"\x10\x00"
    assert send(short) == (None if e2ee else short)
    assert send(b"") == (None if e2ee else b"")
    assert stamper is not None and stamper.sequence == 0
    assert sent.frames_refused == (2 if e2ee else 0)
    assert sent.frames_sent == (0 if e2ee else 2)
    if encryptor is not None:
        assert encryptor.stats.refused == 2
    assert send(VP8_KEY) is not None and stamper.sequence == 1  # the stream carries on


def test_opus_and_generic_refuse_only_what_cannot_be_a_frame(keys: SharedSecret) -> None:
    clocks = Clocks()
    opus, opus_sent, _, _ = sender(Codec.OPUS, keys, probe=False, clocks=clocks)
    generic, generic_sent, _, _ = sender(Codec.GENERIC, keys, probe=False, clocks=clocks)
    assert opus(b"") is None and opus_sent.frames_refused == 1
    assert generic(b"") is not None and generic_sent.frames_refused == 0


def test_plaintext_observer_sees_frames_before_the_probe(keys: SharedSecret) -> None:
    seen: list[bytes] = []
    observer = PlaintextObserver()
    send, _, _, _ = sender(Codec.OPUS, keys, probe=True, clocks=Clocks(), observer=observer)
    send(OPUS)
    observer.call = seen.append  # set after the step was made: read per frame
    send(OPUS)
    observer.call = None
    send(OPUS)
    assert seen == [OPUS]


def test_a_kid_switch_asks_for_one_key_frame(clock: FakeClock) -> None:
    keys = SharedSecret("one", clock=clock)
    requests: list[int] = []
    send, _, encryptor, _ = sender(
        Codec.VP8, keys, probe=False, clocks=Clocks(), request_keyframe=lambda: requests.append(1)
    )
    send(VP8_KEY)
    send(VP8_DELTA)
    assert requests == []  # the first KID needs no request: the stream starts with a key frame
    keys.set_secret("two")
    send(VP8_DELTA)
    send(VP8_DELTA)
    assert requests == [1]
    assert encryptor is not None and encryptor.stats.kid_switches == 1 and not encryptor.keyframe_wanted


def test_encryption_errors_other_than_refusals_drop_the_frame(keys: SharedSecret) -> None:
    clocks = Clocks()
    send, sent, encryptor, _ = sender(Codec.OPUS, keys, probe=False, clocks=clocks)
    assert encryptor is not None
    send(OPUS)
    encryptor._ctr = -1  # an impossible counter: the header encoder raises ValueError
    assert send(OPUS) is None
    assert (sent.frames_dropped, sent.frames_refused, sent.frames_sent) == (1, 0, 1)


def test_failed_frames_are_dropped_and_counted_by_the_decryptor(keys: SharedSecret) -> None:
    clocks = Clocks()
    record = Recorder()
    receive, received, decryptor, _ = receiver(Codec.OPUS, keys, clocks=clocks, record=record)
    other = FrameEncryptor(SharedSecret("not the same"), codec=Codec.OPUS)
    assert receive(other.encrypt(OPUS)) is None
    assert receive(b"\x78") is None
    assert (received.frames_received, received.frames_accepted) == (2, 0)
    assert received.first_received_at == 1000.0 and received.first_frame_at is None
    assert decryptor is not None and decryptor.stats.failures.total == 2
    assert decryptor.stats.failures["malformed"] == 1 and record.calls == []
    ok = FrameEncryptor(keys, codec=Codec.OPUS).encrypt(OPUS)
    clocks.seconds.advance(1)
    assert receive(ok) == OPUS
    assert receive(ok) is None  # a replay
    assert received.frames_accepted == 1 and received.first_frame_at == 1001.0


def test_plain_receive_accepts_and_sniffs_encrypted_media(keys: SharedSecret) -> None:
    clocks = Clocks()
    receive, received, _, sniffer = receiver(Codec.VP8, None, clocks=clocks, record=None)
    encryptor = FrameEncryptor(keys, codec=Codec.VP8)
    wire = [encryptor.encrypt(VP8_DELTA) for _ in range(10)]
    assert [receive(w) for w in wire] == wire  # accepted as they are
    assert received.frames_received == received.frames_accepted == 10
    assert sniffer is not None and sniffer.looks_encrypted


def test_clocks_are_read_only_when_something_uses_them() -> None:
    clocks = Clocks()
    receive, _, _, _ = receiver(Codec.OPUS, None, clocks=clocks, record=None)
    receive(OPUS)
    assert clocks.reads == 1  # the first frame's time
    for _ in range(5):
        receive(OPUS)
    assert clocks.reads == 1
    measured, _, _, _ = receiver(Codec.OPUS, None, clocks=clocks, record=Recorder())
    measured(OPUS)
    assert clocks.reads == 3  # measured: monotonic and Unix time per frame


def test_probe_trailers_are_split_after_plain_receive() -> None:
    record = Recorder()
    receive, _, _, _ = receiver(Codec.GENERIC, None, clocks=Clocks(), record=record)
    stamped = GENERIC + encode_probe(3, 9, 123)
    assert receive(stamped) == GENERIC
    assert record.calls == [(1000.0, 5_000_000_000, len(GENERIC), (3, 9, 123))]
    assert len(stamped) - PROBE_SIZE == len(GENERIC)


def test_unsupported_codec_steps_count_and_refuse() -> None:
    sent = SendCounters()
    assert refusing_send_step(sent)(b"\x00\x00\x00\x01\x67") is None
    assert sent.frames_unsupported == 1 and sent.frames_sent == 0
    assert counting_send_step(sent)(b"abc") == b"abc"
    assert (sent.frames_sent, sent.bytes_sent) == (1, 3)
    clocks = Clocks()
    received = ReceiveCounters()
    refuse = refusing_receive_step(received, monotonic=clocks.monotonic)
    assert refuse(b"x") is None and refuse(b"y") is None
    assert (received.frames_received, received.frames_unsupported, received.frames_accepted) == (2, 2, 0)
    assert received.first_received_at == 1000.0 and received.first_frame_at is None
