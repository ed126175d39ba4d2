"""Line charts as inline SVG text, made in Python: no script, no font, no URL.

A chart is a ``<svg>`` with a ``viewBox`` (it scales to its container), axes with "nice" ticks
(1, 2 or 5 x 10^k), a legend and one ``<path>`` per series. A null value breaks its line; a point
with no neighbour is drawn as a dot; every point has a hover tooltip (an SVG ``<title>``). A chart
with no value at all says "no data". A :class:`Threshold` is a dashed horizontal line (an
assertion's limit); a :class:`Span` marks a stretch of time (a fault) as a shaded band, or a
vertical line when it has no length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "Span", "Threshold", "line_chart", "nice_ticks"]

PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""

WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 34, 42
FONT = 12
CHAR_WIDTH = 6.8  # average advance of the 12 px sans-serif font, for laying out the legend


@dataclass(frozen=True)
class Series:
    """One line: ``values[i]`` is plotted at ``xs[i]``; None leaves a gap."""

    label: str
    values: Sequence[float | None]
    color: str = PALETTE[0]
    unit: str = ""


@dataclass(frozen=True)
class Threshold:
    """A dashed horizontal line at ``value``: an assertion's limit (``label``: the assertion)."""

    value: float
    label: str


THRESHOLD_COLOR = "#b91c1c"


@dataclass(frozen=True)
class Span:
    """A stretch of the time axis, from ``start`` for ``length`` seconds: a shaded band, or a
    vertical line when ``length`` is 0 or unknown (None). ``label`` names it (a fault's spec);
    it is written at the band's top and is the band's tooltip, so a reader sees what happened
    when, on every chart."""

    start: float
    length: float | None
    label: str

    @property
    def end(self) -> float:
        return self.start + (self.length or 0.0)


SPAN_FILL, SPAN_COLOR = "#fde68a", "#92400e"


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """About ``count`` round tick values covering [low, high] (the last one >= high).

    ``integer``: whole steps only (for counts)."""
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(high - low)):
        return [0.0, 1.0]
    if high - low <= abs(low) * 1e-9:
        high = low + max(1.0, abs(low) * 1e-3)
    raw = (high - low) / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    multipliers = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multipliers if m * magnitude >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    start = math.floor(low / step + 1e-9) * step
    ticks = [start]
    while ticks[-1] < high - 1e-9 * step:
        ticks.append(start + len(ticks) * step)
    decimals = max(0, 3 - math.floor(math.log10(step)))
    return [round(t, decimals) for t in ticks]


def _number(value: float) -> str:
    """A tick label: no trailing zeros, thousands separated."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _point(value: float, unit: str) -> str:
    text = f"{value:,.1f}".removesuffix(".0") if value != int(value) else f"{int(value):,}"
    return f"{text} {unit}".rstrip()


LIMIT = 1e15
"""Values beyond ±LIMIT are not measurements: they are left out, like nulls."""


def _valid(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= LIMIT


def line_chart(
    title: str,
    xs: Sequence[float | None],
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str = "time (s)",
    x_max: float | None = None,
    integer: bool = False,
    thresholds: Sequence[Threshold] = (),
    spans: Sequence[Span] = (),
) -> str:
    """An SVG line chart of ``series`` over ``xs`` (both from the report: nulls allowed).

    ``x_max`` stretches the time axis (to the run's duration); ``integer``: counts, whole ticks;
    ``thresholds``: dashed lines at assertions' limits (the y axis stretches to show them);
    ``spans``: stretches of time (faults) drawn behind the lines (the time axis stretches to
    show them).
    """
    spans = [s for s in spans if _valid(s.start) and (s.length is None or _valid(s.length)) and s.end >= s.start]
    points = [
        [(float(x), float(v)) for x, v in zip(xs, s.values, strict=False) if _valid(x) and _valid(v)]  # type: ignore[arg-type]
        for s in series
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        f' font-size="{FONT}" font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#d0d4da"/>',
    ]
    out.extend(_legend(series))
    if not any(points):
        out.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" dominant-baseline="middle"'
            f' fill="#6b7280" font-size="16">no data</text></svg>'
        )
        return "".join(out)
    all_x = [x for p in points for x, _ in p]
    all_y = [y for p in points for _, y in p] + [t.value for t in thresholds if math.isfinite(t.value)]
    span_x = [x for s in spans for x in (s.start, s.end)]
    x_ticks = nice_ticks(min(0.0, *all_x, *span_x), max(*all_x, *span_x, x_max or 0.0), 6)
    y_ticks = nice_ticks(min(0.0, *all_y), max(all_y), 4, integer=integer)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return round(LEFT + (x - x0) / (x1 - x0) * plot_w, 2)

    def sy(y: float) -> float:
        return round(TOP + plot_h - (y - y0) / (y1 - y0) * plot_h, 2)

    for t in y_ticks:
        y = sy(t)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y}" y2="{y}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle" fill="#374151">')
        out.append(f"{_number(t)}</text>")
    for t in x_ticks:
        x = sx(t)
        bottom = TOP + plot_h
        out.append(f'<line x1="{x}" x2="{x}" y1="{bottom}" y2="{bottom + 5}" stroke="#6b7280"/>')
        out.append(f'<text x="{x}" y="{bottom + 18}" text-anchor="middle" fill="#374151">{_number(t)}</text>')
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" fill="#374151">{escape(x_label)}</text>'
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" fill="#374151">'
        f"{escape(y_label)}</text>"
    )
    out.extend(_spans(spans, sx))
    for threshold in thresholds:
        if not math.isfinite(threshold.value):
            continue
        y = sy(threshold.value)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y}" y2="{y}" stroke="{THRESHOLD_COLOR}"'
            ' stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + plot_w - 4}" y="{y - 5}" text-anchor="end" fill="{THRESHOLD_COLOR}" font-size="11">'
            f"{escape(threshold.label)}</text>"
        )
    for s, pts in zip(series, points, strict=True):
        out.extend(_line(s, xs, sx, sy))
        for x, v in pts:
            tip = f"t = {_number(x)} s: {s.label} {_point(v, s.unit)}"
            out.append(
                f'<circle cx="{sx(x)}" cy="{sy(v)}" r="5" fill="transparent" pointer-events="all">'
                f"<title>{escape(tip)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _spans(spans: Sequence[Span], sx: Callable[[float], float]) -> list[str]:
    """Each span as a band (or a line) over the plot's height, its label at the top (labels of
    successive spans alternate between two rows, so neighbours do not print over each other)."""
    out = []
    bottom = TOP + HEIGHT - TOP - BOTTOM
    for i, span in enumerate(spans):
        x0, x1 = sx(span.start), sx(span.end)
        label = escape(span.label)
        if x1 - x0 >= 1:
            shape = (
                f'<rect x="{x0}" y="{TOP}" width="{round(x1 - x0, 2)}" height="{bottom - TOP}" fill="{SPAN_FILL}"'
                f' fill-opacity="0.55" stroke="{SPAN_COLOR}" stroke-opacity="0.35"/>'
            )
        else:
            shape = (
                f'<line x1="{x0}" x2="{x0}" y1="{TOP}" y2="{bottom}" stroke="{SPAN_COLOR}" stroke-width="1.5"'
                ' stroke-dasharray="3 3"/>'
            )
        # the label starts at the span; one that would leave the plot ends at it instead
        fits = x0 + 3 + CHAR_WIDTH * len(span.label) <= WIDTH - RIGHT
        x, anchor = (x0 + 3, "start") if fits else (max(x0, x1) - 3, "end")
        out.append(
            f"<g><title>{label}</title>{shape}"
            f'<text x="{round(x, 2)}" y="{TOP + 12 + 12 * (i % 2)}" text-anchor="{anchor}" fill="{SPAN_COLOR}"'
            f' font-size="11">{label}</text></g>'
        )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    x = float(LEFT)
    for s in series:
        out.append(f'<rect x="{x}" y="{TOP - 20}" width="14" height="4" rx="2" fill="{escape(s.color)}"/>')
        out.append(f'<text x="{x + 19}" y="{TOP - 18}" dominant-baseline="middle" fill="#111827">')
        out.append(f"{escape(s.label)}</text>")
        x += 19 + CHAR_WIDTH * len(s.label) + 18
    return out


def _line(
    s: Series, xs: Sequence[float | None], sx: Callable[[float], float], sy: Callable[[float], float]
) -> list[str]:
    """The series' path (a gap at each null) and dots for points without a neighbour."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in zip(xs, s.values, strict=False):
        if _valid(x) and _valid(v):
            runs[-1].append((sx(float(x)), sy(float(v))))  # type: ignore[arg-type]
        elif runs[-1]:
            runs.append([])
    color = escape(s.color)
    out = []
    d = " ".join("M" + " L".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1)
    if d:
        out.append(
            f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"'
            ' stroke-linejoin="round" stroke-linecap="round"/>'
        )
    for run in runs:
        if len(run) == 1:
            out.append(f'<circle cx="{run[0][0]}" cy="{run[0][1]}" r="3" fill="{color}"/>')
    return out
