"""``sealrtc report merge``: one report from the shards of a load run."""

from __future__ import annotations

import argparse

from .common import CliError, ExitStatus, check_json_target
from .display import choose_display
from .output import check_output_target, load_summary, write_outputs


def run_report_merge(args: argparse.Namespace) -> int:
    from ..load.merge import MergeError, merge_reports
    from ..report.assertions import AssertionSyntaxError, check_all
    from ..report.inputs import ReportFileError, read_report
    from ..report.judge import judge, merged_checks
    from ..report.model import LoadReport
    from ..report.records import HistogramError

    check_json_target(args.json)
    check_output_target(args.csv, "--csv")
    check_output_target(args.html, "--html")
    reports: list[tuple[str, LoadReport]] = []
    for name in args.reports:
        try:
            reports.append((name, read_report(name)))
        except ReportFileError as exc:
            raise CliError(str(exc), ExitStatus.USAGE) from None
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
