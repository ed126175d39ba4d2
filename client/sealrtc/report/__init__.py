"""The report side of ``sealrtc load``, pure: assertions on a report, its HTML page and CSV.

Nothing here waits on a socket or imports asyncio: functions take the report (a JSON-ready dict,
see :mod:`sealrtc.report.html` for its shape) and return text.
"""

from .assertions import Assertion, AssertionResult, AssertionSyntaxError, check_all, evaluate, parse
from .csv import INTERVAL_COLUMNS, intervals_csv, write_intervals_csv
from .html import render_html

__all__ = [
    "INTERVAL_COLUMNS",
    "Assertion",
    "AssertionResult",
    "AssertionSyntaxError",
    "check_all",
    "evaluate",
    "intervals_csv",
    "parse",
    "render_html",
    "write_intervals_csv",
]
