"""sealrtc: end-to-end encrypted WebRTC media for machines, on aiortc, with SFrame (RFC 9605).

The sans-I/O core (``sframe``, ``keys``, ``layout``, ``transform``) imports no asyncio or aiortc.
Every public name is loaded lazily, on first use (PEP 562): importing a subpackage such as
:mod:`sealrtc.relay` — which must never hold keys — does not drag :mod:`sealrtc.keys` in through
this package's ``__init__``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .rtc import E2EESession, EncodedFrame, attach
    from .sframe import CipherSuite
    from .transform import FrameDecryptor, FrameEncryptor, SecretMatch, SecretMismatch

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

_ERRORS = (
    "AuthenticationFailed",
    "DecryptError",
    "InvalidFrame",
    "InvalidSecret",
    "MalformedFrame",
    "ReplayedFrame",
    "SealError",
    "UnknownKey",
    "UnsupportedCodec",
)
_LAZY: dict[str, str] = {
    **dict.fromkeys(_ERRORS, ".errors"),
    "SharedSecret": ".keys",
    "CipherSuite": ".sframe",
    "FrameDecryptor": ".transform",
    "FrameEncryptor": ".transform",
    "SecretMatch": ".transform",
    "SecretMismatch": ".transform",
    "attach": ".rtc",
    "E2EESession": ".rtc",
    "EncodedFrame": ".rtc",
}


_SUBMODULES = frozenset({"errors", "keys", "layout", "ratelimit", "replay", "sframe", "transform"})
"""Reachable as attributes after a bare ``import sealrtc``, as when this module imported them."""


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sealrtc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


logging.getLogger(__name__).addHandler(logging.NullHandler())
