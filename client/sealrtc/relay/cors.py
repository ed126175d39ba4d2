"""CORS for the relay, so that web pages on other origins can publish and play (RFC 9725 4.7).

An aiohttp middleware: every response, errors included, carries ``Access-Control-Allow-Origin``
(configurable, default ``*``), ``-Allow-Methods``, ``-Allow-Headers`` and ``-Expose-Headers``
(so a page can read ``Location``, ``ETag`` and ``Link``). ``OPTIONS`` on any path the relay
serves is answered as a preflight: ``204`` with the methods the path allows and, where ``POST``
is one of them (the WHIP/WHEP endpoints), ``Accept-Post: application/sdp``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization, If-Match"
EXPOSE_HEADERS = "Location, ETag, Link"
PREFLIGHT_MAX_AGE = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
