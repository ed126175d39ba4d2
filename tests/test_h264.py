"""The H.264 layout: escaping known answers, normalisation, the SPS rewrite, and round trips
through aiortc's own H.264 packetizer and depacketizer."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from hypothesis import given, settings
from hypothesis import strategies as st

from sealrtc import FrameDecryptor, FrameEncryptor, SharedSecret, h264
from sealrtc.errors import AuthenticationFailed, DecryptError, InvalidFrame, MalformedFrame
from sealrtc.inspect import RecordedTrack, inspect_recording
from sealrtc.layout import Codec, clear_prefix_length, e2ee_supported, is_keyframe, layout_of, prefix_function

from .mjr_writer import mjr, rtp

pytestmark = pytest.mark.unit

START = b"\x00\x00\x00\x01"


@pytest.mark.parametrize(
    ("raw", "zeros", "escaped"),
    [
        ("000000", 0, "00000300"),
        ("000001", 0, "00000301"),
        ("000003", 0, "00000303"),
        ("000004", 0, "000004"),
        ("00000000", 0, "0000030000"),
        ("0000000001", 0, "00000300000301"),
        ("01", 2, "0301"),
        ("0000", 1, "000300"),
        ("", 2, ""),
    ],
)
def test_escape_known_answers(raw: str, zeros: int, escaped: str) -> None:
    assert h264.escape(bytes.fromhex(raw), zeros).hex() == escaped
    assert h264.unescape(bytes.fromhex(escaped), zeros).hex() == raw


@pytest.mark.parametrize(("wire", "zeros"), [("000000", 0), ("000001", 0), ("000002", 0), ("01", 2), ("aa000000", 0)])
def test_unescape_refuses_start_codes(wire: str, zeros: int) -> None:
    with pytest.raises(InvalidFrame):
        h264.unescape(bytes.fromhex(wire), zeros)


def _has_start_code(data: bytes) -> bool:
    return any(data[i : i + 2] == b"\x00\x00" and data[i + 2] <= 2 for i in range(len(data) - 2))


@settings(max_examples=500)
@given(data=st.binary(max_size=64).map(lambda b: bytes(x if x > 3 else x & 1 for x in b)), zeros=st.integers(0, 2))
def test_escape_round_trip_without_start_codes(data: bytes, zeros: int) -> None:
    escaped = h264.escape(data, zeros)
    assert h264.unescape(escaped, zeros) == data
    assert not _has_start_code(b"\x00" * zeros + escaped)


class _Writer:
    """A bit writer for building NAL units in tests."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> _Writer:
        self.bits.extend((v >> (n - 1 - i)) & 1 for i in range(n))
        return self

    def ue(self, v: int) -> _Writer:
        code = v + 1
        self.u(code.bit_length() - 1, 0)
        return self.u(code.bit_length(), code)

    def rbsp(self, tail: bytes = b"") -> bytes:
        bits = [*self.bits]
        bits.extend([0] * (-len(bits) % 8))
        head = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        return head + tail


def slice_nal(first_mb: int, slice_type: int, pps_id: int, body: bytes, idr: bool) -> bytes:
    rbsp = _Writer().ue(first_mb).ue(slice_type).ue(pps_id).u(3, 5).rbsp(body + b"\x80")
    return bytes([0x65 if idr else 0x41]) + h264.escape(rbsp)


def baseline_sps(max_ref: int = 1, vui: bool = False) -> bytes:
    w = _Writer().u(8, 66).u(8, 0xC0).u(8, 31).ue(0)
    w.ue(0).ue(0).ue(2)  # log2_max_frame_num_minus4, pic_order_cnt_type 0, log2_max_poc_lsb_minus4
    w.ue(max_ref).u(1, 0).ue(19).ue(14).u(1, 1).u(1, 1).u(1, 0)
    w.u(1, 1 if vui else 0)
    if vui:
        w.u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 1).u(32, 1).u(32, 60).u(1, 0).u(1, 0).u(1, 0).u(1, 0)
        w.u(1, 1).u(1, 1).ue(2).ue(1).ue(16).ue(16).ue(2).ue(4)  # reorders 2 frames
    return b"\x67" + h264.escape(w.u(1, 1).rbsp())


PPS = b"\x68\xce\x38\x80"
SEI = b"\x06\x05\x10" + bytes(range(16)) + b"x264\x00\x80"


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    idr = draw(st.booleans())
    nals = [baseline_sps(), PPS, SEI] if idr else []
    for i in range(draw(st.integers(1, 3))):
        body = draw(st.binary(max_size=3000))
        nals.append(
            slice_nal(
                draw(st.integers(0, 8160)) if i else 0,
                draw(st.integers(0, 9)),
                draw(st.integers(0, 255)),
                body,
                idr,
            )
        )
    if draw(st.booleans()):
        nals.insert(0, b"\x09\xf0")  # an access-unit delimiter
    codes = draw(st.lists(st.sampled_from([b"\x00\x00\x01", START]), min_size=len(nals), max_size=len(nals)))
    return b"".join(code + nal for code, nal in zip(codes, nals, strict=True))


def through_aiortc(wire: bytes) -> bytes:
    """What an aiortc receiver's jitter buffer hands on after aiortc's packetizer."""
    payloads = H264Encoder._packetize(H264Encoder._split_bitstream(wire))
    return b"".join(h264_depayload(p) for p in payloads)


def nal_types(frame: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in h264.split_nals(frame)]


@pytest.fixture(scope="module")
def keys() -> SharedSecret:
    return SharedSecret("correct horse", context=b"room")


@settings(max_examples=150, deadline=None)
@given(frame=frames())
def test_round_trip_through_aiortc_is_byte_exact(keys: SharedSecret, frame: bytes) -> None:
    plain = h264.normalise(frame)
    assert plain.startswith(START) and 9 not in nal_types(plain)
    assert all(not nal.endswith(b"\x00") for nal in h264.split_nals(plain))
    enc, dec = FrameEncryptor(keys, Codec.H264), FrameDecryptor(keys, Codec.H264)
    wire = enc.encrypt(plain)
    n = clear_prefix_length(Codec.H264, plain)
    assert prefix_function(Codec.H264)(wire) == n and wire[:n] == plain[:n]
    assert b"\x00\x00\x01" not in wire[h264.first_vcl(wire) :]
    received = through_aiortc(wire)
    assert received == wire
    first = h264.first_vcl(plain)
    assert nal_types(received[:n]) == nal_types(plain[:n])  # every NAL type a receiver reads
    assert received[h264.first_vcl(received)] == plain[first]
    assert h264.parse_slice_header(received, first + 1) == h264.parse_slice_header(plain, first + 1)
    assert dec.decrypt(received) == plain
    assert is_keyframe(Codec.H264, received) is is_keyframe(Codec.H264, plain)


@settings(max_examples=60, deadline=None)
@given(frame=frames(), data=st.data())
def test_any_flipped_clear_byte_fails(keys: SharedSecret, frame: bytes, data: st.DataObject) -> None:
    plain = h264.normalise(frame)
    wire = FrameEncryptor(keys, Codec.H264).encrypt(plain)
    n = clear_prefix_length(Codec.H264, plain)
    i = data.draw(st.integers(0, n - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = wire[:i] + bytes([wire[i] ^ (1 << bit)]) + wire[i + 1 :]
    with pytest.raises(DecryptError):
        FrameDecryptor(keys, Codec.H264).decrypt(tampered)


def test_flipped_clear_byte_of_a_slice_header_fails_authentication(keys: SharedSecret) -> None:
    plain = START + slice_nal(0, 5, 0, bytes(range(256)) * 4, idr=False)
    wire = FrameEncryptor(keys, Codec.H264).encrypt(plain)
    tampered = wire[:4] + b"\x21" + wire[5:]  # nal_ref_idc changed: still a parsable slice
    with pytest.raises(AuthenticationFailed):
        FrameDecryptor(keys, Codec.H264).decrypt(tampered)


def test_frames_without_slices_or_start_codes_are_refused(keys: SharedSecret) -> None:
    enc = FrameEncryptor(keys, Codec.H264)
    for bad in [b"", START + baseline_sps() + START + PPS, b"\x65\x88\x84", START + b"\x65"]:
        with pytest.raises(InvalidFrame):
            enc.encrypt(bad)
    assert enc.stats.refused == 4 and enc.stats.frames == 0
    too_big_pps = START + b"\x41" + _Writer().ue(0).ue(0).ue(256).rbsp(b"\xff")
    with pytest.raises(InvalidFrame):
        enc.encrypt(too_big_pps)


def test_a_start_code_in_the_escaped_part_is_malformed(keys: SharedSecret) -> None:
    plain = START + slice_nal(0, 5, 0, b"\xaa" * 64, idr=False)
    wire = FrameEncryptor(keys, Codec.H264).encrypt(plain)
    n = clear_prefix_length(Codec.H264, plain)
    dec = FrameDecryptor(keys, Codec.H264)
    with pytest.raises(MalformedFrame):
        dec.decrypt(wire[: n + 4] + b"\x00\x00\x01" + wire[n + 4 :])


def test_known_prefix_and_keyframe() -> None:
    frame = START + baseline_sps() + START + PPS + START + slice_nal(0, 7, 3, b"\xff" * 8, idr=True)
    # slice header of first_mb 0 (1), slice_type 7 (0001000), pps 3 (00100): 13 bits -> 2 bytes
    vcl = frame.rindex(START) + 4
    assert clear_prefix_length(Codec.H264, frame) == vcl + 1 + 2
    assert is_keyframe(Codec.H264, frame)
    assert not is_keyframe(Codec.H264, START + slice_nal(0, 5, 0, b"\xff", idr=False))
    assert layout_of(Codec.H264).video


def test_sps_gets_a_bitstream_restriction_chromium_keeps() -> None:
    for sps, max_ref in [(baseline_sps(max_ref=1), 1), (baseline_sps(max_ref=3, vui=True), 3)]:
        assert h264.sps_restriction(sps) in (None, (3, 2, 4))  # none, or one that allows reordering
        fixed = h264.restrict_sps(sps)
        assert h264.sps_restriction(fixed) == (max_ref, 0, max_ref)
        assert h264.restrict_sps(fixed) == fixed
        assert fixed[0] == sps[0]
    frame = START + baseline_sps() + START + slice_nal(0, 7, 0, b"\xff", idr=True)
    assert h264.split_nals(h264.normalise(frame))[0] == h264.restrict_sps(baseline_sps())


def test_e2ee_negotiates_h264_and_vp8_only_for_video() -> None:
    assert e2ee_supported("video/H264") and e2ee_supported("video/VP8") and e2ee_supported("video/rtx")
    assert not e2ee_supported("video/VP9")
    assert e2ee_supported("audio/opus") and e2ee_supported("audio/PCMU")


def _x264_frames(count: int) -> list[bytes]:
    encoder = H264Encoder()
    out = []
    for i in range(count):
        image = (np.arange(240 * 320 * 3, dtype=np.uint32).reshape(240, 320, 3) * (i + 1) % 251).astype("uint8")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        out.append(b"".join(START + nal for nal in encoder._encode_frame(frame, i == 0)))
    return out


def test_libx264_frames_decode_after_the_round_trip(keys: SharedSecret) -> None:
    enc, dec = FrameEncryptor(keys, Codec.H264), FrameDecryptor(keys, Codec.H264)
    decoder = av.CodecContext.create("h264", "r")
    decoded = 0
    for raw in _x264_frames(6):
        plain = h264.normalise(raw)
        back = dec.decrypt(through_aiortc(enc.encrypt(plain)))
        assert back == plain
        decoded += len(decoder.decode(av.Packet(back)))
    assert decoded >= 5
    assert dec.stats.failed == 0


def h264_packets(frames: list[bytes]) -> list[bytes]:
    """The RTP packets aiortc sends for ``frames`` (marker on each frame's last packet)."""
    packets, sequence = [], 1
    for index, frame in enumerate(frames):
        payloads = H264Encoder._packetize(H264Encoder._split_bitstream(frame))
        for j, payload in enumerate(payloads):
            packets.append(rtp(sequence, 3000 * index, payload, marker=j == len(payloads) - 1))
            sequence += 1
    return packets


@pytest.fixture(scope="module")
def x264_frames() -> list[bytes]:
    return [h264.normalise(frame) for frame in _x264_frames(20)]


def test_inspect_reassembles_h264_and_finds_only_ciphertext(keys: SharedSecret, x264_frames: list[bytes]) -> None:
    encryptor = FrameEncryptor(keys, Codec.H264)
    sealed = [encryptor.encrypt(frame) for frame in x264_frames]
    track = RecordedTrack(mjr("v", "h264", h264_packets(sealed)))
    assert [f.data for f in track.frames()] == sealed
    report = inspect_recording(mjr("v", "h264", h264_packets(sealed)))
    assert report.frames == len(sealed) and report.ciphertext_frames == report.frames and report.only_ciphertext


def test_inspect_calls_plain_h264_plain(x264_frames: list[bytes]) -> None:
    report = inspect_recording(mjr("v", "h264", h264_packets(x264_frames)))
    assert report.frames == len(x264_frames) and report.ciphertext_frames == 0
    assert report.plain_frames >= len(x264_frames) - 1


class _FakeCodec:
    def __init__(self, mime: str) -> None:
        self.mimeType = mime


class _FakeTransceiver:
    def __init__(self, kind: str, mimes: list[str]) -> None:
        self.kind, self.mid = kind, "0"
        self._codecs = [_FakeCodec(m) for m in mimes]


class _FakePc:
    def __init__(self, *transceivers: _FakeTransceiver) -> None:
        self.transceivers = transceivers

    def getTransceivers(self) -> list[_FakeTransceiver]:
        return list(self.transceivers)


def test_e2ee_refuses_a_negotiated_video_codec_without_layout() -> None:
    from sealrtc.errors import UnsupportedCodec
    from sealrtc.rtc.policy import check_negotiated_codecs

    check_negotiated_codecs(_FakePc(_FakeTransceiver("video", ["video/H264", "video/rtx"])))  # type: ignore[arg-type]
    with pytest.raises(UnsupportedCodec, match="VP9"):
        check_negotiated_codecs(_FakePc(_FakeTransceiver("video", ["video/VP9"])))  # type: ignore[arg-type]
