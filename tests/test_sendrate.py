"""The publisher's sent bitrates from sampled byte counters: the mean over the time bytes flowed,
the last seconds, and counters that start again after a reconnect."""

from __future__ import annotations

import pytest

from sealrtc.metrics.sendrate import SendRate

pytestmark = pytest.mark.unit


def feed(rate: SendRate, samples: list[tuple[float, int]], kind: str = "video") -> None:
    for now, raw in samples:
        rate.sample(now, {kind: raw})


def test_nothing_to_say_before_bytes_flow_twice() -> None:
    rate = SendRate()
    assert rate.kbps("video") is None and rate.recent_kbps("video") is None
    feed(rate, [(0.0, 0), (1.0, 0), (2.0, 1000)])
    assert rate.kbps("video") is None and rate.recent_kbps("video") is None
    assert rate.kbps("audio") is None


def test_the_mean_counts_from_the_first_bytes_and_leaves_them_out() -> None:
    rate = SendRate()
    # Idle for 10 s while connecting, then 50 kB/s (400 kbit/s) for 10 s.
    feed(rate, [(float(t), 0) for t in range(10)] + [(10.0 + t, 5_000 + 50_000 * t) for t in range(11)])
    assert rate.kbps("video") == pytest.approx(400)


def test_the_recent_rate_sees_only_the_last_seconds() -> None:
    rate = SendRate(recent_s=5.0)
    fast = [(t * 0.5, 25_000 * t) for t in range(21)]  # 400 kbit/s for 10 s
    slow = [(10.0 + t * 0.5, 500_000 + 12_500 * t) for t in range(1, 21)]  # then 200 kbit/s for 10 s
    feed(rate, fast + slow)
    assert rate.recent_kbps("video") == pytest.approx(200)
    assert rate.kbps("video") == pytest.approx((750_000 - 25_000) * 8 / 19.5 / 1000)  # from t=0.5


def test_a_short_history_gives_the_rate_over_what_was_sampled() -> None:
    rate = SendRate(recent_s=5.0)
    feed(rate, [(0.0, 1_000), (1.0, 26_000), (2.0, 51_000)])
    assert rate.recent_kbps("video") == pytest.approx(200)


def test_a_counter_that_starts_again_is_a_new_connection_whose_bytes_add_up() -> None:
    rate = SendRate(recent_s=5.0)
    # 100 kB by t=4, reconnect: the new counter reads 10 kB at t=5, 60 kB at t=8.
    feed(rate, [(0.0, 0), (1.0, 25_000), (4.0, 100_000), (5.0, 10_000), (8.0, 60_000)])
    assert rate.kbps("video") == pytest.approx((160_000 - 25_000) * 8 / 7 / 1000)
    assert rate.recent_kbps("video") == pytest.approx((160_000 - 25_000) * 8 / 7 / 1000)  # from t=1


def test_kinds_are_apart() -> None:
    rate = SendRate()
    for t in range(5):
        rate.sample(float(t), {"video": 50_000 * t, "audio": 4_000 * t})
    assert rate.kbps("video") == pytest.approx(400)
    assert rate.kbps("audio") == pytest.approx(32)
