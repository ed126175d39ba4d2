"""Trickle ICE for WHIP/WHEP sessions (RFC 9725 4.3, RFC 8840 ``application/trickle-ice-sdpfrag``).

``PATCH /resource/{id}`` with an SDP fragment adds the client's candidates (and end-of-candidates)
to the session's peer connection and answers ``204``. ICE restarts (``If-Match: "*"``) are not
supported: ``501``, which clients treat as "no restart here". A fragment whose ICE credentials
are not the session's gets ``422``; a stale ``If-Match`` gets ``412``.

A session holds at most :data:`MAX_SESSION_CANDIDATES` distinct remote candidates, those of its
offer included: a PATCH that would pass the cap is refused whole with ``422`` and adds nothing.
Every remote candidate is paired with every local one and checked, so an unbounded list made
each PATCH slower and the whole relay busy (3840 candidates: 7680 pairs, 700 ms per PATCH).
32 is generous: a browser offers a handful per network interface.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCIceCandidate, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

SDPFRAG = "application/trickle-ice-sdpfrag"
MAX_FRAGMENT_BYTES = 16 * 1024
MAX_SESSION_CANDIDATES = 32
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)\s*$", re.MULTILINE)


def etag_for(resource_id: str) -> str:
    """The session's entity tag (it names the ICE session; it changes only on a restart)."""
    return f'"{resource_id}"'


@dataclass
class Fragment:
    ufrag: str | None = None
    candidates: list[RTCIceCandidate] = field(default_factory=list)
    """Distinct candidates (a repeated line counts once), in order."""
    texts: list[str] = field(default_factory=list)
    """Their SDP text, the session's key for each (same order)."""
    end_of_candidates: bool = False


def offer_candidates(sdp: str) -> set[str]:
    """The distinct ``a=candidate`` values of an SDP (bundled sections repeat them)."""
    return {line.strip()[len("a=candidate:") :] for line in sdp.splitlines() if line.strip().startswith("a=candidate:")}


class TooManyCandidates(ValueError):
    """More candidates than a session may hold."""


def parse_fragment(text: str) -> Fragment:
    """Parse an RFC 8840 SDP fragment; raise ``ValueError`` on anything that is not one."""
    fragment = Fragment()
    mid: str | None = None
    index = -1
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            fragment.ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=candidate:"):
            text = line[len("a=candidate:") :]
            if text in fragment.texts:
                continue
            if len(fragment.candidates) >= MAX_SESSION_CANDIDATES:
                raise TooManyCandidates(f"more than {MAX_SESSION_CANDIDATES} candidates in one fragment")
            try:
                candidate = candidate_from_sdp(text)
            except (AssertionError, ValueError, IndexError):
                raise ValueError("bad candidate line") from None
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = index if index >= 0 else 0
            fragment.candidates.append(candidate)
            fragment.texts.append(text)
        elif line == "a=end-of-candidates":
            fragment.end_of_candidates = True
        elif not line.startswith(("a=", "m=", "c=")):
            raise ValueError("not an SDP fragment")
    return fragment


async def handle_patch(
    request: web.Request, resource_id: str, pc: RTCPeerConnection, known: set[str], on_refused: Callable[[], None]
) -> web.Response:
    """Apply a trickle-ICE PATCH to ``pc`` (the session ``resource_id``).

    ``known`` holds the session's remote candidates so far (updated here); ``on_refused`` is
    called when the PATCH passes the cap.
    """
    if_match = request.headers.get("If-Match")
    if if_match == "*":
        raise web.HTTPNotImplemented(text="ICE restarts are not supported\n")
    if if_match is not None and if_match != etag_for(resource_id):
        raise web.HTTPPreconditionFailed(text="If-Match does not name this ICE session\n")
    if request.content_type != SDPFRAG:
        raise web.HTTPUnsupportedMediaType(text=f"Content-Type must be {SDPFRAG}\n")
    if (request.content_length or 0) > MAX_FRAGMENT_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FRAGMENT_BYTES, actual_size=request.content_length or 0)
    try:
        fragment = parse_fragment((await request.read())[:MAX_FRAGMENT_BYTES].decode("utf-8"))
    except TooManyCandidates:
        fragment = None
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="body is not a trickle-ICE SDP fragment\n") from None
    pairs = [] if fragment is None else zip(fragment.texts, fragment.candidates, strict=True)
    new = {text: candidate for text, candidate in pairs if text not in known}
    if fragment is None or len(known) + len(new) > MAX_SESSION_CANDIDATES:
        on_refused()
        raise web.HTTPUnprocessableEntity(
            text=f"too many ICE candidates for this session (at most {MAX_SESSION_CANDIDATES})\n"
        )
    remote = pc.remoteDescription
    expected = _UFRAG.search(remote.sdp) if remote is not None else None
    if fragment.ufrag is not None and expected is not None and fragment.ufrag != expected.group(1):
        raise web.HTTPUnprocessableEntity(text="ICE credentials do not match this session\n")
    known.update(new)
    for candidate in new.values():
        await pc.addIceCandidate(candidate)
    if fragment.end_of_candidates:
        await pc.addIceCandidate(None)
    return web.Response(status=204, headers={"ETag": etag_for(resource_id)})
