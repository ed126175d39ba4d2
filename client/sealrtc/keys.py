"""Keying v1: a shared secret string becomes SFrame base keys, KIDs and a rotation history.

``base_key = PBKDF2-HMAC-SHA256(NFC(secret), b"sealrtc/v1/shared-secret" + context, 100_000, 32)``
and an 8-bit ``fingerprint`` (HKDF-SHA256) names it in the low byte of every KID. Each sender
draws its own random 48-bit tag per secret, so many senders sharing one secret never share an
SFrame key (the KID is in the RFC key schedule) and never reuse a (key, nonce).

The PBKDF2 result is cached process-wide (bounded), keyed by a keyed hash of the secret rather
than the secret itself, so a thousand bots that share a secret derive it once.
Sans-I/O: time comes from an injectable ``clock``; nothing here awaits.
"""

from __future__ import annotations

import secrets as _secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .errors import InvalidSecret
from .sframe import DEFAULT_SUITE, CipherSuite, suite_params

PBKDF2_SALT_PREFIX = b"sealrtc/v1/shared-secret"
PBKDF2_ITERATIONS = 100_000
FINGERPRINT_INFO = b"sealrtc/v1/fingerprint"
MAX_DECRYPT_ONLY_SECRETS = 8
"""Decrypt-only secrets kept at once; adding more forgets the oldest."""
MAX_PREVIOUS_SECRETS = 8
"""Secrets kept for their grace period after rotations; a rotation storm forgets the oldest."""
_BASE_KEY_CACHE_SIZE = 256
SENDER_TAG_BITS = 48


@dataclass(frozen=True, eq=False)
class BaseKey:
    """One derived secret: its SFrame base key and the fingerprint that names it in KIDs."""

    material: bytes = field(repr=False)
    fingerprint: int


def _check_secret(secret: object) -> bytes:
    """Return NFC(secret) as UTF-8, or raise :class:`InvalidSecret` without echoing the secret.

    Lone surrogates (which Python strings may hold, e.g. from ``os.fsdecode`` of a bad file) have
    no UTF-8 form; the codec's own error would quote the character, so it is replaced by a clear
    message and never chained. A whitespace-only secret is almost always a blank line read from a
    file or a variable set to spaces: refused rather than silently used as a weak key.
    """
    if not isinstance(secret, str):
        raise InvalidSecret("the E2EE secret must be a string")
    if not secret:
        raise InvalidSecret("the E2EE secret must not be empty")
    if not secret.strip():
        raise InvalidSecret("the E2EE secret must not be only whitespace")
    normalized = unicodedata.normalize("NFC", secret)
    try:
        encoded: bytes | None = normalized.encode("utf-8")
    except UnicodeEncodeError:
        encoded = None  # raised outside the handler: no chained error carrying the character
    if encoded is None:
        raise InvalidSecret("the E2EE secret is not valid Unicode text (it holds a lone surrogate)")
    return encoded


def fingerprint_of(base_key: bytes) -> int:
    """HKDF-Expand-SHA256(HKDF-Extract-SHA256("", base_key), "sealrtc/v1/fingerprint", 1)[0]."""
    return HKDF(hashes.SHA256(), 1, None, FINGERPRINT_INFO).derive(base_key)[0]


class _BaseKeyCache:
    """Process-wide LRU of PBKDF2 results; keys are HMACs under a per-process random key."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, BaseKey] = OrderedDict()
        self._lock = threading.Lock()
        self._index_key = _secrets.token_bytes(32)

    def _index(self, secret: bytes, context: bytes) -> bytes:
        h = hmac.HMAC(self._index_key, hashes.SHA256())
        h.update(len(secret).to_bytes(8, "big") + secret + context)
        return h.finalize()

    def get(self, secret: str, context: bytes) -> BaseKey:
        encoded = _check_secret(secret)
        index = self._index(encoded, context)
        with self._lock:
            cached = self._entries.get(index)
            if cached is not None:
                self._entries.move_to_end(index)
                return cached
        material = PBKDF2HMAC(hashes.SHA256(), 32, PBKDF2_SALT_PREFIX + context, PBKDF2_ITERATIONS).derive(encoded)
        base = BaseKey(material, fingerprint_of(material))
        with self._lock:
            self._entries[index] = base
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return base


_BASE_KEYS = _BaseKeyCache(_BASE_KEY_CACHE_SIZE)


def derive_base_key(secret: str, context: bytes = b"") -> BaseKey:
    """Keying v1 derivation of ``secret`` (cached); raises :class:`InvalidSecret` on bad input."""
    if not isinstance(context, bytes):
        raise TypeError("context must be bytes")
    return _BASE_KEYS.get(secret, context)


def add_listener(listeners: list[Callable[[], None]], listener: Callable[[], None]) -> Callable[[], None]:
    """Append ``listener`` to ``listeners``; return a function that removes it (idempotent)."""
    listeners.append(listener)

    def remove() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return remove


class SharedSecret:
    """The OpenTok-style E2EE secret of a session, changeable on the fly.

    Senders encrypt under the *current* secret. Receivers accept the current secret, previous
    ones for ``grace`` seconds after :meth:`set_secret`, and any added with
    :meth:`add_decryption_secret` (install those before peers switch to them).
    """

    def __init__(
        self,
        secret: str,
        *,
        context: bytes = b"",
        suite: CipherSuite | int = DEFAULT_SUITE,
        grace: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.suite = suite_params(suite).suite
        if grace < 0:
            raise ValueError("grace must be >= 0 seconds")
        if not isinstance(context, bytes):
            raise TypeError("context must be bytes")
        self.context = context
        self.grace = float(grace)
        self._clock = clock
        self._current = derive_base_key(secret, context)
        self._previous: list[tuple[BaseKey, float]] = []
        self._decrypt_only: list[BaseKey] = []
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        """Incremented by every :meth:`set_secret` that changes the secret."""

    def __repr__(self) -> str:
        return (
            f"<SharedSecret suite={self.suite.name} fingerprint={self._current.fingerprint:#04x}"
            f" generation={self.generation}>"
        )

    @property
    def current(self) -> BaseKey:
        return self._current

    def now(self) -> float:
        return self._clock()

    def set_secret(self, secret: str) -> None:
        """Switch to ``secret`` for sending; the old one keeps decrypting for ``grace`` seconds."""
        new = derive_base_key(secret, self.context)
        if new.material == self._current.material:
            return
        self._previous.insert(0, (self._current, self._clock() + self.grace))
        del self._previous[MAX_PREVIOUS_SECRETS:]
        self._decrypt_only = [k for k in self._decrypt_only if k.material != new.material]
        self._current = new
        self.generation += 1
        for listener in list(self._listeners):
            listener()

    def add_decryption_secret(self, secret: str) -> None:
        """Accept frames under ``secret`` from now on, without sending with it."""
        new = derive_base_key(secret, self.context)
        if new.material == self._current.material:
            return
        if any(k.material == new.material for k in self._decrypt_only):
            return
        self._decrypt_only.insert(0, new)
        del self._decrypt_only[MAX_DECRYPT_ONLY_SECRETS:]

    def add_rotation_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every effective :meth:`set_secret`; returns a remover."""
        return add_listener(self._listeners, listener)

    def decryption_keys(self) -> list[BaseKey]:
        """Every base key a receiver may use right now (current first)."""
        now = self._clock()
        self._previous = [(k, until) for k, until in self._previous if until > now]
        return [self._current, *(k for k, _ in self._previous), *self._decrypt_only]

    def candidates(self, fingerprint: int) -> list[BaseKey]:
        """Base keys whose fingerprint matches a KID's low byte (no derivation for strangers)."""
        return [k for k in self.decryption_keys() if k.fingerprint == fingerprint]

    def candidates_for(self, kid: int) -> list[BaseKey]:
        """:meth:`candidates` for a whole KID (its low byte is the fingerprint)."""
        return self.candidates(kid & 0xFF)

    def confirm(self, key: BaseKey) -> None:
        """A frame authenticated under ``key``: nothing to adopt in keying v1 (keying v2's
        receivers move to a later epoch here)."""

    def is_usable(self, key: BaseKey) -> bool:
        """Whether ``key`` still decrypts (a previous secret expires after its grace period)."""
        if key is self._current:
            return True
        return any(k is key for k in self.decryption_keys())

    def new_sender_kid(self, randbelow: Callable[[int], int] = _secrets.randbelow) -> int:
        """A fresh KID for one sender under the current secret: ``(tag << 8) | fingerprint``."""
        tag = 1 + randbelow((1 << SENDER_TAG_BITS) - 1)
        return (tag << 8) | self._current.fingerprint
