"""``sealrtc report compare``: the pure engine and its thresholds on synthetic reports, then the
command on real report files (built by the load report builder), its outputs and exit codes."""

from __future__ import annotations

import dataclasses
import html
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sealrtc.cli.main import main
from sealrtc.cli.report import show_comparison
from sealrtc.load.runner import shard_report
from sealrtc.report import parse
from sealrtc.report.compare import (
    METRICS,
    Metric,
    Row,
    ThresholdSyntaxError,
    compare,
    parse_threshold,
    parse_thresholds,
    scenario_differences,
)
from sealrtc.report.compare_html import render_compare_html
from sealrtc.report.html import CSP
from sealrtc.report.measures import Frames, Freezes, Metrics, Participants, Summary
from sealrtc.report.model import Generator, Interval, LoadReport, ScenarioInfo

from .test_load_report import _info, _judged, _shard_run

pytestmark = pytest.mark.unit


def _report(
    video: tuple[float, float, float] | None = (60.0, 75.0, 90.0),
    *,
    fps: float = 30.0,
    lost: int = 0,
    decrypted: int = 1000,
    cpu: float = 40.0,
    e2ee: bool = True,
) -> LoadReport:
    """A synthetic report: video latency p50/p95/p99, fps in every interval, frames, CPU."""
    latency = Summary(500, video[0], video[1], video[1], video[2], video[2] + 10) if video is not None else None
    return LoadReport(
        scenario=ScenarioInfo(rooms=2, publishers=1, subscribers=3, e2ee=e2ee, target="embedded relay"),
        participants=Participants(planned=8, joined=8, failed=0, intruders=0),
        metrics=Metrics(
            latency_video_ms=latency,
            latency_audio_ms=Summary(800, 150.0, 160.0, 170.0, 190.0, 220.0),
            join_ms=Summary(8, 200.0, 300.0, 310.0, 320.0, 330.0),
            frames=Frames(sent=decrypted, received=decrypted, decrypted=decrypted, decoded=0, lost=lost),
            freezes=Freezes(0, 0),
        ),
        generator=Generator(workers=1, cpu_percent=cpu, cpu_percent_max=cpu + 1, saturated=False),
        intervals=tuple(Interval({"t": float(t), "fps": fps}) for t in range(1, 4)),
        duration_s=3,
    )


def _row(name: str, base: float | None, new: float | None) -> Row:
    return Row(next(m for m in METRICS if m.name == name), base, new)


# -- the metrics table ----------------------------------------------------------------------------


def test_metric_names_are_unique_and_the_assertion_names_where_one_exists() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for name in names:
        if name not in ("fps", "cpu_percent_max"):  # compare's own: a mean over intervals, the busiest worker
            parse(f"{name} > 0")  # the same spelling as in --assert


def test_compare_reads_every_metric_from_the_typed_report() -> None:
    comparison = compare(_report(e2ee=False), _report((66.0, 85.0, 99.0), fps=29.0, lost=10, cpu=50.0))
    rows = {row.metric.name: row for row in comparison.rows}
    assert [row.metric.name for row in comparison.rows] == [m.name for m in METRICS]
    assert (rows["p50(latency_video_ms)"].base, rows["p50(latency_video_ms)"].new) == (60.0, 66.0)
    assert (rows["p95(latency_audio_ms)"].base, rows["p95(latency_audio_ms)"].new) == (170.0, 170.0)
    assert (rows["fps"].base, rows["fps"].new) == (30.0, 29.0)
    assert rows["loss_percent"].new == pytest.approx(100 * 10 / 1010)
    assert (rows["cpu_percent"].base, rows["cpu_percent_max"].new) == (40.0, 51.0)
    assert rows["p50(first_frame_ms)"].base is None  # the synthetic report has no first frames
    assert comparison.differences == ("e2ee off -> on",)


def test_change_relative_and_trend_follow_each_metric_direction() -> None:
    latency = _row("p95(latency_video_ms)", 75.0, 82.5)
    assert (latency.change, latency.trend) == (7.5, "worse") and latency.relative == pytest.approx(10.0)
    fps = _row("fps", 30.0, 27.0)
    assert (fps.change, fps.trend) == (-3.0, "worse") and fps.relative == pytest.approx(-10.0)
    assert _row("fps", 27.0, 30.0).trend == "better"
    assert _row("p95(latency_video_ms)", 80.0, 72.0).trend == "better"
    same = _row("decrypt_failures", 0, 0)
    assert (same.change, same.relative, same.trend) == (0.0, 0.0, "same")
    from_zero = _row("decrypt_failures", 0, 3)
    assert (from_zero.change, from_zero.relative, from_zero.trend) == (3.0, None, "worse")
    missing = _row("p95(latency_video_ms)", None, 80.0)
    assert (missing.change, missing.relative, missing.trend) == (None, None, None)
    neutral = Metric("bitrate", "kbps", "neither", lambda report: None)  # a change is only a change
    assert (Row(neutral, 600, 640).trend, Row(neutral, 600, 600).trend) == (None, "same")


def test_cells_show_counts_whole_and_other_values_by_their_size() -> None:
    assert _row("frames.lost", 12, 15).cells() == ("12", "15", "+3", "+25.0%")
    assert _row("p95(latency_video_ms)", 78.53, 114.2).cells() == ("78.5", "114.2", "+35.7", "+45.4%")
    assert _row("p99(loop_lag_ms)", 2.871, 2.5).cells() == ("2.87", "2.50", "-0.37", "-12.9%")
    assert _row("p95(join_ms)", 1234.5, 1300.0).cells() == ("1234", "1300", "+66", "+5.3%")
    assert _row("decrypt_failures", 0, 0).cells() == ("0", "0", "0", "0%")
    assert _row("decrypt_failures", 0, 4).cells() == ("0", "4", "+4", "from 0")
    assert _row("fps", None, 29.5).cells() == ("-", "29.5", "-", "-")


def test_scenario_differences_list_only_what_differs() -> None:
    base, new = _report(e2ee=False), _report()
    assert scenario_differences(base, base) == ()
    bigger = dataclasses.replace(new, scenario=dataclasses.replace(new.scenario or ScenarioInfo(), rooms=4))
    assert scenario_differences(base, bigger) == ("rooms 2 -> 4", "e2ee off -> on")  # in the report's order
    # settings the model keeps as extras (media shape, keying, churn) count too; a run's identity does not
    info = new.scenario or ScenarioInfo()
    shaped = dataclasses.replace(new, scenario=dataclasses.replace(
        info, run_id="other", extra={**info.extra, "video_bitrate": 600, "keying": 2, "churn": 1}))  # fmt: skip
    assert scenario_differences(new, shaped) == ("video_bitrate - -> 600", "keying - -> 2", "churn - -> 1")


# -- thresholds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "op", "kind", "limit"),
    [
        ("p95(latency_video_ms) > +10%", "p95(latency_video_ms)", ">", "relative", 10.0),
        ("p95( latency_video_ms )>+10 %", "p95(latency_video_ms)", ">", "relative", 10.0),
        ("fps < -5%", "fps", "<", "relative", -5.0),
        ("p50(join_ms) >= +5 ms", "p50(join_ms)", ">=", "change", 5.0),
        ("fps <= -2", "fps", "<=", "change", -2.0),
        ("p95(latency_video_ms) > 200", "p95(latency_video_ms)", ">", "value", 200.0),
        ("cpu_percent > 80", "cpu_percent", ">", "value", 80.0),
    ],
)
def test_thresholds_parse(text: str, name: str, op: str, kind: str, limit: float) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric.name, threshold.op, threshold.kind, threshold.limit) == (name, op, kind, limit)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95(latency_vidoe_ms) > +10%", "did you mean p95(latency_video_ms)"),
        ("p95(latency_video_ms) > 10%", "without a sign: write +10%"),
        ("p95(latency_video_ms) == 10", "'==' is not a threshold comparison"),
        ("p95(latency_video_ms) = 10", "'=' is not a threshold comparison"),
        ("p95(latency_video_ms) bigger 10", "expected METRIC OP LIMIT"),
        ("p95(latency_video_ms) > +10% ; rm -rf", "expected METRIC OP LIMIT"),
        ("   ", "empty threshold"),
        ("fps < " + "9" * 400, "longer than"),
        ("fps < 1e999", "out of range"),
    ],
)
def test_bad_thresholds_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_thresholds([text])
    assert message in str(info.value) and "\n" not in str(info.value)


def _check(base: LoadReport, new: LoadReport, *texts: str) -> list[tuple[bool, float | None, str]]:
    results = compare(base, new, parse_thresholds(texts)).thresholds
    return [(r.tripped, round(r.value, 9) if r.value is not None else None, r.found) for r in results]


def test_relative_absolute_and_value_thresholds_trip_only_past_their_limit() -> None:
    base, new = _report(e2ee=False), _report((66.0, 84.0, 99.0), fps=27.0, cpu=79.0)  # p95 +12%
    assert _check(base, new, "p95(latency_video_ms) > +10%", "p95(latency_video_ms) > +15%") == [
        (True, 12.0, "+12.0% (75 -> 84 ms)"),
        (False, 12.0, "+12.0% (75 -> 84 ms)"),
    ]
    assert _check(base, new, "p95(latency_video_ms) > +8", "p95(latency_video_ms) > +9") == [
        (True, 9.0, "+9 ms (75 -> 84 ms)"),
        (False, 9.0, "+9 ms (75 -> 84 ms)"),
    ]
    assert [t[0] for t in _check(base, new, "p95(latency_video_ms) > 80", "p95(latency_video_ms) > 90")] == [
        True,
        False,
    ]
    assert [t[0] for t in _check(base, new, "fps < -5%", "fps < -15%", "fps <= -3", "cpu_percent > 80")] == [
        True,
        False,
        True,
        False,
    ]
    comparison = compare(base, new, parse_thresholds(["p95(latency_video_ms) > +15%"]))
    assert (comparison.tripped, comparison.exit_status) == ((), 0)
    comparison = compare(base, new, parse_thresholds(["p95(latency_video_ms) > +15%", "fps < -5%"]))
    assert ([t.expr for t in comparison.tripped], comparison.exit_status) == (["fps < -5%"], 1)


def test_a_threshold_on_a_missing_value_trips_and_says_which_report_lacks_it() -> None:
    with_video, without = _report(), _report(None)
    assert _check(with_video, without, "p95(latency_video_ms) > +10%") == [
        (True, None, "NEW has no p95(latency_video_ms)")
    ]
    assert _check(without, with_video, "p95(latency_video_ms) > +10%") == [
        (True, None, "BASE has no p95(latency_video_ms)")
    ]
    # NEW's own value needs no BASE
    assert _check(without, with_video, "p95(latency_video_ms) > 100") == [(False, 75.0, "75 ms")]


def test_a_relative_threshold_from_zero_trips_on_any_rise() -> None:
    base = _report()
    new = dataclasses.replace(base, metrics=dataclasses.replace(base.metrics or Metrics(), frames=Frames(lost=4)))
    assert _check(base, new, "frames.lost > +50%", "frames.lost < -50%") == [
        (True, None, "from 0 (0 -> 4)"),
        (False, None, "from 0 (0 -> 4)"),
    ]
    assert _check(base, base, "frames.lost > +50%") == [(False, 0.0, "0% (0 -> 0)")]


def test_comparison_json_holds_every_row_and_threshold() -> None:
    comparison = compare(
        _report(e2ee=False),
        _report((66.0, 84.0, 99.0)),
        parse_thresholds(["p95(latency_video_ms) > +10%"]),
        base_file="plain.json",
        new_file="e2ee.json",
    )
    data = json.loads(json.dumps(comparison.to_json(), allow_nan=False))
    assert data["tool"] == "sealrtc report compare"
    assert (data["base"]["file"], data["base"]["e2ee"], data["new"]["e2ee"]) == ("plain.json", False, True)
    assert (data["verdict"], data["exit_status"]) == ("fail", 1)
    rows = {row["name"]: row for row in data["metrics"]}
    assert rows["p95(latency_video_ms)"] == {
        "name": "p95(latency_video_ms)",
        "unit": "ms",
        "better": "lower",
        "base": 75.0,
        "new": 84.0,
        "change": 9.0,
        "change_percent": 12.0,
        "trend": "worse",
    }
    assert data["thresholds"] == [
        {"expr": "p95(latency_video_ms) > +10%", "tripped": True, "value": 12.0, "found": "+12.0% (75 -> 84 ms)"}
    ]


# -- the terminal table and the HTML page ---------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), FakeTerminal()], ids=["pipe", "terminal"])
def test_the_table_fits_80_columns_and_never_cuts_a_number(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    base = _report(e2ee=False, lost=1234567, decrypted=98765432)
    new = _report((1234.5, 98765.4, 123456.7), lost=7654321, decrypted=98765432)
    comparison = compare(base, new, base_file="b.json", new_file="n.json")
    show_comparison(comparison, stream)
    text = stream.getvalue()
    table = [line for line in text.splitlines() if "frames.lost" in line or "latency_video" in line]
    assert len(table) == 4
    assert all(len(line) <= 80 for line in text.splitlines() if "\x1b" not in line)
    assert "1234567" in text and "7654321" in text and "+6419754" in text and "123457" in text
    assert "…" not in text


def test_outside_text_reaches_the_terminal_inert() -> None:
    base = _report()
    hostile = dataclasses.replace(
        base, scenario=dataclasses.replace(base.scenario or ScenarioInfo(), target="[bold]x\x1b[2Kfake\nOK")
    )
    stream = FakeTerminal()
    show_comparison(compare(base, hostile, base_file="a\x1b]0;title\x07.json"), stream)
    text = stream.getvalue()
    assert "\\x1b[2K" in text and "\\n" in text and "[bold]" in text and "\\x07" in text
    assert "\x1b[2K" not in text and "\x07" not in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_the_html_page_is_self_contained_and_escaped() -> None:
    evil = "<script>alert(1)</script>"
    base = _report(e2ee=False)
    new = dataclasses.replace(base, scenario=dataclasses.replace(base.scenario or ScenarioInfo(), target=evil))
    page = render_compare_html(
        compare(base, new, parse_thresholds(["fps < -5%"]), base_file=f"{evil}.json", new_file="n.json")
    )
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "<script" not in page
    assert html.escape(CSP) in page and "&lt;script&gt;" in page
    assert 'class="verdict pass"' in page and "fps &lt; -5%" in page


# -- the command, on real report files ------------------------------------------------------------


def _real_report(edit: Any = None) -> LoadReport:
    run, _ = _shard_run(0, None)
    report = _judged(shard_report(run, _info(0), 0, started_at="2026-12-07T13:00:00Z", duration_s=5))
    return edit(report) if edit is not None else report


def _with_video(report: LoadReport, p95: float, *, e2ee: bool = True) -> LoadReport:
    metrics = dataclasses.replace(report.metrics or Metrics(), latency_video_ms=Summary(300, 50.0, 60.0, p95, 99.0))
    scenario = dataclasses.replace(report.scenario or ScenarioInfo(), e2ee=e2ee)
    return dataclasses.replace(report, metrics=metrics, scenario=scenario)


def _files(tmp_path: Path, new_p95: float = 82.0) -> list[str]:
    files = []
    for name, report in (
        ("plain.json", _real_report(lambda r: _with_video(r, 75.0, e2ee=False))),
        ("e2ee.json", _real_report(lambda r: _with_video(r, new_p95))),
    ):
        path = tmp_path / name
        path.write_text(json.dumps(report.to_json()), encoding="utf-8")
        files.append(str(path))
    return files


def test_compare_two_report_files_exit_0_then_1_when_a_threshold_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(tmp_path)  # p95 video 75 -> 82 ms: +9.3%
    assert main(["report", "compare", *files]) == 0
    out = capsys.readouterr().out
    assert "p95(latency_video_ms)" in out and "+9.3%" in out and "runs differ in: e2ee off -> on" in out
    assert "metrics compared (no --fail-if given)" in out
    assert main(["report", "compare", *files, "--fail-if", "p95(latency_video_ms) > +10%"]) == 0
    assert "OK: no threshold tripped (1 checked)" in capsys.readouterr().out
    status = main(["report", "compare", *files, "--fail-if", "p95(latency_video_ms) > +5%", "--fail-if", "fps < -1"])
    out = capsys.readouterr().out
    assert status == 1
    assert "tripped: p95(latency_video_ms) > +5%: +9.3% (75 -> 82 ms)" in out
    assert "FAILED: 1 of 2 threshold(s) tripped" in out


def test_compare_writes_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    json_path, html_path = tmp_path / "cmp.json", tmp_path / "cmp.html"
    args = ["report", "compare", *files, "--fail-if", "p95(latency_video_ms) > +5%"]
    assert main([*args, "--json", str(json_path), "--html", str(html_path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "metric" not in out and "tripped: p95(latency_video_ms)" in out  # --quiet: no table
    data = json.loads(json_path.read_text())
    assert (data["verdict"], data["exit_status"], data["base"]["file"]) == ("fail", 1, files[0])
    assert 'class="verdict fail"' in html_path.read_text()
    assert main([*args, "--json", "-"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["thresholds"][0]["tripped"] is True
    assert "p95(latency_video_ms)" in captured.err  # the table moved to stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "is not a JSON report"),
        (b"{}", "is not a valid sealrtc load report"),
        (b'{"schema": 1, "duration_s": 1' + b"0" * 30 + b"}", "is not a valid sealrtc load report"),
    ],
)
def test_a_file_that_is_not_a_report_is_a_usage_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    good = _files(tmp_path)[0]
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["report", "compare", good, str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(bad) in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    assert main(["report", "compare", files[0], str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["report", "compare", *files, "--fail-if", "p95(latency_ms) > +10%"]) == 2
    err = capsys.readouterr().err
    assert "--fail-if 'p95(latency_ms) > +10%': unknown metric" in err
    assert main(["report", "compare", *files, "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["report", "compare", *files, "--json", "-", "--html", "-"]) == 2
    assert "cannot both go to stdout" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["report", "compare", files[0]])
    assert info.value.code == 2
