"""FrameEncryptor / FrameDecryptor: layout, replay, rotation, events, and hostile input."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sealrtc import (
    AuthenticationFailed,
    DecryptError,
    FrameDecryptor,
    FrameEncryptor,
    InvalidFrame,
    MalformedFrame,
    ReplayedFrame,
    SecretMatch,
    SecretMismatch,
    SharedSecret,
    UnknownKey,
    layout,
    sframe,
)
from sealrtc.layout import Codec
from sealrtc.sframe import HeaderReader
from sealrtc.transform import MAX_RECEIVE_KIDS, MAX_RETIRED_KIDS

from .conftest import FakeClock

pytestmark = pytest.mark.unit

VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]) + bytes(range(200))
VP8_DELTA = bytes([0x31, 0x05, 0x00]) + bytes(range(100))
OPUS = bytes([0x78]) + bytes(range(60))


@pytest.fixture(scope="module")
def keys() -> SharedSecret:
    return SharedSecret("correct horse", context=b"room")


def pair(keys: SharedSecret, codec: str) -> tuple[FrameEncryptor, FrameDecryptor]:
    return FrameEncryptor(keys, codec=codec), FrameDecryptor(keys, codec=codec)


@pytest.mark.parametrize(
    ("codec", "frame", "prefix"),
    [("vp8", VP8_KEY, 10), ("VP8", VP8_DELTA, 3), ("opus", OPUS, 1), ("Opus", OPUS, 1), ("h265", OPUS, 0)],
)
def test_layout_round_trip(keys: SharedSecret, codec: str, frame: bytes, prefix: int) -> None:
    enc, dec = pair(keys, codec)
    ct = enc.encrypt(frame)
    assert ct[:prefix] == frame[:prefix]
    assert frame[prefix:] not in ct  # the body is encrypted
    kid, ctr, hlen = sframe.decode_header(ct, prefix)
    assert (kid, ctr) == (enc.kid, 0)
    assert len(ct) == len(frame) + hlen + 10
    assert dec.decrypt(ct) == frame
    assert enc.stats.frames == 1 and dec.stats.frames == 1


def test_clear_prefix_is_authenticated(keys: SharedSecret) -> None:
    enc, dec = pair(keys, "vp8")
    ct = bytearray(enc.encrypt(VP8_DELTA))
    ct[1] ^= 0x40  # inside the clear VP8 header
    with pytest.raises(AuthenticationFailed):
        dec.decrypt(bytes(ct))


@pytest.mark.parametrize(("codec", "frame"), [("vp8", b""), ("vp8", VP8_KEY[:9]), ("vp8", b"\x01\x02"), ("opus", b"")])
def test_encryptor_refuses_short_frames(keys: SharedSecret, codec: str, frame: bytes) -> None:
    enc = FrameEncryptor(keys, codec=codec)
    with pytest.raises(InvalidFrame):
        enc.encrypt(frame)
    assert enc.stats.refused == 1 and enc.stats.frames == 0


def test_generic_empty_frame_round_trips(keys: SharedSecret) -> None:
    enc, dec = pair(keys, "generic")
    assert dec.decrypt(enc.encrypt(b"")) == b""


def test_counters_never_repeat(keys: SharedSecret) -> None:
    enc = FrameEncryptor(keys, codec="opus")
    seen = {sframe.decode_header(enc.encrypt(OPUS), 1)[:2] for _ in range(300)}
    assert len(seen) == 300 and {ctr for _, ctr in seen} == set(range(300))
    assert enc.ctr == 300


def test_two_encryptors_on_one_secret_use_distinct_kids(keys: SharedSecret) -> None:
    a, b = FrameEncryptor(keys, codec="opus"), FrameEncryptor(keys, codec="opus")
    a.encrypt(OPUS)
    b.encrypt(OPUS)
    assert a.kid != b.kid


def test_replays_are_rejected_and_reorder_within_window_is_fine(keys: SharedSecret) -> None:
    enc, dec = pair(keys, "opus")
    frames = [enc.encrypt(OPUS) for _ in range(200)]
    assert dec.decrypt(frames[5]) == OPUS
    assert dec.decrypt(frames[3]) == OPUS  # late but inside the window
    with pytest.raises(ReplayedFrame):
        dec.decrypt(frames[5])
    assert dec.decrypt(frames[199]) == OPUS
    with pytest.raises(ReplayedFrame):
        dec.decrypt(frames[4])  # 195 behind: outside the 128 window
    assert dec.stats.failures["replayed"] == 2
    assert not dec.mismatched  # replays are not a secret problem


def test_wrong_secret_reports_mismatch_then_match(clock: FakeClock) -> None:
    sender_keys = SharedSecret("alpha", clock=clock)
    receiver_keys = SharedSecret("beta", clock=clock)
    events: list[object] = []
    enc = FrameEncryptor(sender_keys, codec="opus")
    dec = FrameDecryptor(receiver_keys, codec="opus", on_event=events.append)
    for _ in range(5):
        with pytest.raises((UnknownKey, AuthenticationFailed)):
            dec.decrypt(enc.encrypt(OPUS))
    assert len(events) == 1 and isinstance(events[0], SecretMismatch)
    assert events[0].kid == enc.kid
    receiver_keys.set_secret("alpha")
    assert dec.decrypt(enc.encrypt(OPUS)) == OPUS
    assert len(events) == 2 and isinstance(events[1], SecretMatch)
    assert dec.stats.frames == 1 and dec.stats.failed == 5


def test_isolated_tampering_does_not_flap_events(keys: SharedSecret) -> None:
    events: list[object] = []
    enc = FrameEncryptor(keys, codec="opus")
    dec = FrameDecryptor(keys, codec="opus", on_event=events.append)
    for i in range(30):
        ct = bytearray(enc.encrypt(OPUS))
        if i % 3 == 0:
            ct[-1] ^= 1
            with pytest.raises(AuthenticationFailed):
                dec.decrypt(bytes(ct))
        else:
            dec.decrypt(bytes(ct))
    assert events == []
    assert dec.stats.failures["authentication_failed"] == 10


def test_rotation_switches_kid_and_wants_keyframe(clock: FakeClock) -> None:
    tx = SharedSecret("one", grace=5, clock=clock)
    rx = SharedSecret("one", grace=5, clock=clock)
    enc, dec = FrameEncryptor(tx, codec="vp8"), FrameDecryptor(rx, codec="vp8")
    old_frame_late = enc.encrypt(VP8_DELTA)
    first_kid = enc.kid
    assert not enc.take_keyframe_request()
    tx.set_secret("two")
    rx.set_secret("two")
    new_frame = enc.encrypt(VP8_DELTA)
    assert enc.kid != first_kid and enc.ctr == 1
    assert enc.take_keyframe_request() and not enc.take_keyframe_request()
    assert dec.decrypt(new_frame) == VP8_DELTA
    assert dec.decrypt(old_frame_late) == VP8_DELTA  # in-flight frame of the old secret, in grace
    clock.advance(6)
    with pytest.raises(UnknownKey):
        dec.decrypt(enc_old_secret_frame(clock))


def enc_old_secret_frame(clock: FakeClock) -> bytes:
    return FrameEncryptor(SharedSecret("one", clock=clock), codec="vp8").encrypt(VP8_DELTA)


def test_decrypt_only_secret_allows_staged_switch(clock: FakeClock) -> None:
    tx = SharedSecret("now", clock=clock)
    rx = SharedSecret("now", clock=clock)
    rx.add_decryption_secret("later")
    enc, dec = FrameEncryptor(tx, codec="opus"), FrameDecryptor(rx, codec="opus")
    tx.set_secret("later")
    assert dec.decrypt(enc.encrypt(OPUS)) == OPUS


def test_random_kid_flood_is_bounded(keys: SharedSecret) -> None:
    dec = FrameDecryptor(keys, codec="generic")
    rng = random.Random(7)
    fp = keys.current.fingerprint
    for _ in range(500):
        kid = (rng.getrandbits(48) << 8) | (fp if rng.random() < 0.5 else rng.getrandbits(8))
        frame = sframe.encode_header(kid, rng.getrandbits(20)) + rng.randbytes(40)
        with pytest.raises((UnknownKey, AuthenticationFailed)):
            dec.decrypt(frame)
    assert len(dec._kids) == 0  # nothing is remembered for frames that never verified
    senders = [FrameEncryptor(keys) for _ in range(MAX_RECEIVE_KIDS + 20)]
    for s in senders:
        dec.decrypt(s.encrypt(b"x"))
    assert len(dec._kids) == MAX_RECEIVE_KIDS


@settings(max_examples=300)
@given(data=st.binary(max_size=120), codec=st.sampled_from(["vp8", "opus", "generic"]))
def test_random_input_only_raises_decrypt_errors(keys: SharedSecret, data: bytes, codec: str) -> None:
    dec = FrameDecryptor(keys, codec=codec)
    with pytest.raises(DecryptError):
        dec.decrypt(data)


@settings(max_examples=200)
@given(position=st.integers(min_value=0), bit=st.integers(0, 7), codec=st.sampled_from(["vp8", "opus"]))
def test_bit_flips_and_truncations_are_rejected(keys: SharedSecret, position: int, bit: int, codec: str) -> None:
    enc, dec = pair(keys, codec)
    ct = enc.encrypt(VP8_KEY if codec == "vp8" else OPUS)
    flipped = bytearray(ct)
    flipped[position % len(ct)] ^= 1 << bit
    with pytest.raises(DecryptError):
        dec.decrypt(bytes(flipped))
    with pytest.raises(DecryptError):
        dec.decrypt(ct[: position % len(ct)])


def test_fast_path_keeps_the_key_cache_order_and_replay_floors_with_many_senders(keys: SharedSecret) -> None:
    """80 senders (more than the 64-KID cache), skewed traffic, replays and late frames: the fast
    decryptor agrees frame by frame with the reference, including its LRU order and floors."""
    rng = random.Random(7)
    senders = [FrameEncryptor(keys, codec="opus") for _ in range(MAX_RECEIVE_KIDS + 16)]
    sent: list[list[bytes]] = [[] for _ in senders]
    fast, slow = FrameDecryptor(keys, codec="opus"), _SlowHeaderDecryptor(keys, codec="opus")
    for _ in range(6000):
        i = min(int(rng.expovariate(0.05)), len(senders) - 1) if rng.random() < 0.9 else rng.randrange(len(senders))
        if sent[i] and rng.random() < 0.1:
            ct = rng.choice(sent[i])  # a replay (or a late frame held back below)
        else:
            ct = senders[i].encrypt(OPUS)
            sent[i].append(ct)
            if rng.random() < 0.3:
                continue  # held back: it may arrive later, out of order
        assert _outcome(fast, ct) == _outcome(slow, ct)
        assert list(fast._kids) == list(slow._kids) and fast._retired == slow._retired
    assert fast._retired and fast.stats.failures["replayed"] > 0  # evictions and replays happened


class _ForgetfulReader(HeaderReader):
    """Remembers nothing: every header goes to ``sframe.decode_header``."""

    def remember(self, data: bytes, offset: int, kid: int) -> None:
        pass


class _SlowHeaderDecryptor(FrameDecryptor):
    """The reference: every header parsed by ``sframe.decode_header`` (no fast path armed)."""

    def __init__(self, keys: SharedSecret, codec: str) -> None:
        super().__init__(keys, codec=codec)
        self._headers = _ForgetfulReader()


def _outcome(dec: FrameDecryptor, data: bytes) -> object:
    try:
        return dec.decrypt_frame(data)
    except DecryptError as exc:
        return type(exc)


@settings(max_examples=200)
@given(
    edits=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 40),
    codec=st.sampled_from(["vp8", "opus", "generic"]),
)
# Fixed cases the fast path must hand to decode_header. Header after the clear prefix (VP8 delta
# 3 bytes, Opus 1, generic 0): config byte, a 7-byte KID (48-bit sender tag + fingerprint), a
# 2-byte CTR. A non-minimal CTR (leading zero), a 1-byte CTR below 8 (config 0xE8), a CTR one
# byte short (cut=-1), another KID of the same length, another KID length.
@example(edits=[(11, 0)], cut=0, codec="vp8")
@example(edits=[(9, 0)], cut=0, codec="opus")
@example(edits=[(0, 0xE8), (8, 0x03)], cut=0, codec="generic")
@example(edits=[(1, 0xE8), (9, 0x05)], cut=0, codec="opus")
@example(edits=[], cut=-1, codec="generic")
@example(edits=[], cut=-1, codec="vp8")
@example(edits=[(2, 0x55)], cut=0, codec="generic")
@example(edits=[(0, 0x99)], cut=0, codec="generic")
def test_fast_header_parse_matches_decode_header(
    keys: SharedSecret, edits: list[tuple[int, int]], cut: int, codec: str
) -> None:
    """After a verified frame the decryptor parses headers of that KID itself: header edits and
    truncations (non-minimal, truncated, other KIDs) end exactly as decode_header decides."""
    enc = FrameEncryptor(keys, codec=codec)
    fast, slow = FrameDecryptor(keys, codec=codec), _SlowHeaderDecryptor(keys, codec=codec)
    frame = VP8_DELTA if codec == "vp8" else OPUS
    for ct in (enc.encrypt(frame) for _ in range(300)):  # CTRs up to 2 bytes
        assert _outcome(fast, ct) == _outcome(slow, ct)
    assert fast._headers.kid == enc.kid
    ct = bytearray(enc.encrypt(frame))
    for position, value in edits:
        ct[position % len(ct)] = value
    prefix = 3 if codec == "vp8" else 1 if codec == "opus" else 0
    header_end = prefix + 1 + (enc.kid.bit_length() + 7) // 8 + 2  # config, KID, 2-byte CTR
    mutated = bytes(ct[: header_end - 1] if cut < 0 else ct[: len(ct) - cut])  # cut -1: CTR one byte short
    assert _outcome(fast, mutated) == _outcome(slow, mutated)
    follow = enc.encrypt(frame)
    assert _outcome(fast, follow) == _outcome(slow, follow)


def test_truncated_to_prefix_is_malformed(keys: SharedSecret) -> None:
    enc, dec = pair(keys, "vp8")
    ct = enc.encrypt(VP8_KEY)
    with pytest.raises(MalformedFrame):
        dec.decrypt(ct[:12])


def test_listener_errors_do_not_break_decryption(clock: FakeClock) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    dec = FrameDecryptor(SharedSecret("b", clock=clock), codec="opus", on_event=broken, mismatch_threshold=1)
    with pytest.raises(UnknownKey):
        dec.decrypt(FrameEncryptor(SharedSecret("a", clock=clock), codec="opus").encrypt(OPUS))
    assert dec.mismatched


def test_replay_stays_rejected_after_key_cache_eviction(keys: SharedSecret) -> None:
    """Issue 11.5: 64 other valid KIDs evicted the replay window and the replay was accepted."""
    enc, dec = pair(keys, "opus")
    frames = [enc.encrypt(OPUS) for _ in range(5)]
    assert dec.decrypt(frames[3]) == OPUS
    with pytest.raises(ReplayedFrame):
        dec.decrypt(frames[3])
    others = [FrameEncryptor(keys, codec="opus") for _ in range(MAX_RECEIVE_KIDS + 5)]
    for other in others:
        dec.decrypt(other.encrypt(OPUS))
    assert enc.kid not in dec._kids  # evicted from the key cache
    for old in (frames[3], frames[1]):  # the replay, and an older unseen frame (fail closed)
        with pytest.raises(ReplayedFrame):
            dec.decrypt(old)
    assert dec.decrypt(enc.encrypt(OPUS)) == OPUS  # the sender itself carries on
    with pytest.raises(ReplayedFrame):
        dec.decrypt(frames[3])  # the restored window still refuses it
    assert dec.decrypt(frames[4]) == OPUS  # never seen, above the kept floor: a late frame
    assert not dec.mismatched


def test_valid_kid_flood_keeps_replay_memory_bounded(keys: SharedSecret) -> None:
    dec = FrameDecryptor(keys, codec="generic")
    first = FrameEncryptor(keys)
    replay = first.encrypt(b"x")
    dec.decrypt(replay)
    for _ in range(MAX_RECEIVE_KIDS + MAX_RETIRED_KIDS - 1):  # with `first`: exactly the bound
        dec.decrypt(FrameEncryptor(keys).encrypt(b"y"))
    assert len(dec._kids) == MAX_RECEIVE_KIDS
    assert len(dec._retired) == MAX_RETIRED_KIDS
    with pytest.raises(ReplayedFrame):
        dec.decrypt(replay)  # still remembered: exactly at the bound
    dec.decrypt(FrameEncryptor(keys).encrypt(b"z"))
    assert len(dec._retired) == MAX_RETIRED_KIDS  # the oldest is forgotten, nothing grows


def junk_frame(keys: SharedSecret, rng: random.Random) -> bytes:
    """What anyone can forge: the public fingerprint under a random tag, random body."""
    kid = (rng.getrandbits(48) << 8) | keys.current.fingerprint
    return bytes([0x78]) + sframe.encode_header(kid, rng.getrandbits(16)) + rng.randbytes(40)


def test_injected_junk_between_real_frames_does_not_flap_events(clock: FakeClock) -> None:
    """Issue 11.6: junk with the public fingerprint between real frames gave 10 mismatch / 9 match."""
    keys = SharedSecret("junk", clock=clock)
    events: list[object] = []
    enc = FrameEncryptor(keys, codec="opus")
    dec = FrameDecryptor(keys, codec="opus", on_event=events.append)
    rng = random.Random(11)
    assert dec.decrypt(enc.encrypt(OPUS)) == OPUS  # the stream is running
    for _ in range(10):
        for _ in range(5):
            clock.advance(0.004)
            with pytest.raises(AuthenticationFailed):
                dec.decrypt(junk_frame(keys, rng))
        clock.advance(0.02)
        assert dec.decrypt(enc.encrypt(OPUS)) == OPUS
    assert events == [] and not dec.mismatched
    assert dec.stats.failures["authentication_failed"] == 50  # counted, not hidden
    for _ in range(3):  # the real frames stopped: only junk for the quiet period
        clock.advance(0.5)
        with pytest.raises(AuthenticationFailed):
            dec.decrypt(junk_frame(keys, rng))
    assert [type(e) for e in events] == [SecretMismatch]


def test_mismatch_after_quiet_period_when_real_frames_stop(clock: FakeClock) -> None:
    """The sender switched to a secret this receiver lacks: reported once the quiet period passes."""
    tx = SharedSecret("before", clock=clock)
    rx = SharedSecret("before", clock=clock)
    events: list[object] = []
    enc = FrameEncryptor(tx, codec="opus")
    dec = FrameDecryptor(rx, codec="opus", on_event=events.append, mismatch_quiet=1.0)
    dec.decrypt(enc.encrypt(OPUS))
    tx.set_secret("after")
    for _ in range(40):  # 0.8 s of failures: still inside the quiet period
        clock.advance(0.02)
        with pytest.raises(UnknownKey):
            dec.decrypt(enc.encrypt(OPUS))
    assert events == []
    clock.advance(0.25)
    with pytest.raises(UnknownKey):
        dec.decrypt(enc.encrypt(OPUS))
    assert len(events) == 1 and isinstance(events[0], SecretMismatch)
    rx.set_secret("after")
    dec.decrypt(enc.encrypt(OPUS))
    assert len(events) == 2 and isinstance(events[1], SecretMatch)


def test_bad_mismatch_parameters(keys: SharedSecret) -> None:
    with pytest.raises(ValueError):
        FrameDecryptor(keys, mismatch_threshold=0)
    with pytest.raises(ValueError):
        FrameDecryptor(keys, mismatch_quiet=-1)


def test_a_layout_can_refuse_frames(keys: SharedSecret, monkeypatch: pytest.MonkeyPatch) -> None:
    """A codec's prefix function may raise InvalidFrame (bytes that are not a frame of it): the
    encryptor refuses and counts such a frame, the decryptor drops it as malformed."""

    def prefix(frame: bytes) -> int:
        if frame.startswith(b"bad"):
            raise InvalidFrame("not a frame of this codec")
        return 2

    monkeypatch.setitem(layout.LAYOUTS, Codec.GENERIC, layout.CodecLayout(Codec.GENERIC, prefix, bool, video=False))
    enc, dec = pair(keys, "generic")
    good = enc.encrypt(b"ok frame")
    assert good[:2] == b"ok" and dec.decrypt(good) == b"ok frame"
    with pytest.raises(InvalidFrame):
        enc.encrypt(b"bad frame")
    assert enc.stats.refused == 1
    with pytest.raises(MalformedFrame):
        dec.decrypt(b"bad" + good[2:])
    assert dec.stats.failures["malformed"] == 1
