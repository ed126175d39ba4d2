"""``sealrtc inspect``: exit codes, one-line errors with sanitised names, the JSON report, the
table on a terminal and plain lines in a pipe. Synthetic recordings; no network."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sealrtc import FrameEncryptor, SharedSecret
from sealrtc.cli.inspect import Inspected, inspect_file, show
from sealrtc.cli.main import ExitStatus, main

from .mjr_writer import mjr, opus_frames, opus_packets, vp8_frames, vp8_packets

pytestmark = pytest.mark.unit

REPORT_FIELDS = {
    "path", "kind", "codec", "packets", "unusable_packets", "frames", "ciphertext_frames", "not_v1_frames",
    "plain_frames", "incomplete_frames", "kids", "kids_not_listed", "epochs", "truncated",
}  # fmt: skip


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An E2EE room's two recordings, a plain room's two, and a text file."""
    root = tmp_path_factory.mktemp("recordings")
    keys = SharedSecret("room secret")
    video, audio = FrameEncryptor(keys, "vp8"), FrameEncryptor(keys, "opus")
    files = {
        "sealed-video.mjr": mjr("v", "vp8", vp8_packets([video.encrypt(f) for f in vp8_frames()])),
        "sealed-audio.mjr": mjr("a", "opus", opus_packets([audio.encrypt(f) for f in opus_frames()])),
        "plain-video.mjr": mjr("v", "vp8", vp8_packets(vp8_frames())),
        "plain-audio.mjr": mjr("a", "opus", opus_packets(opus_frames())),
        "notes.txt": b"this is not a recording\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return {name: root / name for name in files}


def inspect(*args: str | Path) -> int:
    return main(["inspect", *map(str, args)])


def test_ciphertext_only_exits_0(recordings: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect(recordings["sealed-video.mjr"], recordings["sealed-audio.mjr"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"{recordings['sealed-video.mjr']}: video vp8, 90 frames: 90 ciphertext, 0 not v1")
    assert lines[1].startswith(f"{recordings['sealed-audio.mjr']}: audio opus, 100 frames: 100 ciphertext")
    assert lines[2] == "sealrtc inspect: OK: all 190 frames in 2 recordings are ciphertext"


def test_plain_media_exits_1_and_is_counted(recordings: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect(recordings["sealed-video.mjr"], recordings["plain-video.mjr"], recordings["plain-audio.mjr"]) == 1
    out = capsys.readouterr().out
    assert ": video vp8, 90 frames: 0 ciphertext, 0 not v1, 90 plain; KIDs -" in out
    assert ": audio opus, 100 frames: 0 ciphertext, 0 not v1, 100 plain; KIDs -" in out
    assert "FAILED: 190 of 280 frames in 3 recordings are not ciphertext (190 look like plain media)" in out


def test_a_text_file_exits_2_with_one_line(recordings: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sealrtc", "inspect", str(recordings["notes.txt"])], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"sealrtc inspect: error: {recordings['notes.txt']}: not a Janus recording (no MJR00002 header)\n"
    )


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("evil\x1b]0;owned\x07\x1b[2J.mjr", b"text", "evil\\x1b]0;owned\\x07\\x1b[2J.mjr: not a Janus recording"),
        ("codec.mjr", mjr("v", "\x1b[31mvp9\x9b", []), "codec.mjr: a recording of video in '\\x1b[31mvp9\\x9b'"),
        ("data.mjr", mjr("d", "text", []), "a recording of a data channel: inspect reads VP8, H.264 and Opus"),
        ("old.mjr", b"MJR00001" + bytes(64), "an MJR00001 recording"),
        ("empty.mjr", b"", "an empty file"),
    ],
)
def test_unreadable_files_are_one_sanitised_line_each(
    tmp_path: Path, name: str, data: bytes, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / name).write_bytes(data)
    assert inspect(tmp_path / name) == ExitStatus.USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err


def test_directories_fifos_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "fifo")  # never opened: it would block until a writer came
    assert inspect(tmp_path, tmp_path / "fifo", tmp_path / "missing.mjr") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"sealrtc inspect: error: {tmp_path}: not a regular file",
        f"sealrtc inspect: error: {tmp_path / 'fifo'}: not a regular file",
        f"sealrtc inspect: error: {tmp_path / 'missing.mjr'}: cannot read: No such file or directory",
    ]


def test_json_report(recordings: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.json"
    names = ["sealed-video.mjr", "plain-audio.mjr", "notes.txt"]
    assert inspect("--json", target, "--suite", "6", *(recordings[n] for n in names)) == 1
    report = json.loads(target.read_text())
    assert (report["verdict"], report["exit_status"], report["suite"], report["tag_length"]) == ("fail", 1, 6, 10)
    sealed, plain, text = report["files"]
    assert set(sealed) == set(plain) == REPORT_FIELDS
    assert (sealed["path"], sealed["kind"], sealed["codec"]) == (str(recordings["sealed-video.mjr"]), "video", "vp8")
    assert (sealed["frames"], sealed["ciphertext_frames"], sealed["plain_frames"], sealed["not_v1_frames"]) == (
        90, 90, 0, 0,
    )  # fmt: skip
    assert [(k["frames"], k["first_ctr"], k["last_ctr"]) for k in sealed["kids"]] == [(90, 0, 89)]
    assert sealed["truncated"] is False
    assert (plain["frames"], plain["plain_frames"], plain["kids"]) == (100, 100, [])
    assert text == {"path": str(recordings["notes.txt"]), "error": "not a Janus recording (no MJR00002 header)"}
    assert "sealrtc inspect: error:" in capsys.readouterr().err


def test_json_to_stdout_moves_the_lines_to_stderr(
    recordings: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert inspect("--json", "-", recordings["sealed-audio.mjr"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["verdict"] == "pass" and report["tag_length"] == 4 and report["suite"] is None
    assert report["files"][0]["ciphertext_frames"] == 100
    assert "OK: all 100 frames in 1 recording are ciphertext" in err


def test_a_truncated_recording_is_read_up_to_the_cut(
    recordings: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.mjr"
    cut.write_bytes(recordings["sealed-audio.mjr"].read_bytes()[:-7])
    assert inspect(cut) == 0
    assert "99 frames: 99 ciphertext, 0 not v1, 0 plain" in capsys.readouterr().out
    assert inspect_file(str(cut)).to_json()["truncated"] is True
    assert "; truncated: read up to the cut" in _lines([inspect_file(str(cut))], tty=False)


def test_help_explains_ciphertext_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "'Ciphertext' here means" in text and "a run of at least 8 such frames" in text
    assert "exit codes: 0 every frame of every file is ciphertext; 1 some frame is plain or not frame format v1" in text
    assert "2 a file is unreadable or not a VP8/Opus recording" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(results: list[Inspected], *, tty: bool) -> str:
    stream = _Terminal() if tty else io.StringIO()
    show(results, ExitStatus.OK, stream)
    return stream.getvalue()


def test_a_terminal_gets_a_table_where_names_are_text_not_markup(
    recordings: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    odd = tmp_path / "[bold red]x\x1b[2J.mjr"
    odd.write_bytes(recordings["sealed-audio.mjr"].read_bytes())
    styled = _lines([inspect_file(str(odd)), inspect_file(str(recordings["plain-video.mjr"]))], tty=True)
    table = re.sub("\x1b\\[[0-9;]*m", "", styled)  # rich's colours, nothing else
    for column in ("file", "kind", "codec", "frames", "ciphertext", "not v1", "plain", "KIDs"):
        assert column in table
    assert "[bold red]x\\x1b[2J.mjr" in table and "\x1b[2J" not in table
    assert "FAILED" not in table  # the status given to show() decides the label
