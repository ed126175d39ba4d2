"""Does a stream look like frame-format-v1 ciphertext? (a plain receiver's diagnosis)

A receiver without E2EE cannot verify anything, but SFrame leaves a signature no codec produces
by chance: after the clear prefix, a minimal SFrame header whose KID stays the same and whose CTR
goes up by one from frame to frame. Ten such frames in a row: the media is encrypted.
"""

from __future__ import annotations

from ..errors import MalformedFrame
from ..layout import Codec, clear_prefix_length
from ..sframe import decode_header

CONSECUTIVE = 10


class EncryptionSniffer:
    __slots__ = ("_last", "_run", "codec", "looks_encrypted")

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._last: tuple[int, int] | None = None
        self._run = 0
        self.looks_encrypted = False

    def frame(self, data: bytes) -> bool:
        """Feed one received frame; return :attr:`looks_encrypted`."""
        if self.looks_encrypted:
            return True
        try:
            kid, ctr, _ = decode_header(data, clear_prefix_length(self.codec, data))
        except (MalformedFrame, IndexError, ValueError):
            self._last, self._run = None, 0
            return False
        last = self._last
        self._run = self._run + 1 if last is not None and last == (kid, ctr - 1) else 0
        self._last = (kid, ctr)
        if self._run + 1 >= CONSECUTIVE:
            self.looks_encrypted = True
        return self.looks_encrypted
