"""RFC 9605 SFrame: header, cipher suites, key schedule, AEAD and whole-frame encrypt/decrypt.

Sans-I/O: bytes in, bytes out, no codecs, no RTP, no asyncio.
"""

from __future__ import annotations

from ..errors import MalformedFrame
from .aead import AeadKey, aead_decrypt, aead_encrypt
from .header import MAX_VALUE, HeaderReader, decode_header, encode_header, header_encoder
from .schedule import derive_key_salt, make_nonce
from .suites import DEFAULT_SUITE, CipherSuite, SuiteParams, suite_params

__all__ = [
    "DEFAULT_SUITE",
    "MAX_VALUE",
    "AeadKey",
    "CipherSuite",
    "HeaderReader",
    "SuiteParams",
    "aead_decrypt",
    "aead_encrypt",
    "decode_header",
    "decrypt",
    "derive_key_salt",
    "encode_header",
    "encrypt",
    "header_encoder",
    "make_nonce",
    "suite_params",
]


def encrypt(suite: int, base_key: bytes, kid: int, ctr: int, plaintext: bytes, metadata: bytes = b"") -> bytes:
    """Return the SFrame ciphertext ``header || ciphertext || tag`` (aad = header || metadata).

    The caller owns CTR uniqueness; :class:`sealrtc.FrameEncryptor` does that for media.
    """
    key, salt = derive_key_salt(suite, kid, base_key)
    header = encode_header(kid, ctr)
    return header + AeadKey(suite, key).seal(make_nonce(salt, ctr), header + metadata, plaintext)


def decrypt(suite: int, base_key: bytes, data: bytes, metadata: bytes = b"") -> bytes:
    """Verify and decrypt an SFrame ciphertext made with ``base_key``."""
    kid, ctr, header_length = decode_header(data)
    params = suite_params(suite)
    if len(data) < header_length + params.nt:
        raise MalformedFrame("frame shorter than header and tag")
    key, salt = derive_key_salt(suite, kid, base_key)
    header = data[:header_length]
    return AeadKey(suite, key).open(make_nonce(salt, ctr), header + metadata, data[header_length:])
