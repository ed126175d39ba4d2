"""Hardening of the CLI against bad input from outside (issue 17, items 9, 11, 14-17): the one
sanitiser, report merge's input checks, YAML bombs, unwritable outputs, far-off start times,
credentials in URLs, token file permissions, the last-resort handler. Pure: no sockets (the
commands are refused before any connection)."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

import sealrtc.cli.inspect as inspect_cli
import sealrtc.cli.report as report_cli
from sealrtc.cli.common import CliError, ExitStatus, read_token
from sealrtc.cli.display import RichDisplay
from sealrtc.cli.load import _metrics_address
from sealrtc.cli.main import main
from sealrtc.load.environment import without_secrets
from sealrtc.load.runner import shard_report
from sealrtc.load.scenario import ScenarioError, load_file
from sealrtc.report.records import MAX_DECOMPRESSED, HistogramError, check_encoded
from sealrtc.text import clean, first_line, one_line

from .test_load_report import _info, _judged, _shard_run

pytestmark = pytest.mark.unit

NASTY = (
    "[/bold] [link=http://evil.example/]click[/link] [blink]FAKE: all assertions passed[/blink]\x1b[2J\x1b]0;title\x07"
)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _shards(tmp_path: Path, edit: Any = None) -> list[str]:
    """Two mergeable shard reports of one run, ``edit(data)`` applied to each."""
    files = []
    for index in (0, 1):
        run, _ = _shard_run(index, None)
        data = _judged(shard_report(run, _info(index), index, started_at="2026-12-07T13:00:00Z", duration_s=5))
        data_json = data.to_json()
        if edit is not None:
            edit(data_json)
        path = tmp_path / f"s{index}.json"
        path.write_text(json.dumps(data_json), encoding="utf-8")
        files.append(str(path))
    return files


def _merge(files: list[str], capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = main(["report", "merge", *files, *extra])
    return status, capsys.readouterr().err


# -- item 9: the one sanitiser -----------------------------------------------------------------


def test_clean_escapes_control_characters_and_cuts() -> None:
    assert clean("a\x1b[2Jb\nc\td\x07") == "a\\x1b[2Jb\\nc\\td\\x07"
    assert clean("ok — fine [x]") == "ok — fine [x]"
    assert len(clean("x" * 1000, 50)) == 50
    assert first_line("\n\n  first \x1b[31m line\nsecond") == "first \\x1b[31m line"
    assert len(first_line("y" * 10_000)) == 200
    assert one_line("a\nb\r\nc") == "a b c"


def test_inspect_uses_the_one_sanitiser() -> None:
    assert not hasattr(inspect_cli, "clean") or inspect_cli.clean is clean


def test_report_merge_shows_markup_and_escapes_from_a_shard_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["scenario"]["target"] = NASTY
        data["errors"] = ["\x1b[32mall good\x1b[0m [bold red]x[/]"]

    files = _shards(tmp_path, edit)
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)  # the rich display: what a person at a terminal sees
    status = main(["report", "merge", *files])
    out = terminal.getvalue()
    assert status == ExitStatus.FAILURE  # the shards' own verdict (a join failed), not a crash
    assert "[/bold]" in out and "[link=http://evil.example/]" in out and "[blink]FAKE" in out
    assert "\x1b]8;" not in out  # no hyperlink
    assert "\x1b[5m" not in out  # nothing blinks
    assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\x1b[32m" not in out
    assert "\\x1b[2J" in out and "\\x1b[32mall good" in out  # shown, escaped


def test_plain_lines_escape_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["errors"] = ["line one\nsealrtc report merge: OK: every assertion holds\x1b[2K"]

    status, err = _merge(_shards(tmp_path, edit), capsys)
    assert status == ExitStatus.FAILURE
    assert "\x1b" not in err
    assert not any(line.startswith("sealrtc report merge: OK") for line in err.splitlines())


def test_rich_display_says_and_titles_markup_as_text() -> None:
    terminal = FakeTerminal()
    display = RichDisplay("load", stream=terminal)
    display.say("[red]not red[/red] [/bold]")
    display.summary("title [/bold]", ("", "value"), [("[link=x]y", "[/]")], "[blink]FAKE", False, status=1)
    out = terminal.getvalue()
    assert "[red]not red[/red] [/bold]" in out and "title [/bold]" in out and "[link=x]y" in out
    assert "[blink]FAKE" in out and "\x1b[5m" not in out


# -- item 14: report merge validates its inputs ------------------------------------------------


def test_a_huge_shard_count_is_refused_without_allocating(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["scenario"]["shard"]["count"] = 10_000_000

    files = _shards(tmp_path, edit)
    tracemalloc.start()
    try:
        status, err = _merge(files, capsys, "--json", str(tmp_path / "out.json"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == ExitStatus.USAGE
    assert err.strip().count("\n") == 0 and "shard.count 10000000" in err
    assert peak < 64 * 1024 * 1024
    assert not (tmp_path / "out.json").exists()


def test_shards_that_disagree_on_the_count_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _shards(tmp_path)
    data = json.loads(Path(files[1]).read_text())
    data["scenario"]["shard"]["count"] = 900
    Path(files[1]).write_text(json.dumps(data))
    status, err = _merge(files, capsys)
    assert status == ExitStatus.FAILURE and "says the run has 900 shards" in err and len(err) < 300


def _bomb(size: int) -> str:
    """An HdrHistogram-shaped encoding whose zlib payload inflates to ``size`` bytes of zeros."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    payload = b"".join(parts) + compressor.flush()
    return base64.b64encode(struct.pack(">II", 0x1C849314, len(payload)) + payload).decode()


def test_a_zlib_bomb_in_a_histogram_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = _bomb(512 * 1024 * 1024)  # 512 MiB once inflated; ~700 KiB as text (1 GiB is refused for its size)

    def edit(data: dict[str, Any]) -> None:
        data["raw"]["snapshots"][0]["latency"] = [bomb, 5.0]

    files = _shards(tmp_path, edit)
    tracemalloc.start()
    try:
        status, err = _merge(files, capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0
    assert "decompresses to more than" in err and "s0.json" in err
    assert peak < 64 * 1024 * 1024  # the bomb's text and one bounded inflation, never 512 MiB


def test_check_encoded_refuses_another_range() -> None:
    foreign = struct.pack(">IIIIQQd", 0x1C849313, 0, 0, 5, 1, 2**62, 1.0)
    compressed = zlib.compress(foreign)
    text = base64.b64encode(struct.pack(">II", 0x1C849314, len(compressed)) + compressed).decode()
    with pytest.raises(HistogramError, match="another range or precision"):
        check_encoded(text)
    with pytest.raises(HistogramError, match="decompresses to more than"):
        check_encoded(_bomb(MAX_DECOMPRESSED * 2))
    with pytest.raises(HistogramError, match="not base64"):
        check_encoded("not base64!")


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("planned", "1" * 400, "more than 19 digits"),
        ("planned", "NaN", "NaN is not a JSON number"),
        ("planned", "1e999", "out of range"),
    ],
)
def test_bad_numbers_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, value: str, message: str
) -> None:
    files = _shards(tmp_path)
    text = Path(files[0]).read_text()
    data = json.loads(text)
    data["participants"][where] = "__HERE__"
    Path(files[0]).write_text(json.dumps(data).replace('"__HERE__"', value))
    status, err = _merge(files, capsys)
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0 and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["raw"].__setitem__("shard", 7),
        lambda d: d["raw"]["snapshots"][0].__setitem__("latency", ["AAAA", 1]),
        lambda d: d["raw"]["finals"][0]["rooms"].__setitem__("room-a", {"histograms": {"latency_ms": ["x", 1]}}),
        lambda d: d["raw"]["snapshots"][0].__setitem__("latency", ["HISTFAAAAA==", 1]),
    ],
)
def test_malformed_fields_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any) -> None:
    files = _shards(tmp_path)
    data = json.loads(Path(files[0]).read_text())
    edit(data)
    Path(files[0]).write_text(json.dumps(data))
    status, err = _merge(files, capsys)
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0 and "Traceback" not in err


def test_an_unexpected_exception_is_one_line_naming_v(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("private detail")

    monkeypatch.setattr(report_cli, "run_report_merge", boom)
    status, err = _merge([str(tmp_path / "x.json")], capsys)
    assert status == ExitStatus.FAILURE and err.strip().count("\n") == 0
    assert "-v" in err and "RuntimeError" in err and "private detail" not in err and "Traceback" not in err
    with pytest.raises(RuntimeError):
        main(["report", "merge", str(tmp_path / "x.json"), "-v"])


# -- item 15: YAML bombs and big files -------------------------------------------------------

LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)


def test_a_billion_laughs_scenario_is_refused_before_expanding(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS + "\n")
    assert len(path.read_bytes()) < 600
    tracemalloc.start()
    try:
        with pytest.raises(ScenarioError, match=r"line 2: YAML aliases \(\*name\) are not allowed"):
            load_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # 9**9 strings were never made


def test_the_load_command_refuses_it_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "laughs.yml"
    path.write_text(LAUGHS + "\n")
    status = main(["load", "--scenario", str(path), "--server", "http://127.0.0.1:9", "--quiet"])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0 and "aliases" in err


def test_a_scenario_over_1_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(ScenarioError, match="over 1024 KiB"):
        load_file(path)


# -- item 16: outputs checked before the run, finite near start times -------------------------


def _unwritable(tmp_path: Path) -> str:
    """A path writing to fails: os.access says yes to root for /sys, so root gets that one."""
    if os.geteuid() == 0:
        return "/sys/kernel/sealrtc-report.html"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return str(locked / "report.html")


@pytest.mark.parametrize("flag", ["--html", "--csv", "--json"])
def test_an_unwritable_output_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    target = _unwritable(tmp_path)
    status = main(["load", "--server", "http://127.0.0.1:9", "--quiet", flag, target])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0 and f"{flag} {target}" in err
    assert "not writable" in err and "Traceback" not in err
    status, err = _merge(_shards(tmp_path), capsys, flag, target)
    assert status == ExitStatus.USAGE and f"{flag} {target}" in err and "not writable" in err


def test_a_writable_output_probe_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _shards(tmp_path)
    target = tmp_path / "out.html"
    main(["report", "merge", *files, "--html", str(target), "--assert", "nonsense ==="])
    assert not target.exists()  # the assertion was refused after the probe: no empty file left


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "99999999999"])
def test_start_at_refuses_non_finite_and_far_off_times(capsys: pytest.CaptureFixture[str], value: str) -> None:
    argv = ["load", "--server", "http://127.0.0.1:9", "--shard", "0/2", "--run-id", "r", f"--start-at={value}"]
    status = main([*argv, "--quiet"])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and err.strip().count("\n") == 0 and "--start-at" in err
    assert "Traceback" not in err


# -- item 11: no credentials in URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["publish", "--whip", "http://alice:hunter2@127.0.0.1:9/whip/x"],
        ["subscribe", "--whep", "https://alice:hunter2@example.invalid/whep/x"],
        ["publish", "--janus", "ws://alice:hunter2@127.0.0.1:9/", "--room", "1"],
        ["load", "--server", "http://alice:hunter2@127.0.0.1:9"],
        ["load", "--janus", "wss://hunter2@127.0.0.1:9"],
    ],
)
def test_userinfo_in_a_url_is_refused_and_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("SEALRTC_SECRET", "s3cret-for-the-test")
    status = main([*argv, "--quiet", "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert status == ExitStatus.USAGE
    assert "hunter2" not in captured.err + captured.out and "--token-file" in captured.err
    assert captured.err.strip().count("\n") == 0
    assert not (tmp_path / "r.json").exists()


# -- item 17: token files get the secret file's warning -----------------------------------------


def test_a_world_readable_token_file_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "token"
    path.write_text("tok-123\n")
    path.chmod(0o644)
    assert read_token(argparse.Namespace(token_file=str(path))) == "tok-123"
    err = capsys.readouterr().err
    assert "--token-file" in err and "readable by other users" in err and f"chmod 600 {path}" in err
    assert "tok-123" not in err
    path.chmod(0o600)
    read_token(argparse.Namespace(token_file=str(path)))
    assert capsys.readouterr().err == ""


# -- items 12 and 13: pure parts ------------------------------------------------------------------


def test_the_relay_childs_environment_holds_no_secret() -> None:
    env = {"PATH": "/bin", "SEALRTC_SECRET": "x", "SEALRTC_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "k",
           "GITHUB_TOKEN": "g", "DB_PASSWORD": "p", "HOME": "/root", "SEALRTC_NETNS": "1"}  # fmt: skip
    assert without_secrets(env) == {"PATH": "/bin", "HOME": "/root", "SEALRTC_NETNS": "1"}
    assert without_secrets(env, {"SEALRTC_RELAY_TOKEN": "mine"})["SEALRTC_RELAY_TOKEN"] == "mine"


def test_metrics_listen_on_loopback_unless_told() -> None:
    assert _metrics_address(None, None) is None
    assert _metrics_address(9100, None) == ("127.0.0.1", 9100)
    assert _metrics_address(None, "0.0.0.0:9200") == ("0.0.0.0", 9200)
    assert _metrics_address(None, "[::]:9200") == ("::", 9200)
    for bad in ("9100", "host:", "host:99999", "http://x:1"):
        with pytest.raises(CliError):
            _metrics_address(None, bad)
    assert _metrics_address(9100, "0.0.0.0:9100") == ("0.0.0.0", 9100)
    with pytest.raises(CliError, match="two ports"):
        _metrics_address(9100, "0.0.0.0:9200")


# -- item 5: the watcher's rule (pure: the TCP check and the media path are stand-ins) ------------


@pytest.mark.parametrize(
    ("reachable", "media", "checks"),
    [
        ([False] * 20, [False] * 20, 2),  # dead: two refusals, nothing arrived between them
        ([False] * 20, [True, True, True, False], 4),  # refusing while media flows: alive until it stops
        ([False, True, False, False], [True, False, False, False], 4),  # a success resets the count
    ],
)
async def test_the_watcher_ends_a_run_only_when_refused_and_silent(
    monkeypatch: pytest.MonkeyPatch, reachable: list[bool], media: list[bool], checks: int
) -> None:
    from sealrtc.agents import watch

    tcp, arrived = iter(reachable), iter(media)
    made: list[bool] = []

    async def fake_reachable(host: str, port: int) -> bool:
        made.append(next(tcp))
        return made[-1]

    async def fake_media() -> bool:
        return next(arrived)

    monkeypatch.setattr(watch, "_reachable", fake_reachable)
    reason = await watch.server_gone("http://relay.invalid:8080/whip/x", media=fake_media, interval=0)
    assert "relay.invalid:8080" in reason and len(made) == checks


def test_a_missing_secret_suggests_no_e2ee_only_where_it_exists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SEALRTC_SECRET", raising=False)
    assert main(["keys", "export", "--epoch", "3"]) != 0
    keys_error = capsys.readouterr().err
    assert "no E2EE secret" in keys_error and "--no-e2ee" not in keys_error  # keys export has no plain mode
    assert main(["subscribe", "--whep", "http://127.0.0.1:9/whep/x"]) != 0
    assert "--no-e2ee for a plain run" in capsys.readouterr().err
