"""WHIP (RFC 9725) and WHEP clients over aiohttp: POST an SDP offer, get 201 + answer + Location.

``token`` sends ``Authorization: Bearer <token>`` (RFC 9725 section 4.5); it is never put in an
error message.
"""

from __future__ import annotations

from urllib.parse import urljoin

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from ..errors import SealError


class SignalingError(SealError):
    """The signaling server refused or could not be reached (message is safe to print)."""


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


async def _exchange(pc: RTCPeerConnection, url: str, timeout: float, token: str | None) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(
                url, data=pc.localDescription.sdp, headers=_headers(token, **{"Content-Type": "application/sdp"})
            ) as response:
                body = await response.text()
                if response.status != 201:
                    reason = body.strip().splitlines()[0] if body.strip() else (response.reason or "")
                    reason = reason.removeprefix(f"{response.status}: ")
                    hint = HINTS.get(response.status, "")
                    raise SignalingError(f"{url} answered {response.status}: {reason}{hint}")
                location = response.headers.get("Location")
                if not location:
                    raise SignalingError(f"{url} gave no Location for the session")
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error.strerror if exc.os_error is not None and exc.os_error.strerror else "no connection"
        raise SignalingError(f"cannot reach {url}: {why.lower()} — is the server running there?") from None
    except aiohttp.InvalidURL:
        raise SignalingError(f"{url} is not a usable URL: it must start with http:// or https://") from None
    except aiohttp.ClientError as exc:
        raise SignalingError(f"cannot reach {url}: {exc.__class__.__name__}: {exc}") from None
    except TimeoutError:
        raise SignalingError(f"{url} did not answer within {timeout:.0f} s") from None
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


async def delete_resource(url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
    """Leave a WHIP/WHEP session (errors are ignored: the server may already be gone)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.delete(url, headers=_headers(token)):
                pass
    except (aiohttp.ClientError, TimeoutError):
        pass
