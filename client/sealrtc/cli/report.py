"""``sealrtc report merge`` (one report from the shards of a load run) and ``sealrtc report
compare`` (two runs side by side, with regression thresholds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..report.compare import Comparison, Side
from ..text import clean
from .common import CliError, ExitStatus, write_json
from .display import choose_display
from .output import check_report_targets, load_summary, report_targets, write_outputs

if TYPE_CHECKING:
    from ..report.model import LoadReport

MAX_NAME = 60
"""Characters of a report's file name shown in the compare header (cut in the middle)."""


def run_report(args: argparse.Namespace) -> int:
    """``sealrtc report ACTION``."""
    if args.report_command == "compare":
        return run_report_compare(args)
    return run_report_merge(args)


def run_report_merge(args: argparse.Namespace) -> int:
    from ..load.merge import MergeError, merge_reports
    from ..report.assertions import AssertionSyntaxError, check_all
    from ..report.judge import judge, merged_checks
    from ..report.records import HistogramError

    check_report_targets(report_targets(args))
    reports = [(name, _read(name)) for name in args.reports]
    defaults, texts = merged_checks((a for _, r in reports for a in r.assertions), args.assertion or ())
    try:
        assertions, default_checks = check_all(texts), check_all(defaults)
    except AssertionSyntaxError as exc:
        raise CliError(f"--assert: {exc}", ExitStatus.USAGE) from None
    try:
        merged = merge_reports(reports)
    except (MergeError, HistogramError) as exc:
        raise CliError(str(exc)) from None
    judgement = judge(merged, assertions, default_checks=default_checks)
    write_outputs(judgement, args)
    load_summary(choose_display("report merge", quiet=args.quiet), judgement)
    return judgement.exit_status


def _read(name: str) -> LoadReport:
    """A report file given on the command line; a refused one is a usage error (one line)."""
    from ..report.inputs import ReportFileError, read_report

    try:
        return read_report(name)
    except ReportFileError as exc:
        raise CliError(str(exc), ExitStatus.USAGE) from None


def run_report_compare(args: argparse.Namespace) -> int:
    from ..report.compare import ThresholdSyntaxError, compare, parse_thresholds

    try:
        thresholds = parse_thresholds(args.fail_if or ())
    except ThresholdSyntaxError as exc:
        raise CliError(f"--fail-if {exc}", ExitStatus.USAGE) from None
    try:
        check_report_targets([("--json", args.json), ("--html", args.html)])
    except CliError as exc:  # an output that cannot be written is the caller's mistake: a usage error
        raise CliError(str(exc), ExitStatus.USAGE) from None
    base, new = _read(args.base), _read(args.new)
    comparison = compare(base, new, thresholds, base_file=args.base, new_file=args.new)
    write_json(args.json, comparison.to_json())
    if args.html:
        _write_html(comparison, args.html)
    stream = sys.stderr if "-" in (args.json, args.html) else sys.stdout
    show_comparison(comparison, stream, quiet=args.quiet)
    return comparison.exit_status


def _write_html(comparison: Comparison, target: str) -> None:
    from ..report.compare_html import render_compare_html

    page = render_compare_html(comparison)
    if target == "-":
        sys.stdout.write(page)
        return
    try:
        Path(target).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write --html {target}: {exc.strerror or exc.__class__.__name__}") from None


# -- the terminal view ----------------------------------------------------------------------------


def _side(label: str, side: Side) -> Text:
    r, s = side.report, side.report.scenario
    mode = "-" if s is None or s.e2ee is None else "E2EE" if s.e2ee else "plain (no E2EE)"
    facts = [mode, f"target {s.target if s is not None and s.target else '-'}"]
    facts.append(f"{r.duration_s:g} s" if r.duration_s is not None else "duration -")
    if r.started_at:
        facts.append(f"started {r.started_at}")
    return Text.assemble((label, "bold"), f" {clean(side.file, MAX_NAME)}: ", clean(", ".join(facts), 200))


def comparison_table(comparison: Comparison) -> Table:
    """The metrics side by side (fits 80 columns: the metric names fold before a number is cut)."""
    table = Table(box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("metric", overflow="fold", min_width=12)
    for name in ("BASE", "NEW", "change", "%"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    colours = {"better": "green", "worse": "red"}
    for row in comparison.rows:
        trend = row.trend if row.trend in colours else ""
        table.add_row(row.metric.name, *row.cells(), Text(trend or "", style=colours.get(trend or "", "")))
    return table


def show_comparison(comparison: Comparison, stream: TextIO, *, quiet: bool = False) -> None:
    """The two runs, what differs in their scenarios, the table (not with ``quiet``), each
    tripped threshold and the verdict line."""
    console = Console(file=stream, highlight=False, force_terminal=stream.isatty() or None)
    if not quiet:
        console.print(_side("BASE", comparison.base), soft_wrap=True)
        console.print(_side("NEW ", comparison.new), soft_wrap=True)
        if comparison.differences:
            console.print(Text(clean("runs differ in: " + "; ".join(comparison.differences), 400)), soft_wrap=True)
        console.print(comparison_table(comparison))
    for file in comparison.saturated:
        console.print(Text(f"warning: {clean(file, MAX_NAME)}: the load generator saturated; its numbers are not "
                           "trustworthy", style="yellow"))  # fmt: skip
    for result in comparison.thresholds:
        if result.tripped or not quiet:
            mark = ("tripped", "red") if result.tripped else ("ok", "green")
            console.print(Text.assemble(mark, f": {clean(result.expr)}: {clean(result.found)}"), soft_wrap=True)
    checked, tripped = len(comparison.thresholds), len(comparison.tripped)
    if tripped:
        verdict = ("FAILED", "red"), f": {tripped} of {checked} threshold(s) tripped"
    elif checked:
        verdict = ("OK", "green"), f": no threshold tripped ({checked} checked)"
    else:
        verdict = ("OK", "green"), f": {len(comparison.rows)} metrics compared (no --fail-if given)"
    console.print(Text.assemble("sealrtc report compare: ", *verdict))
