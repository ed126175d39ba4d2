"""The HTML report's cells: numbers as text (a dash for a missing one), tiles and tables, every
string HTML-escaped. Shared by the page's sections (:mod:`.html`, :mod:`.html_recovery`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .jsonread import Number
from .measures import Summary

__all__ = [
    "DASH",
    "Column",
    "card",
    "count_text",
    "esc",
    "grouped_table",
    "kbps_card",
    "kbps_text",
    "ms_text",
    "pick",
    "rounded",
    "table",
    "value_text",
]

DASH = "\u2014"


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def count_text(n: Number | None) -> str:
    return DASH if n is None else (f"{int(n):,}" if n == int(n) else f"{n:,.1f}")


def ms_text(n: Number | None) -> str:
    if n is None:
        return DASH
    return f"{n:,.0f} ms" if n >= 100 else f"{n:.1f} ms"


def kbps_text(n: Number | None) -> str:
    return DASH if n is None else f"{n:,.0f} kbit/s"


def rounded(n: Number | None) -> Number | None:
    return None if n is None else round(n)


def kbps_card(n: Number | None) -> str:
    """A tile's bitrate (HTML): the number large, the unit small."""
    return DASH if n is None else f"{n:,.0f} <small>kbit/s</small>"


def value_text(n: Number | None) -> str:
    return DASH if n is None else f"{n:.5g}"


def pick(summary: Summary | None, function: str) -> Number | None:
    return summary.value(function) if summary is not None else None


def card(label: str, value: str, level: str = "") -> str:
    return f'<div class="card {level}"><div class="label">{esc(label)}</div><div class="value">{value}</div></div>'


def table(headers: Sequence[str], rows: Sequence[str], empty: str, text_columns: Sequence[int] = (0,)) -> str:
    head = "".join(f'<th class="{"text" if i in text_columns else ""}">{esc(h)}</th>' for i, h in enumerate(headers))
    if not rows:
        rows = [f'<tr><td class="text" colspan="{len(headers)}">{esc(empty)}</td></tr>']
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


Column = str | tuple[str, Sequence[str]]
"""A table column, or a group of columns under one name (``("video latency", ("p50", "p95"))``)."""


def grouped_table(columns: Sequence[Column], rows: Sequence[str], empty: str) -> str:
    """A table whose header names groups of columns on a first row and their columns below (a
    narrower table than one header per column); the first column is text."""
    if all(isinstance(c, str) for c in columns):
        return table([c for c in columns if isinstance(c, str)], rows, empty)
    top: list[str] = []
    below: list[str] = []
    width = 0
    for i, column in enumerate(columns):
        if isinstance(column, str):
            top.append(f'<th rowspan="2" class="{"text" if i == 0 else ""}">{esc(column)}</th>')
            width += 1
        else:
            group, names = column
            top.append(f'<th colspan="{len(names)}" class="group">{esc(group)}</th>')
            below.extend(f'<th class="under">{esc(name)}</th>' for name in names)
            width += len(names)
    if not rows:
        rows = [f'<tr><td class="text" colspan="{width}">{esc(empty)}</td></tr>']
    head = f"<tr>{''.join(top)}</tr><tr>{''.join(below)}</tr>"
    return f'<div class="wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'
