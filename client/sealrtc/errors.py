"""Exceptions raised by sealrtc.

Split by fault, as h11 does: :class:`DecryptError` and its subclasses describe what a *remote*
peer (or the network, or a tampering server) sent — the receive path counts them and carries on.
Everything else is local misuse (a bad secret, an unknown suite, a frame that is not a frame of
its codec) and is raised at once.

No exception message ever contains key material or a secret.
"""

from __future__ import annotations


class SealError(Exception):
    """Base class of every sealrtc error."""


class InvalidSecret(SealError, ValueError):
    """The shared secret is not a non-empty string (the message never repeats it)."""


class InvalidFrame(SealError, ValueError):
    """A frame handed to the encryptor is not a valid frame of its codec (e.g. too short)."""


class UnsupportedCodec(SealError, ValueError):
    """The codec cannot be protected by this version of sealrtc (H.264 comes later)."""


class DecryptError(SealError):
    """A received frame was rejected. ``reason`` is the short name used in statistics.

    ``kid`` is the frame's key id when the header parsed (it is public: SFUs see it too).
    """

    reason = "decrypt_error"

    def __init__(self, message: str = "", *, kid: int | None = None) -> None:
        super().__init__(message)
        self.kid = kid


class MalformedFrame(DecryptError):
    """The frame is truncated or its SFrame header is not a minimal, well-formed encoding."""

    reason = "malformed"


class UnknownKey(DecryptError):
    """No secret known to this receiver matches the frame's KID."""

    reason = "unknown_key"


class AuthenticationFailed(DecryptError):
    """The frame's tag did not verify: wrong secret, tampering or corruption."""

    reason = "authentication_failed"


class ReplayedFrame(DecryptError):
    """The frame repeats a counter already seen, or is older than the replay window."""

    reason = "replayed"


DECRYPT_FAILURE_REASONS: tuple[str, ...] = (
    MalformedFrame.reason,
    UnknownKey.reason,
    AuthenticationFailed.reason,
    ReplayedFrame.reason,
)
"""Every reason a frame can be dropped for, in a stable order (statistics keys)."""
