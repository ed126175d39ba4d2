"""Start Debian's Janus with a generated minimal configuration in a temporary directory.

Only the VideoRoom plugin and the WebSocket transport (API on loopback), ``rtp_port_range``
below the kernel's ephemeral range, ``ignore_mdns``, no STUN; stopped by PID. Meant for the
private network namespace of ``scripts/test`` / ``scripts/isolated`` (libnice needs the veth
addresses; it ignores loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

PLUGIN_DIRS = ("/usr/lib/*/janus", "/usr/lib/janus", "/usr/local/lib/janus")


class JanusUnavailable(RuntimeError):
    """Janus is not installed or did not start (the message says what to do)."""


@dataclass(frozen=True)
class RoomConfig:
    room: int
    require_e2ee: bool = False
    record: bool = False
    description: str = "sealrtc"


@dataclass
class JanusServer:
    """A running Janus. ``url`` is its WebSocket API; ``rec_dir`` holds recordings."""

    process: subprocess.Popen[bytes]
    directory: Path
    port: int
    rec_dir: Path
    log: Path
    rooms: list[RoomConfig] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill -9 (to test agents against a Janus that dies mid-run)."""
        if self.alive():
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _module_dir() -> Path:
    for pattern in PLUGIN_DIRS:
        for candidate in glob.glob(pattern):
            if (Path(candidate) / "plugins" / "libjanus_videoroom.so").exists():
                return Path(candidate)
    raise JanusUnavailable("Janus' VideoRoom plugin was not found: install Debian's 'janus' package")


def write_config(directory: Path, port: int, rooms: list[RoomConfig]) -> Path:
    modules = _module_dir()
    for kind, name in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_websockets.so")):
        (directory / kind).mkdir()
        (directory / kind / name).symlink_to(modules / kind / name)
    (directory / "empty").mkdir()
    rec_dir = directory / "recordings"
    rec_dir.mkdir()
    (directory / "janus.jcfg").write_text(
        "general: {\n"
        f'  configs_folder = "{directory}"\n  plugins_folder = "{directory}/plugins"\n'
        f'  transports_folder = "{directory}/transports"\n  events_folder = "{directory}/empty"\n'
        f'  loggers_folder = "{directory}/empty"\n  session_timeout = 60\n  debug_level = 4\n'
        "}\n"
        'media: {\n  rtp_port_range = "20000-20999"\n}\n'
        "nat: {\n  ignore_mdns = true\n  nice_debug = false\n}\n"
    )
    (directory / "janus.transport.websockets.jcfg").write_text(
        f'general: {{\n  ws = true\n  ws_ip = "127.0.0.1"\n  ws_port = {port}\n}}\nadmin: {{\n  admin_ws = false\n}}\n'
    )
    lines = ["general: {\n}\n"]
    for r in rooms:
        lines.append(
            f'room-{r.room}: {{\n  description = "{r.description}"\n  publishers = 6\n'
            f'  videocodec = "vp8,h264"\n  audiocodec = "opus"\n  fir_freq = 2\n  notify_joining = true\n'
            f"  require_e2ee = {'true' if r.require_e2ee else 'false'}\n"
            + (f'  record = true\n  rec_dir = "{rec_dir}/{r.room}"\n' if r.record else "")
            + "}\n"
        )
        if r.record:
            (rec_dir / str(r.room)).mkdir()
    (directory / "janus.plugin.videoroom.jcfg").write_text("".join(lines))
    return rec_dir


async def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if process.poll() is not None:
                raise JanusUnavailable(f"Janus exited at start-up with status {process.returncode}")
            try:
                async with http.ws_connect(url, protocols=("janus-protocol",)) as ws:
                    await ws.send_json({"janus": "info", "transaction": "ready"})
                    await ws.receive(timeout=2)
                    return
            except (aiohttp.ClientError, OSError, TimeoutError):
                if loop.time() > deadline:
                    raise JanusUnavailable(f"Janus did not answer on {url} within {timeout:.0f} s") from None
                await asyncio.sleep(0.05)  # polling a starting process: there is no event to await


async def start_janus(rooms: list[RoomConfig], *, timeout: float = 10.0) -> JanusServer:
    """Start a private Janus with ``rooms``; raise :class:`JanusUnavailable` if impossible."""
    binary = shutil.which("janus")
    if binary is None:
        raise JanusUnavailable("the 'janus' binary is missing: scripts/test installs it (apt-get install janus)")
    directory = Path(tempfile.mkdtemp(prefix="sealrtc-janus-"))
    port = _free_port()
    rec_dir = write_config(directory, port, rooms)
    log = directory / "janus.log"
    process = subprocess.Popen(
        [binary, "-F", str(directory), "-o", "-N", "-L", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = JanusServer(process, directory, port, rec_dir, log, rooms)
    try:
        await _wait_ready(server.url, process, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def cleanup(server: JanusServer) -> None:
    server.stop()
    with contextlib.suppress(OSError):
        shutil.rmtree(server.directory)


def in_namespace() -> bool:
    return os.environ.get("SEALRTC_NETNS") == "1"
