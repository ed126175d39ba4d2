"""The inspection engine on synthetic recordings: RTP and VP8 parsing, reordering and frame
reassembly, the .mjr container, and the labels (ciphertext, plain, not v1) on real VP8 and Opus
frames, encrypted and not. No network."""

from __future__ import annotations

import json
import os
import random
import tracemalloc
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealrtc import FrameEncryptor, SharedSecret
from sealrtc.inspect import (
    MIN_RUN,
    FrameAssembler,
    NotARecording,
    RecordedTrack,
    RtpPacket,
    SequenceOrder,
    UnsupportedRecording,
    inspect_recording,
    parse_rtp,
    parse_vp8_descriptor,
    read_header,
)
from sealrtc.inspect import frames as frames_module
from sealrtc.inspect.decoders import keyless_decoder
from sealrtc.layout import Codec

from .mjr_writer import mjr, opus_frames, opus_packets, rtp, vp8_frames, vp8_packets
from .vp8_payloads import vp8_depacketize, vp8_packetize

pytestmark = pytest.mark.unit


def encrypt(frames: tuple[bytes, ...], codec: str, keys: SharedSecret | None = None) -> list[bytes]:
    encryptor = FrameEncryptor(keys or SharedSecret("inspected"), codec)
    return [encryptor.encrypt(frame) for frame in frames]


# -- RTP ---------------------------------------------------------------------------------------


@given(
    csrcs=st.integers(0, 15),
    extension=st.none() | st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4]),
    padding=st.integers(0, 255),
    payload=st.binary(max_size=300),
    sequence=st.integers(0, 0xFFFF),
    marker=st.booleans(),
)
def test_rtp_payload_without_csrcs_extension_and_padding(
    csrcs: int, extension: bytes | None, padding: int, payload: bytes, sequence: int, marker: bool
) -> None:
    packet = rtp(sequence, 123456, payload, marker=marker, csrcs=csrcs, extension=extension, padding=padding)
    assert parse_rtp(packet) == RtpPacket(sequence, 123456, marker, payload)


def test_rtp_refuses_what_is_not_rtp() -> None:
    good = rtp(1, 2, b"payload", extension=b"abcd", padding=3)
    assert parse_rtp(good) is not None
    assert parse_rtp(good[:11]) is None  # shorter than the fixed header
    assert parse_rtp(bytes([0x40]) + good[1:]) is None  # version 1
    assert parse_rtp(good[:-1] + b"\x00") is None  # padding count 0
    assert parse_rtp(good[:-1] + b"\xff") is None  # more padding than packet
    assert parse_rtp(rtp(1, 2, b"", extension=b"")[:14]) is None  # cut inside the extension header
    assert parse_rtp(rtp(1, 2, b"", csrcs=3)[:20]) is None  # cut inside the CSRCs


# -- VP8 payload descriptor (sealrtc's one parser) ------------------------------------------------


@given(size=st.integers(min_value=1, max_value=5000), picture_id=st.integers(min_value=0, max_value=(1 << 15) - 1))
def test_vp8_descriptor_round_trips_aiortc_payloads(size: int, picture_id: int) -> None:
    frame = os.urandom(size)
    payloads = vp8_packetize(frame, picture_id)
    assert vp8_depacketize(payloads) == (frame, picture_id)
    starts = [parse_vp8_descriptor(p).starts_frame for p in payloads]
    assert starts == [True] + [False] * (len(payloads) - 1)


def test_vp8_descriptor_variants() -> None:
    frame = b"\x10\x02\x00\x9d\x01\x2a" + bytes(50)
    short_pid = bytes([0x90, 0x80, 0x05]) + frame[:30]
    no_ext = bytes([0x00]) + frame[30:]
    assert vp8_depacketize([short_pid, no_ext]) == (frame, 5)
    every_field = bytes([0x90, 0xF0, 0x81, 0x02, 0x33, 0x44]) + b"vp8"  # I (15 bit), L, T, K
    assert parse_vp8_descriptor(every_field)[:4] == (6, True, 0, 0x0102)
    assert parse_vp8_descriptor(bytes([0x03]) + b"x")[:3] == (1, False, 3)
    for cut in (b"", b"\x80", b"\x80\x80", b"\x80\x80\x81", b"\x80\x40"):
        with pytest.raises(ValueError):
            parse_vp8_descriptor(cut)


# -- sequence order and frames ---------------------------------------------------------------------


def _packets(sequences: list[int]) -> list[RtpPacket]:
    return [RtpPacket(s, 0, False, bytes([s & 0xFF])) for s in sequences]


def test_sequence_order_across_the_wrap_with_reordering_and_duplicates() -> None:
    order = SequenceOrder(window=8)
    arrived = [65532, 65534, 65533, 65535, 1, 0, 0, 2, 65535, 4, 3, 5]
    out = []
    for packet in _packets(arrived):
        out += [p.sequence for _, p in order.push(packet)]
    out += [p.sequence for _, p in order.flush()]
    assert out == [65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5]
    assert order.dropped == 2  # the second 0 and the second 65535


def test_a_packet_later_than_the_window_is_dropped_and_the_window_is_bounded() -> None:
    order = SequenceOrder(window=4)
    out = []
    for packet in _packets([10, 11, 12, 13, 14, 15, 16, 9, 17]):
        out += [p.sequence for _, p in order.push(packet)]
        assert len(order._heap) <= 4
    out += [p.sequence for _, p in order.flush()]
    assert out == [10, 11, 12, 13, 14, 15, 16, 17] and order.dropped == 1


def test_a_new_numbering_restarts_the_order() -> None:
    order = SequenceOrder(window=4)
    arrived = [*range(100, 120), *range(40000, 40010)]  # a jump forward of more than half the space
    out = []
    for packet in _packets(arrived):
        out += [p.sequence for _, p in order.push(packet)]
    out += [p.sequence for _, p in order.flush()]
    assert out == arrived and order.dropped == 0


def test_vp8_frames_reassembled_across_a_wrap_and_reordering() -> None:
    rng = random.Random(5)
    frames = [os.urandom(rng.randint(1, 4000)) for _ in range(40)]
    packets = vp8_packets(frames, sequence=65500, timestamp=0xFFFFF000)
    for i in range(0, len(packets) - 1, 3):  # swap neighbours: late arrivals
        packets[i], packets[i + 1] = packets[i + 1], packets[i]
    assembler = FrameAssembler(Codec.VP8)
    got = list(assembler.frames(packets))
    assert [f.data for f in got] == frames
    assert all(f.complete for f in got) and assembler.unusable_packets == 0


def test_lost_packets_and_missing_markers_make_incomplete_frames() -> None:
    frames = [os.urandom(3000), os.urandom(3000), os.urandom(500)]
    packets = vp8_packets(frames)
    per_frame = [len(vp8_packetize(f, 0)) for f in frames]
    assert per_frame[0] >= 3
    lost_middle = packets[:1] + packets[2:]  # frame 0 loses its second packet
    got = list(FrameAssembler(Codec.VP8).frames(lost_middle))
    assert [f.complete for f in got] == [False, True, True]
    assert got[1].data == frames[1] and got[0].data.startswith(frames[0][:100])
    no_marker = packets[: per_frame[0] - 1] + packets[per_frame[0] :]  # frame 0 loses its last packet
    assert [f.complete for f in FrameAssembler(Codec.VP8).frames(no_marker)] == [False, True, True]
    no_start = packets[1:]  # frame 0 loses its first packet
    assert [f.complete for f in FrameAssembler(Codec.VP8).frames(no_start)] == [False, True, True]


def test_opus_is_one_frame_per_packet_and_broken_packets_are_counted() -> None:
    frames = [bytes([0xFC]) + os.urandom(n) for n in (10, 20, 30)]
    packets = [*opus_packets(frames), b"not rtp", rtp(900, 0, b"")]
    assembler = FrameAssembler(Codec.OPUS)
    assert [f.data for f in assembler.frames(packets)] == frames
    assert assembler.packets == 5 and assembler.unusable_packets == 2


def test_a_frame_beyond_the_size_bound_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames_module, "MAX_FRAME_BYTES", 2500)
    frame = os.urandom(5000)
    got = list(FrameAssembler(Codec.VP8).frames(vp8_packets([frame])))
    assert len(got) == 1 and not got[0].complete and len(got[0].data) <= 2500


# -- the .mjr container ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, world\n" * 10, "no MJR00002 header"),
        (b"MJR00001" + bytes(100), "MJR00001"),
        (b"MJR00002\x00", "cut inside its header"),
        (b"MJR00002\x00\x40{}", "cut inside its header"),
        (b"MJR00002\x00\x03{x}", "unreadable JSON"),
        (b"MJR00002\x27\x10" + b"[" * 10000, "unreadable JSON"),
        (b'MJR00002\x00\x0a{"t": "v"}', "no track kind and codec"),
        (b"MJR00002\x00\x02[]", "no track kind and codec"),
        (b'MJR00002\x00\x15{"t": [], "c": "vp8"}', "no track kind and codec"),
        (b'MJR00002\x00\x12{"t": "v", "c": 8}', "no track kind and codec"),
    ],
)
def test_what_is_not_a_recording(data: bytes, message: str) -> None:
    with pytest.raises(NotARecording, match=message):
        read_header(data)


def test_unsupported_tracks() -> None:
    with pytest.raises(UnsupportedRecording, match="data channel"):
        RecordedTrack(mjr("d", "text", []))
    with pytest.raises(UnsupportedRecording, match="'vp9'"):
        RecordedTrack(mjr("v", "vp9", []))
    header = read_header(mjr("a", "opus", [], header=json.dumps({"t": "a", "c": "opus" * 20}).encode()))
    assert header.kind == "audio" and len(header.codec) == 32


def test_a_recording_cut_inside_a_record_is_read_up_to_the_cut() -> None:
    frames = encrypt(opus_frames(30), "opus")
    whole = mjr("a", "opus", opus_packets(frames))
    complete = inspect_recording(whole)
    assert complete.frames == 30 and not complete.truncated
    for cut in (1, 5, 10, 60):  # inside the last packet, inside its record header...
        report = inspect_recording(whole[:-cut])
        assert report.truncated and report.frames == 29 == report.ciphertext_frames
    broken = whole + b"MEEX" + bytes(20)
    assert inspect_recording(broken).truncated and inspect_recording(broken).frames == 30


# -- labels ----------------------------------------------------------------------------------------


def test_e2ee_recordings_are_all_ciphertext_with_their_kid() -> None:
    keys = SharedSecret("sealed", suite=6)
    video = encrypt(vp8_frames(), "vp8", keys)
    report = inspect_recording(mjr("v", "vp8", vp8_packets(video)))
    assert (report.kind, report.codec, report.frames) == ("video", "vp8", len(video))
    assert report.ciphertext_frames == report.frames and report.only_ciphertext
    assert report.plain_frames == report.not_v1_frames == report.incomplete_frames == 0
    (kid,) = report.kids
    assert (kid.frames, kid.first_ctr, kid.last_ctr) == (len(video), 0, len(video) - 1)
    audio = inspect_recording(mjr("a", "opus", opus_packets(encrypt(opus_frames(), "opus", keys))))
    assert audio.kind == "audio" and audio.ciphertext_frames == audio.frames == 100
    assert audio.kids[0].kid != kid.kid  # one KID per track


def test_keying_v2_recordings_show_the_epochs_seen() -> None:
    from sealrtc.epochs import EpochKeys

    keys = EpochKeys.from_secret("sealed", suite=6, epoch=254)
    encryptor = FrameEncryptor(keys, "vp8")
    sealed = []
    for _ in range(3):  # epochs 254, 255, 256: the byte wraps to 0
        sealed += [encryptor.encrypt(f) for f in vp8_frames()[:10]]
        keys.advance()
    report = inspect_recording(mjr("v", "vp8", vp8_packets(sealed)))
    assert report.only_ciphertext and report.epochs == (254, 255, 0)
    assert [k.epoch for k in report.kids] == [254, 255, 0] and report.to_json()["epochs"] == [254, 255, 0]
    assert [k.to_json()["epoch"] for k in report.kids] == [254, 255, 0]


def test_plain_recordings_count_their_plain_frames() -> None:
    video = inspect_recording(mjr("v", "vp8", vp8_packets(vp8_frames())))
    assert video.plain_frames == video.frames == len(vp8_frames()) and video.ciphertext_frames == 0
    assert video.kids == ()
    for signal in ("tone", "noise"):  # noise makes short KID/CTR runs by chance, never a run of 8
        audio = inspect_recording(mjr("a", "opus", opus_packets(opus_frames(300, signal))))
        assert audio.plain_frames == audio.frames == 300, signal


def test_decoding_alone_cannot_tell_ciphertext_the_run_does() -> None:
    """A ciphertext VP8 key frame keeps its clear 10-byte header, and FFmpeg turns a good share
    of them into (garbage) pictures; any bytes after an Opus TOC decode. Both ways on real frames:
    plain frames decode, so do some ciphertext ones, and the recordings are still judged right."""
    plain = vp8_frames(60, key_every=1)
    assert all(f[0] & 1 == 0 for f in plain)
    keys = SharedSecret("one encryptor, so one KID, per frame")
    sealed = [encrypt((key,), "vp8", keys)[0] for key in plain]
    assert all(s[:10] == p[:10] for s, p in zip(sealed, plain, strict=True))
    assert all(keyless_decoder(Codec.VP8)(key) for key in plain)
    assert any(keyless_decoder(Codec.VP8)(s) for s in sealed)  # about one in four here
    assert keyless_decoder(Codec.OPUS)(encrypt(opus_frames()[:1], "opus")[0])
    stream = encrypt(plain, "vp8")
    report = inspect_recording(mjr("v", "vp8", vp8_packets(stream)))
    assert report.ciphertext_frames == report.frames == 60


def test_a_picture_claiming_a_huge_size_is_refused_before_allocation() -> None:
    key = bytearray(vp8_frames()[0])
    key[6:10] = (16000).to_bytes(2, "little") * 2
    assert not keyless_decoder(Codec.VP8)(bytes(key))


def test_plain_frames_among_ciphertext_are_counted() -> None:
    plain = opus_frames(60)
    sealed = encrypt(plain, "opus")
    mixed = sealed[:20] + list(plain[20:23]) + sealed[23:]
    report = inspect_recording(mjr("a", "opus", opus_packets(mixed)))
    assert (report.ciphertext_frames, report.plain_frames, report.not_v1_frames) == (57, 3, 0)
    assert not report.only_ciphertext


def test_garbage_video_is_not_v1() -> None:
    rng = random.Random(3)
    garbage = [bytes([1]) + rng.randbytes(800) for _ in range(30)]
    report = inspect_recording(mjr("v", "vp8", vp8_packets(garbage)))
    assert report.not_v1_frames == report.frames == 30


def test_runs_shorter_than_the_minimum_are_not_v1_and_losses_keep_runs() -> None:
    video = encrypt(vp8_frames(), "vp8")
    short = inspect_recording(mjr("v", "vp8", vp8_packets(video[1:MIN_RUN])))  # delta frames: no picture
    assert short.not_v1_frames == MIN_RUN - 1 and short.ciphertext_frames == 0
    assert inspect_recording(mjr("v", "vp8", vp8_packets(video[:MIN_RUN]))).ciphertext_frames == MIN_RUN
    sealed = encrypt(opus_frames(40), "opus")
    short = inspect_recording(mjr("a", "opus", opus_packets(sealed[: MIN_RUN - 1])))
    assert short.ciphertext_frames == 0  # (and plain: any Opus packet decodes)
    assert inspect_recording(mjr("a", "opus", opus_packets(sealed[:MIN_RUN]))).ciphertext_frames == MIN_RUN
    lossy = [f for i, f in enumerate(sealed) if i % 3 != 1]  # a frame in three lost before the server
    assert inspect_recording(mjr("a", "opus", opus_packets(lossy))).ciphertext_frames == len(lossy)


def test_frames_that_lost_their_first_packet_do_not_break_the_run() -> None:
    sealed = encrypt(tuple(b"\x01" + os.urandom(3000) for _ in range(40)), "vp8")  # 3 packets each
    packets: list[bytes] = []
    sequence = 1
    for index, frame in enumerate(sealed):
        frame_packets = vp8_packets([frame], sequence=sequence, timestamp=3000 * index)
        sequence += len(frame_packets)
        if index % 5 == 2:  # the first packet is lost before the server
            frame_packets = frame_packets[1:]
        packets += frame_packets
    assembler_view = list(RecordedTrack(mjr("v", "vp8", packets)).frames())
    fragments = sum(not f.starts for f in assembler_view)
    assert fragments == 8 and all(f.starts or not f.complete for f in assembler_view)
    report = inspect_recording(mjr("v", "vp8", packets))
    assert report.frames == len(sealed) and report.not_v1_frames == fragments
    assert report.ciphertext_frames == len(sealed) - fragments and report.incomplete_frames >= fragments


def test_a_secret_change_starts_a_new_kid_run() -> None:
    keys = SharedSecret("first")
    encryptor = FrameEncryptor(keys, "opus")
    frames = [encryptor.encrypt(f) for f in opus_frames(30)]
    keys.set_secret("second")
    frames += [encryptor.encrypt(f) for f in opus_frames(60)[30:]]
    report = inspect_recording(mjr("a", "opus", opus_packets(frames)))
    assert report.ciphertext_frames == 60
    assert [(k.frames, k.first_ctr, k.last_ctr) for k in report.kids] == [(30, 0, 29), (30, 0, 29)]


def test_the_suite_sets_the_tag_length() -> None:
    # 4-byte tags (suite 8) on 2-byte Opus frames: long enough for any suite, too short for suite 6
    sealed = encrypt(tuple(bytes([0xFC, i]) for i in range(20)), "opus", SharedSecret("short", suite=8))
    data = mjr("a", "opus", opus_packets(sealed))
    assert inspect_recording(data).ciphertext_frames == 20
    assert inspect_recording(data, tag_length=10).ciphertext_frames == 0


def test_a_hostile_file_costs_memory_in_proportion_to_its_size() -> None:
    """One endless VP8 "frame" (no marker) in random sequence order, and a flood of tiny packets."""
    rng = random.Random(11)
    endless = [rtp(rng.randrange(65536), 7, b"\x90\x80\x81\x00" + rng.randbytes(1100)) for _ in range(1500)]
    tiny = [rtp(rng.randrange(65536), rng.randrange(1 << 32), b"\x10") for _ in range(60000)]
    for data in (mjr("v", "vp8", endless), mjr("v", "vp8", tiny)):
        tracemalloc.start()
        try:
            inspect_recording(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 3 * len(data) + (2 << 20), (peak, len(data))


@given(body=st.binary(max_size=3000), codec=st.sampled_from(["vp8", "opus"]))
def test_any_bytes_after_a_header_are_read_without_an_error(body: bytes, codec: str) -> None:
    report = inspect_recording(mjr("v", codec, []) + body)
    assert report.frames == report.ciphertext_frames + report.plain_frames + report.not_v1_frames


@cache
def _recording_to_damage() -> bytes:
    return mjr("v", "vp8", vp8_packets(encrypt(vp8_frames()[:12], "vp8")))


@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=30))
def test_a_damaged_recording_is_read_without_an_error(flips: list[tuple[int, int]]) -> None:
    data = bytearray(_recording_to_damage())
    for position, value in flips:
        data[position % len(data)] = value
    try:
        report = inspect_recording(bytes(data))
    except (NotARecording, UnsupportedRecording):
        return
    assert report.frames == report.ciphertext_frames + report.plain_frames + report.not_v1_frames
