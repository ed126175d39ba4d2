"""H.264 Annex-B syntax that the H.264 layout (:mod:`sealrtc.layout`) is built on, sans-I/O.

Emulation prevention (ITU-T H.264 7.4.1), the slice-header fields every receiver reads before
any transform (``first_mb_in_slice``, ``slice_type``, ``pic_parameter_set_id``), and the
normalisation of an encoder's access unit: start codes of 4 bytes, no empty NAL, no access-unit
delimiter, and an SPS that Chromium's receiver does not rewrite (its ``SpsVuiRewriter`` rewrites
an SPS whose VUI lacks ``bitstream_restriction_flag`` or allows frame reordering, which would
change the authenticated clear bytes).

Invalid input raises :class:`~sealrtc.errors.InvalidFrame`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidFrame

START_CODE = b"\x00\x00\x00\x01"
_START3 = b"\x00\x00\x01"
NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
VCL_TYPES = frozenset({NAL_SLICE, NAL_IDR})
MAX_PPS_ID = 255
"""Chromium drops a slice whose ``pic_parameter_set_id`` is larger."""


def escape(data: bytes, zeros: int = 0) -> bytes:
    """Emulation prevention: write ``03`` wherever two ``00`` were written and the next byte is
    ``00``..``03``. ``zeros`` (0..2) is how many ``00`` bytes were written just before ``data``."""
    buf = b"\x00" * zeros + data if zeros else data
    n = len(buf)
    parts: list[bytes] = []
    start = pos = 0
    find = buf.find
    while True:
        j = find(b"\x00\x00", pos)
        if j < 0 or j + 2 >= n:
            break
        if buf[j + 2] <= 3:
            parts.append(buf[start : j + 2])
            parts.append(b"\x03")
            start = pos = j + 2
        else:
            pos = j + 3
    if not parts:
        return data
    parts.append(buf[start:])
    out = b"".join(parts)
    return out[zeros:] if zeros else out


def unescape(data: bytes, zeros: int = 0) -> bytes:
    """The inverse of :func:`escape`: drop every ``03`` that follows two ``00``. Raises
    :class:`InvalidFrame` on ``00 00 00``, ``00 00 01`` or ``00 00 02`` (a start code, or bytes
    :func:`escape` never writes)."""
    buf = b"\x00" * zeros + data if zeros else data
    n = len(buf)
    parts: list[bytes] = []
    start = pos = 0
    find = buf.find
    while True:
        j = find(b"\x00\x00", pos)
        if j < 0 or j + 2 >= n:
            break
        c = buf[j + 2]
        if c == 3:
            parts.append(buf[start : j + 2])
            start = pos = j + 3
        elif c < 3:
            raise InvalidFrame("escaped H.264 data contains a start code")
        else:
            pos = j + 3
    if not parts:
        return data
    parts.append(buf[start:])
    out = b"".join(parts)
    return out[zeros:] if zeros else out


def trailing_zeros(data: bytes) -> int:
    """How many ``00`` bytes end ``data`` (at most 2): the zero count escaping continues from."""
    if data.endswith(b"\x00\x00"):
        return 2
    return 1 if data.endswith(b"\x00") else 0


class _Bits:
    """Reads bits of a NAL's RBSP from its stream bytes (emulation prevention removed), knowing
    the stream offset of every byte it read."""

    __slots__ = ("bit", "byte", "data", "end", "last", "pos", "zeros")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.end = len(data)
        self.pos = pos
        self.zeros = 0
        self.bit = 8
        self.byte = 0
        self.last = pos
        """Stream offset of the byte holding the last bit read."""

    def _next_byte(self) -> None:
        data, pos = self.data, self.pos
        if pos < self.end and self.zeros >= 2 and data[pos] == 3:
            pos += 1
            self.zeros = 0
        if pos >= self.end or (self.zeros >= 2 and data[pos] <= 2):
            raise InvalidFrame("H.264 NAL unit ends inside its header")
        b = data[pos]
        self.zeros = self.zeros + 1 if b == 0 else 0
        self.byte, self.bit, self.last, self.pos = b, 0, pos, pos + 1

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            if self.bit == 8:
                self._next_byte()
            v = (v << 1) | ((self.byte >> (7 - self.bit)) & 1)
            self.bit += 1
        return v

    def ue(self) -> int:
        leading = 0
        while self.u(1) == 0:
            leading += 1
            if leading > 31:
                raise InvalidFrame("H.264 Exp-Golomb code is too long")
        return (1 << leading) - 1 + self.u(leading)


@dataclass(frozen=True)
class SliceHeader:
    """The slice-header fields receivers read in clear, and where the last of them ends."""

    first_mb: int
    slice_type: int
    pps_id: int
    end: int
    """Stream offset just past the byte that holds the last bit of ``pic_parameter_set_id``."""


def parse_slice_header(data: bytes, pos: int) -> SliceHeader:
    """Parse the slice header whose first byte (after the NAL header) is at ``data[pos]``, as
    Chromium does: ``slice_type`` must be 0..9 and ``pic_parameter_set_id`` at most 255."""
    bits = _Bits(data, pos)
    first_mb = bits.ue()
    slice_type = bits.ue()
    pps_id = bits.ue()
    if slice_type > 9:
        raise InvalidFrame("H.264 slice_type out of range")
    if pps_id > MAX_PPS_ID:
        raise InvalidFrame("H.264 pic_parameter_set_id out of range")
    return SliceHeader(first_mb, slice_type, pps_id, bits.last + 1)


def first_vcl(frame: bytes) -> int:
    """Offset of the NAL header byte of the first VCL NAL (type 1 or 5) of an Annex-B frame that
    starts with a start code; :class:`InvalidFrame` if there is none."""
    if frame.startswith(START_CODE):
        i = 4
    elif frame.startswith(_START3):
        i = 3
    else:
        raise InvalidFrame("H.264 frame does not start with a start code")
    find = frame.find
    end = len(frame)
    while i < end:
        if frame[i] & 0x1F in VCL_TYPES:
            return i
        j = find(_START3, i + 1)
        if j < 0:
            break
        i = j + 3
    raise InvalidFrame("H.264 frame has no slice")


def split_nals(frame: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte stream: split on ``00 00 01``; the ``00`` bytes before a
    start code belong to it (a NAL never ends in ``00``); empty NALs and bytes before the first
    start code are dropped."""
    nals = []
    for i, piece in enumerate(frame.split(_START3)):
        if i == 0:
            continue
        nal = piece.rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def normalise(frame: bytes) -> bytes:
    """An encoder's access unit as sealrtc sends it: every NAL behind a 4-byte start code, no
    empty NAL, no access-unit delimiter, SPSs rewritten by :func:`restrict_sps`."""
    out = []
    for nal in split_nals(frame):
        kind = nal[0] & 0x1F
        if kind == NAL_AUD:
            continue
        if kind == NAL_SPS:
            nal = restrict_sps(nal)
        out.append(START_CODE)
        out.append(nal)
    normalised = b"".join(out)
    return frame if normalised == frame else normalised


class _BitWriter:
    __slots__ = ("bits",)

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits.extend((v >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, v: int) -> None:
        code = v + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits.extend([0] * (-len(bits) % 8))
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


@dataclass(frozen=True)
class _Sps:
    """What :func:`restrict_sps` needs of an SPS: its RBSP bits up to (not including) the
    ``bitstream_restriction_flag`` (or the ``vui_parameters_present_flag`` when it has no VUI),
    ``max_num_ref_frames``, and the bitstream restriction when there is one."""

    head: list[int]
    has_vui: bool
    max_ref: int
    restriction: tuple[int, list[int], int, int] | None
    """``(motion_vectors_over_pic_boundaries, [four ue fields], reorder, buffering)``."""


def _read_sps(nal: bytes) -> _Sps:
    bits = _Bits(nal, 1)
    copied: list[int] = []

    def take(n: int) -> int:
        v = bits.u(n)
        copied.extend((v >> (n - 1 - i)) & 1 for i in range(n))
        return v

    def take_ue() -> int:
        leading = 0
        while take(1) == 0:
            leading += 1
            if leading > 31:
                raise InvalidFrame("H.264 Exp-Golomb code is too long")
        return (1 << leading) - 1 + take(leading)

    def take_se() -> None:
        take_ue()

    profile = take(8)
    take(16)  # constraint flags, level
    take_ue()  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        if take_ue() == 3:  # chroma_format_idc
            take(1)
        take_ue()
        take_ue()
        take(1)
        if take(1):  # seq_scaling_matrix_present_flag
            raise InvalidFrame("H.264 SPS with scaling lists is not supported")
    take_ue()  # log2_max_frame_num_minus4
    poc_type = take_ue()
    if poc_type == 0:
        take_ue()
    elif poc_type == 1:
        take(1)
        take_se()
        take_se()
        for _ in range(take_ue()):
            take_se()
    max_ref = take_ue()
    take(1)
    take_ue()
    take_ue()
    if not take(1):  # frame_mbs_only_flag
        take(1)
    take(1)
    if take(1):  # frame_cropping_flag
        for _ in range(4):
            take_ue()
    before_vui = len(copied)
    if not take(1):  # vui_parameters_present_flag
        return _Sps(copied[:before_vui], False, max_ref, None)
    if take(1) and take(8) == 255:  # aspect_ratio_info_present_flag, aspect_ratio_idc
        take(32)
    if take(1):
        take(1)
    if take(1):  # video_signal_type_present_flag
        take(4)
        if take(1):
            take(24)
    if take(1):
        take_ue()
        take_ue()
    if take(1):  # timing_info_present_flag
        take(32)
        take(32)
        take(1)
    if take(1) or take(1):  # nal_hrd_parameters_present_flag, vcl_hrd_parameters_present_flag
        raise InvalidFrame("H.264 SPS with HRD parameters is not supported")
    take(1)  # pic_struct_present_flag
    head = copied[:]
    if not bits.u(1):  # bitstream_restriction_flag
        return _Sps(head, True, max_ref, None)
    mv_over = bits.u(1)
    fields = [bits.ue() for _ in range(4)]
    return _Sps(head, True, max_ref, (mv_over, fields, bits.ue(), bits.ue()))


def restrict_sps(nal: bytes) -> bytes:
    """``nal`` (an SPS, header included) with a VUI whose ``bitstream_restriction_flag`` is 1,
    ``max_num_reorder_frames`` 0 and ``max_dec_frame_buffering`` equal to ``max_num_ref_frames``,
    which Chromium's receiver leaves as it is; ``nal`` itself when it already is such an SPS."""
    sps = _read_sps(nal)
    writer = _BitWriter()
    writer.bits = sps.head[:]
    mv_over, fields = 1, [2, 1, 16, 16]
    if sps.restriction is not None:
        mv_over, fields, reorder, buffering = sps.restriction
        if reorder == 0 and buffering <= sps.max_ref:
            return nal
    if not sps.has_vui:
        writer.u(1, 1)  # vui_parameters_present_flag
        writer.u(8, 0)  # aspect ratio, overscan, signal type, chroma loc, timing, 2 HRD, pic_struct
    writer.u(1, 1)  # bitstream_restriction_flag
    writer.u(1, mv_over)
    for value in fields:
        writer.ue(value)
    writer.ue(0)  # max_num_reorder_frames
    writer.ue(sps.max_ref)  # max_dec_frame_buffering
    return nal[:1] + escape(writer.rbsp())


def sps_restriction(nal: bytes) -> tuple[int, int, int] | None:
    """``(max_num_ref_frames, max_num_reorder_frames, max_dec_frame_buffering)`` of an SPS, or
    None when it has no bitstream restriction (for tests and inspection)."""
    sps = _read_sps(nal)
    if sps.restriction is None:
        return None
    return sps.max_ref, sps.restriction[2], sps.restriction[3]
