"""The command line: help, secrets never from argv or in output, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealrtc.cli.main import main

from .rtc_helpers import require_namespace

SECRET = "cli-secret-never-printed-7d41"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "sealrtc", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


@pytest.mark.parametrize("command", ["relay", "publish", "subscribe", "demo"])
def test_help_explains_every_command(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "--duration" in result.stdout or command == "relay"
    if command in ("publish", "subscribe"):
        assert "SEALRTC_SECRET" in result.stdout and "--secret-file" in result.stdout and "--no-e2ee" in result.stdout


def test_there_is_no_secret_option() -> None:
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--secret", SECRET)
    assert result.returncode == 2
    assert SECRET not in result.stderr + result.stdout


def test_missing_secret_is_a_one_line_error() -> None:
    result = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "SEALRTC_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_server_is_a_one_line_error_without_the_secret() -> None:
    require_namespace()
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--duration", "1", env={"SEALRTC_SECRET": SECRET})
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert SECRET not in result.stderr + result.stdout


def test_secret_file(tmp_path: Path) -> None:
    require_namespace()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--secret-file", str(secret_file), "--duration", "1")
    assert result.returncode == 1 and "cannot reach" in result.stderr  # got past the secret
    empty = tmp_path / "empty"
    empty.write_text("")
    assert main(["publish", "--whip", "http://x/whip/y", "--secret-file", str(empty)]) == 1
    assert main(["publish", "--whip", "http://x/whip/y", "--secret-file", str(tmp_path / "missing")]) == 1


def test_bad_duration_is_a_usage_error() -> None:
    assert run("demo", "--duration", "-1").returncode == 2


def test_bad_listen_address() -> None:
    assert main(["relay", "--listen", "nonsense", "--duration", "1"]) == 1
