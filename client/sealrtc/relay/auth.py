"""Optional bearer-token authentication for WHIP and WHEP (RFC 9725 section 4.5; RFC 6750).

With tokens configured, ``POST /whip/{room}`` needs ``Authorization: Bearer <publish token>``,
``POST /whep/{room}`` a subscribe token, and ``DELETE`` of a session the token of its kind;
anything else gets ``401`` with ``WWW-Authenticate: Bearer``. Publish and subscribe tokens are
separate sets, so a viewer's token cannot take over a room. Tokens are compared in constant time
(:func:`hmac.compare_digest`, against every configured token) and never logged, echoed or kept in
a ``repr``. They come from a file (one per line, ``#`` comments) or an environment variable
(whitespace-separated): see :func:`load_tokens`.

A relay that listens on anything but loopback needs publish tokens unless it is run open on
purpose (:func:`exposed_without_tokens`): without them, anyone who reaches it can publish into a
room and, under the ``newest`` policy, take it over.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

PUBLISH_TOKEN_ENV = "SEALRTC_PUBLISH_TOKEN"
SUBSCRIBE_TOKEN_ENV = "SEALRTC_SUBSCRIBE_TOKEN"
MAX_TOKENS = 1024
MAX_TOKEN_FILE_BYTES = 1024 * 1024
TOKEN68 = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
"""RFC 6750 ``b64token`` / RFC 7235 ``token68``: what may follow ``Bearer``."""


TOKEN_HOWTO = (
    "create a token file with: umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' "
    "> relay.token, then pass --publish-token-file relay.token --subscribe-token-file relay.token"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposed_without_tokens(host: str, publish_tokens: BearerTokens | None) -> bool:
    """Whether a relay on ``host`` would let anyone who reaches it publish."""
    return publish_tokens is None and not is_loopback(host)


class TokenError(ValueError):
    """Tokens could not be loaded (the message names the source, never a token)."""


class BearerTokens:
    """A non-empty set of accepted tokens, checked in constant time."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Iterable[str]) -> None:
        accepted = []
        for token in tokens:
            if not isinstance(token, str) or not TOKEN68.match(token):
                raise TokenError("a bearer token must be a non-empty token68 string (RFC 6750)")
            accepted.append(token.encode("ascii"))
        if not accepted:
            raise TokenError("no bearer token given (use None to disable authentication)")
        if len(accepted) > MAX_TOKENS:
            raise TokenError(f"too many bearer tokens (at most {MAX_TOKENS})")
        self._tokens = tuple(dict.fromkeys(accepted))

    def __repr__(self) -> str:
        return f"<BearerTokens count={len(self._tokens)}>"

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries one of the tokens."""
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        presented = credentials.strip().encode("utf-8", "replace")
        matched = False
        for token in self._tokens:  # no early exit: time does not depend on which one matched
            matched |= hmac.compare_digest(presented, token)
        return matched


def tokens_of(value: BearerTokens | Iterable[str] | None) -> BearerTokens | None:
    if value is None or isinstance(value, BearerTokens):
        return value
    if isinstance(value, str):
        raise TokenError("give bearer tokens as a collection of strings, not one string")
    return BearerTokens(value)


def read_token_file(path: str | os.PathLike[str]) -> list[str]:
    """Tokens of a file: one per line; blank lines and ``#`` comments are skipped."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise TokenError(f"cannot read token file {file}: {exc.strerror or exc.__class__.__name__}") from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise TokenError(f"token file {file} is larger than {MAX_TOKEN_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError(f"token file {file} is not UTF-8 text") from None
    tokens = [line.strip() for line in text.splitlines()]
    return [t for t in tokens if t and not t.startswith("#")]


def load_tokens(
    file: str | os.PathLike[str] | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> BearerTokens | None:
    """Tokens from ``file`` and/or the environment variable ``env``; None if neither is set.

    E.g. ``load_tokens(args.publish_token_file, PUBLISH_TOKEN_ENV)``. A file or variable that is
    set but holds no valid token is an error (a typo must not silently open the relay).
    """
    tokens: list[str] = []
    sources: list[str] = []
    if file is not None:
        tokens += read_token_file(file)
        sources.append(f"file {Path(file)}")
    if env is not None:
        value = (os.environ if environ is None else environ).get(env)
        if value is not None:
            tokens += value.split()
            sources.append(f"${env}")
    if not sources:
        return None
    try:
        return BearerTokens(tokens)
    except TokenError as exc:
        raise TokenError(f"{' and '.join(sources)}: {exc}") from None
