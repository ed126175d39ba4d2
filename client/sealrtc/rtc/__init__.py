"""The aiortc adapter: ``attach``, ``E2EESession``, ``EncodedFrame``."""

from .frames import EncodedFrame
from .session import E2EESession, TrackSecretEvent, attach

__all__ = ["E2EESession", "EncodedFrame", "TrackSecretEvent", "attach"]
