"""Assertions add up: the E2EE defaults are checked whatever else is asked for (issue 21 item 9)."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from sealrtc.cli.load import _assertions
from sealrtc.load.scenario import Scenario
from sealrtc.report import check_all, judge
from sealrtc.report.judge import DEFAULT_CHECKS, Verdict, default_assertions, merged_checks
from sealrtc.report.model import AssertionOutcome, LoadReport

from .report_fixture import sample_report

pytestmark = pytest.mark.unit


def _intruded() -> LoadReport:
    """The sample run, but an intruder decrypted 3 frames (everything else is as measured)."""
    data: dict[str, Any] = sample_report()
    data["metrics"]["intruder_decrypts"] = 3
    return LoadReport.from_json(data)


def test_a_latency_assertion_does_not_switch_off_the_intruder_check() -> None:
    asked = check_all(["p95(latency_ms) < 100000"])
    defaults = check_all(default_assertions(["p95(latency_ms) < 100000"], subscribers=True))
    judged = judge(_intruded(), asked, default_checks=defaults)
    outcomes = {a.expr: a for a in judged.report.assertions}
    assert outcomes["p95(latency_ms) < 100000"].ok and not outcomes["p95(latency_ms) < 100000"].default
    intruders = outcomes["intruder_decrypts == 0"]
    assert not intruders.ok and intruders.value == 3 and intruders.default
    assert judged.verdict is Verdict.FAIL  # the sample's two replayed frames fail decrypt_failures == 0 too
    assert {a.expr for a in judged.report.assertions if not a.ok} == {"intruder_decrypts == 0", "decrypt_failures == 0"}
    assert set(outcomes) == {"p95(latency_ms) < 100000", *DEFAULT_CHECKS, "frames.decrypted > 0"}


def test_a_default_asked_for_by_name_is_the_users_and_checked_once() -> None:
    texts = default_assertions(["intruder_decrypts==0", "p50(latency_ms) < 9"], subscribers=False)
    assert texts == ("joined == planned", "decrypt_failures == 0")  # no frames.decrypted without subscribers


def _args(*asserts: str, no_defaults: bool = False) -> argparse.Namespace:
    return argparse.Namespace(assertion=list(asserts) or None, scenario="run.toml", no_default_asserts=no_defaults)


def test_assert_flags_add_to_the_scenario_files_list_and_the_defaults() -> None:
    scenario = Scenario(intruders=1, assertions=("p95(latency_ms) < 250",))
    asked, defaults = _assertions(_args("loss_percent < 1"), scenario)
    assert [a.text for a in asked] == ["p95(latency_ms) < 250", "loss_percent < 1"]
    assert [a.text for a in defaults] == [*DEFAULT_CHECKS, "frames.decrypted > 0"]
    asked, defaults = _assertions(_args("loss_percent < 1", no_defaults=True), scenario)
    assert len(asked) == 2 and defaults == []


def test_merge_keeps_the_shards_defaults_beside_what_it_is_asked() -> None:
    shard = [AssertionOutcome("joined == planned", 9, True, default=True),
             AssertionOutcome("p95(latency_ms) < 250", 80, True)]  # fmt: skip
    defaults, others = merged_checks(shard * 2, ["intruder_decrypts == 0", "joined==planned"])
    assert defaults == [] and others == ["p95(latency_ms) < 250", "intruder_decrypts == 0", "joined==planned"]
    defaults, others = merged_checks(shard, [])
    assert defaults == ["joined == planned"] and others == ["p95(latency_ms) < 250"]


def test_the_summary_marks_the_defaults() -> None:
    from sealrtc.cli.display import NullDisplay
    from sealrtc.cli.output import load_summary

    shown: list[Any] = []

    class Capture(NullDisplay):
        def summary(self, title: str, header: Any, rows: Any, verdict: str, ok: bool, *, status: int) -> None:
            shown.extend(rows)

    judged = judge(_intruded(), check_all(["loss_percent < 100"]), default_checks=check_all(DEFAULT_CHECKS))
    load_summary(Capture("load", stream=io.StringIO()), judged)
    rows = {str(r[0]): str(r[1]) for r in shown}
    assert rows["assert intruder_decrypts == 0"] == "FAILED (value 3, default)"
    assert (
        rows["assert loss_percent < 100"].startswith("ok (value ")
        and "default" not in rows["assert loss_percent < 100"]
    )
