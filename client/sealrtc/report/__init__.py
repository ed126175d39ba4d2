"""The report side of ``sealrtc load``, pure: the typed report, its JSON Schema, judging
(assertions, verdict, exit status), its HTML page and CSV.

Nothing here waits on a socket or imports asyncio: functions take a :class:`LoadReport` (or
report JSON, read with :meth:`LoadReport.from_json`) and return text or a new report.
"""

from .assertions import Assertion, AssertionResult, AssertionSyntaxError, check_all, evaluate, parse
from .csv import INTERVAL_COLUMNS, intervals_csv, write_intervals_csv
from .html import render_html
from .judge import Judgement, Verdict, judge
from .measures import RoomReport
from .model import LoadReport
from .schema import first_problem, report_schema

__all__ = [
    "INTERVAL_COLUMNS",
    "Assertion",
    "AssertionResult",
    "AssertionSyntaxError",
    "Judgement",
    "LoadReport",
    "RoomReport",
    "Verdict",
    "check_all",
    "evaluate",
    "first_problem",
    "intervals_csv",
    "judge",
    "parse",
    "render_html",
    "report_schema",
    "write_intervals_csv",
]
