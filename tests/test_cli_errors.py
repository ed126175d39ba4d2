"""The end of a run says what went wrong once, grouped, cause before consequence (issue 21 item 5)."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from typing import Any

import pytest

from sealrtc.cli.display import NullDisplay
from sealrtc.cli.output import grouped_errors, load_summary
from sealrtc.report import check_all, judge
from sealrtc.report.model import LoadReport

from .report_fixture import sample_report
from .rtc_helpers import require_namespace

pytestmark = pytest.mark.unit

UNREACHABLE = "cannot reach Janus at ws://10.0.0.9:8188: Connection refused"


def _errors() -> list[str]:
    """What 4 workers report when nobody can reach the server: worker by worker, 5 participants each."""
    errors = []
    for worker in range(4):
        for i in range(5):
            role = "publisher" if i == 0 else "subscriber"
            errors.append(f"{role} {worker * 5 + i} in load-{worker + 1}: {UNREACHABLE}")
    return errors


def test_identical_errors_are_one_line_with_their_count_across_workers() -> None:
    assert grouped_errors(_errors(), failed=20) == [f"20 participants (4 publishers, 16 subscribers): {UNREACHABLE}"]
    only = [e for e in _errors() if e.startswith("subscriber")]
    assert grouped_errors(only) == [f"16 subscribers: {UNREACHABLE}"]


def test_more_distinct_errors_than_shown_are_counted_never_dropped() -> None:
    errors = [f"subscriber {i} in r: failure number {i}" for i in range(7)] + _errors()
    lines = grouped_errors(errors, failed=27)
    assert len(lines) == 6 and lines[0].startswith("20 participants")  # the most frequent first
    assert lines[-1] == "and 3 more distinct error(s) (3 in all): see the JSON report's errors"


def test_the_same_server_error_in_every_rooms_url_is_one_error() -> None:
    errors = [
        f"{role} {i} in load-{i}: cannot reach http://10.0.0.9:9/{path}/load-{i}: connection refused"
        for i in range(1, 12)
        for role, path in (("publisher", "whip"), ("subscriber", "whep"), ("subscriber", "whep"))
    ]
    assert grouped_errors(errors) == [
        "22 subscribers: cannot reach http://10.0.0.9:9/whep/ROOM: connection refused",
        "11 publishers: cannot reach http://10.0.0.9:9/whip/ROOM: connection refused",
    ]


def test_a_failure_count_beyond_the_kept_messages_is_said() -> None:
    lines = grouped_errors(_errors()[:5], failed=20)
    assert lines[-1].startswith("20 participants failed in all; the messages above cover 5")
    assert grouped_errors(["worker 1 crashed: boom", "worker 1 crashed: boom"]) == ["worker 1 crashed: boom (2 times)"]


def test_with_quiet_the_cause_comes_before_the_failed_assertions() -> None:
    data: dict[str, Any] = sample_report()
    report = dataclasses.replace(LoadReport.from_json(data), errors=tuple(_errors()))
    stream = io.StringIO()
    load_summary(NullDisplay("load", stream=stream), judge(report, check_all(["joined == planned", "failed == 3"])))
    out = stream.getvalue()
    cause, consequence = out.index(UNREACHABLE), out.index("assertion failed: failed == 3")
    assert cause < consequence and out.count(UNREACHABLE) == 1


@pytest.mark.network
def test_unreachable_janus_is_said_once() -> None:
    require_namespace()
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "sealrtc", "load", "--janus", "ws://127.0.0.1:9", "--quiet", "--duration", "1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "cannot reach Janus at ws://127.0.0.1:9: Connection refused" in result.stderr
    assert result.stderr.count("cannot reach") == 1 and "ClientConnectorError" not in result.stderr


@pytest.mark.parametrize("netns", [None, "1"])
def test_unreachable_servers_get_the_namespace_hint_once_outside_a_namespace(
    monkeypatch: pytest.MonkeyPatch, netns: str | None
) -> None:
    errors = [
        f"{role} {i} in load-{i}: cannot reach http://10.0.0.9:9/{path}/load-{i}: connection refused"
        for i in range(1, 4)
        for role, path in (("publisher", "whip"), ("subscriber", "whep"))
    ]
    report = dataclasses.replace(LoadReport.from_json(sample_report()), errors=tuple(errors))
    if netns is None:
        monkeypatch.delenv("SEALRTC_NETNS", raising=False)
    else:
        monkeypatch.setenv("SEALRTC_NETNS", netns)
    stream = io.StringIO()
    load_summary(NullDisplay("load", stream=stream), judge(report, check_all(["joined == planned"])))
    out = stream.getvalue()
    assert out.count("error: 3 ") == 2  # both groups shown
    assert out.count("scripts/isolated --name NAME") == (1 if netns is None else 0)
