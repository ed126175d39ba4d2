"""What a person sees while a command runs and when it ends, behind one small protocol.

:func:`choose_display` picks, once per command, a :class:`RichDisplay` (a live table on a
terminal), a :class:`LineDisplay` (a plain progress line every few seconds, for logs and pipes)
or a :class:`NullDisplay` (``--quiet``: no progress, no summary table). The command hands it a
:class:`LiveView` (what to show) and calls ``tick()``, ``say()`` and ``summary()``; it never
reaches into a display.

Everything goes to stderr: stdout is kept for ``--json -``. Notices (a secret mismatch, an empty
room, media that looks encrypted) are printed the moment they are known, in every display.

Every display passes every string it shows (notices, titles, cells, the verdict) through
:func:`sealrtc.text.clean`, and the rich display hands them to rich as :class:`~rich.text.Text`:
text from a server, a shard report or another process can neither move the cursor nor style,
link or break the output (``[/bold]`` in a report's target is printed as is).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..text import clean
from .common import ExitStatus

__all__ = [
    "Column",
    "Display",
    "LineDisplay",
    "LiveView",
    "NullDisplay",
    "RichDisplay",
    "TableRows",
    "choose_display",
    "fit_columns",
    "fmt",
    "live_table",
]

PLAIN_LINE_EVERY = 5.0

TableRows = tuple[Sequence[str], list[Sequence[Any]]]
"""A table as (header, rows)."""


@dataclass(frozen=True)
class Column:
    """A live table's column: its header, a shorter header for narrow terminals, and its place
    in the order columns are dropped when even short headers do not fit (1 goes first; None:
    never dropped)."""

    name: str
    short: str | None = None
    drop: int | None = None


@dataclass(frozen=True)
class LiveView:
    """What a running command shows: a table (rich display) and a one-line form (plain lines).

    ``columns`` (optional, one per header cell) lets the live table fit the terminal: see
    :func:`fit_columns`."""

    rows: Callable[[], TableRows]
    line: Callable[[], str]
    columns: Sequence[Column] = ()


class Display(Protocol):
    """The three displays' common face (a context manager around the run)."""

    command: str
    quiet: bool

    def __enter__(self) -> Display: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def tick(self, elapsed: float) -> None:
        """Once a second while the command runs."""

    def say(self, text: str) -> None:
        """A notice: shown at once (never suppressed by --quiet)."""

    def summary(
        self, title: str, header: Sequence[str], rows: list[Sequence[Any]], verdict: str, ok: bool, *, status: int
    ) -> None:
        """The end: a summary table (not with --quiet) and the verdict line (always)."""


def choose_display(
    command: str,
    *,
    quiet: bool = False,
    view: LiveView | None = None,
    duration: float | None = None,
    stream: TextIO | None = None,
    verbose: bool = False,
) -> Display:
    """``--quiet``: :class:`NullDisplay`; a terminal: :class:`RichDisplay`; else :class:`LineDisplay`.

    ``verbose``: the command says its own stamped line every second (publish and subscribe
    ``-v``), which replaces the plain display's line every few seconds rather than repeating it."""
    stream = stream or sys.stderr
    if quiet:
        return NullDisplay(command, stream=stream)
    if stream.isatty():
        return RichDisplay(command, view=view, duration=duration, stream=stream)
    return LineDisplay(command, view=None if verbose else view, stream=stream)


def fmt(value: Any) -> str:
    """A table cell as safe text (``-`` for a missing value)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return clean(value)


def _label(ok: bool, status: int) -> str:
    if ok:
        return "OK"
    if status == ExitStatus.INTERRUPTED:
        return "INTERRUPTED"
    return "SATURATED" if status == ExitStatus.SATURATED else "FAILED"


class LineDisplay:
    """Plain lines: progress every few seconds, a key/value summary, the verdict line."""

    quiet = False

    def __init__(self, command: str, *, view: LiveView | None = None, stream: TextIO | None = None) -> None:
        self.command = command
        self.stream = stream or sys.stderr
        self._view = view
        self._last_line = 0.0

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def tick(self, elapsed: float) -> None:
        if self._view is not None and elapsed - self._last_line >= PLAIN_LINE_EVERY:
            self._last_line = elapsed
            print(f"[{elapsed:5.1f} s] {clean(self._view.line())}", file=self.stream, flush=True)

    def say(self, text: str) -> None:
        print(f"sealrtc {self.command}: {clean(text)}", file=self.stream, flush=True)

    def summary(
        self, title: str, header: Sequence[str], rows: list[Sequence[Any]], verdict: str, ok: bool, *, status: int
    ) -> None:
        print(clean(title), file=self.stream)
        for row in rows:
            if len(header) == 2:  # a key/value table
                print(f"  {fmt(row[0])}: {fmt(row[1])}", file=self.stream)
                continue
            cells = [f"{name}={fmt(v)}" for name, v in zip(header[1:], row[1:], strict=False)]
            print(f"  {fmt(row[0])}: " + " ".join(cells), file=self.stream)
        self.verdict(verdict, ok, status)

    def verdict(self, verdict: str, ok: bool, status: int) -> None:
        print(f"sealrtc {self.command}: {_label(ok, status)}: {clean(verdict)}", file=self.stream, flush=True)


class NullDisplay(LineDisplay):
    """``--quiet``: nothing while the command runs, and only the verdict at the end (notices
    still show). On a terminal the verdict is coloured, as the rich display prints it."""

    quiet = True

    def __init__(self, command: str, *, stream: TextIO | None = None) -> None:
        super().__init__(command, stream=stream)
        self._console = (
            Console(file=self.stream, force_terminal=True, highlight=False) if self.stream.isatty() else None
        )

    def tick(self, elapsed: float) -> None:
        return None

    def summary(
        self, title: str, header: Sequence[str], rows: list[Sequence[Any]], verdict: str, ok: bool, *, status: int
    ) -> None:
        if self._console is not None:
            _rich_verdict(self._console, verdict, ok, status)
        else:
            self.verdict(verdict, ok, status)


def _rich_verdict(console: Console, verdict: str, ok: bool, status: int) -> None:
    colour = "green" if ok else "yellow" if status == ExitStatus.INTERRUPTED else "red"
    console.print(Text.assemble((_label(ok, status), colour), ": ", clean(verdict)), highlight=False)


class RichDisplay:
    """A terminal: a live table redrawn by rich (on its own thread), a rich summary table."""

    quiet = False

    def __init__(
        self,
        command: str,
        *,
        view: LiveView | None = None,
        duration: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.command = command
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=True, highlight=False)
        self._view = view
        self._duration = duration
        self._live: Live | None = None

    def __enter__(self) -> Display:
        if self._view is not None:
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
        assert self._view is not None
        total = f" / {self._duration:.0f}" if self._duration else ""
        header, rows = self._view.rows()
        title = f"sealrtc {self.command} — {elapsed:4.0f}{total} s"
        if not self._view.columns:
            return _rich_table(title, header, rows)
        return live_table(title, self._view.columns, rows, self.console.width)

    def tick(self, elapsed: float) -> None:
        if self._live is not None:
            self._live.update(self._table(elapsed))

    def say(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(Text.assemble(("!", "yellow"), " ", clean(text)), highlight=False)
        else:
            print(f"sealrtc {self.command}: {clean(text)}", file=self.stream, flush=True)

    def summary(
        self, title: str, header: Sequence[str], rows: list[Sequence[Any]], verdict: str, ok: bool, *, status: int
    ) -> None:
        self.console.print(_rich_table(title, header, rows))
        _rich_verdict(self.console, verdict, ok, status)


def _rich_table(title: str, header: Sequence[str], rows: list[Sequence[Any]]) -> Table:
    table = Table(title=Text(clean(title)), title_justify="left")
    for i, name in enumerate(header):
        table.add_column(Text(clean(name)), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[Text(fmt(v)) for v in row])
    return table


def _table_width(widths: Sequence[int]) -> int:
    """Characters a rich table of these column widths takes: a border and a padding space each
    side of every cell (rich's default box and padding)."""
    return sum(widths) + 3 * len(widths) + 1


def fit_columns(columns: Sequence[Column], rows: list[Sequence[Any]], width: int) -> tuple[list[int], list[str]]:
    """The columns of a live table that fit in ``width`` characters, and their headers.

    Cells are never cut. In turn, until the table fits:

    1. every column with its full header;
    2. every column with its short header (``Column.short``);
    3. short headers, dropping columns in their ``Column.drop`` order (1 first), one at a time.

    Columns that are never dropped stay even when the table is still too wide (rich then wraps
    headers and, at worst, folds a number onto two lines; never an ellipsis).
    Returns the kept column indexes and their headers."""
    cells = [[fmt(row[i]) if i < len(row) else "" for row in rows] for i in range(len(columns))]
    content = [max((len(c) for c in column), default=0) for column in cells]

    def widths(kept: Sequence[int], short: bool) -> list[int]:
        return [max(content[i], len((columns[i].short or columns[i].name) if short else columns[i].name)) for i in kept]

    kept = list(range(len(columns)))
    if _table_width(widths(kept, False)) <= width:
        return kept, [columns[i].name for i in kept]
    for index in sorted((i for i, c in enumerate(columns) if c.drop is not None), key=lambda i: columns[i].drop or 0):
        if _table_width(widths(kept, True)) <= width:
            break
        kept.remove(index)
    return kept, [columns[i].short or columns[i].name for i in kept]


def live_table(title: str, columns: Sequence[Column], rows: list[Sequence[Any]], width: int) -> Table:
    """A live table fitted to ``width`` (:func:`fit_columns`): the first column (row labels such
    as "last second") never wraps, no cell is ever cut short with an ellipsis."""
    kept, headers = fit_columns(columns, rows, width)
    table = Table(title=Text(clean(title)), title_justify="left")
    for position, (i, name) in enumerate(zip(kept, headers, strict=True)):
        table.add_column(
            Text(clean(name)),
            justify="left" if i == 0 else "right",
            no_wrap=position == 0,
            overflow="fold",
            min_width=max((len(fmt(row[i])) for row in rows if i < len(row)), default=1),
        )
    for row in rows:
        table.add_row(*[Text(fmt(row[i]) if i < len(row) else "") for i in kept])
    return table
