"""Helpers for browser tests: the sample page served from 127.0.0.1, headless Chromium around a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from .cdp import Chromium
from .rtc_helpers import require_namespace

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "browser"


@asynccontextmanager
async def serve_sample(host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``samples/browser`` over HTTP (127.0.0.1 is a secure context); yield its base URL."""
    app = web.Application()

    async def no_cache(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Cache-Control"] = "no-store"

    app.on_response_prepare.append(no_cache)
    app.router.add_static("/", SAMPLE, show_index=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def chromium() -> AsyncIterator[Chromium]:
    """Headless Chromium inside the test namespace, killed at the end even on failure."""
    require_namespace()
    browser = await Chromium.start()
    try:
        yield browser
    finally:
        await browser.close()
