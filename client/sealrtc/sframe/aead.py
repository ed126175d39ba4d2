"""The SFrame AEADs: AES-CTR + truncated HMAC (RFC 9605 4.5.1) and AES-GCM (RFC 5116).

:class:`AeadKey` holds one ``sframe_key`` with its expensive state prepared once (split subkeys,
a keyed HMAC to copy, an ``AESGCM`` object), so the per-frame path does no key setup.
Only OpenSSL primitives from ``cryptography`` are used; tags are compared in constant time and
verified before anything is decrypted.
"""

from __future__ import annotations

import hmac as _stdlib_hmac
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AuthenticationFailed, MalformedFrame
from .suites import SuiteParams, suite_params

_ZERO_COUNTER = b"\x00\x00\x00\x00"
_LENGTHS = struct.Struct(">QQ")


class AeadKey:
    """One SFrame AEAD key with prepared cipher state (never printed: no key in its repr)."""

    __slots__ = ("_ctr_ctx", "_gcm", "_mac", "_nt", "_nt_bytes", "params")

    def __init__(self, suite: int, key: bytes) -> None:
        self.params: SuiteParams = suite_params(suite)
        if len(key) != self.params.nk:
            raise ValueError(f"SFrame key for suite {self.params.suite.name} must be {self.params.nk} bytes")
        self._nt = self.params.nt
        self._nt_bytes = self._nt.to_bytes(8, "big")
        self._gcm: AESGCM | None = None
        self._mac: hmac.HMAC | None = None
        self._ctr_ctx: Any = None
        if self.params.is_ctr_hmac:
            # One AES-CTR context per key, re-armed per frame with reset_nonce(): no per-frame
            # cipher setup. CTR is a stream mode, so update() returns every byte at once.
            self._ctr_ctx = Cipher(algorithms.AES(key[: self.params.nka]), modes.CTR(bytes(16))).encryptor()
            self._mac = hmac.HMAC(key[self.params.nka :], self.params.hash_algorithm())
        else:
            self._gcm = AESGCM(key)

    def __repr__(self) -> str:
        return f"<AeadKey suite={self.params.suite.name}>"

    @property
    def tag_length(self) -> int:
        return self._nt

    def _tag(self, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
        assert self._mac is not None
        mac = self._mac.copy()
        # One update: each call into OpenSSL costs more than copying a frame (cold caches at 30 fps).
        mac.update(b"".join((_LENGTHS.pack(len(aad), len(ct)), self._nt_bytes, nonce, aad, ct)))
        return mac.finalize()[: self._nt]

    def _ctr(self, nonce: bytes, data: bytes) -> bytes:
        ctx = self._ctr_ctx
        ctx.reset_nonce(nonce + _ZERO_COUNTER)
        out: bytes = ctx.update(data)
        return out

    def seal(self, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        """Return ``ciphertext || tag``."""
        return b"".join(self.seal_parts(nonce, aad, plaintext))

    def seal_parts(self, nonce: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        """:meth:`seal` as ``(ciphertext, tag)``, for callers that join them with more bytes.
        (AES-GCM returns them joined: the tag part is then empty.)"""
        if self._gcm is not None:
            return self._gcm.encrypt(nonce, plaintext, aad), b""
        # _ctr and _tag inlined: this runs once per frame.
        ctx = self._ctr_ctx
        ctx.reset_nonce(nonce + _ZERO_COUNTER)
        ct: bytes = ctx.update(plaintext)
        mac = self._mac.copy()  # type: ignore[union-attr]
        mac.update(b"".join((_LENGTHS.pack(len(aad), len(ct)), self._nt_bytes, nonce, aad, ct)))
        return ct, mac.finalize()[: self._nt]

    def open(self, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        """Verify the tag of ``ciphertext || tag``, then decrypt; raise on any failure."""
        if len(data) < self._nt:
            raise MalformedFrame("ciphertext shorter than its tag")
        if self._gcm is not None:
            try:
                return self._gcm.decrypt(nonce, data, aad)
            except InvalidTag:
                raise AuthenticationFailed("tag did not verify") from None
        split = len(data) - self._nt
        return self.open_parts(nonce, aad, data[:split], data[split:])

    def open_joined(self, nonce: bytes, aad: bytes, ct: bytes, tag: bytes) -> bytes:
        """:meth:`open` with the arguments of :meth:`open_parts` (joins them first)."""
        return self.open(nonce, aad, ct + tag)

    def open_parts(self, nonce: bytes, aad: bytes, ct: bytes, tag: bytes) -> bytes:
        """:meth:`open` with the ciphertext and the tag given apart (``tag`` is ``nt`` bytes for
        CTR+HMAC suites; for AES-GCM ``ct`` is ``ciphertext || tag`` and ``tag`` is empty)."""
        if self._gcm is not None:
            try:
                return self._gcm.decrypt(nonce, ct + tag, aad)
            except InvalidTag:
                raise AuthenticationFailed("tag did not verify") from None
        # _tag and _ctr inlined: this runs once per frame.
        mac = self._mac.copy()  # type: ignore[union-attr]
        mac.update(b"".join((_LENGTHS.pack(len(aad), len(ct)), self._nt_bytes, nonce, aad, ct)))
        if not _stdlib_hmac.compare_digest(mac.finalize()[: self._nt], tag):
            raise AuthenticationFailed("tag did not verify")
        ctx = self._ctr_ctx
        ctx.reset_nonce(nonce + _ZERO_COUNTER)
        out: bytes = ctx.update(ct)
        return out


def aead_encrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """RFC 9605 ``AEAD.Encrypt``: ``ciphertext || tag``."""
    return AeadKey(suite, key).seal(nonce, aad, plaintext)


def aead_decrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    """RFC 9605 ``AEAD.Decrypt``; raises :class:`AuthenticationFailed` on a bad tag."""
    return AeadKey(suite, key).open(nonce, aad, ciphertext)
