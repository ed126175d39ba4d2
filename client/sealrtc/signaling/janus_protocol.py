"""Janus API messages read defensively: every malformed reply becomes a :class:`JanusError`.

A Janus server (or anything answering on its port) may send any JSON at all. The client must
turn each surprise — a missing ``data.id``, ``"error": "boom"``, a non-integer code, a list where
an object belongs — into one clear, one-line error, never an ``AttributeError``/``KeyError``/
``ValueError`` traceback, and must never let one bad asynchronous event end a session or a task.
Pure functions over decoded JSON; no I/O.
"""

from __future__ import annotations

from typing import Any

from ..errors import SealError
from ..text import one_line

CONNECTION_FAILED = 0
"""Pseudo-code for transport failures (unreachable, closed, timed out)."""
PROTOCOL_ERROR = -1
"""Pseudo-code for replies that do not follow the Janus API (missing or mistyped fields)."""


class JanusError(SealError):
    """Janus (or its plugin) refused a request, the connection failed, or a reply was malformed."""

    def __init__(self, code: int, reason: str) -> None:
        plain = code in (CONNECTION_FAILED, PROTOCOL_ERROR)
        super().__init__(reason if plain else f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


def malformed(what: str) -> JanusError:
    return JanusError(PROTOCOL_ERROR, f"Janus sent a malformed reply: {what}")


def as_int(value: object) -> int | None:
    """``value`` if it is a JSON integer (not a bool, not a string), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def require_int(value: object, what: str) -> int:
    number = as_int(value)
    if number is None:
        raise malformed(f"{what} is missing or not an integer")
    return number


def error_from(error: object) -> JanusError:
    """The error of a ``{"janus": "error", "error": ...}`` reply, whatever shape it has."""
    if isinstance(error, dict):
        code, reason = as_int(error.get("code")), error.get("reason")
    else:
        code, reason = None, error
    text = one_line(reason) if reason not in (None, "") else "unknown error"
    if code is None or code in (CONNECTION_FAILED, PROTOCOL_ERROR):
        return JanusError(PROTOCOL_ERROR, f"Janus error: {text}")
    return JanusError(code, text)


def plugin_error(data: dict[str, Any]) -> JanusError | None:
    """The plugin-level error in a plugin reply's ``data`` (``error_code`` / ``error``), if any."""
    if "error_code" not in data and "error" not in data:
        return None
    code = as_int(data.get("error_code"))
    reason = data.get("error")
    text = one_line(reason) if reason not in (None, "") else "plugin error"
    if code is None or code in (CONNECTION_FAILED, PROTOCOL_ERROR):
        return JanusError(PROTOCOL_ERROR, f"Janus plugin error: {text}")
    return JanusError(code, text)


def plugin_data(message: dict[str, Any]) -> dict[str, Any]:
    """``message["plugindata"]["data"]``; absent is empty, anything but objects is malformed."""
    plugindata = message.get("plugindata", {})
    if not isinstance(plugindata, dict):
        raise malformed("plugindata is not an object")
    data = plugindata.get("data", {})
    if not isinstance(data, dict):
        raise malformed("plugindata.data is not an object")
    return data


def jsep_of(message: dict[str, Any]) -> dict[str, Any] | None:
    jsep = message.get("jsep")
    if jsep is None:
        return None
    if not isinstance(jsep, dict):
        raise malformed("jsep is not an object")
    return jsep


def sdp_of(jsep: dict[str, Any] | None, what: str) -> str:
    """The SDP of a jsep Janus must have sent (``what`` names it for the error)."""
    if jsep is None:
        raise JanusError(PROTOCOL_ERROR, f"Janus sent no SDP {what}")
    sdp = jsep.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise malformed(f"the SDP {what} is missing or not a string")
    return sdp


def publisher_ids(data: dict[str, Any]) -> tuple[list[int], int]:
    """Ids of a ``publishers`` list, and how many entries were unusable (skipped, not fatal)."""
    entries = data.get("publishers")
    if entries is None:
        return [], 0
    if not isinstance(entries, list):
        return [], 1
    ids: list[int] = []
    bad = 0
    for entry in entries:
        feed = as_int(entry.get("id")) if isinstance(entry, dict) else None
        if feed is None:
            bad += 1
        else:
            ids.append(feed)
    return ids, bad
