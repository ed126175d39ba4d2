"""The load report's JSON Schema (``report.schema.json``, draft 2020-12), shipped with the
package: ``sealrtc report merge`` checks its inputs with it, and so can any other tool."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["MAX_PROBLEM", "first_problem", "report_schema"]

MAX_PROBLEM = 200
"""Longest problem text (a wrong value is quoted in it, and may be a whole section)."""


@functools.cache
def report_schema() -> dict[str, Any]:
    """The schema as a JSON object."""
    text = resources.files(__package__).joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def first_problem(data: object) -> str | None:
    """Why ``data`` is not a valid report, in one line (where, then what); None when it is."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(report_schema()).iter_errors(data))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = " ".join(error.message.split())
    if len(message) > MAX_PROBLEM:
        message = message[: MAX_PROBLEM - 3] + "..."
    return f"{where or 'the report'}: {message}"
