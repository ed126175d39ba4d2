"""RFC 9605 known answers (both directions), header round trips and malformed input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sealrtc import sframe
from sealrtc.errors import AuthenticationFailed, DecryptError, MalformedFrame
from sealrtc.sframe import CipherSuite, HeaderReader

pytestmark = pytest.mark.unit

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "sframe.json").read_text())
U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


def test_cipher_suite_values() -> None:
    assert [int(s) for s in CipherSuite] == list(range(1, 9))
    assert sframe.DEFAULT_SUITE is CipherSuite.AES_256_CTR_HMAC_SHA512_80


@pytest.mark.parametrize("vector", VECTORS["header"], ids=lambda v: v["header"])
def test_header_vectors(vector: dict[str, Any]) -> None:
    header = bytes.fromhex(vector["header"])
    assert sframe.encode_header(vector["kid"], vector["ctr"]) == header
    assert sframe.decode_header(header) == (vector["kid"], vector["ctr"], len(header))


def test_header_c1_grid() -> None:
    """RFC 9605 C.1: KID x CTR over {0, 1, 2^(8n)-1, 2^(8n) for n=1..7, 2^64-1}."""
    values = [0, 1, *(v for n in range(1, 8) for v in ((1 << 8 * n) - 1, 1 << 8 * n)), (1 << 64) - 1]
    assert len(values) == 17
    for kid in values:
        for ctr in values:
            header = sframe.encode_header(kid, ctr)
            assert sframe.decode_header(header + b"rest") == (kid, ctr, len(header))


@given(U64, U64)
def test_header_round_trip(kid: int, ctr: int) -> None:
    header = sframe.encode_header(kid, ctr)
    assert 1 <= len(header) <= 17
    assert sframe.decode_header(header) == (kid, ctr, len(header))


@pytest.mark.parametrize("bad", ["", "88", "8001", "8000", "0800", "0805", "9000ff", "f0ff"])
def test_header_malformed(bad: str) -> None:
    with pytest.raises(MalformedFrame):
        sframe.decode_header(bytes.fromhex(bad))


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_header_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError):
        sframe.encode_header(value, 0)
    with pytest.raises(ValueError):
        sframe.encode_header(0, value)


@pytest.mark.parametrize("vector", VECTORS["aead"], ids=lambda v: str(v["cipher_suite"]))
def test_aead_vectors(vector: dict[str, Any]) -> None:
    args = [bytes.fromhex(vector[k]) for k in ("key", "nonce", "aad")]
    pt, ct = bytes.fromhex(vector["pt"]), bytes.fromhex(vector["ct"])
    assert sframe.aead_encrypt(vector["cipher_suite"], *args, pt) == ct
    assert sframe.aead_decrypt(vector["cipher_suite"], *args, ct) == pt
    tampered = ct[:-1] + bytes([ct[-1] ^ 1])
    with pytest.raises(AuthenticationFailed):
        sframe.aead_decrypt(vector["cipher_suite"], *args, tampered)


@pytest.mark.parametrize("vector", VECTORS["sframe"], ids=lambda v: str(v["cipher_suite"]))
def test_sframe_vectors(vector: dict[str, Any]) -> None:
    suite = vector["cipher_suite"]
    base_key = bytes.fromhex(vector["base_key"])
    metadata = bytes.fromhex(vector["metadata"])
    pt, ct = bytes.fromhex(vector["pt"]), bytes.fromhex(vector["ct"])
    key, salt = sframe.derive_key_salt(suite, vector["kid"], base_key)
    assert key.hex() == vector["sframe_key"]
    assert salt.hex() == vector["sframe_salt"]
    assert sframe.make_nonce(salt, vector["ctr"]).hex() == vector["nonce"]
    assert sframe.encrypt(suite, base_key, vector["kid"], vector["ctr"], pt, metadata) == ct
    assert sframe.decrypt(suite, base_key, ct, metadata) == pt
    with pytest.raises(AuthenticationFailed):
        sframe.decrypt(suite, base_key, ct, metadata + b"x")


@pytest.mark.parametrize("suite", list(CipherSuite))
@given(kid=U64, ctr=U64, pt=st.binary(max_size=300), metadata=st.binary(max_size=20))
def test_round_trip_all_suites(suite: CipherSuite, kid: int, ctr: int, pt: bytes, metadata: bytes) -> None:
    base_key = b"k" * 16
    ct = sframe.encrypt(suite, base_key, kid, ctr, pt, metadata)
    assert sframe.decrypt(suite, base_key, ct, metadata) == pt


@given(data=st.binary(max_size=80), suite=st.sampled_from(list(CipherSuite)))
def test_random_bytes_are_rejected(data: bytes, suite: CipherSuite) -> None:
    with pytest.raises(DecryptError):
        sframe.decrypt(suite, b"k" * 16, data)


@given(pt=st.binary(min_size=1, max_size=64), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_bit_flip_is_rejected(pt: bytes, position: int, bit: int) -> None:
    ct = bytearray(sframe.encrypt(CipherSuite.AES_256_CTR_HMAC_SHA512_80, b"k" * 32, 0x1234, 99, pt))
    ct[position % len(ct)] ^= 1 << bit
    with pytest.raises(DecryptError):
        sframe.decrypt(CipherSuite.AES_256_CTR_HMAC_SHA512_80, b"k" * 32, bytes(ct))


def test_unknown_suite_is_local_error() -> None:
    with pytest.raises(ValueError):
        sframe.suite_params(0)
    with pytest.raises(ValueError):
        sframe.AeadKey(CipherSuite.AES_128_GCM_SHA256_128, b"short")


def _read_or_error(read: Callable[[bytes, int], tuple[int, int, int]], data: bytes, offset: int) -> object:
    try:
        return read(data, offset)
    except MalformedFrame as exc:
        return str(exc)


def _decode_end(data: bytes, offset: int) -> tuple[int, int, int]:
    kid, ctr, length = sframe.decode_header(data, offset)
    return kid, ctr, offset + length


VALUES = st.one_of(st.integers(0, 9), st.integers(0, 2**16), st.integers(0, 2**64 - 1))


@settings(max_examples=1000)
@given(
    kid=VALUES,
    ctr=VALUES,
    other_ctr=VALUES,
    prefix=st.binary(max_size=3),
    edits=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 12),
    tail=st.binary(max_size=4),
)
# Handed to decode_header whatever the memory: a non-minimal CTR (leading zero byte), a 1-byte CTR
# below 8, a CTR one byte short, another KID of the same length, another KID length, empty input.
@example(kid=2**40, ctr=300, other_ctr=300, prefix=b"", edits=[(7, 0)], cut=0, tail=b"")
@example(kid=2**40, ctr=300, other_ctr=300, prefix=b"", edits=[(0, 0xD8), (7, 3)], cut=0, tail=b"")
@example(kid=2**40, ctr=300, other_ctr=300, prefix=b"", edits=[], cut=1, tail=b"")
@example(kid=2**40, ctr=300, other_ctr=300, prefix=b"", edits=[(3, 0x55)], cut=0, tail=b"")
@example(kid=2**40, ctr=300, other_ctr=300, prefix=b"", edits=[(0, 0x99)], cut=0, tail=b"")
@example(kid=5, ctr=300, other_ctr=2, prefix=b"\x01", edits=[], cut=0, tail=b"")
@example(kid=5, ctr=300, other_ctr=300, prefix=b"", edits=[], cut=3, tail=b"")
def test_header_reader_matches_decode_header(
    kid: int, ctr: int, other_ctr: int, prefix: bytes, edits: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    """After remembering a header, the reader parses anything (that KID's headers, edited,
    truncated, others) exactly as decode_header does: same values, same errors."""
    reader = HeaderReader()
    remembered = prefix + sframe.encode_header(kid, ctr)
    assert reader.read(remembered, len(prefix)) == _decode_end(remembered, len(prefix))
    reader.remember(remembered, len(prefix), kid)
    assert reader.kid == kid
    data = bytearray(prefix + sframe.encode_header(kid, other_ctr))
    for position, value in edits:
        data[position % len(data)] = value
    mutated = bytes(data[: max(0, len(data) - cut)]) + (tail if cut == 0 else b"")
    for offset in {len(prefix), 0, len(mutated)}:
        assert _read_or_error(reader.read, mutated, offset) == _read_or_error(_decode_end, mutated, offset)
    assert reader.read(remembered, len(prefix)) == _decode_end(remembered, len(prefix))  # memory intact


@given(kid=VALUES, data=st.binary(max_size=20), offset=st.integers(0, 20))
def test_header_reader_matches_decode_header_on_arbitrary_bytes(kid: int, data: bytes, offset: int) -> None:
    reader = HeaderReader()
    header = sframe.encode_header(kid, 0)
    reader.remember(header, 0, kid)
    assert _read_or_error(reader.read, data, offset) == _read_or_error(_decode_end, data, offset)
    assert _read_or_error(HeaderReader().read, data, offset) == _read_or_error(_decode_end, data, offset)
