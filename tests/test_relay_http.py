"""The relay's HTTP surface for browser clients: CORS, preflight, trickle-ICE PATCH, live /stats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from sealrtc.relay.server import Relay, start_relay
from sealrtc.relay.trickle import parse_fragment

from .rtc_helpers import new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link",
}


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    require_namespace()
    server, runner, port = await start_relay("127.0.0.1", 0, Relay())
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def assert_cors(headers: object, origin: str = "*", *, preflight: bool = False) -> None:
    assert hasattr(headers, "get")
    for name, value in CORS.items():
        expected = origin if name == "Access-Control-Allow-Origin" else value
        assert headers.get(name) == expected, name
    if not preflight:  # a preflight names the methods of its path only
        assert "PATCH" in headers.get("Access-Control-Allow-Methods", "")


async def test_preflight_and_cors_on_every_response(relay: tuple[Relay, str]) -> None:
    _, base = relay
    async with aiohttp.ClientSession() as http:
        for path in ("/whip/room", "/whep/room"):
            async with http.options(base + path, headers={"Origin": "http://127.0.0.1:1"}) as response:
                assert response.status == 204
                assert response.headers["Accept-Post"] == "application/sdp"
                assert_cors(response.headers, preflight=True)
                assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with http.options(base + "/resource/abc") as response:
            assert response.status == 204 and "Accept-Post" not in response.headers
            assert {"DELETE", "PATCH"} <= set(response.headers["Access-Control-Allow-Methods"].split(", "))
        async with http.options(base + "/nowhere") as response:
            assert response.status == 404
            assert_cors(response.headers)
        for method, path, headers, status in (
            ("POST", "/whip/r", {"Content-Type": "text/plain"}, 415),
            ("DELETE", "/resource/nope", {}, 404),
            ("GET", "/whip/r", {}, 405),
            ("PATCH", "/resource/nope", {"Content-Type": "application/trickle-ice-sdpfrag"}, 404),
            ("GET", "/stats", {}, 200),
        ):
            async with http.request(method, base + path, headers=headers, data="x") as response:
                assert response.status == status, path
                assert_cors(response.headers)


async def test_configured_origin() -> None:
    require_namespace()
    _, runner, port = await start_relay("127.0.0.1", 0, Relay(cors_origin="https://app.example"))
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/stats") as response:
            assert_cors(response.headers, "https://app.example")
            assert response.headers["Vary"] == "Origin"
    finally:
        await runner.cleanup()


@pytest.mark.unit
def test_parse_fragment() -> None:
    fragment = parse_fragment(
        "a=ice-ufrag:abcd\r\na=ice-pwd:secretpwd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2122260223 10.77.0.1 40000 typ host\r\na=end-of-candidates\r\n"
    )
    assert fragment.ufrag == "abcd" and fragment.end_of_candidates
    [candidate] = fragment.candidates
    assert (candidate.ip, candidate.port, candidate.sdpMid) == ("10.77.0.1", 40000, "0")
    for bad in ("hello", "a=candidate:1 1 udp\r\n"):
        with pytest.raises(ValueError):
            parse_fragment(bad)


async def test_trickle_ice_patch_connects_a_candidate_less_offer(relay: tuple[Relay, str]) -> None:
    """An offer without candidates (as browser libraries send it) connects through PATCH."""
    require_namespace()
    server, base = relay
    pc = new_pc()
    changed = asyncio.Event()
    pc.on("connectionstatechange", changed.set)

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        lines = sdp.splitlines()
        offer = "\r\n".join(line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates")))
        candidates = [line for line in lines if line.startswith("a=candidate:")]
        ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/whep/t", data=offer + "\r\n", headers={"Content-Type": "application/sdp"}
            ) as response:
                assert response.status == 201
                assert response.headers["Content-Type"] == "application/sdp"  # no charset parameter
                etag = response.headers["ETag"]
                resource = base + response.headers["Location"]
                answer = await response.text()
            fragment = f"{ufrag}\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + "\r\n".join(candidates)
            fragment += "\r\na=end-of-candidates\r\n"
            frag_type = {"Content-Type": "application/trickle-ice-sdpfrag"}
            for headers, body, status in (
                ({**frag_type, "If-Match": '"stale"'}, fragment, 412),
                ({**frag_type, "If-Match": "*"}, fragment, 501),
                ({"Content-Type": "application/sdp"}, fragment, 415),
                (frag_type, "garbage", 400),
                (frag_type, fragment.replace(ufrag, "a=ice-ufrag:someoneelse"), 422),
            ):
                async with http.patch(resource, data=body, headers=headers) as response:
                    assert response.status == status, body[:40]
            async with http.patch(resource, data=fragment, headers={**frag_type, "If-Match": etag}) as response:
                assert response.status == 204
            relay_pc = server._resources[resource.rsplit("/", 1)[1]][1].pc
            ice = relay_pc.getTransceivers()[0].receiver.transport.transport
            learned = {(c.ip, c.port) for c in ice.getRemoteCandidates()}
            assert {(line.split()[4], int(line.split()[5])) for line in candidates} <= learned
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await eventually(
                lambda: pc.connectionState == "connected",
                timeout=15,
                what="the trickled peer to connect",
                event=changed,
            )
            async with http.get(f"{base}/stats") as response:
                stats = await response.json()
            assert stats["live"] == {"publishers": 0, "subscribers": 1}
            assert stats["rooms"] == {"t": {"publishers": 0, "subscribers": 1}}
            async with http.delete(resource) as response:
                assert response.status == 200
            async with http.get(f"{base}/stats") as response:
                stats = await response.json()
            assert stats["live"] == {"publishers": 0, "subscribers": 0} and stats["rooms"] == {}
            assert stats["subscribers"] == 1  # the total since start stays
    finally:
        await pc.close()
