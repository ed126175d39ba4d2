"""Commands run on uvloop where it is installed (a default dependency on Linux)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from sealrtc.shell import eventloop

from .rtc_helpers import require_namespace

pytestmark = pytest.mark.unit


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_installed() -> None:
    assert eventloop.loop_name() == "uvloop"
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_sealrtc_loop_asyncio_forces_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALRTC_LOOP", "asyncio")
    assert eventloop.loop_name() == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")


@pytest.mark.network
def test_the_cli_runs_on_uvloop() -> None:
    """The agents' CLI entry goes through :func:`sealrtc.shell.eventloop.run` (checked in a subprocess;
    the publish fails to connect, which does not matter here). The relay and the demo, which host
    the relay, stay on asyncio's loop."""
    require_namespace()  # the publish tries 127.0.0.1:9: only inside the private namespace
    code = (
        "import asyncio, sys\n"
        "from sealrtc.shell import eventloop\n"
        "from sealrtc.cli import main\n"
        "seen = []\n"
        "real = eventloop.run\n"
        "def spy(coro):\n"
        "    async def wrapped():\n"
        "        seen.append(type(asyncio.get_running_loop()).__module__)\n"
        "        return await coro\n"
        "    return real(wrapped())\n"
        "eventloop.run = spy\n"
        "main(['publish', '--whip', 'http://127.0.0.1:9/whip/x', '--no-e2ee', '--duration', '0.2'])\n"
        "print(seen[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().startswith("uvloop"), result.stderr
