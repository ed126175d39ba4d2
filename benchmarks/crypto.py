"""Cost of sealrtc's frame encryption against the bare OpenSSL primitives doing the same work.

Run: ``python benchmarks/crypto.py`` (no network; no namespace needed).
``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

"sealrtc" is ``FrameEncryptor.encrypt`` + ``FrameDecryptor.decrypt`` (generic layout, default
suite AES-256-CTR + HMAC-SHA-512/80, replay window, statistics). "bare" is what any
implementation must at least do per frame with pyca/cryptography: AES-256-CTR over the frame and
HMAC-SHA-512 over it on the way out; HMAC verify and AES-256-CTR on the way in, with keys already
derived. Both run interleaved in the same process; best of several repeats is reported.
"""

from __future__ import annotations

import argparse
import hmac as std_hmac
import os
import time
from collections.abc import Callable, Iterator

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rich.console import Console
from rich.table import Table

from machine import describe  # benchmarks/machine.py
from sealrtc import FrameDecryptor, FrameEncryptor, SharedSecret

SIZES = [100, 1200, 10_000, 64_000]


def bare_round_trip(enc_key: bytes, auth_key: bytes) -> Callable[[bytes, int], bytes]:
    def run(frame: bytes, ctr: int) -> bytes:
        nonce = ctr.to_bytes(12, "big")
        aad = b"\x8f" + ctr.to_bytes(8, "big")
        c = Cipher(algorithms.AES(enc_key), modes.CTR(nonce + bytes(4))).encryptor()
        ct = c.update(frame) + c.finalize()
        h = hmac.HMAC(auth_key, hashes.SHA512())
        h.update(aad + ct)
        tag = h.finalize()[:10]
        # receive side
        h = hmac.HMAC(auth_key, hashes.SHA512())
        h.update(aad + ct)
        if not std_hmac.compare_digest(h.finalize()[:10], tag):
            raise AssertionError("tag")
        d = Cipher(algorithms.AES(enc_key), modes.CTR(nonce + bytes(4))).decryptor()
        return d.update(ct) + d.finalize()

    return run


def time_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="best-of repeats (default 5)")
    parser.add_argument("--budget", type=float, default=0.2, help="seconds per measurement (default 0.2)")
    args = parser.parse_args()

    keys = SharedSecret(os.urandom(16).hex())
    bare = bare_round_trip(os.urandom(32), os.urandom(64))
    table = Table(title="sealrtc frame crypto vs bare OpenSSL (encrypt + decrypt, µs per frame)")
    for col in ("frame", "sealrtc µs", "bare µs", "ratio", "sealrtc MB/s"):
        table.add_column(col, justify="right")
    for size in SIZES:
        frame = os.urandom(size)
        enc, dec = FrameEncryptor(keys), FrameDecryptor(keys)
        counter = iter(range(1 << 62))
        n = max(50, int(args.budget / (2e-5 + size * 2e-9)))
        best_seal, best_bare = float("inf"), float("inf")

        def sealed(enc: FrameEncryptor = enc, dec: FrameDecryptor = dec, frame: bytes = frame) -> bytes:
            return dec.decrypt(enc.encrypt(frame))

        def primitive(frame: bytes = frame, counter: Iterator[int] = counter) -> bytes:
            return bare(frame, next(counter))

        for _ in range(args.repeats):
            best_seal = min(best_seal, time_per_call(sealed, n))
            best_bare = min(best_bare, time_per_call(primitive, n))
        table.add_row(
            f"{size:,} B",
            f"{best_seal * 1e6:.1f}",
            f"{best_bare * 1e6:.1f}",
            f"{best_seal / best_bare:.2f}x",
            f"{size / best_seal / 1e6:.0f}",
        )
    console = Console(width=140)
    console.print(describe())
    console.print(table)


if __name__ == "__main__":
    main()
