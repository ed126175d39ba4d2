"""Keying v1: derivation, fingerprint, KIDs, rotation with grace, decrypt-only secrets."""

from __future__ import annotations

import unicodedata

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from sealrtc import InvalidSecret, SharedSecret
from sealrtc.keys import derive_base_key

from .conftest import FakeClock

pytestmark = pytest.mark.unit


def test_derivation_matches_design() -> None:
    secret, context = "caf\u0065\u0301", b"room-42"  # decomposed: NFC must normalise it
    expected = PBKDF2HMAC(hashes.SHA256(), 32, b"sealrtc/v1/shared-secret" + context, 100_000).derive(
        unicodedata.normalize("NFC", secret).encode()
    )
    base = derive_base_key(secret, context)
    assert base.material == expected
    assert base.fingerprint == HKDF(hashes.SHA256(), 1, None, b"sealrtc/v1/fingerprint").derive(expected)[0]
    assert derive_base_key("caf\u00e9", context).material == expected
    assert derive_base_key(secret, b"other").material != expected


def test_derivation_is_cached() -> None:
    assert derive_base_key("cached secret", b"c") is derive_base_key("cached secret", b"c")


@pytest.mark.parametrize("bad", ["", None, b"bytes", 42, ["x"], " ", "\t\n", "\u3000", "\ud800x", "ok\udfff"])
def test_invalid_secrets(bad: object) -> None:
    with pytest.raises(InvalidSecret) as info:
        SharedSecret(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    keys = SharedSecret("fine")
    with pytest.raises(InvalidSecret):
        keys.set_secret(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSecret):
        keys.add_decryption_secret(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["\ud800hunter2", "hunter2\udcff"])
def test_surrogate_secret_error_carries_no_secret(bad: str) -> None:
    """Issue 11.10: a lone surrogate gave UnicodeEncodeError quoting the character."""
    with pytest.raises(InvalidSecret) as info:
        SharedSecret(bad)
    assert "hunter2" not in str(info.value) and "\\u" not in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert all(ch not in str(info.value) for ch in bad if "\ud800" <= ch <= "\udfff")


def test_secret_never_in_repr_or_errors() -> None:
    secret = "hunter2-very-secret"
    keys = SharedSecret(secret)
    assert secret not in repr(keys) and secret not in str(vars(keys))
    assert "hunter2" not in repr(keys.current)


def test_sender_kids_carry_fingerprint_and_differ() -> None:
    keys = SharedSecret("s")
    kids = {keys.new_sender_kid() for _ in range(100)}
    assert len(kids) == 100
    for kid in kids:
        assert kid & 0xFF == keys.current.fingerprint
        assert 1 <= kid >> 8 < 1 << 48


def test_rotation_grace_and_expiry(clock: FakeClock) -> None:
    keys = SharedSecret("old", grace=10, clock=clock)
    old = keys.current
    rotations: list[int] = []
    keys.add_rotation_listener(lambda: rotations.append(keys.generation))
    keys.set_secret("new")
    assert rotations == [1]
    assert keys.current is not old
    assert keys.is_usable(old)
    clock.advance(9.9)
    assert old in keys.decryption_keys()
    clock.advance(0.2)
    assert not keys.is_usable(old)
    assert keys.decryption_keys() == [keys.current]


def test_same_secret_is_not_a_rotation() -> None:
    keys = SharedSecret("same")
    keys.set_secret("same")
    assert keys.generation == 0


def test_decrypt_only_secrets_are_bounded() -> None:
    keys = SharedSecret("main")
    for i in range(20):
        keys.add_decryption_secret(f"next-{i}")
    assert len(keys.decryption_keys()) == 1 + 8
    keys.set_secret("next-19")
    assert keys.decryption_keys().count(keys.current) == 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        SharedSecret("s", suite=99)
    with pytest.raises(ValueError):
        SharedSecret("s", grace=-1)
    with pytest.raises(TypeError):
        SharedSecret("s", context="str")  # type: ignore[arg-type]
