"""Pass/fail assertions on a load report: a tiny expression language, parsed by hand.

User text is tokenised and parsed here; nothing is ever handed to ``eval``/``exec``/``ast``.
Every name and function is checked at parse time, so a typo is refused before a run starts.

Grammar::

    assertion  := conjunction ("or" conjunction)*
    conjunction:= comparison ("and" comparison)*           # "and" binds tighter than "or"
    comparison := operand OP operand                       # OP: < <= > >= == !=
    operand    := NUMBER [ "ms" | "%" ]                    # unit suffix accepted and ignored
                | NAME                                     # a counter, e.g. joined, frames.lost
                | FUNC "(" HISTOGRAM ")"                   # e.g. p95(latency_video_ms)
    FUNC       := p50 | p90 | p95 | p99 | max | count
    HISTOGRAM  := latency_ms | latency_video_ms | latency_audio_ms | join_ms | first_frame_ms | loop_lag_ms
                | time_to_recover_ms

Names (counters): ``planned joined failed intruders`` (the report's ``participants``),
``decrypt_failures`` and ``decrypt_failures.REASON``, ``intruder_decrypts``,
``intruder_failures`` and ``intruder_failures.REASON``, ``frames.sent frames.received
frames.decrypted frames.decoded frames.lost``, ``freezes`` (= ``freezes.count``),
``freezes.total_ms``, ``cpu_percent`` (the generator's), ``loss_percent``
(100 x lost / (decrypted + lost), 0 with no frames) and the key lifecycle's ``rotations``,
``epochs``, ``rotation_failures``, ``rotation_lost``, ``rotation_freezes``, ``rotation_gap_ms``
(within 2 s of any key change) and ``churn_joins``, and the bitrates in kbit/s (``metrics.bitrate``:
the mean of one participant over its connected time): ``bitrate_kbps`` (received video + audio
per subscriber), ``video_bitrate_kbps``, ``audio_bitrate_kbps`` (received) and
``sent_bitrate_kbps`` (video + audio per publisher), and recovery's ``reconnects``, ``outage_ms``,
``outage_frames_missed`` (video frames subscribers did not get during outages, apart from
``frames.lost``) and ``availability_percent`` (the share of subscriber-seconds with decrypted
video). REASON is one of
:data:`sealrtc.errors.DECRYPT_FAILURE_REASONS`.

Evaluation runs left to right with short-circuit: the comparison that decides the outcome (the
first false one of an ``and`` chain, the first true one of an ``or`` chain, else the last one
evaluated) supplies :attr:`AssertionResult.value` (its measured side: the left-hand side, or the
right-hand side when the left is a constant) and ``reason``. A value the
report lacks (the p95 of an empty histogram) makes its comparison false with a reason such as
``no latency samples``; ``count()`` of an empty histogram is 0.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import DECRYPT_FAILURE_REASONS, SealError
from .jsonread import Number as Value
from .measures import Metrics, RoomReport
from .model import LoadReport

__all__ = [
    "COUNTERS",
    "FUNCTIONS",
    "HISTOGRAMS",
    "Assertion",
    "AssertionResult",
    "AssertionSyntaxError",
    "check_all",
    "evaluate",
    "parse",
]

MAX_LENGTH = 1000
"""Longest assertion accepted (one line of a command)."""

FUNCTIONS = ("p50", "p90", "p95", "p99", "max", "count")
HISTOGRAMS = (
    "latency_ms", "latency_video_ms", "latency_audio_ms", "join_ms", "first_frame_ms", "loop_lag_ms",
    "time_to_recover_ms",
)  # fmt: skip
_SAMPLES = {
    "latency_ms": "latency",
    "latency_video_ms": "video latency",
    "latency_audio_ms": "audio latency",
    "join_ms": "join",
    "first_frame_ms": "first-frame",
    "loop_lag_ms": "loop-lag",
    "time_to_recover_ms": "time-to-recover",
}

_RECOVERY_COUNTERS = ("reconnects", "outage_ms", "outage_frames_missed", "availability_percent")
"""Recovery in load runs: every legitimate participant's reconnects, subscribers' outages, the
video frames those cost them and the share of their seconds with decrypted video."""
_PLAIN_COUNTERS = (
    "planned",
    "joined",
    "failed",
    "intruders",
    "decrypt_failures",
    "intruder_decrypts",
    "intruder_failures",
    "frames.sent",
    "frames.received",
    "frames.decrypted",
    "frames.decoded",
    "frames.lost",
    "freezes",
    "freezes.count",
    "freezes.total_ms",
    "cpu_percent",
    "loss_percent",
    *(
        "rotations",
        "epochs",
        "rotation_failures",
        "rotation_lost",
        "rotation_freezes",
        "rotation_gap_ms",
        "churn_joins",
    ),
    *("bitrate_kbps", "video_bitrate_kbps", "audio_bitrate_kbps", "sent_bitrate_kbps"),
    *_RECOVERY_COUNTERS,
)
_BITRATES = {
    "bitrate_kbps": ("received", "metrics.bitrate.received_video_kbps + received_audio_kbps"),
    "video_bitrate_kbps": ("received_video_kbps", "metrics.bitrate.received_video_kbps"),
    "audio_bitrate_kbps": ("received_audio_kbps", "metrics.bitrate.received_audio_kbps"),
    "sent_bitrate_kbps": ("sent", "metrics.bitrate.sent_video_kbps + sent_audio_kbps"),
}
"""Bitrate names: the :class:`~sealrtc.report.measures.Bitrate` field (or direction total) each reads."""
_KEY_COUNTERS = {
    "rotations": ("rotations", "metrics.keys.rotations"),
    "epochs": ("epochs", "metrics.keys.epochs"),
    "rotation_lost": ("frames_lost", "metrics.keys.near_change.frames_lost"),
    "rotation_freezes": ("freezes", "metrics.keys.near_change.freezes"),
    "rotation_gap_ms": ("longest_gap_ms", "metrics.keys.near_change.longest_gap_ms"),
    "churn_joins": ("joins", "metrics.keys.joins_during_run.count"),
}
"""Key lifecycle names (rotation_* cover any key change: a new secret or a new epoch)."""
COUNTERS: tuple[str, ...] = (
    *_PLAIN_COUNTERS,
    *(f"decrypt_failures.{r}" for r in DECRYPT_FAILURE_REASONS),
    *(f"intruder_failures.{r}" for r in DECRYPT_FAILURE_REASONS),
)
"""Every name an assertion may use outside a function call."""

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:\s*(?P<unit>ms(?![\w.])|%))?
      | (?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
      | (?P<op><=|>=|==|!=|<|>)
      | (?P<paren>[()])""",
    re.VERBOSE,
)
_HINTS = {"&": "use 'and'", "|": "use 'or'", "=": "use '==' to compare", "!": "use '!='"}


class AssertionSyntaxError(SealError, ValueError):
    """An assertion does not parse; ``column`` (1-based) points at the offending place."""

    def __init__(self, message: str, *, text: str = "", column: int = 0) -> None:
        super().__init__(message)
        self.text = text
        self.column = column


# -- syntax tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A constant (its unit, if any, was dropped)."""

    value: float
    text: str


@dataclass(frozen=True)
class Counter:
    """A named counter of the report, e.g. ``frames.lost``."""

    name: str


@dataclass(frozen=True)
class Percentile:
    """``FUNC(HISTOGRAM)``: a value read from a histogram summary."""

    function: str
    histogram: str


Operand = Number | Counter | Percentile


@dataclass(frozen=True)
class Comparison:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class Assertion:
    """A parsed assertion: ``any_of`` is a disjunction of conjunctions of comparisons."""

    text: str
    any_of: tuple[tuple[Comparison, ...], ...]


@dataclass(frozen=True)
class AssertionResult:
    """The outcome of one assertion on one report.

    ``value`` is the measured side (the left-hand side, or the right when the left is a constant)
    of the comparison that decided the outcome; None when the report lacks it. ``reason`` says
    why a failed assertion failed (None when ``ok``).
    """

    expr: str
    value: float | None
    ok: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, str | float | bool | None]:
        """The report's form: ``{"expr", "value", "ok", "reason"}``."""
        return {"expr": self.expr, "value": self.value, "ok": self.ok, "reason": self.reason}


# -- parser ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, op, paren, end
    text: str
    column: int  # 1-based
    value: float = 0.0


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens, lazily: an error is reported where the parser gets to it, left to right."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            hint = _HINTS.get(char)
            raise _error(text, position + 1, f"unexpected {char!r}", f" ({hint})" if hint else "")
        kind = match.lastgroup if match.lastgroup != "unit" else "number"
        if kind == "number":
            number_text = match.group("number")
            value = float(number_text)
            if not math.isfinite(value):
                raise _error(text, position + 1, f"number {number_text!r} is out of range")
            yield _Token("number", match.group(0), position + 1, value)
        elif kind != "space":
            assert kind is not None
            yield _Token(kind, match.group(0), position + 1)
        position = match.end()
    while True:
        yield _Token("end", "", len(text) + 1)


def _error(text: str, column: int, message: str, hint: str = "") -> AssertionSyntaxError:
    return AssertionSyntaxError(f"{message} at column {column}{hint}", text=text, column=column)


def _suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean a, b or c?)`` from difflib, or nothing; histograms shown as p95(name)."""
    close = [f"p95({c})" if c in HISTOGRAMS else c for c in difflib.get_close_matches(word, list(candidates), n=3)]
    if not close:
        return ""
    listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f" (did you mean {listed}?)"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.next = next(self.tokens)

    def peek(self) -> _Token:
        return self.next

    def take(self) -> _Token:
        token = self.next
        self.next = next(self.tokens)
        return token

    def fail(self, token: _Token, message: str, hint: str = "") -> AssertionSyntaxError:
        return _error(self.text, token.column, message, hint)

    def parse(self) -> Assertion:
        any_of = [self.conjunction()]
        while self.peek().kind == "name" and self.peek().text == "or":
            self.take()
            any_of.append(self.conjunction())
        token = self.peek()
        if token.kind != "end":
            raise self.fail(token, f"expected 'and', 'or' or the end, found {token.text!r}")
        return Assertion(self.text.strip(), tuple(any_of))

    def conjunction(self) -> tuple[Comparison, ...]:
        all_of = [self.comparison()]
        while self.peek().kind == "name" and self.peek().text == "and":
            self.take()
            all_of.append(self.comparison())
        return tuple(all_of)

    def comparison(self) -> Comparison:
        left = self.operand(None)
        token = self.take()
        if token.kind != "op":
            found = "the end" if token.kind == "end" else repr(token.text)
            raise self.fail(token, f"expected a comparison (< <= > >= == !=) after {_describe(left)}, found {found}")
        right = self.operand(token.text, left)
        return Comparison(left, token.text, right)

    def operand(self, after: str | None, left: Operand | None = None) -> Operand:
        token = self.take()
        if token.kind == "number":
            return Number(token.value, token.text)
        if token.kind == "name" and token.text not in ("and", "or"):
            if self.peek().kind == "paren" and self.peek().text == "(":
                return self.call(token)
            return self.counter(token)
        if after is None:
            expected = "expected a number, a counter or a function such as p95(latency_video_ms)"
            where = "" if token.kind == "end" else f", found {token.text!r}"
        else:
            expected = "expected a number" if not isinstance(left, Number) else "expected a counter or a function"
            where = f" after {after!r}"
        raise self.fail(token, expected + where)

    def counter(self, token: _Token) -> Counter:
        name = token.text
        if name in COUNTERS:
            return Counter(name)
        if name in HISTOGRAMS:
            raise self.fail(token, f"{name!r} is a histogram: use a function, e.g. p95({name}) or count({name})")
        if name in FUNCTIONS:
            raise self.fail(token, f"{name!r} is a function: write {name}(latency_ms)")
        raise self.fail(token, f"unknown name {name!r}", _suggest(name, COUNTERS + HISTOGRAMS))

    def call(self, token: _Token) -> Percentile:
        function = token.text
        if function not in FUNCTIONS:
            raise self.fail(token, f"unknown function {function!r}", _suggest(function, FUNCTIONS))
        self.take()  # "("
        argument = self.take()
        if argument.kind != "name":
            raise self.fail(argument, f"expected a histogram name after '{function}(' ({', '.join(HISTOGRAMS)})")
        if argument.text not in HISTOGRAMS:
            what = "a counter, not a histogram" if argument.text in COUNTERS else "not a histogram"
            raise self.fail(argument, f"{argument.text!r} is {what}", f" (histograms: {', '.join(HISTOGRAMS)})")
        closing = self.take()
        if closing.kind != "paren" or closing.text != ")":
            raise self.fail(closing, f"expected ')' after '{function}({argument.text}'")
        return Percentile(function, argument.text)


def _label(operand: Operand) -> str:
    if isinstance(operand, Number):
        return operand.text
    if isinstance(operand, Counter):
        return operand.name
    return f"{operand.function}({operand.histogram})"


def _describe(operand: Operand) -> str:
    return repr(_label(operand))


def parse(text: str) -> Assertion:
    """Parse one assertion; raises :class:`AssertionSyntaxError` (one line, with a column)."""
    if not isinstance(text, str):
        raise AssertionSyntaxError("an assertion must be text")
    if not text.strip():
        raise AssertionSyntaxError("empty assertion", text=text, column=1)
    if len(text) > MAX_LENGTH:
        raise AssertionSyntaxError(f"assertion longer than {MAX_LENGTH} characters", text=text, column=MAX_LENGTH)
    return _Parser(text).parse()


def check_all(texts: Iterable[str]) -> list[Assertion]:
    """Parse every assertion (before a run starts); raises on the first bad one, naming it."""
    assertions = []
    for text in texts:
        try:
            assertions.append(parse(text))
        except AssertionSyntaxError as error:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise AssertionSyntaxError(f"{shown.strip()!r}: {error}", text=error.text, column=error.column) from None
    return assertions


# -- evaluation -----------------------------------------------------------------------------------


class _Missing(Exception):
    """A value the report lacks; the message is the result's reason."""


Measured = LoadReport | RoomReport
"""What assertions read: a whole report, or one room of it (the same participants and metrics)."""


def _need(value: Value | None, path: str) -> float:
    if value is None:
        raise _Missing(f"no {path} in the report")
    return float(value)


def _metrics(report: Measured, path: str) -> Metrics:
    if report.metrics is None:
        raise _Missing(f"no {path} in the report")
    return report.metrics


def _failures(report: Measured, head: str, reason: str) -> float:
    metrics = _metrics(report, f"metrics.{head}")
    counts = metrics.decrypt_failures if head == "decrypt_failures" else metrics.intruder_failures
    if counts is None:
        raise _Missing(f"no metrics.{head} in the report")
    return float(counts.get(reason, 0) if reason else counts.total)  # a reason never seen was never counted


def _counter(report: Measured, name: str) -> float:
    if name in ("planned", "joined", "failed", "intruders"):
        if report.participants is None:
            raise _Missing(f"no participants.{name} in the report")
        return _need(getattr(report.participants, name), f"participants.{name}")
    if name == "cpu_percent":
        generator = report.generator if isinstance(report, LoadReport) else None
        return _need(generator.cpu_percent if generator is not None else None, "generator.cpu_percent")
    if name == "intruder_decrypts":
        return _need(_metrics(report, "metrics.intruder_decrypts").intruder_decrypts, "metrics.intruder_decrypts")
    if name == "loss_percent":
        _counter(report, "frames.lost")  # says which count is missing
        _counter(report, "frames.decrypted")
        return _need(_metrics(report, "metrics.frames").loss_percent, "metrics.frames")
    if name == "rotation_failures" or name in _KEY_COUNTERS:
        return _key_counter(report, name)
    if name in _BITRATES:
        field, path = _BITRATES[name]
        bitrate = _metrics(report, "metrics.bitrate").bitrate
        if bitrate is None:
            raise _Missing("no metrics.bitrate in the report")
        return _need(bitrate.total(field) if field in ("sent", "received") else bitrate.get(field), path)
    if name in _RECOVERY_COUNTERS:
        path = f"metrics.{name}"
        value: Value | None = getattr(_metrics(report, path), name)
        return _need(value, path)
    if name == "freezes":
        name = "freezes.count"
    head, _, leaf = name.partition(".")
    if head in ("decrypt_failures", "intruder_failures"):
        return _failures(report, head, leaf)
    path = f"metrics.{name}"
    metrics = _metrics(report, path)
    if head == "frames":
        return _need(metrics.frames.get(leaf) if metrics.frames is not None else None, path)
    freezes = metrics.freezes
    return _need(getattr(freezes, leaf) if freezes is not None else None, path)


def _key_counter(report: Measured, name: str) -> float:
    keys = _metrics(report, "metrics.keys").keys
    if keys is None:
        raise _Missing("no metrics.keys in the report")
    if name == "rotation_failures":
        path = "metrics.keys.near_change.decrypt_failures"
        return _need(keys.decrypt_failures.total if keys.decrypt_failures is not None else None, path)
    attribute, path = _KEY_COUNTERS[name]
    value: Value | None = getattr(keys, attribute)
    return _need(value, path)


def _histogram(report: Measured, operand: Percentile) -> float:
    if operand.histogram == "loop_lag_ms":
        generator = report.generator if isinstance(report, LoadReport) else None
        if generator is None:
            raise _Missing("no generator.loop_lag_ms in the report")
        summary = generator.loop_lag_ms
    else:
        summary = _metrics(report, f"metrics.{operand.histogram}").summary(operand.histogram)
    if summary is None:
        if operand.function == "count":
            return 0.0
        raise _Missing(f"no {_SAMPLES[operand.histogram]} samples")
    value = summary.value(operand.function)
    if value is None and summary.count == 0 and operand.function != "count":
        raise _Missing(f"no {_SAMPLES[operand.histogram]} samples")
    return _need(value, f"{operand.function}({operand.histogram})")


def _value(report: Measured, operand: Operand) -> float:
    if isinstance(operand, Number):
        return operand.value
    if isinstance(operand, Counter):
        return _counter(report, operand.name)
    return _histogram(report, operand)


def _format(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"


def _compare(report: Measured, comparison: Comparison) -> tuple[bool, float | None, str | None]:
    """(holds, measured value, reason); the measured side is the left one unless it is a constant."""
    left, right = comparison.left, comparison.right
    measured_is_left = not isinstance(left, Number) or isinstance(right, Number)
    values: list[float] = []
    try:
        for operand in (left, right) if measured_is_left else (right, left):
            values.append(_value(report, operand))
    except _Missing as missing:
        return False, values[0] if values else None, str(missing)
    a, b = values if measured_is_left else values[::-1]
    measured = a if measured_is_left else b
    if _OPERATORS[comparison.op](a, b):
        return True, measured, None
    return False, measured, f"{_shown(left, a)} is not {comparison.op} {_shown(right, b)}"


def _shown(operand: Operand, value: float) -> str:
    label = _label(operand)
    return label if isinstance(operand, Number) else f"{label} = {_format(value)}"


def evaluate(assertion: Assertion, report: Measured | Mapping[str, object]) -> AssertionResult:
    """Evaluate a parsed assertion on a report (or one room of it). A mapping is report JSON,
    read with :meth:`LoadReport.from_json` (a room's JSON has the report's shape)."""
    if not isinstance(report, LoadReport | RoomReport):
        report = LoadReport.from_json(report)
    ok, value, reason = False, None, None
    for all_of in assertion.any_of:
        for comparison in all_of:
            ok, value, reason = _compare(report, comparison)
            if not ok:
                break
        if ok:
            break
    return AssertionResult(assertion.text, value, ok, None if ok else reason)
