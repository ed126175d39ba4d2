"""Backoff delays and the recovery log, on fake clocks."""

from __future__ import annotations

import itertools
import random

import pytest

from sealrtc.agents.recovery import Backoff, RecoveryLog

pytestmark = pytest.mark.unit


def test_backoff_doubles_up_to_its_cap_with_jitter_below_each_step() -> None:
    delays = list(itertools.islice(Backoff(first=0.5, cap=4.0, jitter=0.5).delays(random.Random(3)), 8))
    steps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(step * 0.5 <= d <= step for d, step in zip(delays, steps, strict=True)), delays
    assert len(set(delays)) == len(delays)  # jittered: agents losing one server do not retry in step


def test_the_log_measures_outages_and_times_to_recover() -> None:
    now = [100.0]
    log = RecoveryLog(clock=lambda: now[0])
    assert log.as_dict() == {
        "reconnects": 0,
        "time_to_recover_ms": None,
        "outage_ms": {"total": 0.0, "outages": []},
        "recovering": False,
    }
    log.lost("gone")
    now[0] = 101.0
    log.lost("still gone")  # a second signal of the same outage does not restart it
    assert log.reason == "gone" and log.outage_seconds() == pytest.approx(1.0)
    log.reconnected()
    log.recovered(at=102.5)
    assert log.lost_at is None and log.outage_seconds() == 0.0
    now[0] = 110.0
    log.lost("again")
    now[0] = 112.0
    report = log.as_dict()
    assert report["reconnects"] == 1 and report["recovering"] is True
    assert report["outage_ms"] == {"total": 4500.0, "outages": [2500.0, 2000.0]}
    ttr = report["time_to_recover_ms"]
    assert isinstance(ttr, dict) and ttr["count"] == 1 and ttr["max"] == pytest.approx(2500.0, rel=0.01)


def test_an_outage_begins_when_the_last_media_arrived() -> None:
    log = RecoveryLog(clock=lambda: 50.0)
    log.lost("noticed late", since=46.0)
    log.recovered(at=51.0)
    assert log.as_dict()["outage_ms"] == {"total": 5000.0, "outages": [5000.0]}
