"""Named namespaces (``scripts/isolated --name``) and ``/metrics`` where the user is (issue 21 item 14)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sealrtc.cli.isolation import namespace_hint

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = [pytest.mark.network]

ISOLATED = str(Path(__file__).resolve().parent.parent / "scripts" / "isolated")
SERVER = "import socket; s = socket.create_server(('10.77.0.1', 7000)); c, _ = s.accept(); c.sendall(b'hi'); c.close()"
CLIENT = "import socket; print(socket.create_connection(('10.77.0.1', 7000), timeout=2).recv(2).decode())"


def isolated(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ISOLATED, *args], capture_output=True, text=True, env=env, timeout=60)


async def test_a_named_namespace_is_shared_until_it_is_removed(tmp_path: Path) -> None:
    require_namespace()
    env = os.environ | {"XDG_RUNTIME_DIR": str(tmp_path)}
    try:
        first = isolated("--name", "lab", "sh", "-c", "readlink /proc/self/ns/net; echo $SEALRTC_NETNS_NAME", env=env)
        second = isolated("--name", "lab", "readlink", "/proc/self/ns/net", env=env)
        assert first.returncode == 0 and "namespace lab is up" in first.stderr, first.stderr
        namespace, name = first.stdout.split()
        assert second.stdout.strip() == namespace != os.readlink("/proc/self/ns/net") and name == "lab"
        assert "namespace lab is up" not in second.stderr  # entered, not made again
        assert isolated("--list", env=env).stdout.startswith("lab (holder pid ")

        server = subprocess.Popen([ISOLATED, "--name", "lab", sys.executable, "-c", SERVER], env=env)
        try:

            def answered() -> bool:  # from a second command: the same namespace, the same addresses
                return isolated("--name", "lab", sys.executable, "-c", CLIENT, env=env).stdout.strip() == "hi"

            await eventually(answered, timeout=20, what="a command in namespace lab reaching another one")
        finally:
            server.kill()
            server.wait()
    except BaseException:
        isolated("--down", "lab", env=env)  # a failed check leaves no holder process behind
        raise
    down = isolated("--down", "lab", env=env)
    assert down.returncode == 0 and "namespace lab removed" in down.stderr
    assert isolated("--list", env=env).stdout == "" and isolated("--down", "lab", env=env).returncode == 1
    assert isolated("--name", "../x", "true", env=env).returncode == 2


def test_a_server_error_outside_a_namespace_mentions_it(monkeypatch: pytest.MonkeyPatch) -> None:
    message = "cannot reach http://127.0.0.1:8080/whip/a: connection refused — is the server running there?"
    assert namespace_hint(message) == ""  # inside one: nothing to add
    monkeypatch.delenv("SEALRTC_NETNS")
    assert "scripts/isolated --name NAME" in namespace_hint(message)
    assert namespace_hint("http://127.0.0.1:8080/whip/a answered 404: no such room") != ""
    assert namespace_hint("http://127.0.0.1:8080/whip/a answered 401: a token is needed") == ""


async def test_metrics_of_an_embedded_relay_run_are_served_where_the_user_is(tmp_path: Path) -> None:
    require_namespace()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("SEALRTC_NETNS", "SEALRTC_SECRET")}  # as from a shell
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "load", "--metrics-port", str(port), "--subscribers", "1", "--workers", "1",
        "--duration", "6", "--quiet", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    scraped: list[str] = []

    async def scrape() -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.write(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        text = (await reader.read()).decode()
        writer.close()
        scraped.append(text)
        return "sealrtc_load_participants{" in text and 'state="joined"' in text

    try:
        await eventually(scrape, timeout=30, what=f"/metrics on 127.0.0.1:{port}, outside the run's namespace")
    finally:
        _, err = await load.communicate()
    assert load.returncode == 0, err.decode()
