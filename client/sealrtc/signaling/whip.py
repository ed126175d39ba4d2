"""WHIP (RFC 9725) and WHEP clients over aiohttp: POST an SDP offer, get 201 + answer + Location.

``token`` sends ``Authorization: Bearer <token>`` (RFC 9725 section 4.5); it is never put in an
error message, and it goes only to the origin (scheme, host, port) it was configured for: a
``Location`` on another origin gets its ``DELETE`` without it (aiohttp drops it on a redirect to
another origin likewise).

Every read of a reply is bounded: an SDP answer of more than :data:`MAX_ANSWER` bytes is refused,
and of an error body at most :data:`MAX_ERROR_BODY` bytes are read and one short cleaned line of
them is shown (a server answering with a 300 MB error body costs a few KiB).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from ..errors import SealError
from ..text import clean, first_line

MAX_ANSWER = 256 * 1024
"""Largest SDP answer read (a real one is a few KiB)."""
MAX_ERROR_BODY = 4096
"""Bytes of an error body read: its first line is all that is shown."""


class SignalingError(SealError):
    """The signaling server refused or could not be reached (message is safe to print)."""


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, the default port made explicit; a URL whose port cannot
    be read has no port (it then matches no configured origin that has one)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _headers(token: str | None, **extra: str) -> dict[str, str]:
    if token is not None:
        extra["Authorization"] = f"Bearer {token}"
    return extra


HINTS = {
    401: " — the server wants a bearer token (--token-file or SEALRTC_TOKEN)",
    403: " — the server refused this token",
    404: " — is the path right? (WHIP: .../whip/ROOM, WHEP: .../whep/ROOM on the sealrtc relay)",
    503: " — the server is full; try later or raise its limits",
}


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of ``response``'s body, and whether the body was longer (the rest
    is never read: leaving the response closes its connection)."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def _decode(data: bytes, response: aiohttp.ClientResponse) -> str:
    try:
        return data.decode(response.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


async def _error(response: aiohttp.ClientResponse, url: str) -> SignalingError:
    data, _ = await read_bounded(response, MAX_ERROR_BODY)
    reason = first_line(_decode(data, response)) or first_line(response.reason or "")
    reason = reason.removeprefix(f"{response.status}: ")
    hint = HINTS.get(response.status, "")
    return SignalingError(f"{clean(url)} answered {response.status}: {reason}{hint}")


async def _exchange(pc: RTCPeerConnection, url: str, timeout: float, token: str | None) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    shown = clean(url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(
                url, data=pc.localDescription.sdp, headers=_headers(token, **{"Content-Type": "application/sdp"})
            ) as response:
                if response.status != 201:
                    raise await _error(response, url)
                if (response.content_length or 0) > MAX_ANSWER:
                    raise SignalingError(f"{shown} sent an SDP answer over {MAX_ANSWER // 1024} KiB: refused")
                data, longer = await read_bounded(response, MAX_ANSWER)
                if longer:
                    raise SignalingError(f"{shown} sent an SDP answer over {MAX_ANSWER // 1024} KiB: refused")
                body = _decode(data, response)
                location = response.headers.get("Location")
                if not location:
                    raise SignalingError(f"{shown} gave no Location for the session")
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error.strerror if exc.os_error is not None and exc.os_error.strerror else "no connection"
        raise SignalingError(f"cannot reach {shown}: {why.lower()} — is the server running there?") from None
    except aiohttp.InvalidURL:
        raise SignalingError(f"{shown} is not a usable URL: it must start with http:// or https://") from None
    except aiohttp.ClientError as exc:
        raise SignalingError(f"cannot reach {shown}: {exc.__class__.__name__}: {first_line(exc)}") from None
    except TimeoutError:
        raise SignalingError(f"{shown} did not answer within {timeout:.0f} s") from None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return urljoin(url, location)


async def whip_publish(pc: RTCPeerConnection, url: str, *, timeout: float = 10.0, token: str | None = None) -> str:
    """Publish ``pc``'s tracks to a WHIP endpoint; return the session resource URL."""
    return await _exchange(pc, url, timeout, token)


async def whep_subscribe(pc: RTCPeerConnection, url: str, *, timeout: float = 10.0, token: str | None = None) -> str:
    """Subscribe with receive-only audio and video; return the session resource URL."""
    if not pc.getTransceivers():
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
    return await _exchange(pc, url, timeout, token)


async def delete_resource(
    url: str, *, timeout: float = 5.0, token: str | None = None, endpoint: str | None = None
) -> None:
    """Leave a WHIP/WHEP session (errors are ignored: the server may already be gone).

    ``endpoint``: the URL the token was configured for (the WHIP/WHEP endpoint; default ``url``
    itself): the token is sent only when ``url`` is on the same origin."""
    if token is not None and endpoint is not None and origin(url) != origin(endpoint):
        token = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.delete(url, headers=_headers(token)):
                pass
    except (aiohttp.ClientError, TimeoutError, ValueError):
        pass
