"""Judging a load report: assertions, verdict and exit status, in one pure function.

``sealrtc load`` and ``sealrtc report merge`` both call :func:`judge`; the order of the rules
is the product's: an interrupted run is "interrupted" whatever it measured; a saturated
generator makes every number suspect ("saturated", exit 4) whatever the assertions say; then a
failed assertion, or a merge that lacks shards, fails the run.

Assertions add up (as k6's thresholds do): the E2EE checks of :func:`default_assertions` apply to
every run unless they are switched off by name (``--no-default-asserts``), and what a user asks
for (a scenario file's ``assert`` list, then ``--assert``) comes on top; the report marks which
were defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .assertions import Assertion, AssertionResult, evaluate
from .model import AssertionOutcome, LoadReport

__all__ = ["DEFAULT_CHECKS", "Judgement", "Verdict", "default_assertions", "judge", "merged_checks"]

DEFAULT_CHECKS = ("joined == planned", "decrypt_failures == 0", "intruder_decrypts == 0")
"""What every E2EE load run must show: everyone joined, nothing failed to decrypt, no intruder
(a subscriber with another secret) decrypted anything. With subscribers, also
``frames.decrypted > 0`` (a run where nothing arrived proves nothing)."""


def _same(text: str) -> str:
    """Assertions compared regardless of spacing (``joined==planned`` is the default's twin)."""
    return "".join(text.split())


def default_assertions(asked: Iterable[str] = (), *, subscribers: bool) -> tuple[str, ...]:
    """The default checks of a run, less those ``asked`` already holds (they stay the user's)."""
    taken = {_same(text) for text in asked}
    texts = (*DEFAULT_CHECKS, *(("frames.decrypted > 0",) if subscribers else ()))
    return tuple(text for text in texts if _same(text) not in taken)


def merged_checks(outcomes: Iterable[AssertionOutcome], asked: Sequence[str]) -> tuple[list[str], list[str]]:
    """What ``report merge`` judges by: the shards' own assertions (their defaults kept apart),
    with ``asked`` added; returns ``(defaults, the others)`` without repeats."""
    defaults: dict[str, None] = {}
    others: dict[str, None] = {}
    for outcome in outcomes:
        (defaults if outcome.default else others)[outcome.expr] = None
    others.update(dict.fromkeys(asked))
    taken = {_same(text) for text in others}
    return [text for text in defaults if _same(text) not in taken], list(others)


class Verdict(StrEnum):
    """The report's ``verdict``; :attr:`exit_status` is what the command exits with."""

    PASS = "pass"
    FAIL = "fail"
    SATURATED = "saturated"
    INTERRUPTED = "interrupted"

    @property
    def exit_status(self) -> int:
        """The documented exit codes (the CLI's ``ExitStatus`` has the same numbers)."""
        return {"pass": 0, "fail": 1, "saturated": 4, "interrupted": 130}[self.value]


@dataclass(frozen=True)
class Judgement:
    """The judged report (assertions, verdict and exit status filled in) and how it went."""

    report: LoadReport
    verdict: Verdict
    results: tuple[AssertionResult, ...]

    @property
    def exit_status(self) -> int:
        return self.verdict.exit_status

    @property
    def failed(self) -> int:
        """How many assertions failed."""
        return sum(not r.ok for r in self.results)


def judge(
    report: LoadReport,
    assertions: Sequence[Assertion],
    *,
    default_checks: Sequence[Assertion] = (),
    interrupted: bool = False,
) -> Judgement:
    """Evaluate the user's ``assertions`` and then ``default_checks`` (marked as defaults in the
    report) on ``report`` and decide the verdict; returns a new report, ``report`` is left as it is."""
    marked = [(a, False) for a in assertions] + [(a, True) for a in default_checks]
    results = tuple(evaluate(a, report) for a, _ in marked)
    if interrupted:
        verdict = Verdict.INTERRUPTED
    elif report.generator is not None and report.generator.saturated:
        verdict = Verdict.SATURATED
    elif any(not r.ok for r in results) or report.missing_shards:
        verdict = Verdict.FAIL
    else:
        verdict = Verdict.PASS
    outcomes = tuple(
        AssertionOutcome(r.expr, r.value, r.ok, r.reason, default)
        for r, (_, default) in zip(results, marked, strict=True)
    )
    judged = dataclasses.replace(report, assertions=outcomes, verdict=verdict.value, exit_status=verdict.exit_status)
    return Judgement(judged, verdict, results)
