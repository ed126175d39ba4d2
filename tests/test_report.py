"""The report side of ``sealrtc load``: the assertion language and the intervals CSV."""

from __future__ import annotations

import builtins
import copy
import csv
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealrtc.errors import SealError
from sealrtc.report import AssertionResult, AssertionSyntaxError, check_all, evaluate, parse
from sealrtc.report.assertions import COUNTERS, FUNCTIONS, HISTOGRAMS
from sealrtc.report.csv import INTERVAL_COLUMNS, intervals_csv, write_intervals_csv

from .report_fixture import sample_report

pytestmark = pytest.mark.unit

REPORT = sample_report()


def check(text: str, report: dict[str, Any] | None = None) -> AssertionResult:
    return evaluate(parse(text), REPORT if report is None else report)


# -- operators, operands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("joined < 16", True),
        ("joined < 15", False),
        ("joined <= 15", True),
        ("joined <= 14", False),
        ("joined > 14", True),
        ("joined > 15", False),
        ("joined >= 15", True),
        ("joined >= 16", False),
        ("joined == 15", True),
        ("joined == 15.0", True),
        ("joined == 14", False),
        ("joined != 14", True),
        ("joined != 15", False),
    ],
)
def test_every_operator(text: str, ok: bool) -> None:
    result = check(text)
    assert result.ok is ok
    assert result.value == 15
    assert result.expr == text
    assert (result.reason is None) is ok


def test_functions_read_the_summaries() -> None:
    latency = REPORT["metrics"]["latency_ms"]
    for function in ("p50", "p90", "p95", "p99", "max", "count"):
        result = check(f"{function}(latency_ms) > 0")
        assert result.ok and result.value == latency[function]
    assert check("p95(join_ms) < 1000").value == REPORT["metrics"]["join_ms"]["p95"]
    assert check("max(first_frame_ms) < 1000").value == REPORT["metrics"]["first_frame_ms"]["max"]
    assert check("p99(loop_lag_ms) < 50").value == REPORT["generator"]["loop_lag_ms"]["p99"]


def test_fixture_values() -> None:
    """Numbers the fixture was built to have (see tests/report_fixture.py)."""
    assert check("frames.lost == 9").ok
    assert check("freezes == 1 and freezes.count == 1 and freezes.total_ms == 412.5").ok
    assert check("decrypt_failures == 2 and decrypt_failures.replayed == 2 and decrypt_failures.malformed == 0").ok
    assert check("intruder_failures == intruder_failures.authentication_failed").ok
    assert check("intruder_failures.unknown_key == 0").ok  # a reason never counted is 0
    assert check("intruder_decrypts == 0 and intruders == 3 and planned == 15 and failed == 0").ok
    assert check("cpu_percent == 63.5").ok
    frames = REPORT["metrics"]["frames"]
    for name in ("sent", "received", "decrypted", "decoded", "lost"):
        assert check(f"frames.{name} >= 0").value == frames[name]
    assert check("loss_percent < 1").value == pytest.approx(100 * 9 / (frames["decrypted"] + 9))
    failed = [a for a in REPORT["assertions"] if not a["ok"]]
    assert [a["expr"] for a in failed] == ["p99(latency_ms) < 50"]
    assert failed[0]["value"] == REPORT["metrics"]["latency_ms"]["p99"] > 50
    assert failed[0]["reason"] == f"p99(latency_ms) = {failed[0]['value']} is not < 50"


def test_units_are_accepted_and_ignored() -> None:
    for text in ("p95(latency_ms) < 250ms", "p95(latency_ms)<250 ms", "p95(latency_ms) < 250"):
        assert parse(text).any_of[0][0].right.value == 250  # type: ignore[union-attr]
    assert check("p95(latency_ms) < 250 ms").ok
    assert check("loss_percent < 1%").ok and check("loss_percent < 1 %").ok
    assert check("cpu_percent < 63.5%").ok is False
    with pytest.raises(AssertionSyntaxError):
        parse("p95(latency_ms) < 250 s")  # seconds would be silently wrong: refused


def test_numbers() -> None:
    for text in ("joined > .5", "joined < 1e3", "joined > -1", "15. == joined", "joined == 1.5e1"):
        assert check(text).ok, text


def test_constant_on_the_left_reports_the_measured_side() -> None:
    result = check("250 > p95(latency_ms)")
    assert result.ok and result.value == REPORT["metrics"]["latency_ms"]["p95"]
    failed = check("10 > p95(latency_ms)")
    assert not failed.ok and failed.reason == f"10 is not > p95(latency_ms) = {failed.value}"
    assert check("1 < 2").value == 1


def test_metric_against_metric() -> None:
    assert check("joined == planned").ok
    assert check("frames.decrypted <= frames.received").ok
    result = check("failed > intruders")
    assert not result.ok and result.reason == "failed = 0 is not > intruders = 3"


def test_and_binds_tighter_than_or() -> None:
    # false and true or true  ->  (false and true) or true  ->  true
    assert check("joined < 0 and joined > 0 or failed == 0").ok
    # true or false and false  ->  true or (false and false)  ->  true
    assert check("joined > 0 or joined < 0 and failed > 0").ok
    # (true and false) or (false)  ->  false, decided by the last comparison evaluated
    result = check("joined > 0 and failed > 0 or planned < 1")
    assert not result.ok and result.value == 15 and result.reason == "planned = 15 is not < 1"


def test_and_reports_the_first_failing_comparison() -> None:
    result = check("joined == 15 and cpu_percent < 50 and failed == 0")
    assert not result.ok and result.value == 63.5 and result.reason == "cpu_percent = 63.5 is not < 50"


def test_or_reports_the_first_passing_comparison() -> None:
    result = check("cpu_percent < 50 or joined == 15")
    assert result.ok and result.value == 15 and result.reason is None


def test_missing_values() -> None:
    report = copy.deepcopy(REPORT)
    report["metrics"]["latency_ms"] = None
    report["generator"]["loop_lag_ms"] = None
    assert check("p95(latency_ms) < 250", report) == AssertionResult(
        "p95(latency_ms) < 250", None, False, "no latency samples"
    )
    assert check("count(latency_ms) == 0", report).ok  # an empty histogram counts 0 samples
    assert check("p99(loop_lag_ms) < 5", report).reason == "no loop-lag samples"
    assert check("250 > p95(latency_ms)", report).reason == "no latency samples"
    # the missing side fails its comparison, an "or" can still pass
    assert check("p95(latency_ms) < 250 or joined == 15", report).ok
    del report["generator"]
    result = check("cpu_percent < 90", report)
    assert (result.ok, result.value, result.reason) == (False, None, "no generator.cpu_percent in the report")
    assert check("joined == 15", {}).reason == "no participants.joined in the report"


def test_a_room_has_the_report_shape() -> None:
    room = REPORT["rooms"][2]
    assert check("frames.lost == 9 and freezes == 1 and joined == 5", room).ok
    assert check("frames.lost == 0", REPORT["rooms"][0]).ok


def test_loss_percent_is_zero_without_frames() -> None:
    report = copy.deepcopy(REPORT)
    report["metrics"]["frames"] = {"sent": 0, "received": 0, "decrypted": 0, "decoded": 0, "lost": 0}
    assert check("loss_percent == 0", report).ok


def test_to_dict_is_the_report_form() -> None:
    assert check("joined == 15").to_dict() == {"expr": "joined == 15", "value": 15.0, "ok": True, "reason": None}


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95(latency_ms) < ", "expected a number after '<' at column 19"),
        ("p95(latency_ms) <= joined <", "expected 'and', 'or' or the end, found '<' at column 27"),
        ("p96(latency_ms) < 1", "unknown function 'p96' at column 1 (did you mean p99, p95 or p90?)"),
        ("latncy_ms < 3", "unknown name 'latncy_ms' at column 1 (did you mean p95(latency_ms), p95(latency_video_ms)"),
        ("frames.lots > 1", "unknown name 'frames.lots' at column 1 (did you mean frames.lost"),
        ("decrypt_failures.replay > 1", "(did you mean decrypt_failures.replayed"),
        ("latency_ms < 3", "'latency_ms' is a histogram: use a function, e.g. p95(latency_ms)"),
        ("p95 < 3", "'p95' is a function"),
        ("p95(joined) < 1", "'joined' is a counter, not a histogram at column 5"),
        ("p95(5) < 1", "expected a histogram name after 'p95('"),
        ("p95(latency_ms < 1", "expected ')' after 'p95(latency_ms' at column 16"),
        ("joined && failed", "unexpected '&' at column 8 (use 'and')"),
        ("joined == 1 || failed == 1", "(use 'or')"),
        ("joined = 15", "(use '==' to compare)"),
        ("joined", "expected a comparison (< <= > >= == !=) after 'joined', found the end"),
        ("joined < 1 and", "expected a number, a counter or a function such as p95(latency_video_ms) at column 15"),
        ("joined < 1 or or", "found 'or' at column 15"),
        ("1 < 2 3", "expected 'and', 'or' or the end, found '3' at column 7"),
        ("1 < joined < 3", "expected 'and', 'or' or the end, found '<'"),
        ("1e999 < 1", "out of range"),
        ("   ", "empty assertion"),
        ("x" * 2000, "longer than"),
        ("__import__('os').system('true') == 0", "unknown function '__import__' at column 1"),
        ("joined == 'x'", 'unexpected "\'" at column 11'),
    ],
)
def test_refused_with_a_pointed_message(text: str, message: str) -> None:
    with pytest.raises(AssertionSyntaxError) as caught:
        parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, SealError)


def test_column_counts_leading_spaces() -> None:
    with pytest.raises(AssertionSyntaxError) as caught:
        parse("  joined <")
    assert caught.value.column == 11 and caught.value.text == "  joined <"
    assert parse("  joined < 3  ").text == "joined < 3"


def test_every_documented_name_parses() -> None:
    for name in COUNTERS:
        parse(f"{name} >= 0")
    for function in FUNCTIONS:
        for histogram in HISTOGRAMS:
            parse(f"{function}({histogram}) >= 0")
        assert check(f"{function}(latency_ms) >= 0").ok
    for name in COUNTERS:
        assert check(f"{name} >= 0").ok, name


def test_check_all_raises_on_the_first_bad_one() -> None:
    assert len(check_all(["joined > 0", "p95(latency_ms) < 250"])) == 2
    with pytest.raises(AssertionSyntaxError) as caught:
        check_all(["joined > 0", "bad > 0", "worse >"])
    assert str(caught.value) == "'bad > 0': unknown name 'bad' at column 1"
    assert caught.value.column == 1 and caught.value.text == "bad > 0"


# -- garbage never escapes as anything else, never runs Python -------------------------------------

TOKENS = st.sampled_from(
    [*COUNTERS, *HISTOGRAMS, *FUNCTIONS, "(", ")", "<", "<=", ">", ">=", "==", "!=", "=", "and", "or", "ms", "%",
     "1", "2.5", "-3", ".5", "1e3", "1e999", "__import__", "os", "'", '"', ";", "\n", ".", "[", "]", "lambda"]
)  # fmt: skip


@pytest.fixture
def no_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the assertion language ran Python")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)


def _parse_and_evaluate(text: str) -> None:
    try:
        assertion = parse(text)
    except AssertionSyntaxError as error:
        assert "\n" not in str(error)
        assert 0 <= error.column <= len(text) + 1
        return
    result = evaluate(assertion, REPORT)
    assert isinstance(result.ok, bool)
    assert result.value is None or isinstance(result.value, float)
    evaluate(assertion, {})  # an empty report: missing values, never an exception


@given(st.text(max_size=80))
def test_random_text_only_raises_syntax_errors(text: str) -> None:
    _parse_and_evaluate(text)


@given(st.lists(TOKENS, max_size=12), st.sampled_from([" ", ""]))
def test_random_token_soup_only_raises_syntax_errors(tokens: list[str], separator: str) -> None:
    _parse_and_evaluate(separator.join(tokens))


def test_no_python_is_evaluated(no_python: None) -> None:
    for text in (
        "__import__('os').system('touch /tmp/sealrtc-pwned') == 0",
        "exec('1') == 0",
        "p95(latency_ms) < 250",
        "joined == planned and cpu_percent < 90 or freezes == 0",
    ):
        _parse_and_evaluate(text)
    assert check("p95(latency_ms) < 250").ok


# -- CSV -------------------------------------------------------------------------------------------


def test_csv_header_rows_and_nulls() -> None:
    text = intervals_csv(REPORT)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(INTERVAL_COLUMNS)
    assert len(rows) == 1 + len(REPORT["intervals"]) == 31
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["t"] == "1.0" and first["joined"] == "5"
    assert first["latency_p50"] == "" and first["latency_p95"] == "" and first["fps"] == ""  # nulls


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "intervals.csv"
    write_intervals_csv(REPORT, path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(REPORT["intervals"])
    for row, interval in zip(rows, REPORT["intervals"], strict=True):
        for column in INTERVAL_COLUMNS:
            value = interval[column]
            assert row[column] == ("" if value is None else str(value))
            if value is not None:
                assert float(row[column]) == value


def test_csv_extra_keys_follow_and_empty_reports() -> None:
    report = {"intervals": [{"t": 1.0, "zeta": 1, "alpha": "a,b"}, {"t": 2.0}]}
    rows = list(csv.reader(io.StringIO(intervals_csv(report))))
    assert rows[0] == [*INTERVAL_COLUMNS, "alpha", "zeta"]
    assert rows[1][-2:] == ["a,b", "1"] and rows[2][-2:] == ["", ""]
    assert rows[1][1:-2] == [""] * (len(INTERVAL_COLUMNS) - 1)
    assert list(csv.reader(io.StringIO(intervals_csv({"intervals": []})))) == [list(INTERVAL_COLUMNS)]
    assert list(csv.reader(io.StringIO(intervals_csv({})))) == [list(INTERVAL_COLUMNS)]
