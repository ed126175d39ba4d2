"""sealrtc: end-to-end encrypted WebRTC media for machines, on aiortc, with SFrame (RFC 9605).

The sans-I/O core (``sframe``, ``keys``, ``layout``, ``transform``) imports no asyncio or aiortc.
The aiortc adapter (``attach``, ``EncodedFrame``) is imported lazily on first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationFailed,
    DecryptError,
    InvalidFrame,
    InvalidSecret,
    MalformedFrame,
    ReplayedFrame,
    SealError,
    UnknownKey,
    UnsupportedCodec,
)
from .keys import SharedSecret
from .sframe import CipherSuite
from .transform import FrameDecryptor, FrameEncryptor, SecretMatch, SecretMismatch

if TYPE_CHECKING:
    from .rtc import E2EESession, EncodedFrame, attach

__version__ = "0.1.0"

__all__ = [
    "AuthenticationFailed",
    "CipherSuite",
    "DecryptError",
    "E2EESession",
    "EncodedFrame",
    "FrameDecryptor",
    "FrameEncryptor",
    "InvalidFrame",
    "InvalidSecret",
    "MalformedFrame",
    "ReplayedFrame",
    "SealError",
    "SecretMatch",
    "SecretMismatch",
    "SharedSecret",
    "UnknownKey",
    "UnsupportedCodec",
    "attach",
]

_LAZY = {"attach", "E2EESession", "EncodedFrame"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import rtc

        return getattr(rtc, name)
    raise AttributeError(f"module 'sealrtc' has no attribute {name!r}")


logging.getLogger(__name__).addHandler(logging.NullHandler())
