"""The SFrame key schedule (RFC 9605 4.4.2) and nonce formation (4.4.3, erratum 8321)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .suites import suite_params

KEY_LABEL = b"SFrame 1.0 Secret key "
SALT_LABEL = b"SFrame 1.0 Secret salt "


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869): HMAC(salt, ikm); an empty salt means HashLen zero bytes."""
    h = hmac.HMAC(salt or b"\x00" * algorithm.digest_size, algorithm)
    h.update(ikm)
    return h.finalize()


def derive_key_salt(suite: int, kid: int, base_key: bytes) -> tuple[bytes, bytes]:
    """Return ``(sframe_key, sframe_salt)`` for ``kid`` under ``base_key``."""
    params = suite_params(suite)
    secret = hkdf_extract(params.hash_algorithm(), b"", base_key)
    suffix = kid.to_bytes(8, "big") + int(params.suite).to_bytes(2, "big")
    key = HKDFExpand(params.hash_algorithm(), params.nk, KEY_LABEL + suffix).derive(secret)
    salt = HKDFExpand(params.hash_algorithm(), params.nn, SALT_LABEL + suffix).derive(secret)
    return key, salt


def make_nonce(salt: bytes, ctr: int) -> bytes:
    """nonce = salt XOR CTR encoded big-endian in ``len(salt)`` bytes."""
    n = len(salt)
    return (int.from_bytes(salt, "big") ^ ctr).to_bytes(n, "big")
