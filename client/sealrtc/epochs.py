"""Keying v2: key epochs that only move forward (a ratchet), and joiners who cannot read the past.

``root`` is keying v1's base key (PBKDF2 of the NFC secret with the context). With the suite's
hash H (SHA-256 for 0x0001-0x0005, SHA-512 for 0x0006-0x0008) and RFC 5869 HKDF:

* ``E_0 = HKDF-Expand(HKDF-Extract("", root), "sealrtc/v2/epoch", Nh)``
* ``E_{i+1} = HKDF-Expand(HKDF-Extract("", E_i), "SFrame 1.0 Ratchet", Nh)`` (RFC 9605 5.1)
* ``fp2 = HKDF-Expand(HKDF-Extract("", root), "sealrtc/v2/fingerprint", 1)[0]``
* epoch i's SFrame base key is ``E_i``; ``KID = sender_tag << 16 | (i mod 256) << 8 | fp2``.

The ratchet is one-way: whoever holds ``E_i`` (an epoch file, :meth:`EpochKeys.export_epoch`)
derives every later epoch and none before it. v1 and v2 use different fingerprint labels, so a
v1 receiver of v2 frames (and the reverse) reports a secret mismatch rather than misreading.

Receivers map a KID's epoch byte to the one epoch in ``[current - back, current + 16]`` that has
it (``back``: older epochs still in their grace period); later epochs are derived on a copy and
adopted only once a frame under them authenticates (:meth:`EpochKeys.confirm`), and since one
object serves a participant's senders and receivers, its senders then move to that epoch too:
every sender of a room converges on the highest authenticated epoch. Any other byte is an
unknown key at zero derivation cost.

Python cannot wipe ``bytes``: a forgotten epoch key is only dropped (garbage collected), so
forward secrecy against someone who reads this process's memory is not claimed.
Sans-I/O: time comes from an injectable ``clock``.
"""

from __future__ import annotations

import base64
import binascii
import secrets as _secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import InvalidSecret
from .keys import BaseKey, SharedSecret, add_listener, derive_base_key
from .sframe import DEFAULT_SUITE, CipherSuite, suite_params

EPOCH_INFO = b"sealrtc/v2/epoch"
RATCHET_INFO = b"SFrame 1.0 Ratchet"
FINGERPRINT_INFO_V2 = b"sealrtc/v2/fingerprint"
MAX_AHEAD = 16
"""Epochs a receiver derives forward (on a copy) to follow a sender that advanced."""
MAX_PREVIOUS_EPOCHS = 32
"""Older epochs kept for their grace period; a ratchet storm forgets the oldest. Must stay well
below ``256 - MAX_AHEAD`` so that an epoch byte never names two epochs a receiver holds."""
SENDER_TAG_BITS_V2 = 40
EXPORT_VERSION = 2
JOIN_DEBOUNCE = 1.0
"""Seconds: joins closer together than this advance the epoch once."""


@dataclass(frozen=True, eq=False)
class EpochKey(BaseKey):
    """The SFrame base key ``E_i`` of epoch ``i`` (``fingerprint`` is the secret's fp2)."""

    epoch: int = 0


def _hkdf(suite: CipherSuite, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(suite_params(suite).hash_algorithm(), length, None, info).derive(ikm)


def epoch_zero(root: bytes, suite: CipherSuite | int) -> bytes:
    """``E_0`` of ``root`` (keying v1's base key) under ``suite``'s hash."""
    params = suite_params(suite)
    return _hkdf(params.suite, root, EPOCH_INFO, params.nh)


def ratchet(epoch_key: bytes, suite: CipherSuite | int) -> bytes:
    """``E_{i+1}`` from ``E_i``: the RFC 9605 5.1 ratchet step."""
    params = suite_params(suite)
    return _hkdf(params.suite, epoch_key, RATCHET_INFO, params.nh)


def fingerprint_v2(root: bytes, suite: CipherSuite | int) -> int:
    """``fp2``: the byte that names a keying v2 secret in every KID."""
    return _hkdf(suite_params(suite).suite, root, FINGERPRINT_INFO_V2, 1)[0]


def kid_v2(sender_tag: int, epoch: int, fingerprint: int) -> int:
    """``sender_tag << 16 | (epoch mod 256) << 8 | fingerprint``."""
    if not 0 < sender_tag < 1 << SENDER_TAG_BITS_V2:
        raise ValueError("sender_tag must be 40 non-zero bits")
    return sender_tag << 16 | (epoch % 256) << 8 | (fingerprint & 0xFF)


def epoch_key_at(
    secret: str, epoch: int, *, context: bytes = b"", suite: CipherSuite | int = DEFAULT_SUITE
) -> EpochKey:
    """``E_epoch`` of ``secret`` (what :command:`sealrtc keys export --epoch N` hands a joiner)."""
    if epoch < 0:
        raise ValueError("epoch must be >= 0")
    root = derive_base_key(secret, context).material
    material = epoch_zero(root, suite)
    for _ in range(epoch):
        material = ratchet(material, suite)
    return EpochKey(material, fingerprint_v2(root, suite), epoch)


class EpochKeys:
    """A participant's keying v2 state: the current epoch (senders use it), older ones in their
    grace period and the way forward (receivers use them).

    Advance with :meth:`advance` (an API call, a timer, a join); receivers advance it by
    themselves through :meth:`confirm` when a frame under a later epoch authenticates.
    """

    keying = 2

    def __init__(
        self,
        start: EpochKey,
        *,
        suite: CipherSuite | int = DEFAULT_SUITE,
        grace: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        params = suite_params(suite)
        if len(start.material) != params.nh:
            raise InvalidSecret(f"an epoch key of suite {params.suite:#06x} is {params.nh} bytes")
        if grace < 0:
            raise ValueError("grace must be >= 0 seconds")
        self.suite = params.suite
        self.grace = float(grace)
        self.floor = start.epoch
        """The first epoch this participant can read (an epoch file's)."""
        self._clock = clock
        self._current = start
        self._previous: list[tuple[EpochKey, float]] = []
        self._ahead: list[bytes] = []
        """``E_{current+1}``, ``E_{current+2}``...: derived on demand, adopted only by confirm."""
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        """Incremented whenever the current epoch changes (senders then take a new KID)."""
        self._last_join_step: float | None = None
        self.derivations = 0
        """Ratchet steps computed so far (a forged far-future epoch must not add any)."""

    @classmethod
    def from_secret(
        cls,
        secret: str,
        *,
        context: bytes = b"",
        suite: CipherSuite | int = DEFAULT_SUITE,
        epoch: int = 0,
        grace: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> EpochKeys:
        """Everyone who holds the secret: starts at ``epoch`` (0 unless told)."""
        if not isinstance(context, bytes):
            raise TypeError("context must be bytes")
        return cls(epoch_key_at(secret, epoch, context=context, suite=suite), suite=suite, grace=grace, clock=clock)

    @classmethod
    def from_export(
        cls, data: Mapping[str, Any], *, grace: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> EpochKeys:
        """A joiner built from :meth:`export_epoch`'s dict: reads that epoch and later ones only.

        Raises :class:`InvalidSecret` (never quoting the key) when the dict is not an epoch export.
        """
        start, suite = parse_export(data)
        return cls(start, suite=suite, grace=grace, clock=clock)

    def __repr__(self) -> str:
        return (
            f"<EpochKeys suite={self.suite.name} fingerprint={self._current.fingerprint:#04x}"
            f" epoch={self._current.epoch} generation={self.generation}>"
        )

    @property
    def current(self) -> EpochKey:
        return self._current

    @property
    def epoch(self) -> int:
        return self._current.epoch

    def now(self) -> float:
        return self._clock()

    def export_epoch(self) -> dict[str, Any]:
        """The current epoch as a JSON-able dict (a secret: whoever holds it reads this epoch on)."""
        return {
            "v": EXPORT_VERSION,
            "suite": int(self.suite),
            "fp2": self._current.fingerprint,
            "epoch": self._current.epoch,
            "key": base64.b64encode(self._current.material).decode("ascii"),
        }

    def advance(self) -> int:
        """Move to the next epoch (senders switch KID; the old epoch decrypts for ``grace`` s)."""
        self._step_to(self._current.epoch + 1)
        return self._current.epoch

    def advance_on_join(self) -> bool:
        """Someone joined: advance, at most once per :data:`JOIN_DEBOUNCE` (a burst of joins is
        one step). Returns whether it advanced."""
        now = self._clock()
        if self._last_join_step is not None and now - self._last_join_step < JOIN_DEBOUNCE:
            return False
        self._last_join_step = now
        self.advance()
        return True

    def _derive_ahead(self, steps: int) -> bytes:
        while len(self._ahead) < steps:
            last = self._ahead[-1] if self._ahead else self._current.material
            self._ahead.append(ratchet(last, self.suite))
            self.derivations += 1
        return self._ahead[steps - 1]

    def _step_to(self, epoch: int, key: EpochKey | None = None) -> None:
        """Make ``epoch`` current (``key``, when given, is its already derived key object:
        decryptors cache by identity)."""
        steps = epoch - self._current.epoch
        if steps <= 0:
            return
        self._derive_ahead(steps)
        until = self._clock() + self.grace
        passed = [self._current]
        fp = self._current.fingerprint
        base = self._current.epoch
        passed += [EpochKey(m, fp, base + 1 + j) for j, m in enumerate(self._ahead[: steps - 1])]
        self._current = key if key is not None else EpochKey(self._ahead[steps - 1], fp, epoch)
        del self._ahead[:steps]
        self._previous = [(k, until) for k in reversed(passed)] + self._previous
        del self._previous[MAX_PREVIOUS_EPOCHS:]
        self.generation += 1
        for listener in list(self._listeners):
            listener()

    def add_rotation_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every epoch change; returns a remover."""
        return add_listener(self._listeners, listener)

    def decryption_keys(self) -> list[EpochKey]:
        """The current epoch and older ones still in their grace period (current first)."""
        now = self._clock()
        self._previous = [(k, until) for k, until in self._previous if until > now]
        return [self._current, *(k for k, _ in self._previous)]

    def candidates_for(self, kid: int) -> list[BaseKey]:
        """The epoch key a frame's KID names, if any: derived forward on a copy (at most
        :data:`MAX_AHEAD` steps) for a later epoch, nothing derived for any other byte."""
        if kid & 0xFF != self._current.fingerprint:
            return []
        delta = ((kid >> 8) - self._current.epoch) % 256
        if delta == 0:
            return [self._current]
        if delta <= MAX_AHEAD:
            material = self._derive_ahead(delta)
            return [EpochKey(material, self._current.fingerprint, self._current.epoch + delta)]
        wanted = self._current.epoch - (256 - delta)
        return [k for k in self.decryption_keys()[1:] if k.epoch == wanted]

    def confirm(self, key: BaseKey) -> None:
        """A frame authenticated under ``key``: a later epoch becomes the current one."""
        if isinstance(key, EpochKey) and key.epoch > self._current.epoch:
            self._step_to(key.epoch, key)

    def is_usable(self, key: BaseKey) -> bool:
        """Whether ``key`` still decrypts (an older epoch expires after its grace period)."""
        if key is self._current:
            return True
        return any(k is key for k in self.decryption_keys())

    def new_sender_kid(self, randbelow: Callable[[int], int] = _secrets.randbelow) -> int:
        """A fresh KID for one sender in the current epoch (40 random non-zero tag bits)."""
        tag = 1 + randbelow((1 << SENDER_TAG_BITS_V2) - 1)
        return kid_v2(tag, self._current.epoch, self._current.fingerprint)


def parse_export(data: Mapping[str, Any]) -> tuple[EpochKey, CipherSuite]:
    """Check an epoch export; errors name the bad field, never its key."""
    if not isinstance(data, Mapping) or data.get("v") != EXPORT_VERSION:
        raise InvalidSecret('not a keying v2 epoch export (want {"v": 2, "suite", "fp2", "epoch", "key"})')
    suite_value, fp2, epoch, key = data.get("suite"), data.get("fp2"), data.get("epoch"), data.get("key")
    if not isinstance(suite_value, int) or isinstance(suite_value, bool) or suite_value not in set(CipherSuite):
        raise InvalidSecret("epoch export: suite must be a cipher suite number 1-8")
    suite = CipherSuite(suite_value)
    if not isinstance(fp2, int) or isinstance(fp2, bool) or not 0 <= fp2 <= 255:
        raise InvalidSecret("epoch export: fp2 must be 0-255")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise InvalidSecret("epoch export: epoch must be an integer >= 0")
    material: bytes | None = None
    if isinstance(key, str):
        try:
            material = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            material = None  # raised below, outside the handler: no chained error quoting the key
    if material is None or len(material) != suite_params(suite).nh:
        raise InvalidSecret(f"epoch export: key must be {suite_params(suite).nh} bytes of base64 for this suite")
    return EpochKey(material, fp2, epoch), suite


FrameKeys = SharedSecret | EpochKeys
"""What encryptors and decryptors take: keying v1 (a secret) or keying v2 (epochs)."""
