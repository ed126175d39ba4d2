"""The embedded relay: a WHIP/WHEP SFU that forwards ciphertext frames it cannot read.

It never holds key material and never imports :mod:`sealrtc.keys`.
"""

from .server import Relay, RelayStats

__all__ = ["Relay", "RelayStats"]
