"""A small Chrome DevTools Protocol client over aiohttp, and headless Chromium for tests.

Chromium runs inside the test's private network namespace with its own HOME/TMPDIR/profile,
fake camera and microphone, no mDNS candidates, and is killed (process group) by :meth:`close`.
One browser WebSocket; pages are targets attached in flat mode (``sessionId`` per command).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .waiting import eventually

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-default-apps",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Host candidates with real addresses (a private namespace has no mDNS responder).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    # No name lookups at all: the tests use IP literals, and nothing may leave the namespace.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
)


class CDPError(RuntimeError):
    """A DevTools command failed or a page script threw."""


def chromium_binary() -> str:
    """The Chromium executable; fails the test (never skips) when it is missing."""
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    pytest.fail("Chromium is missing: scripts/test installs it (apt-get install chromium)")


class Page:
    """One page target: evaluate JavaScript, collect console output."""

    def __init__(self, browser: Chromium, session_id: str, target_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.target_id = target_id
        self.console: list[str] = []

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    async def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate ``expression`` (awaiting a promise) and return its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True, "timeout": timeout * 1000},
            timeout=timeout + 5,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "error")
            raise CDPError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    async def call(self, function: str, *args: Any, timeout: float = 30.0) -> Any:
        """Evaluate ``(function)(...args)`` with JSON-encoded arguments."""
        encoded = ", ".join(json.dumps(a) for a in args)
        return await self.evaluate(f"({function})({encoded})", timeout=timeout)

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` in the page (it waits inside the page, not here) until truthy."""
        script = (
            f"(async () => {{ const end = performance.now() + {int(timeout * 1000)};"
            f" while (performance.now() < end) {{ const v = await ({expression}); if (v) return v;"
            " await new Promise(r => setTimeout(r, 100)); } return null; })()"
        )
        value = await self.evaluate(script, timeout=timeout + 5)
        if not value:
            raise CDPError(f"timed out after {timeout:.0f} s waiting for {expression}; console: {self.console[-20:]}")
        return value


class Chromium:
    """A headless Chromium process and its browser-level DevTools connection."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="sealrtc-chromium-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.pages: dict[str, Page] = {}

    @classmethod
    async def start(cls, timeout: float = 30.0) -> Chromium:
        browser = cls()
        try:
            await browser._launch(timeout)
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _launch(self, timeout: float) -> None:
        binary = chromium_binary()
        home = self.directory / "home"
        tmp = self.directory / "tmp"
        profile = self.directory / "profile"
        for d in (home, tmp, profile):
            d.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
        }
        log = open(self.directory / "chromium.log", "wb")
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        port_file = profile / "DevToolsActivePort"
        process = self.process

        def devtools_open() -> bool:  # a starting process announces nothing: polled
            if process.poll() is not None:
                raise CDPError(f"Chromium exited with {process.returncode}: {self.log_tail()}")
            return port_file.exists() and len(port_file.read_text().splitlines()) >= 2

        try:
            await eventually(devtools_open, timeout=timeout, what="Chromium to open DevTools")
        except AssertionError as failure:
            raise CDPError(f"{failure}: {self.log_tail()}") from None
        port, path = port_file.read_text().splitlines()[:2]
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.ensure_future(self._read())

    def log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "chromium.log").read_text(errors="replace")[-n:]
        return ""

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._on_event(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CDPError("DevTools connection closed"))

    def _on_event(self, data: dict[str, Any]) -> None:
        page = self.pages.get(data.get("sessionId", ""))
        if page is None:
            return
        params = data.get("params", {})
        if data.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            page.console.append(f"{params.get('type')}: {text}"[:500])
        elif data.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description", details.get("text"))
            page.console.append(f"exception: {description}"[:500])

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        assert self._ws is not None
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps(message))
        try:
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(message_id, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self, url: str) -> Page:
        """Open ``url`` in a new tab and wait for its load event."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"], target["targetId"])
        self.pages[page.session_id] = page
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", {"url": url})
        await page.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
        return page

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close", timeout=3), 4)
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._http is not None:
            await self._http.close()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)
