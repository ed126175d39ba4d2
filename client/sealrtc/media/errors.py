"""The one error of the media package."""

from __future__ import annotations

from ..errors import SealError


class MediaError(SealError):
    """A media file or stream cannot be used; the message is one line, fit for a CLI to print."""
