"""Reading report JSON that may come from anywhere: each function returns the value when it has
the expected JSON type, else None (or an empty container), and never raises. The typed report
(:mod:`.model`, :mod:`.measures`) is built with these and nothing else reads report JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..failures import FailureCounts

Number = int | float
"""A JSON number as it was written (``5`` stays an int, ``5.0`` a float)."""


def number(value: object) -> Number | None:
    """A finite JSON number (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def integer(value: object) -> int | None:
    n = number(value)
    return n if isinstance(n, int) else None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def boolean(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def failures(value: object) -> FailureCounts | None:
    """``{reason: frames}``; entries that are not whole numbers are left out."""
    if not isinstance(value, Mapping):
        return None
    return FailureCounts({str(k): v for k, v in value.items() if integer(v) is not None})
