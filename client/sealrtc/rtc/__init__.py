"""The aiortc adapter: ``attach``, ``E2EESession``, ``EncodedFrame``.

``attach``/``E2EESession`` load lazily, so that a key-less user of :mod:`sealrtc.rtc` (the relay's
pass-through) never loads :mod:`sealrtc.keys`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .frames import EncodedFrame

if TYPE_CHECKING:
    from .session import E2EESession, TrackSecretEvent, attach
    from .stats import ReceiveTrackStats, SendTrackStats

__all__ = ["E2EESession", "EncodedFrame", "ReceiveTrackStats", "SendTrackStats", "TrackSecretEvent", "attach"]


def __getattr__(name: str) -> Any:
    if name in ("E2EESession", "TrackSecretEvent", "attach"):
        return getattr(importlib.import_module(".session", __name__), name)
    if name in ("ReceiveTrackStats", "SendTrackStats"):
        return getattr(importlib.import_module(".stats", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
