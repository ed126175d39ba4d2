"""Hardening of the clients (issue 17, items 5, 8, 10, 12, 13), each test doing the attack
against local servers inside the private namespace: a server's 300 MB body, a ``Location`` on
another origin, a relay that refuses new connections while media flows, a dead relay, the
embedded relay's environment, 300 idle connections to the metrics exporter."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCSessionDescription

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent
from sealrtc.agents import watch as watch_module
from sealrtc.load.exporter import MAX_CONNECTIONS, LoadMetrics, serve
from sealrtc.load.runner import start_relay as start_embedded_relay
from sealrtc.relay.server import Relay, start_relay
from sealrtc.signaling.whip import SignalingError, whep_subscribe

from .rtc_helpers import new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

MB = 1024 * 1024
HUGE = 300 * MB
NASTY_START = b"\x1b[2J\x1b]0;owned\x07[blink]FAKE: all assertions passed[/blink] "

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable[[list[tuple[str, str, Handler]]], Awaitable[str]]]:
    """Start small aiohttp apps on 127.0.0.1 (each its own port, so its own origin)."""
    require_namespace()
    runners: list[web.AppRunner] = []

    async def start(routes: list[tuple[str, str, Handler]]) -> str:
        app = web.Application()
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def _stream_huge(request: web.Request, status: int) -> web.StreamResponse:
    """``status`` with a 300 MB body whose first line is the whole body (no newline at all)."""
    await request.read()
    response = web.StreamResponse(status=status, headers={"Content-Type": "text/plain", "Location": "/r/1"})
    response.content_length = HUGE
    await response.prepare(request)
    chunk = NASTY_START + b"A" * (MB - len(NASTY_START))
    try:
        for _ in range(HUGE // MB):
            await response.write(chunk)
            chunk = b"B" * MB
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading: what it should do
    return response


# -- item 8: bounded reads of a server's reply --------------------------------------------------


@pytest.mark.parametrize(("status", "message"), [(500, "answered 500: "), (201, "SDP answer over 256 KiB")])
async def test_a_300_mb_reply_is_neither_read_whole_nor_printed(serve_app: Any, status: int, message: str) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return await _stream_huge(request, status)

    base = await serve_app([("POST", "/whep/x", huge)])
    pc = new_pc()
    tracemalloc.start()
    try:
        with pytest.raises(SignalingError) as caught:
            await whep_subscribe(pc, f"{base}/whep/x", timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await pc.close()
    text = str(caught.value)
    assert message in text and len(text) < 400 and "\n" not in text
    assert "\x1b" not in text and "\x07" not in text
    assert peak < 32 * MB  # the client read a few KiB of 300 MB (it peaked at 1.9 GB before)
    if status == 500:
        assert "\\x1b[2J" in text and "[blink]FAKE" in text  # one line, shown escaped


async def test_the_cli_prints_one_short_line_of_a_300_mb_error_body(serve_app: Any) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return await _stream_huge(request, 500)

    base = await serve_app([("POST", "/whep/x", huge)])
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"} | {"SEALRTC_SECRET": "s"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "subscribe", "--whep", f"{base}/whep/x", "--duration", "5", "--quiet",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 1
    assert len(err) + len(out) < 1000 and err.count(b"\n") == 1
    assert b"answered 500" in err and b"\x1b" not in err


# -- item 10: the token stays on its origin -----------------------------------------------------


async def _answer(request: web.Request, peers: list[Any]) -> str:
    offer = RTCSessionDescription(sdp=await request.text(), type="offer")
    pc = new_pc()
    peers.append(pc)
    await pc.setRemoteDescription(offer)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


@pytest.mark.parametrize("other_origin", [True, False])
async def test_the_token_is_not_sent_to_a_location_on_another_origin(serve_app: Any, other_origin: bool) -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.host, request.headers.get("Authorization")))
        return web.Response(status=200)

    elsewhere = await serve_app([("DELETE", "/resource/1", record)])
    peers: list[Any] = []

    async def whip(request: web.Request) -> web.Response:
        seen.append((request.method, request.host, request.headers.get("Authorization")))
        sdp = await _answer(request, peers)
        location = f"{elsewhere}/resource/1" if other_origin else "/resource/1"
        return web.Response(status=201, text=sdp, headers={"Location": location, "Content-Type": "application/sdp"})

    base = await serve_app([("POST", "/whip/x", whip), ("DELETE", "/resource/1", record)])
    agent = PublisherAgent(None)
    try:
        await agent.publish_whip(f"{base}/whip/x", token="tok-not-for-others")
    finally:
        await agent.close()
        for pc in peers:
            await pc.close()
    assert seen[0] == ("POST", base.removeprefix("http://"), "Bearer tok-not-for-others")
    delete = seen[1]
    assert delete[0] == "DELETE"
    if other_origin:
        assert delete[1] == elsewhere.removeprefix("http://") and delete[2] is None
    else:
        assert delete[1] == base.removeprefix("http://") and delete[2] == "Bearer tok-not-for-others"


# -- item 5: liveness is the media path ---------------------------------------------------------


def _count_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record every TCP check the watcher makes (and what it found)."""
    results: list[bool] = []
    real = watch_module._reachable

    async def counted(host: str, port: int) -> bool:
        ok = await real(host, port)
        results.append(ok)
        return ok

    monkeypatch.setattr(watch_module, "_reachable", counted)
    return results


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_a_publisher_lives_while_the_relay_refuses_new_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    require_namespace()
    checks = _count_checks(monkeypatch)
    _, runner, port = await start_relay("127.0.0.1", 0, Relay())
    agent = PublisherAgent(SharedSecret("liveness", context=b"r"))
    try:
        await agent.publish_whip(f"http://127.0.0.1:{port}/whip/live")
        await eventually(lambda: agent.frames_sent()["video"] > 30 and agent.pc.connectionState == "connected",
                         timeout=20, what="the publisher's media flowing")  # fmt: skip
        for site in list(runner.sites):
            await site.stop()  # the listening socket is closed: no new connection; sessions go on
        assert await _refused(port)
        before = len(checks)
        await eventually(lambda: agent.failed.is_set() or checks[before:].count(False) >= 4, timeout=30,
                         what="four refused checks")  # fmt: skip
        assert not agent.failed.is_set(), agent.failure
        sent = agent.frames_sent()["video"]
        await eventually(lambda: agent.frames_sent()["video"] > sent + 30, timeout=10, what="media still flowing")
        assert agent.pc.connectionState == "connected" and not agent.failed.is_set()
    finally:
        await agent.close()
        await runner.cleanup()


async def test_a_dead_relay_is_still_found_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    require_namespace()
    checks = _count_checks(monkeypatch)
    target = await start_embedded_relay(60)
    assert target.process is not None
    agent = PublisherAgent(SharedSecret("liveness", context=b"r"))
    try:
        await agent.publish_whip(f"{target.url}/whip/dead", token=target.token)  # the per-run token, if any
        await eventually(lambda: agent.frames_sent()["video"] > 30 and agent.pc.connectionState == "connected",
                         timeout=20, what="the publisher's media flowing")  # fmt: skip
        target.process.kill()  # no goodbye: no DTLS close, no FIN on the media path
        await target.process.wait()
        before = len(checks)
        await eventually(agent.failed.is_set, timeout=15, what="the publisher noticing the dead relay")
        assert "lost the connection to the server" in (agent.failure or "")
        assert len(checks) - before <= 3  # two refusals after the media stopped: seconds, not ICE's 30 s
    finally:
        await agent.close()


# -- item 12: the embedded relay's environment ----------------------------------------------------


async def test_the_embedded_relay_starts_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    require_namespace()
    monkeypatch.setenv("SEALRTC_SECRET", "e2ee-secret-never-in-the-relay")
    monkeypatch.setenv("SEALRTC_TOKEN", "bearer-never-in-the-relay")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-never-in-the-relay")
    target = await start_embedded_relay(30)
    assert target.process is not None
    try:
        with open(f"/proc/{target.process.pid}/environ", "rb") as file:
            environ = file.read()
    finally:
        target.process.terminate()
        await target.process.wait()
    names = {entry.split(b"=", 1)[0] for entry in environ.split(b"\0") if entry}
    assert b"PATH" in names  # an environment, only without secrets
    assert not names & {b"SEALRTC_SECRET", b"SEALRTC_TOKEN", b"AWS_SECRET_ACCESS_KEY"}
    assert b"never-in-the-relay" not in environ


# -- item 13: the metrics exporter ---------------------------------------------------------------


async def test_300_idle_connections_do_not_make_300_threads() -> None:
    require_namespace()
    threads_before = threading.active_count()
    server = serve(LoadMetrics("0"), ("127.0.0.1", 0), idle_timeout=1.0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection((host, port)))
        for s in idle:
            s.setblocking(False)

        def closed_by_server() -> int:
            count = 0
            for s in idle:
                try:
                    if s.recv(1) == b"":
                        count += 1
                except BlockingIOError:
                    pass
                except OSError:
                    count += 1
            return count

        # everything past the budget is closed at once, the rest when idle too long
        await eventually(lambda: closed_by_server() >= 300 - MAX_CONNECTIONS, timeout=30, what="excess closed")
        assert threading.active_count() <= threads_before + 1 + MAX_CONNECTIONS  # the accept loop + the pool
        async with aiohttp.ClientSession() as http:

            async def scraped() -> bool:
                try:
                    async with http.get(f"http://{host}:{port}/metrics") as response:
                        return response.status == 200 and "sealrtc_load" in await response.text()
                except aiohttp.ClientError:
                    return False

            await eventually(scraped, timeout=30, what="a scrape served once the idle ones timed out")
        assert threading.active_count() <= threads_before + 1 + MAX_CONNECTIONS
    finally:
        for s in idle:
            s.close()
        server.close()
