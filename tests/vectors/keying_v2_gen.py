"""Independent generator of tests/vectors/keying_v2.json (imports nothing from sealrtc).

Run: ``python tests/vectors/keying_v2_gen.py > tests/vectors/keying_v2.json``. It follows issue
19's definition of keying v2 with nothing but ``cryptography``'s HKDF (RFC 5869).
"""

import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = bytes(range(32))


def hkdf(h: hashes.HashAlgorithm, ikm: bytes, info: bytes, n: int) -> bytes:
    return HKDF(h, n, None, info).derive(ikm)  # salt None = "" = HashLen zero bytes


cases = []
for suite, h in ((0x0001, hashes.SHA256()), (0x0006, hashes.SHA512())):
    e = hkdf(h, ROOT, b"sealrtc/v2/epoch", h.digest_size)
    epochs = []
    for _ in range(4):
        epochs.append(e.hex())
        e = hkdf(h, e, b"SFrame 1.0 Ratchet", h.digest_size)
    fp2 = hkdf(h, ROOT, b"sealrtc/v2/fingerprint", 1)[0]
    cases.append({"suite": suite, "root": ROOT.hex(), "epochs": epochs, "fp2": fp2})
kid = {"sender_tag": 0x0102030405, "epoch": 511, "fp2": 0xAB, "kid": hex(0x0102030405 << 16 | (511 % 256) << 8 | 0xAB)}
print(
    json.dumps(
        {
            "provenance": "computed by tests/vectors/keying_v2_gen.py (cryptography's HKDF only, no sealrtc code)",
            "cases": cases,
            "kid": kid,
        },
        indent=2,
    )
)
