"""Zero-setup runs authenticate too (issue 17, item 3): ``demo`` and ``load`` give their embedded
relay a random token per run, never through argv and never in their output."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import pytest

import sealrtc.relay.server as relay_server
from sealrtc.cli.args import build_parser
from sealrtc.cli.demo import run_demo
from sealrtc.load.runner import start_relay as start_load_relay
from sealrtc.relay.server import Relay

from .rtc_helpers import new_pc, require_namespace

pytestmark = pytest.mark.network


async def candidate_less_offer() -> str:
    pc = new_pc()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return "\r\n".join(line for line in sdp.splitlines() if not line.startswith("a=candidate")) + "\r\n"


async def post_status(url: str, offer: str, token: str | None) -> int:
    headers = {"Content-Type": "application/sdp"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.post(url, data=offer, headers=headers) as response:
        return response.status


async def test_demo_relay_requires_its_per_run_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_namespace()
    started: list[Relay] = []
    real_start = relay_server.start_relay

    async def recording_start(host: str, port: int, relay: Relay | None = None, **options: Any) -> Any:
        assert relay is not None
        started.append(relay)
        return await real_start(host, port, relay, **options)

    monkeypatch.setattr(relay_server, "start_relay", recording_start)
    args = build_parser().parse_args(["demo", "--duration", "2", "--quiet", "--json", "-"])
    assert await run_demo(args) == 0  # the demo's own agents got in with the token
    [relay] = started
    tokens = [relay._publish_tokens, relay._subscribe_tokens]
    assert all(t is not None for t in tokens)
    secret = tokens[0]._tokens[0].decode()  # type: ignore[union-attr]
    assert len(secret) >= 32 and tokens[1].accepts(f"Bearer {secret}")  # type: ignore[union-attr]
    out = capsys.readouterr()
    assert secret not in out.out and secret not in out.err


async def test_load_relay_gets_its_token_by_environment_not_argv() -> None:
    require_namespace()
    target = await start_load_relay(60)
    proc = target.process
    assert proc is not None and target.token is not None and len(target.token) >= 32
    try:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert not any(target.token.encode() in arg for arg in argv)
        assert b"--publisher-policy" in argv  # a scenario may have several publishers per room
        offer = await candidate_less_offer()
        assert await post_status(f"{target.url}/whep/r", offer, None) == 401
        assert await post_status(f"{target.url}/whep/r", offer, "not-the-token") == 401
        assert await post_status(f"{target.url}/whep/r", offer, target.token) == 201
        assert target.token not in repr(target)
        assert os.environ.get("SEALRTC_PUBLISH_TOKEN") != target.token  # not left in the parent's environment
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
