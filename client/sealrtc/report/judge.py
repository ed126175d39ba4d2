"""Judging a load report: assertions, verdict and exit status, in one pure function.

``sealrtc load`` and ``sealrtc report merge`` both call :func:`judge`; the order of the rules
is the product's: an interrupted run is "interrupted" whatever it measured; a saturated
generator makes every number suspect ("saturated", exit 4) whatever the assertions say; then a
failed assertion, or a merge that lacks shards, fails the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .assertions import Assertion, AssertionResult, evaluate
from .model import AssertionOutcome, LoadReport

__all__ = ["Judgement", "Verdict", "judge"]


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
    report: LoadReport, assertions: Sequence[Assertion], *, defaults: bool, interrupted: bool = False
) -> Judgement:
    """Evaluate ``assertions`` on ``report`` (``defaults``: they are the run's defaults, not the
    user's) and decide the verdict; returns a new report, ``report`` is left as it is."""
    results = tuple(evaluate(a, report) for a in assertions)
    if interrupted:
        verdict = Verdict.INTERRUPTED
    elif report.generator is not None and report.generator.saturated:
        verdict = Verdict.SATURATED
    elif any(not r.ok for r in results) or report.missing_shards:
        verdict = Verdict.FAIL
    else:
        verdict = Verdict.PASS
    outcomes = tuple(AssertionOutcome(r.expr, r.value, r.ok, r.reason, defaults) for r in results)
    judged = dataclasses.replace(report, assertions=outcomes, verdict=verdict.value, exit_status=verdict.exit_status)
    return Judgement(judged, verdict, results)
