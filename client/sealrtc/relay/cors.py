"""CORS for the relay, so that web pages on other origins can publish and play (RFC 9725 4.7).

An aiohttp middleware: every response, errors included, carries ``Access-Control-Allow-Origin``
(configurable, default ``*``), ``-Allow-Methods``, ``-Allow-Headers`` and ``-Expose-Headers``
(so a page can read ``Location``, ``ETag`` and ``Link``). ``OPTIONS`` on any path the relay
serves is answered as a preflight: ``204`` with the methods the path allows and, where ``POST``
is one of them (the WHIP/WHEP endpoints), ``Accept-Post: application/sdp``.

The allowed origin is checked once, at start (:func:`check_origin`): ``*`` or one serialised
origin ``scheme://host[:port]``. Anything else (a path, spaces, CR/LF) used to be copied into
every response header, where aiohttp refused it with a traceback per response.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization, If-Match"
EXPOSE_HEADERS = "Location, ETag, Link"
PREFLIGHT_MAX_AGE = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://"  # scheme
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])"  # host
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",  # port
    re.IGNORECASE | re.ASCII,
)


def check_origin(origin: str) -> str:
    """``origin`` if it is ``*`` or ``scheme://host[:port]``; else ``ValueError`` (one line)."""
    if origin == "*" or (len(origin) <= 255 and _ORIGIN.fullmatch(origin)):
        return origin
    shown = origin.encode("unicode_escape").decode("ascii")[:80]
    raise ValueError(f"CORS origin must be * or scheme://host[:port] such as https://app.example, not '{shown}'")


def _decorate(headers: object, origin: str) -> None:
    assert hasattr(headers, "__setitem__")
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if origin != "*":
        headers["Vary"] = "Origin"


def _preflight(request: web.Request) -> web.Response | None:
    """A 204 for OPTIONS on a path that exists (the router reports 405), else ``None``."""
    if request.method != "OPTIONS":
        return None
    exception = request.match_info.http_exception
    if not isinstance(exception, web.HTTPMethodNotAllowed):
        return None
    allowed = sorted(m for m in exception.allowed_methods if m != "HEAD")
    response = web.Response(status=204)
    if "POST" in allowed:
        response.headers["Accept-Post"] = "application/sdp"
    response.headers["Allow"] = ", ".join([*allowed, "OPTIONS"])
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def cors_middleware(allow_origin: str = "*") -> Middleware:
    """The middleware; ``allow_origin`` is ``*`` or one origin such as ``https://app.example``."""
    check_origin(allow_origin)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        preflight = _preflight(request)
        if preflight is not None:
            _decorate(preflight.headers, allow_origin)
            methods = preflight.headers["Allow"]
            preflight.headers["Access-Control-Allow-Methods"] = methods
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _decorate(exc.headers, allow_origin)
            raise
        _decorate(response.headers, allow_origin)
        return response

    return middleware
