"""The command line: help, secrets never from argv or in output, one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealrtc.cli.main import main

from .rtc_helpers import require_namespace

pytestmark = pytest.mark.unit

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
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SEALRTC_SECRET" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.network
def test_unreachable_server_is_a_one_line_error_without_the_secret() -> None:
    require_namespace()
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--duration", "1", env={"SEALRTC_SECRET": SECRET})
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert SECRET not in result.stderr + result.stdout


def test_secret_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealrtc.cli.common import read_secret

    secret_file = tmp_path / "secret"
    secret_file.write_text("from the file\n")
    secret_file.chmod(0o600)
    monkeypatch.setenv("SEALRTC_SECRET", "from the environment")
    assert read_secret(argparse.Namespace(secret_file=str(secret_file)), required=True) == "from the file"
    assert read_secret(argparse.Namespace(secret_file=None), required=True) == "from the environment"


@pytest.mark.network
def test_secret_file(tmp_path: Path) -> None:
    require_namespace()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--secret-file", str(secret_file), "--duration", "1")
    assert result.returncode == 1 and "cannot reach" in result.stderr  # got past the secret
    empty = tmp_path / "empty"
    empty.write_text("")
    assert main(["publish", "--whip", "http://x/whip/y", "--secret-file", str(empty)]) == 2
    assert main(["publish", "--whip", "http://x/whip/y", "--secret-file", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["publish", "--whip", "http://127.0.0.1:9/whip/x"],
        ["subscribe", "--whep", "http://127.0.0.1:9/whep/x"],
        ["keys", "export", "--epoch", "1"],
        ["load", "--server", "http://127.0.0.1:9", "--shard", "0/2", "--run-id", "r"],
    ],
)
def test_a_missing_secret_is_a_usage_error_in_every_command(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SEALRTC_SECRET", raising=False)
    assert main(argv) == 2
    assert "no E2EE secret" in capsys.readouterr().err


def test_a_directory_as_json_report_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--server", "http://127.0.0.1:9", "--quiet", "--json", str(tmp_path)]) == 2
    assert main(["report", "merge", str(tmp_path)]) == 2  # a directory given as a report to merge
    assert main(["report", "merge", str(tmp_path), "--json", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("is a directory") == 2


def test_bad_duration_is_a_usage_error() -> None:
    assert run("demo", "--duration", "-1").returncode == 2


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        ("nonsense", "'nonsense' has no port: use HOST:PORT, e.g. nonsense:8080"),
        ("localhost", "e.g. localhost:8080"),
        (":8080", "':8080' has no host: use 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (all interfaces)"),
        ("8080", "'8080' has no host: use 127.0.0.1:8080"),
        ("127.0.0.1:70000", "a port 0-65535"),
        ("127.0.0.1:http", "a port 0-65535"),
        ("127.0.0.1:\u00b2", "a port 0-65535"),  # a digit to str.isdigit, not to int()
        ("http://127.0.0.1:8080", "takes HOST:PORT, not a URL"),
    ],
)
def test_bad_listen_address_says_what_is_missing(listen: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relay", "--listen", listen, "--duration", "1"]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "library_level"), [([], "ERROR"), (["-v"], "WARNING"), (["-vv"], "NOTSET")])
def test_verbosity_lets_aiortc_and_aioice_speak_only_at_vv(flags: list[str], library_level: str) -> None:
    assert main(["relay", "--listen", "nonsense", *flags]) == 2  # logging is set up before the usage error
    for name in ("aiortc", "aioice"):
        assert logging.getLevelName(logging.getLogger(name).level) == library_level


@pytest.mark.parametrize(
    ("word", "says"),
    [("publsh", "unknown command (did you mean publish?)"), ("hunter2", "unknown command (commands: relay, publish")],
)
def test_an_unknown_command_gets_a_hint_and_is_not_echoed(word: str, says: str) -> None:
    result = run(word, "--duration", "1")
    assert result.returncode == 2 and says in result.stderr and word not in result.stderr


def test_record_into_a_file_says_it_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "afile"
    target.write_text("")
    assert main(["subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--no-e2ee", "--record", str(target)]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip().startswith("sealrtc ")


@pytest.mark.parametrize("typo", [f"--secret={SECRET}", f"-s{SECRET}", f"--secrt={SECRET}"])
def test_mistyped_secret_options_are_never_echoed(typo: str) -> None:
    result = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", typo)
    assert result.returncode == 2
    assert SECRET not in result.stderr + result.stdout
    assert "unrecognized arguments" in result.stderr


def test_a_mistyped_flag_is_reported_as_such_with_a_hint() -> None:
    result = run("publish", "--whp", "http://127.0.0.1:9/whip/x")
    assert result.returncode == 2
    assert "unrecognized arguments: --whp" in result.stderr and "did you mean --whip?" in result.stderr
    assert result.stderr.startswith("usage: sealrtc publish ") and "sealrtc publish: error:" in result.stderr


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["publish", "--bogus"], ""),  # nothing close: no far-fetched "did you mean --verbose?"
        (["subscribe", "--secrt=x"], " (did you mean --secret-file?)"),
        (["load", "--no-decode"], " (load subscribers verify without decoding by default; --decode-every N"),
        (["subscribe", "--no-e2e"], None),  # whatever it says, never "did you mean --no-e2ee?"
    ],
)
def test_unknown_option_hints_help_and_never_suggest_turning_e2ee_off(argv: list[str], hint: str | None) -> None:
    result = run(*argv)
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and line.startswith(f"sealrtc {argv[0]}: error: unrecognized arguments: ")
    assert "--no-e2ee" not in line
    if hint == "":
        assert line.endswith(argv[-1].split("=")[0])
    elif hint is not None:
        assert hint in line


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["publish", "--no-decode"], "sealrtc publish"),
        (["report", "merge", "--bogus", "a.json"], "sealrtc report merge"),
    ],
)
def test_an_option_unknown_to_its_subcommand_shows_that_subcommands_usage(argv: list[str], prog: str) -> None:
    result = run(*argv)
    bad = next(a for a in argv if a.startswith("--"))
    assert result.returncode == 2 and result.stderr.startswith(f"usage: {prog} ")
    assert f"{prog}: error: unrecognized arguments: {bad}" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3", "soon"])
def test_durations_must_be_positive_and_finite(value: str) -> None:
    result = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--duration", value)
    assert result.returncode == 2 and "--duration" in result.stderr


def test_bad_json_target_is_refused_before_the_run(tmp_path: Path) -> None:
    result = run(
        "subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--json", str(tmp_path / "missing" / "x.json"),
        env={"SEALRTC_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    result = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--json", str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr


def test_secret_not_utf8_or_blank_is_a_clean_error(tmp_path: Path) -> None:
    bad = b"caf\xe9-" + SECRET.encode()
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "sealrtc", "subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--duration", "1"],
        capture_output=True,
        env={k.encode(): v.encode() for k, v in env.items()} | {b"SEALRTC_SECRET": bad},  # type: ignore[dict-item]
        timeout=60,
    )
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "not valid UTF-8" in err and "Traceback" not in err
    assert SECRET not in err and "\\xe9" not in err and "0xe9" not in err
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(bad + b"\n")
    secret_file.chmod(0o600)
    result2 = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", "--secret-file", str(secret_file))
    assert result2.returncode == 2 and "not valid UTF-8" in result2.stderr and SECRET not in result2.stderr
    blank = run("subscribe", "--whep", "http://127.0.0.1:9/whep/x", env={"SEALRTC_SECRET": "   "})
    assert blank.returncode == 2 and "whitespace" in blank.stderr


@pytest.mark.network
def test_a_secret_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    require_namespace()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o644)
    result = run("publish", "--whip", "http://127.0.0.1:9/whip/x", "--secret-file", str(secret_file), "--duration", "1")
    assert "readable by other users" in result.stderr and "chmod 600" in result.stderr
    assert SECRET not in result.stderr
