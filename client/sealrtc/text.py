"""The one sanitiser for text from outside (a server, a file, another process) on its way to a
terminal.

A server's error body, a Janus error reason, a shard report's ``scenario.target`` or ``errors``
and a recording's codec name are chosen by somebody else. Printed raw, an escape sequence
rewrites the terminal (hides lines, fakes a verdict, sets the window title) and a newline fakes
a line of sealrtc's own output. :func:`clean` makes such text inert: every control and other
unprintable character is shown escaped (``\\x1b``, ``\\n``) and long text is cut. Rich markup
(``[/bold]``, ``[link=...]``) is not interpreted here: the displays hand outside text to rich as
:class:`rich.text.Text`, which rich never parses as markup. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["MAX_LINE", "clean", "first_line", "one_line"]

MAX_LINE = 200
"""Characters of one line of outside text shown by :func:`first_line`."""


def clean(text: object, limit: int | None = None) -> str:
    """``text`` made safe for a terminal: control and other unprintable characters escaped (a
    newline becomes ``\\n``, ESC ``\\x1b``), cut in the middle beyond ``limit`` characters."""
    raw = text if isinstance(text, str) else str(text)
    safe = raw if raw.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in raw)
    if limit is not None and len(safe) > limit:
        safe = safe[: limit // 2 - 1] + "…" + safe[-(limit // 2) :]
    return safe


def one_line(text: object, limit: int = MAX_LINE) -> str:
    """``text`` as one cleaned line (every run of whitespace, newlines included, one space), cut
    to ``limit`` characters at its end: a server's reason shown inside a sealrtc message."""
    raw = text if isinstance(text, str) else str(text)
    flat = " ".join(raw[: limit * 4].split())  # escaping can only lengthen it: cut before, then exactly
    safe = clean(flat)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def first_line(text: object, limit: int = MAX_LINE) -> str:
    """The first non-blank line of ``text`` as :func:`one_line` (an error body shown as one short
    line); ``""`` when there is none."""
    raw = text if isinstance(text, str) else str(text)
    return one_line(next((part for part in raw[: limit * 4].splitlines() if part.strip()), ""), limit)
