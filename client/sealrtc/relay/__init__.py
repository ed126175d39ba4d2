"""The embedded relay: a WHIP/WHEP SFU that forwards ciphertext frames it cannot read.

It never holds key material and never imports :mod:`sealrtc.keys` — not in its source, and not
at run time through package imports (a test checks ``sys.modules`` in a fresh interpreter).
"""

from .auth import PUBLISH_TOKEN_ENV, SUBSCRIBE_TOKEN_ENV, BearerTokens, TokenError, load_tokens
from .server import Relay, RelayOptions, RelayStats, start_relay

__all__ = [
    "PUBLISH_TOKEN_ENV",
    "SUBSCRIBE_TOKEN_ENV",
    "BearerTokens",
    "Relay",
    "RelayOptions",
    "RelayStats",
    "TokenError",
    "load_tokens",
    "start_relay",
]
