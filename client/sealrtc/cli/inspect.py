"""``sealrtc inspect FILE...``: what a server stored, judged frame by frame.

For people who must show that their SFU holds only ciphertext: each Janus ``.mjr`` recording is
read (memory-mapped, so a long recording is not loaded whole) and every frame is labelled
ciphertext, plain or not frame format v1 (rules: :mod:`sealrtc.inspect.judge`). Exit 0 only
when every frame of every file is ciphertext.

Names and codec strings come from the command line and from the files: they are sanitised
before they reach a terminal (no control characters, no rich markup).
"""

from __future__ import annotations

import argparse
import mmap
import os
import stat
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..inspect import SHORTEST_TAG, NotARecording, RecordingReport, UnsupportedRecording, inspect_recording
from ..sframe import suite_params
from ..text import clean
from .common import ExitStatus, check_json_target, write_json

MAX_NAME = 200
"""Characters of a file name shown; longer names are cut in the middle."""


@dataclass(frozen=True)
class Inspected:
    """One FILE argument: its report, or why it could not be read."""

    path: str
    report: RecordingReport | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.report is None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path} | self.report.to_json()


def inspect_file(path: str, tag_length: int = SHORTEST_TAG) -> Inspected:
    """Inspect one file; an unreadable file becomes an :class:`Inspected` with an error."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): opening a FIFO would block
            return Inspected(path, error="not a regular file")
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return Inspected(path, error="an empty file, not a Janus recording")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return Inspected(path, inspect_recording(data, tag_length=tag_length))
    except OSError as exc:
        return Inspected(path, error=f"cannot read: {exc.strerror or exc}")
    except (NotARecording, UnsupportedRecording) as exc:
        return Inspected(path, error=str(exc))


def exit_status(results: list[Inspected]) -> ExitStatus:
    """1 when a frame is not ciphertext (the claim is disproved), else 2 when a file could not
    be judged, else 0."""
    if any(r.report is not None and not r.report.only_ciphertext for r in results):
        return ExitStatus.FAILURE
    if any(r.report is None for r in results):
        return ExitStatus.USAGE
    return ExitStatus.OK


VERDICTS = {ExitStatus.OK: "pass", ExitStatus.FAILURE: "fail", ExitStatus.USAGE: "error"}


def verdict_text(results: list[Inspected]) -> str:
    reports = [r.report for r in results if r.report is not None]
    frames = sum(r.frames for r in reports)
    failed = sum(r.frames - r.ciphertext_frames for r in reports)
    unread = len(results) - len(reports)
    files = f"{len(reports)} recording" + ("" if len(reports) == 1 else "s")
    parts = []
    if failed:
        plain = sum(r.plain_frames for r in reports)
        parts.append(f"{failed} of {frames} frames in {files} are not ciphertext ({plain} look like plain media)")
    else:
        parts.append(f"all {frames} frames in {files} are ciphertext")
    if unread:
        parts.append(f"{unread} file{'' if unread == 1 else 's'} could not be inspected")
    return "; ".join(parts)


def _kids(report: RecordingReport) -> str:
    shown = [f"{k.kid:#x}" for k in report.kids[:3]]
    more = len(report.kids) - len(shown) + report.kids_not_listed
    return ", ".join(shown) + (f" (+{more})" if more else "") if shown else "-"


def _notes(report: RecordingReport) -> str:
    notes = []
    if report.truncated:
        notes.append("truncated: read up to the cut")
    if report.incomplete_frames:
        notes.append(f"{report.incomplete_frames} incomplete frames")
    if report.unusable_packets:
        notes.append(f"{report.unusable_packets} unusable packets")
    return "; ".join(notes)


HEADER = ("file", "kind", "codec", "frames", "ciphertext", "not v1", "plain", "KIDs", "notes")
"""The terminal table (the file's base name; the JSON report has the path and every KID)."""


def show(results: list[Inspected], status: ExitStatus, stream: TextIO) -> None:
    """A table on a terminal, plain lines otherwise, then the verdict (when no file could be read,
    the error lines already said everything)."""
    reports = [(r.path, r.report) for r in results if r.report is not None]
    if not reports:
        return
    verdict = verdict_text(results)
    label = {ExitStatus.OK: "OK", ExitStatus.FAILURE: "FAILED"}.get(status, "ERROR")
    if stream.isatty():
        console = Console(file=stream, highlight=False)
        console.print(_table(reports))
        colour = {ExitStatus.OK: "green", ExitStatus.FAILURE: "red"}.get(status, "yellow")
        console.print(Text.assemble((label, f"bold {colour}"), ": ", Text(clean(verdict))))
        return
    for path, rep in reports:
        notes = _notes(rep)
        print(
            f"{clean(path, MAX_NAME)}: {clean(rep.kind)} {clean(rep.codec)}, {rep.frames} frames: "
            f"{rep.ciphertext_frames} ciphertext, "
            f"{rep.not_v1_frames} not v1, {rep.plain_frames} plain; KIDs {_kids(rep)}"
            + (f"; {notes}" if notes else ""),
            file=stream,
        )
    print(f"sealrtc inspect: {label}: {verdict}", file=stream, flush=True)


def _table(reports: list[tuple[str, RecordingReport]]) -> Table:
    with_notes = any(_notes(rep) for _, rep in reports)
    table = Table(title="sealrtc inspect", title_justify="left", box=box.SIMPLE_HEAD)
    for i, name in enumerate(HEADER if with_notes else HEADER[:-1]):
        numeric = 3 <= i <= 7
        table.add_column(name, justify="right" if numeric else "left", no_wrap=0 < i < 8, overflow="fold",
                         min_width=16 if i == 0 else None)  # fmt: skip
    for path, rep in reports:
        cells: list[str | Text] = [
            Text(clean(os.path.basename(path) or path, MAX_NAME)), Text(clean(rep.kind)), Text(clean(rep.codec)),
            str(rep.frames),
            str(rep.ciphertext_frames), Text(str(rep.not_v1_frames), style="red" if rep.not_v1_frames else ""),
            Text(str(rep.plain_frames), style="red" if rep.plain_frames else ""),
            str(len(rep.kids) + rep.kids_not_listed),
        ]  # fmt: skip
        if with_notes:
            cells.append(Text(_notes(rep)))
        table.add_row(*cells)
    return table


def run_inspect(args: argparse.Namespace) -> int:
    check_json_target(args.json)
    tag_length = suite_params(args.suite).nt if args.suite is not None else SHORTEST_TAG
    results: list[Inspected] = []
    for path in args.files:
        result = inspect_file(path, tag_length)
        if result.error is not None:
            print(
                f"sealrtc inspect: error: {clean(path, MAX_NAME)}: {clean(result.error, MAX_NAME)}",
                file=sys.stderr,
                flush=True,
            )
        results.append(result)
    status = exit_status(results)
    write_json(
        args.json,
        {
            "verdict": VERDICTS[status],
            "exit_status": int(status),
            "suite": args.suite,
            "tag_length": tag_length,
            "files": [r.to_json() for r in results],
        },
    )
    show(results, status, sys.stderr if args.json == "-" else sys.stdout)
    return status
