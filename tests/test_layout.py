"""The layout registry: each codec's per-frame functions equal the readable rules."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealrtc.errors import InvalidFrame
from sealrtc.layout import (
    LAYOUTS,
    Codec,
    clear_prefix_length,
    codec_from_name,
    e2ee_supported,
    is_keyframe,
    keyframe_function,
    layout_of,
    prefix_function,
)

pytestmark = pytest.mark.unit

CODECS = list(Codec)


def test_every_codec_is_registered_under_its_own_name() -> None:
    assert set(LAYOUTS) == set(Codec)
    assert all(layout.codec is codec for codec, layout in LAYOUTS.items())


@settings(max_examples=500)
@given(codec=st.sampled_from(CODECS), frame=st.binary(max_size=24))
def test_prefix_function_is_the_readable_rule(codec: Codec, frame: bytes) -> None:
    assert _outcome(prefix_function(codec), frame) == _outcome(partial(clear_prefix_length, codec), frame)


def _outcome(rule: Callable[[bytes], int], frame: bytes) -> int | str:
    try:
        return rule(frame)
    except InvalidFrame:
        return "invalid"


@settings(max_examples=500)
@given(codec=st.sampled_from(CODECS), frame=st.binary(max_size=24))
def test_keyframe_function_is_the_readable_rule(codec: Codec, frame: bytes) -> None:
    assert keyframe_function(codec)(frame) is is_keyframe(codec, frame)


@pytest.mark.parametrize(
    ("codec", "frame", "prefix", "key"),
    [
        (Codec.VP8, b"", 1, False),
        (Codec.VP8, b"\x10", 10, True),  # P bit 0: key frame
        (Codec.VP8, b"\x31", 3, False),  # P bit 1: delta frame
        (Codec.VP8, b"\xfe", 10, True),
        (Codec.OPUS, b"", 1, True),
        (Codec.OPUS, b"\x78\x01", 1, True),
        (Codec.GENERIC, b"\x10", 0, False),
    ],
)
def test_known_prefixes(codec: Codec, frame: bytes, prefix: int, key: bool) -> None:
    assert clear_prefix_length(codec, frame) == prefix_function(codec)(frame) == prefix
    assert is_keyframe(codec, frame) is keyframe_function(codec)(frame) is key


def test_video_layouts_and_names_map_to_layouts() -> None:
    assert [c for c in Codec if LAYOUTS[c].video] == [Codec.VP8, Codec.H264]
    assert layout_of("video/VP8").codec is Codec.VP8
    assert layout_of("audio/opus").codec is Codec.OPUS
    assert codec_from_name("video/H264") is Codec.H264
    assert codec_from_name("video/VP9") is Codec.GENERIC


def test_e2ee_negotiates_exactly_the_video_codecs_with_a_layout() -> None:
    assert all(e2ee_supported(m) for m in ("video/VP8", "video/H264", "audio/opus", "audio/PCMU"))
    assert not e2ee_supported("video/VP9") and not e2ee_supported("video/AV1")
