"""Two load reports side by side (``sealrtc report compare BASE.json NEW.json``), and the
regression thresholds a CI job sets on the change (``--fail-if 'p95(latency_video_ms) > +10%'``).

The typical pair is one scenario run twice against the same SFU, once with ``--no-e2ee`` (BASE)
and once with E2EE (NEW): the change is what end-to-end encryption costs there.

:data:`METRICS` is the one table of what is compared: a name (the name ``--fail-if`` uses, the
assertion language's where it has one), a unit, which direction is better, and how to read the
value from a :class:`~sealrtc.report.model.LoadReport`. Adding a metric is one line there.

Threshold grammar (parsed by hand, never evaluated as code)::

    threshold := METRIC OP LIMIT              # OP: < <= > >=
    LIMIT     := [+|-]NUMBER "%"              # the change relative to BASE, in percent
               | (+|-)NUMBER [unit]           # the change in the metric's unit (NEW - BASE)
               | NUMBER [unit]                # NEW's own value
    unit      := "ms" | "fps" | "kbps"        # accepted and ignored, as in assertions

A threshold *trips* when its comparison holds (``> +10%``: NEW is more than 10% above BASE). A
threshold whose value a report lacks trips too, with the reason: a CI gate must not pass on
missing data. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import SealError
from .jsonread import Number
from .measures import Metrics
from .model import LoadReport

__all__ = [
    "METRICS",
    "Comparison",
    "Metric",
    "Row",
    "Side",
    "Threshold",
    "ThresholdResult",
    "ThresholdSyntaxError",
    "compare",
    "parse_threshold",
]

Better = Literal["lower", "higher", "neither"]
"""Which way a metric improves (``neither``: a change is only a change, e.g. a bitrate)."""
Trend = Literal["better", "worse", "same"]


@dataclass(frozen=True)
class Metric:
    """One compared quantity: ``read`` returns None when the report does not have it."""

    name: str
    unit: str
    better: Better
    read: Callable[[LoadReport], Number | None]


def _summary(histogram: str, function: str) -> Callable[[LoadReport], Number | None]:
    def read(report: LoadReport) -> Number | None:
        summary = report.metrics.summary(histogram) if report.metrics is not None else None
        return summary.value(function) if summary is not None else None

    return read


def _metrics(read: Callable[[Metrics], Number | None]) -> Callable[[LoadReport], Number | None]:
    return lambda report: read(report.metrics) if report.metrics is not None else None


def _mean_fps(report: LoadReport) -> Number | None:
    """The mean of the run's per-second video frame rates per track (the intervals' ``fps``)."""
    rates = [rate for rate in (i.get("fps") for i in report.intervals) if rate is not None]
    return round(sum(rates) / len(rates), 2) if rates else None


def _frames_lost(m: Metrics) -> Number | None:
    return m.frames.lost if m.frames is not None else None


def _freezes(m: Metrics) -> Number | None:
    return m.freezes.count if m.freezes is not None else None


def _frozen_ms(m: Metrics) -> Number | None:
    return m.freezes.total_ms if m.freezes is not None else None


def _decrypt_failures(m: Metrics) -> Number | None:
    return m.decrypt_failures.total if m.decrypt_failures is not None else None


def _bitrate(name: str) -> Callable[[Metrics], Number | None]:
    """``sent``/``received`` (video + audio) or one of :attr:`Bitrate.NAMES`."""

    def read(m: Metrics) -> Number | None:
        if m.bitrate is None:
            return None
        return m.bitrate.total(name) if name in ("sent", "received") else m.bitrate.get(name)

    return read


def _failed(report: LoadReport) -> Number | None:
    return report.participants.failed if report.participants is not None else None


def _cpu(report: LoadReport) -> Number | None:
    return report.generator.cpu_percent if report.generator is not None else None


def _cpu_max(report: LoadReport) -> Number | None:
    return report.generator.cpu_percent_max if report.generator is not None else None


def _loop_lag_p99(report: LoadReport) -> Number | None:
    lag = report.generator.loop_lag_ms if report.generator is not None else None
    return lag.p99 if lag is not None else None


METRICS: tuple[Metric, ...] = (
    Metric("p50(latency_video_ms)", "ms", "lower", _summary("latency_video_ms", "p50")),
    Metric("p95(latency_video_ms)", "ms", "lower", _summary("latency_video_ms", "p95")),
    Metric("p99(latency_video_ms)", "ms", "lower", _summary("latency_video_ms", "p99")),
    Metric("p50(latency_audio_ms)", "ms", "lower", _summary("latency_audio_ms", "p50")),
    Metric("p95(latency_audio_ms)", "ms", "lower", _summary("latency_audio_ms", "p95")),
    Metric("p99(latency_audio_ms)", "ms", "lower", _summary("latency_audio_ms", "p99")),
    Metric("p50(join_ms)", "ms", "lower", _summary("join_ms", "p50")),
    Metric("p95(join_ms)", "ms", "lower", _summary("join_ms", "p95")),
    Metric("p50(first_frame_ms)", "ms", "lower", _summary("first_frame_ms", "p50")),
    Metric("p95(first_frame_ms)", "ms", "lower", _summary("first_frame_ms", "p95")),
    Metric("fps", "fps", "higher", _mean_fps),
    Metric("bitrate_kbps", "kbps", "higher", _metrics(_bitrate("received"))),
    Metric("video_bitrate_kbps", "kbps", "higher", _metrics(_bitrate("received_video_kbps"))),
    Metric("audio_bitrate_kbps", "kbps", "higher", _metrics(_bitrate("received_audio_kbps"))),
    Metric("sent_bitrate_kbps", "kbps", "neither", _metrics(_bitrate("sent"))),
    Metric("loss_percent", "%", "lower", _metrics(lambda m: m.loss_percent)),
    Metric("frames.lost", "", "lower", _metrics(_frames_lost)),
    Metric("freezes", "", "lower", _metrics(_freezes)),
    Metric("freezes.total_ms", "ms", "lower", _metrics(_frozen_ms)),
    Metric("decrypt_failures", "", "lower", _metrics(_decrypt_failures)),
    Metric("intruder_decrypts", "", "lower", _metrics(lambda m: m.intruder_decrypts)),
    Metric("failed", "", "lower", _failed),
    Metric("cpu_percent", "%", "lower", _cpu),
    Metric("cpu_percent_max", "%", "lower", _cpu_max),
    Metric("p99(loop_lag_ms)", "ms", "lower", _loop_lag_p99),
)  # fmt: skip
"""What ``report compare`` shows, in this order; ``--fail-if`` takes any of these names."""

_BY_NAME = {m.name: m for m in METRICS}


def _cell(value: Number | None, digits: int, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:{'+' if signed else ''}.{digits}f}"


@dataclass(frozen=True)
class Row:
    """One metric in both reports."""

    metric: Metric
    base: Number | None
    new: Number | None

    @property
    def change(self) -> float | None:
        """NEW - BASE in the metric's unit (None when either is missing)."""
        if self.base is None or self.new is None:
            return None
        return float(self.new) - float(self.base)

    @property
    def relative(self) -> float | None:
        """The change in percent of BASE; 0 when both are 0; None when either is missing or
        BASE is 0 and NEW is not (no finite percentage)."""
        change = self.change
        if change is None or self.base is None:
            return None
        if self.base == 0:
            return 0.0 if change == 0 else None
        return 100.0 * change / abs(float(self.base))

    @property
    def trend(self) -> Trend | None:
        """None when a value is missing or the metric has no better direction."""
        change = self.change
        if change is None:
            return None
        if change == 0:
            return "same"
        if self.metric.better == "neither":
            return None
        return "better" if (change < 0) == (self.metric.better == "lower") else "worse"

    def cells(self) -> tuple[str, str, str, str]:
        """BASE, NEW, change and change % as a table shows them (the terminal's and the page's):
        counts without decimals, other values with one or two by their size, never cut."""
        digits = 0
        if not all(isinstance(v, int) for v in (self.base, self.new) if v is not None):
            size = max(abs(float(v)) for v in (self.base, self.new, 1.0) if v is not None)
            digits = 0 if size >= 1000 else 1 if size >= 10 else 2
        relative = self.relative
        if relative is None:
            percent = "-" if self.change in (None, 0) else "from 0"
        else:
            percent = "0%" if relative == 0 else f"{relative:+.1f}%"
        return (
            _cell(self.base, digits),
            _cell(self.new, digits),
            _cell(self.change, digits, signed=True),
            percent,
        )

    def to_json(self) -> dict[str, Any]:
        change, relative = self.change, self.relative
        return {
            "name": self.metric.name,
            "unit": self.metric.unit,
            "better": self.metric.better,
            "base": self.base,
            "new": self.new,
            "change": round(change, 6) if change is not None else None,
            "change_percent": round(relative, 3) if relative is not None else None,
            "trend": self.trend,
        }


# -- thresholds -----------------------------------------------------------------------------------


class ThresholdSyntaxError(SealError, ValueError):
    """A ``--fail-if`` that does not parse (one line, with a hint)."""


Kind = Literal["relative", "change", "value"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
MAX_LENGTH = 200
"""Longest threshold accepted."""
_THRESHOLD = re.compile(
    r"""\s*(?P<metric>[^<>=!]*?)\s*(?P<op><=|>=|==|!=|=|<|>)\s*
        (?P<sign>[+-])?\s*(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>%|ms|fps|kbps)?\s*""",
    re.VERBOSE,
)
_GRAMMAR = "METRIC OP LIMIT, e.g. 'p95(latency_video_ms) > +10%', 'fps < -5', 'loss_percent > 1'"


@dataclass(frozen=True)
class Threshold:
    """A parsed ``--fail-if``: trips when ``op`` holds between the measured quantity of ``kind``
    (relative change in %, change in the metric's unit, or NEW's value) and ``limit``."""

    text: str
    metric: Metric
    op: str
    kind: Kind
    limit: float

    @property
    def limit_text(self) -> str:
        shown = _number(self.limit)
        if self.kind == "value":
            return shown
        signed = shown if self.limit < 0 else f"+{shown}"
        return signed + ("%" if self.kind == "relative" else "")


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold on one comparison: ``value`` is the quantity compared with the limit
    (None when it is missing or not finite), ``found`` what was measured, in one line
    (``+13.0% (75.3 -> 85.1 ms)``, or which report lacks the metric)."""

    expr: str
    tripped: bool
    value: float | None
    found: str

    def to_json(self) -> dict[str, Any]:
        value = round(self.value, 6) if self.value is not None else None
        return {"expr": self.expr, "tripped": self.tripped, "value": value, "found": self.found}


def parse_threshold(text: str) -> Threshold:
    """Parse one ``--fail-if``; raises :class:`ThresholdSyntaxError`."""
    if not text.strip():
        raise ThresholdSyntaxError(f"empty threshold: write {_GRAMMAR}")
    if len(text) > MAX_LENGTH:
        raise ThresholdSyntaxError(f"a threshold longer than {MAX_LENGTH} characters")
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise ThresholdSyntaxError(f"expected {_GRAMMAR}")
    name = "".join(match["metric"].split())
    metric = _BY_NAME.get(name)
    if metric is None:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else " (names: sealrtc report compare --help)"
        raise ThresholdSyntaxError(f"unknown metric {name!r}{hint}")
    op = match["op"]
    if op not in _OPERATORS:
        raise ThresholdSyntaxError(f"{op!r} is not a threshold comparison: use < <= > or >=")
    value = float(match["number"])
    if not math.isfinite(value):
        raise ThresholdSyntaxError(f"number {match['number']!r} is out of range")
    sign, percent = match["sign"], match["unit"] == "%"
    if percent and sign is None:
        raise ThresholdSyntaxError(
            f"{match['number']}% without a sign: write +{match['number']}% (or -) for a change relative to BASE, "
            f"or {match['number']} for NEW's own value"
        )
    limit = -value if sign == "-" else value
    kind: Kind = "relative" if percent else "change" if sign is not None else "value"
    return Threshold(" ".join(text.split()), metric, op, kind, limit)


def parse_thresholds(texts: Iterable[str]) -> list[Threshold]:
    """Every threshold parsed; the first bad one raises, quoted."""
    thresholds = []
    for text in texts:
        try:
            thresholds.append(parse_threshold(text))
        except ThresholdSyntaxError as exc:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise ThresholdSyntaxError(f"{shown.strip()!r}: {exc}") from None
    return thresholds


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def _unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit and unit != "%" else text + unit


def check(threshold: Threshold, row: Row) -> ThresholdResult:
    """Whether ``threshold`` trips on ``row`` (a row of its own metric)."""
    metric, expr, base, new = threshold.metric, threshold.text, row.base, row.new
    if new is None or (base is None and threshold.kind != "value"):
        return ThresholdResult(expr, True, None, f"{'NEW' if new is None else 'BASE'} has no {metric.name}")
    measured, found = float(new), _unit(_number(new), metric.unit)
    if base is not None and threshold.kind != "value":
        change, relative = float(new) - float(base), row.relative
        if threshold.kind == "change":
            measured, head = change, _unit(f"{'+' if change > 0 else ''}{_number(round(change, 6))}", metric.unit)
        else:
            measured = relative if relative is not None else math.copysign(math.inf, change)
            head = "from 0" if relative is None else "0%" if relative == 0 else f"{relative:+.1f}%"
        found = f"{head} ({_number(base)} -> {found})"
    tripped = _OPERATORS[threshold.op](measured, threshold.limit)
    return ThresholdResult(expr, tripped, measured if math.isfinite(measured) else None, found)


# -- the comparison -------------------------------------------------------------------------------

RUN_IDENTITY = ("room_ids", "assertions", "shard", "run_id")
"""Scenario keys that name a run rather than shape it: a comparison does not list them."""


@dataclass(frozen=True)
class Side:
    """One of the two reports, as the comparison names it."""

    file: str
    report: LoadReport

    def to_json(self) -> dict[str, Any]:
        r = self.report
        s = r.scenario
        return {
            "file": self.file,
            "started_at": r.started_at,
            "duration_s": r.duration_s,
            "target": s.target if s is not None else None,
            "e2ee": s.e2ee if s is not None else None,
            "verdict": r.verdict,
            "saturated": r.generator.saturated if r.generator is not None else None,
        }


def _setting(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    return _number(value) if isinstance(value, int | float) else str(value)


def scenario_differences(base: LoadReport, new: LoadReport) -> tuple[str, ...]:
    """``"e2ee off -> on"`` for each scenario setting that differs between the runs."""
    a = base.scenario.to_json() if base.scenario is not None else {}
    b = new.scenario.to_json() if new.scenario is not None else {}
    keys = [k for k in (*a, *(k for k in b if k not in a)) if k not in RUN_IDENTITY]
    return tuple(f"{key} {_setting(a.get(key))} -> {_setting(b.get(key))}" for key in keys if a.get(key) != b.get(key))


@dataclass(frozen=True)
class Comparison:
    """BASE and NEW side by side, and the thresholds checked on them."""

    base: Side
    new: Side
    rows: tuple[Row, ...]
    differences: tuple[str, ...]
    thresholds: tuple[ThresholdResult, ...]

    @property
    def tripped(self) -> tuple[ThresholdResult, ...]:
        return tuple(t for t in self.thresholds if t.tripped)

    @property
    def exit_status(self) -> int:
        """1 when a threshold tripped, else 0."""
        return 1 if self.tripped else 0

    @property
    def saturated(self) -> tuple[str, ...]:
        """The files whose generator saturated (their numbers are not trustworthy)."""
        return tuple(
            side.file
            for side in (self.base, self.new)
            if side.report.generator is not None and side.report.generator.saturated
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "sealrtc report compare",
            "base": self.base.to_json(),
            "new": self.new.to_json(),
            "scenario_differences": list(self.differences),
            "metrics": [row.to_json() for row in self.rows],
            "thresholds": [t.to_json() for t in self.thresholds],
            "verdict": "fail" if self.tripped else "pass",
            "exit_status": self.exit_status,
        }


def compare(
    base: LoadReport,
    new: LoadReport,
    thresholds: Sequence[Threshold] = (),
    *,
    base_file: str = "BASE",
    new_file: str = "NEW",
) -> Comparison:
    """Every metric of :data:`METRICS` in both reports, and every threshold checked."""
    rows = tuple(Row(metric, metric.read(base), metric.read(new)) for metric in METRICS)
    by_name = {row.metric.name: row for row in rows}
    results = tuple(check(t, by_name[t.metric.name]) for t in thresholds)
    return Comparison(Side(base_file, base), Side(new_file, new), rows, scenario_differences(base, new), results)
