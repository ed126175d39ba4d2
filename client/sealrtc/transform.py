"""Frame encryptor and decryptor: codec layout + SFrame + replay window + statistics + events.

Frame format v1: ``clear_prefix || wire(sframe_header || ciphertext || tag)`` with
``aad = sframe_header || clear_prefix``, where ``wire`` is the codec's wire escape (identity
except for H.264, see :mod:`sealrtc.layout`). Sans-I/O: ``bytes`` in, ``bytes`` out; the only clock
is the :class:`~sealrtc.keys.SharedSecret`'s. The aiortc adapter wraps these; so can anything
else that moves encoded frames (a browser bridge, a file, a test).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .epochs import FrameKeys
from .errors import (
    AuthenticationFailed,
    DecryptError,
    InvalidFrame,
    MalformedFrame,
    ReplayedFrame,
    UnknownKey,
)
from .failures import FailureCounts
from .keys import BaseKey
from .layout import Codec, codec_from_name, layout_of
from .replay import DEFAULT_WINDOW, ReplayWindow
from .sframe import MAX_VALUE, AeadKey, HeaderReader, derive_key_salt, header_encoder, suite_params

logger = logging.getLogger(__name__)

MAX_RECEIVE_KIDS = 64
"""Per-decryptor bound on remembered KIDs (each with its key and replay window)."""
MAX_RETIRED_KIDS = 4096
"""Per-decryptor bound on evicted KIDs whose highest counter is still remembered.

An evicted KID keeps one integer (its highest verified CTR) so that its old frames stay refused
when it comes back: without it, 64 other valid KIDs would wash a replayed frame clean. At most
``MAX_RECEIVE_KIDS + MAX_RETIRED_KIDS`` KIDs are remembered; a decryptor fed more distinct
*valid* KIDs than that (each needs a real sender under a valid secret) forgets the oldest.
"""
DEFAULT_MISMATCH_THRESHOLD = 3
"""Consecutive key failures (unknown key or bad tag) before ``secret_mismatch`` is reported."""
DEFAULT_MISMATCH_QUIET = 1.0
"""Seconds without any verified frame before ``secret_mismatch`` may be reported.

Frames with the public fingerprint can be forged by anyone (an SFU, a man in the middle): if
failures alone decided, junk injected between real frames would make the events flap. While
real frames keep verifying, the secret evidently matches, whatever else arrives.
"""


@dataclass(frozen=True)
class SecretMismatch:
    """Frames stopped decrypting: the peer uses a secret this receiver does not hold."""

    kid: int
    reason: str
    at: float
    type: str = "secret_mismatch"


@dataclass(frozen=True)
class SecretMatch:
    """Frames decrypt again after a :class:`SecretMismatch`."""

    kid: int
    at: float
    type: str = "secret_match"


SecretEvent = SecretMismatch | SecretMatch
EventListener = Callable[[SecretEvent], None]


@dataclass
class EncryptorStats:
    frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    refused: int = 0
    kid_switches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "frames_encrypted": self.frames,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "frames_refused": self.refused,
            "kid_switches": self.kid_switches,
        }


@dataclass
class DecryptorStats:
    frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    failures: FailureCounts = field(default_factory=FailureCounts)

    @property
    def failed(self) -> int:
        return self.failures.total

    def as_dict(self) -> dict[str, object]:
        return {
            "frames_decrypted": self.frames,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "decrypt_failures": FailureCounts(self.failures),
        }


@dataclass(frozen=True)
class DecryptedFrame:
    """A verified plaintext frame (clear prefix included) and the KID/CTR it came under."""

    data: bytes
    kid: int
    ctr: int


class FrameEncryptor:
    """Encrypts one outgoing stream's encoded frames under a :class:`SharedSecret` (or the
    current epoch of an :class:`~sealrtc.epochs.EpochKeys`).

    One KID per encryptor per secret, CTR from 0, never repeated: after a rotation (or, in
    theory, counter exhaustion) it switches to a fresh KID and sets :attr:`keyframe_wanted`
    so the caller can ask its encoder for a key frame.
    """

    def __init__(self, keys: FrameKeys, codec: str | Codec = Codec.GENERIC) -> None:
        self.keys = keys
        self.codec = codec_from_name(codec)
        self.stats = EncryptorStats()
        self.keyframe_wanted = False
        self._generation = -1
        self._kid = 0
        self._ctr = 0
        self._aead: AeadKey | None = None
        self._salt = 0
        self._nonce_length = 12
        self._header = header_encoder(0)
        layout = layout_of(self.codec)
        self._prefix = layout.prefix
        self._escape = layout.escape

    def __repr__(self) -> str:
        return f"<FrameEncryptor codec={self.codec.value} kid={self._kid:#x} ctr={self._ctr}>"

    @property
    def kid(self) -> int:
        """The KID of the last encrypted frame (0 before the first)."""
        return self._kid

    @property
    def ctr(self) -> int:
        """The CTR the next frame will use."""
        return self._ctr

    def _switch_kid(self) -> None:
        first = self._aead is None
        self._generation = self.keys.generation
        self._kid = self.keys.new_sender_kid()
        self._header = header_encoder(self._kid)
        self._ctr = 0
        key, salt = derive_key_salt(self.keys.suite, self._kid, self.keys.current.material)
        self._aead = AeadKey(self.keys.suite, key)
        self._salt = int.from_bytes(salt, "big")
        self._nonce_length = len(salt)
        if not first:
            self.keyframe_wanted = True
            self.stats.kid_switches += 1

    def take_keyframe_request(self) -> bool:
        """Return and clear :attr:`keyframe_wanted`."""
        wanted, self.keyframe_wanted = self.keyframe_wanted, False
        return wanted

    def encrypt(self, frame: bytes) -> bytes:
        """Return the frame-format-v1 ciphertext of ``frame``.

        Raises :class:`InvalidFrame` (and counts it) if ``frame`` is shorter than its codec's
        clear prefix: such input is not a frame of that codec and is never sent.
        """
        try:
            n = self._prefix(frame)
        except InvalidFrame:
            self.stats.refused += 1
            raise
        if len(frame) < n:
            self.stats.refused += 1
            raise InvalidFrame(f"{self.codec.value} frame of {len(frame)} bytes is shorter than its {n}-byte header")
        if self._generation != self.keys.generation or self._ctr > MAX_VALUE:
            self._switch_kid()
        aead = self._aead
        assert aead is not None
        ctr = self._ctr
        self._ctr = ctr + 1
        header = self._header(ctr)
        nonce = (self._salt ^ ctr).to_bytes(self._nonce_length, "big")
        escape = self._escape
        if escape is not None:
            prefix = frame[:n]
            ct, tag = aead.seal_parts(nonce, header + prefix, frame[n:])
            out = prefix + escape(prefix, b"".join((header, ct, tag)))
        elif n:
            prefix = frame[:n]
            ct, tag = aead.seal_parts(nonce, header + prefix, frame[n:])
            out = b"".join((prefix, header, ct, tag))
        else:
            ct, tag = aead.seal_parts(nonce, header, frame)
            out = b"".join((header, ct, tag))
        stats = self.stats
        stats.frames += 1
        stats.bytes_in += len(frame)
        stats.bytes_out += len(out)
        return out


class _ReceiveKey:
    """Everything one KID needs per frame, prepared once: key, salt, replay window (and their
    bound methods), and whether its secret is the current one as of a key-set generation."""

    __slots__ = ("accept", "aead", "base", "check", "current", "generation", "nonce_length", "open", "salt", "window")

    def __init__(self, base: BaseKey, aead: AeadKey, salt: bytes, window: int, split_tag: bool) -> None:
        self.base = base
        self.aead = aead
        self.salt = int.from_bytes(salt, "big")
        self.nonce_length = len(salt)
        self.window = ReplayWindow(window)
        self.check = self.window.check
        self.accept = self.window.accept
        self.open = aead.open_parts if split_tag else aead.open_joined
        self.generation = -1
        self.current = False


class FrameDecryptor:
    """Verifies and decrypts one incoming stream's frames; every failure is a DecryptError.

    Reports :class:`SecretMismatch` once ``mismatch_threshold`` consecutive key failures (unknown
    key or bad tag) have been seen *and* no frame verified for ``mismatch_quiet`` seconds (or
    none ever did), and :class:`SecretMatch` on the first frame that decrypts after that, to
    ``on_event`` and to every listener added with :meth:`add_listener`. Replayed and malformed
    frames are counted but never count towards a mismatch.

    Replay state survives key-cache eviction: an evicted KID's highest counter is kept (see
    :data:`MAX_RETIRED_KIDS`) and its frames at or below it are refused.
    """

    def __init__(
        self,
        keys: FrameKeys,
        codec: str | Codec = Codec.GENERIC,
        *,
        on_event: EventListener | None = None,
        replay_window: int = DEFAULT_WINDOW,
        mismatch_threshold: int = DEFAULT_MISMATCH_THRESHOLD,
        mismatch_quiet: float = DEFAULT_MISMATCH_QUIET,
    ) -> None:
        if mismatch_threshold < 1:
            raise ValueError("mismatch_threshold must be >= 1")
        if mismatch_quiet < 0:
            raise ValueError("mismatch_quiet must be >= 0 seconds")
        self.keys = keys
        self.codec = codec_from_name(codec)
        self.stats = DecryptorStats()
        self.mismatched = False
        self._listeners: list[EventListener] = [on_event] if on_event is not None else []
        self._window = replay_window
        self._threshold = mismatch_threshold
        self._quiet = mismatch_quiet
        self._key_failures = 0
        self._last_verified: float | None = None
        self._tag_length = suite_params(keys.suite).nt
        self._split_tag = suite_params(keys.suite).is_ctr_hmac
        layout = layout_of(self.codec)
        self._prefix = layout.prefix
        self._unescape = layout.unescape
        self._kids: OrderedDict[int, _ReceiveKey] = OrderedDict()
        self._retired: dict[int, int] = {}  # evicted KID -> highest verified CTR (insertion order)
        self._verified_since_failure = False
        self.last_kid = 0
        """KID of the last frame :meth:`decrypt_or_drop` returned."""
        self.last_ctr = 0
        """CTR of the last frame :meth:`decrypt_or_drop` returned."""
        self._headers = HeaderReader()
        """Parses headers, remembering the last verified KID's (its frames parse fastest)."""

    def __repr__(self) -> str:
        return f"<FrameDecryptor codec={self.codec.value} frames={self.stats.frames} failed={self.stats.failed}>"

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: SecretEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the media path
                logger.exception("secret event listener failed")

    def decrypt(self, data: bytes) -> bytes:
        """Return the plaintext frame (clear prefix included); raise a DecryptError subclass."""
        return self.decrypt_frame(data).data

    def decrypt_frame(self, data: bytes) -> DecryptedFrame:
        """Like :meth:`decrypt`, also returning the frame's KID and CTR."""
        try:
            plaintext, kid, ctr = self._open(data)
        except DecryptError as exc:
            self._fail(exc)
            raise
        self._succeeded(len(data), plaintext, kid)
        return DecryptedFrame(plaintext, kid, ctr)

    def decrypt_or_drop(self, data: bytes) -> bytes | None:
        """The per-frame path: the plaintext, or None for a frame that failed (counted by reason,
        events reported, exactly as :meth:`decrypt` would raise). The frame's KID and CTR are
        left in :attr:`last_kid` and :attr:`last_ctr`; nothing else is allocated."""
        try:
            plaintext, self.last_kid, self.last_ctr = self._open(data)
        except DecryptError as exc:
            self._fail(exc)
            return None
        self._key_failures = 0
        self._verified_since_failure = True
        stats = self.stats
        stats.frames += 1
        stats.bytes_in += len(data)
        stats.bytes_out += len(plaintext)
        if self.mismatched:
            self.mismatched = False
            self._emit(SecretMatch(self.last_kid, self.keys.now()))
        return plaintext

    def _succeeded(self, size: int, plaintext: bytes, kid: int) -> None:
        self._key_failures = 0
        self._verified_since_failure = True
        stats = self.stats
        stats.frames += 1
        stats.bytes_in += size
        stats.bytes_out += len(plaintext)
        if self.mismatched:
            self.mismatched = False
            self._emit(SecretMatch(kid, self.keys.now()))

    def _fail(self, exc: DecryptError) -> None:
        self.stats.failures.count(exc.reason)
        if self._verified_since_failure:
            # The last verified frame came just before this failure: its time is read here, not on
            # every successful frame (the per-frame path reads no clock).
            self._verified_since_failure = False
            self._last_verified = self.keys.now()
        if isinstance(exc, (UnknownKey, AuthenticationFailed)):
            self._key_failures += 1
            if self.mismatched or self._key_failures < self._threshold:
                return
            now = self.keys.now()
            if self._last_verified is not None and now - self._last_verified < self._quiet:
                return  # real frames verified just now: these failures are junk, not a new secret
            self.mismatched = True
            self._emit(SecretMismatch(exc.kid if exc.kid is not None else -1, exc.reason, now))

    def _remember(self, kid: int, entry: _ReceiveKey) -> None:
        """Cache a verified KID; the least recently used one leaves only its highest CTR behind."""
        self._kids[kid] = entry
        while len(self._kids) > MAX_RECEIVE_KIDS:
            old_kid, old = self._kids.popitem(last=False)
            self._retired.pop(old_kid, None)
            self._retired[old_kid] = old.window.highest
            while len(self._retired) > MAX_RETIRED_KIDS:
                del self._retired[next(iter(self._retired))]

    def _open(self, data: bytes) -> tuple[bytes, int, int]:
        try:
            n = self._prefix(data)
        except InvalidFrame:
            raise MalformedFrame("not a frame of the stream's codec") from None
        unescape = self._unescape
        if unescape is not None:
            prefix = data[:n]
            try:
                data = prefix + unescape(prefix, data[n:])
            except InvalidFrame:
                raise MalformedFrame("escaped part of the frame contains a start code") from None
        nt = self._tag_length
        size = len(data)
        if size < n + 1 + nt:
            raise MalformedFrame("frame shorter than clear prefix, header and tag")
        headers = self._headers
        kid, ctr, body = headers.read(data, n)
        if size < body + nt:
            raise MalformedFrame("frame shorter than clear prefix, header and tag")
        aad = data[n:body] + data[:n]
        entry = self._kids.get(kid)
        if entry is not None:
            keys = self.keys
            if entry.generation != keys.generation:
                entry.generation, entry.current = keys.generation, entry.base is keys.current
            if not entry.current and not keys.is_usable(entry.base):  # a previous secret expired
                del self._kids[kid]
                entry = None
        if entry is not None:
            if not entry.check(ctr):
                raise ReplayedFrame("frame counter already seen or too old")
            try:
                nonce = (entry.salt ^ ctr).to_bytes(entry.nonce_length, "big")
                plaintext = entry.open(nonce, aad, data[body : size - nt], data[size - nt :])
            except AuthenticationFailed:
                raise AuthenticationFailed("tag did not verify", kid=kid) from None
            entry.accept(ctr)
            if kid != headers.kid:
                self._kids.move_to_end(kid)
                headers.remember(data, n, kid)
            return (data[:n] + plaintext if n else plaintext), kid, ctr
        floor = self._retired.get(kid)
        if floor is not None and ctr <= floor:
            raise ReplayedFrame("frame counter already seen (key id evicted from the cache)")
        candidates = self.keys.candidates_for(kid)
        if not candidates:
            raise UnknownKey("no secret matches the frame's key id", kid=kid)
        for base in candidates:
            key, salt = derive_key_salt(self.keys.suite, kid, base.material)
            fresh = _ReceiveKey(base, AeadKey(self.keys.suite, key), salt, self._window, self._split_tag)
            nonce = (fresh.salt ^ ctr).to_bytes(fresh.nonce_length, "big")
            try:
                plaintext = fresh.aead.open(nonce, aad, data[body:])
            except AuthenticationFailed:
                continue
            if floor is not None:
                fresh.window.restore(floor)
                del self._retired[kid]
            fresh.window.accept(ctr)
            self.keys.confirm(base)
            self._remember(kid, fresh)
            headers.remember(data, n, kid)
            return (data[:n] + plaintext if n else plaintext), kid, ctr
        raise AuthenticationFailed("tag did not verify under any known secret", kid=kid)
