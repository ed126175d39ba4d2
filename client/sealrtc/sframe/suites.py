"""Cipher suites: RFC 9605 0x0001-0x0005 plus AES-256-CTR-HMAC-SHA-512 0x0006-0x0008."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes


class CipherSuite(IntEnum):
    """SFrame cipher suite identifiers (2 bytes on the wire of the key schedule)."""

    AES_128_CTR_HMAC_SHA256_80 = 1
    AES_128_CTR_HMAC_SHA256_64 = 2
    AES_128_CTR_HMAC_SHA256_32 = 3
    AES_128_GCM_SHA256_128 = 4
    AES_256_GCM_SHA512_128 = 5
    AES_256_CTR_HMAC_SHA512_80 = 6
    AES_256_CTR_HMAC_SHA512_64 = 7
    AES_256_CTR_HMAC_SHA512_32 = 8


DEFAULT_SUITE = CipherSuite.AES_256_CTR_HMAC_SHA512_80


@dataclass(frozen=True)
class SuiteParams:
    """Sizes of a suite (RFC 9605 table 1 names). ``nka`` is 0 for the GCM suites."""

    suite: CipherSuite
    hash_name: str
    nh: int
    nka: int
    nk: int
    nn: int
    nt: int

    @property
    def is_ctr_hmac(self) -> bool:
        return self.nka > 0

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self.hash_name == "sha256" else hashes.SHA512()


_PARAMS: dict[CipherSuite, SuiteParams] = {
    CipherSuite.AES_128_CTR_HMAC_SHA256_80: SuiteParams(
        CipherSuite.AES_128_CTR_HMAC_SHA256_80, "sha256", 32, 16, 48, 12, 10
    ),
    CipherSuite.AES_128_CTR_HMAC_SHA256_64: SuiteParams(
        CipherSuite.AES_128_CTR_HMAC_SHA256_64, "sha256", 32, 16, 48, 12, 8
    ),
    CipherSuite.AES_128_CTR_HMAC_SHA256_32: SuiteParams(
        CipherSuite.AES_128_CTR_HMAC_SHA256_32, "sha256", 32, 16, 48, 12, 4
    ),
    CipherSuite.AES_128_GCM_SHA256_128: SuiteParams(CipherSuite.AES_128_GCM_SHA256_128, "sha256", 32, 0, 16, 12, 16),
    CipherSuite.AES_256_GCM_SHA512_128: SuiteParams(CipherSuite.AES_256_GCM_SHA512_128, "sha512", 64, 0, 32, 12, 16),
    CipherSuite.AES_256_CTR_HMAC_SHA512_80: SuiteParams(
        CipherSuite.AES_256_CTR_HMAC_SHA512_80, "sha512", 64, 32, 96, 12, 10
    ),
    CipherSuite.AES_256_CTR_HMAC_SHA512_64: SuiteParams(
        CipherSuite.AES_256_CTR_HMAC_SHA512_64, "sha512", 64, 32, 96, 12, 8
    ),
    CipherSuite.AES_256_CTR_HMAC_SHA512_32: SuiteParams(
        CipherSuite.AES_256_CTR_HMAC_SHA512_32, "sha512", 64, 32, 96, 12, 4
    ),
}


def suite_params(suite: int) -> SuiteParams:
    """Return the parameters of ``suite``; unknown values raise ``ValueError`` (local misuse)."""
    try:
        return _PARAMS[CipherSuite(suite)]
    except ValueError:
        raise ValueError(f"unknown SFrame cipher suite {suite!r}") from None
