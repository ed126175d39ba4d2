"""What a person sees: live progress and a summary on a terminal (rich), plain lines otherwise.

Everything goes to stderr: stdout is kept for ``--json -``. Notices (a secret mismatch, an empty
room, media that looks encrypted) are printed the moment they are known.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

PLAIN_LINE_EVERY = 5.0


class Reporter(AbstractContextManager["Reporter"]):
    """Live view for one command run. ``rows()`` gives the table as (header, rows)."""

    def __init__(
        self,
        command: str,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        rows: Callable[[], tuple[Sequence[str], list[Sequence[Any]]]] | None = None,
        line: Callable[[], str] | None = None,
        duration: float | None = None,
    ) -> None:
        self.command = command
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False, soft_wrap=not self.tty)
        self._rows = rows
        self._line = line
        self._duration = duration
        self._live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> Reporter:
        if self.tty and not self.quiet and self._rows is not None:
            self._live = Live(self._table(0.0), console=self.console, refresh_per_second=2, transient=True)
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def _table(self, elapsed: float) -> Table:
        assert self._rows is not None
        total = f" / {self._duration:.0f}" if self._duration else ""
        table = Table(title=f"sealrtc {self.command} — {elapsed:4.0f}{total} s", title_justify="left")
        header, rows = self._rows()
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*[fmt(v) for v in row])
        return table

    def tick(self, elapsed: float) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.update(self._table(elapsed))
        elif self._line is not None and elapsed - self._last_line >= PLAIN_LINE_EVERY:
            self._last_line = elapsed
            print(f"[{elapsed:5.1f} s] {self._line()}", file=self.stream, flush=True)

    def say(self, text: str) -> None:
        """A notice: shown at once, above the live table (never suppressed by --quiet)."""
        if self._live is not None:
            self._live.console.print(f"[yellow]![/yellow] {text}", markup=True, highlight=False)
        else:
            print(f"sealrtc {self.command}: {text}", file=self.stream, flush=True)

    def summary(
        self,
        title: str,
        header: Sequence[str],
        rows: list[Sequence[Any]],
        verdict: str,
        ok: bool,
        *,
        status: int | None = None,
    ) -> None:
        if not self.quiet:
            if self.tty:
                table = Table(title=title, title_justify="left")
                for i, name in enumerate(header):
                    table.add_column(name, justify="left" if i == 0 else "right")
                for row in rows:
                    table.add_row(*[fmt(v) for v in row])
                self.console.print(table)
            else:
                print(title, file=self.stream)
                for row in rows:
                    if len(header) == 2:  # a key/value table
                        print(f"  {fmt(row[0])}: {fmt(row[1])}", file=self.stream)
                        continue
                    cells = [f"{name}={fmt(v)}" for name, v in zip(header[1:], row[1:], strict=False)]
                    print(f"  {fmt(row[0])}: " + " ".join(cells), file=self.stream)
        label = "OK" if ok else {130: "INTERRUPTED", 4: "SATURATED"}.get(status or 1, "FAILED")
        colour = "green" if ok else "yellow" if status == 130 else "red"
        if self.tty:
            self.console.print(f"[{colour}]{label}[/{colour}]: {verdict}", highlight=False)
        else:
            print(f"sealrtc {self.command}: {label}: {verdict}", file=self.stream, flush=True)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def finish(
    reporter: Reporter,
    summary: dict[str, Any],
    *,
    elapsed: float,
    interrupted: bool,
    status: int,
    verdict: str,
    json_target: str | None,
    table: tuple[Sequence[str], list[Sequence[Any]]],
) -> int:
    """The end of a publish/subscribe run: verdict into the report, the report written, the
    summary shown; an interrupted run keeps its report (exit 130)."""
    from .common import ExitStatus, write_json

    if interrupted:
        status, verdict = ExitStatus.INTERRUPTED, f"after {elapsed:.1f} s; {verdict}"
    summary |= {"duration_s": round(elapsed, 2), "interrupted": interrupted, "exit_status": int(status)}
    summary["verdict"] = verdict
    write_json(json_target, summary)
    header, rows = table
    title = f"sealrtc {reporter.command} summary ({elapsed:.1f} s)"
    reporter.summary(title, header, rows, verdict, status == ExitStatus.OK, status=int(status))
    return status
