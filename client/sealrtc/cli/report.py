"""``sealrtc report merge``: one report from the shards of a load run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import CliError, ExitStatus, check_json_target
from .console import Reporter
from .load import _check_target, _summary, judge, write_outputs


def run_report_merge(args: argparse.Namespace) -> int:
    from ..load.merge import MergeError, merge_reports
    from ..report.assertions import AssertionSyntaxError, check_all

    check_json_target(args.json)
    _check_target(args.csv, "--csv")
    _check_target(args.html, "--html")
    reports: list[tuple[str, dict[str, Any]]] = []
    for name in args.reports:
        try:
            data = json.loads(Path(name).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CliError(f"{name} is not a JSON report") from None
        if not isinstance(data, dict):
            raise CliError(f"{name} is not a JSON report")
        reports.append((name, data))
    texts = args.assertion
    if not texts:
        texts = list(dict.fromkeys(a["expr"] for _, r in reports for a in r.get("assertions", []) if "expr" in a))
    try:
        assertions = check_all(texts)
    except AssertionSyntaxError as exc:
        raise CliError(f"--assert: {exc}", ExitStatus.USAGE) from None
    try:
        merged = merge_reports(reports)
    except MergeError as exc:
        raise CliError(str(exc)) from None
    status, results = judge(merged, assertions, defaults=not args.assertion, interrupted=False)
    if merged["missing_shards"] and status == ExitStatus.OK:
        status = ExitStatus.FAILURE
        merged["verdict"], merged["exit_status"] = "fail", int(status)
    write_outputs(merged, args)
    reporter = Reporter("report merge", quiet=args.quiet)
    _summary(reporter, merged, results, status)
    return status
