"""``sealrtc report merge``: one report from the shards of a load run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import CliError, ExitStatus, check_json_target
from .display import choose_display
from .output import check_output_target, load_summary, write_outputs


def run_report_merge(args: argparse.Namespace) -> int:
    from ..load.merge import MergeError, merge_reports
    from ..report.assertions import AssertionSyntaxError, check_all
    from ..report.judge import judge
    from ..report.model import LoadReport
    from ..report.schema import first_problem

    check_json_target(args.json)
    check_output_target(args.csv, "--csv")
    check_output_target(args.html, "--html")
    reports: list[tuple[str, LoadReport]] = []
    for name in args.reports:
        try:
            data = json.loads(Path(name).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CliError(f"{name} is not a JSON report") from None
        if not isinstance(data, dict):
            raise CliError(f"{name} is not a JSON report")
        problem = first_problem(data)
        if problem is not None:
            raise CliError(f"{name} is not a valid sealrtc load report: {problem}")
        reports.append((name, LoadReport.from_json(data)))
    texts = args.assertion
    if not texts:
        texts = list(dict.fromkeys(a.expr for _, r in reports for a in r.assertions))
    try:
        assertions = check_all(texts)
    except AssertionSyntaxError as exc:
        raise CliError(f"--assert: {exc}", ExitStatus.USAGE) from None
    try:
        merged = merge_reports(reports)
    except MergeError as exc:
        raise CliError(str(exc)) from None
    judgement = judge(merged, assertions, defaults=not args.assertion)
    write_outputs(judgement, args)
    load_summary(choose_display("report merge", quiet=args.quiet), judgement)
    return judgement.exit_status
