"""Helpers for browser tests: the sample page served from 127.0.0.1, headless Chromium around a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from .cdp import Chromium, Page
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


FILL_AND_START = """
async (fields) => {
  for (const [id, value] of Object.entries(fields)) document.getElementById(id).value = value;
  await window.sealrtc.startFromForm();
  const s = window.sealrtc.state;
  return { status: s.status, error: s.error, secretFieldEmpty: document.getElementById('secret').value === '' };
}
"""


async def start_session(page: Page, **fields: str) -> None:
    """Fill the sample page's form (mode, transport, url, room, context, suite, secret) and start."""
    result = await page.call(FILL_AND_START, fields, timeout=30)
    assert result["status"] in ("publishing", "subscribing"), (result, page.console[-20:])
    assert result["secretFieldEmpty"]


async def page_stats(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] = await page.evaluate("window.sealrtc.stats()")
    return stats


def worker_totals(stats: dict[str, Any], operation: str, kind: str) -> dict[str, int]:
    """Sum the worker's counters for one operation and kind."""
    out = {"frames_in": 0, "frames_out": 0, "frames_dropped": 0}
    for s in stats["worker"]:
        if s["operation"] == operation and s["kind"] == kind:
            for key in out:
                out[key] += s[key]
    return out
