"""The impairment model on synthetic packet streams: what it does matches what it was asked."""

from __future__ import annotations

import statistics

import pytest

from sealrtc.impairment import PROFILES, ImpairedLink, Impairment, ImpairmentError, parse_impairment

pytestmark = pytest.mark.unit

PACKET = 1200  # bytes, a typical video RTP packet


def stream(link: ImpairedLink, count: int, interval: float, size: int = PACKET) -> list[tuple[float, float]]:
    """Offer ``count`` datagrams ``interval`` apart; return ``(sent, delivered)`` per delivery."""
    out: list[tuple[float, float]] = []
    for i in range(count):
        now = i * interval
        out += [(now, at) for at in link.decide(now, size)]
    return out


def burst_lengths(link: ImpairedLink, count: int) -> list[int]:
    lengths: list[int] = []
    run = 0
    for i in range(count):
        if link.decide(i * 0.001, PACKET):
            if run:
                lengths.append(run)
            run = 0
        else:
            run += 1
    return lengths


def test_independent_loss_matches_its_share() -> None:
    link = ImpairedLink(Impairment(loss=0.05), seed=1)
    stream(link, 20_000, 0.001)
    assert link.counters.offered == 20_000
    assert 0.045 <= link.counters.lost / 20_000 <= 0.055
    assert link.counters.delivered + link.counters.lost == 20_000


def test_bursty_loss_keeps_its_share_and_mean_burst_length() -> None:
    link = ImpairedLink(Impairment(loss=0.05, burst=4), seed=2)
    lengths = burst_lengths(link, 100_000)
    assert 0.043 <= link.counters.lost / 100_000 <= 0.057
    assert 3.5 <= statistics.mean(lengths) <= 4.5
    independent = burst_lengths(ImpairedLink(Impairment(loss=0.05), seed=2), 100_000)
    assert statistics.mean(independent) < 1.2  # without bursts, losses rarely touch


def test_delay_and_jitter_stay_in_range_and_in_order() -> None:
    # sparse datagrams (50 ms apart, jitter +/-20 ms): each one's own delay, mean = the delay
    sparse = ImpairedLink(Impairment(delay=0.1, jitter=0.02), seed=3)
    delays = [at - sent for sent, at in stream(sparse, 5000, 0.05)]
    assert 0.08 - 1e-9 <= min(delays) and max(delays) <= 0.12 + 1e-9
    assert statistics.mean(delays) == pytest.approx(0.1, abs=0.002)
    assert sparse.counters.mean_delay_ms == pytest.approx(statistics.mean(delays) * 1000)
    # dense datagrams (1 ms apart): kept in order, so one waits for a late one before it
    dense = ImpairedLink(Impairment(delay=0.1, jitter=0.02), seed=3)
    deliveries = stream(dense, 5000, 0.001)
    arrivals = [at for _, at in deliveries]
    assert arrivals == sorted(arrivals)
    delays = [at - sent for sent, at in deliveries]
    assert 0.08 - 1e-9 <= min(delays) and max(delays) <= 0.12 + 1e-9
    assert 0.1 < statistics.mean(delays) < 0.12


def test_reorder_lets_jitter_overtake() -> None:
    link = ImpairedLink(Impairment(delay=0.05, jitter=0.02, reorder=True), seed=4)
    arrivals = [at for _, at in stream(link, 2000, 0.001)]
    assert arrivals != sorted(arrivals)
    delays = [at - i * 0.001 for i, at in enumerate(arrivals)]
    assert 0.03 - 1e-9 <= min(delays) and max(delays) <= 0.07 + 1e-9


def test_rate_limits_throughput_and_drops_past_the_queue() -> None:
    # 2 Mbit/s offered into 500 kbit/s with a 100 ms queue: throughput = the rate, the rest dropped
    rate = 500_000
    link = ImpairedLink(Impairment(rate=rate, queue=0.1), seed=5)
    interval = PACKET * 8 / 2_000_000
    deliveries = stream(link, 4000, interval)
    span = deliveries[-1][1] - deliveries[0][1]
    throughput = (len(deliveries) - 1) * PACKET * 8 / span
    assert throughput == pytest.approx(rate, rel=0.01)
    assert link.counters.queue_dropped / 4000 == pytest.approx(0.75, abs=0.02)
    assert max(at - sent for sent, at in deliveries) <= 0.1 + PACKET * 8 / rate + 1e-9


def test_rate_below_the_offered_load_adds_no_delay_but_serialization() -> None:
    link = ImpairedLink(Impairment(rate=10_000_000), seed=6)
    deliveries = stream(link, 100, 0.01)
    assert link.counters.queue_dropped == 0
    assert all(at - sent == pytest.approx(PACKET * 8 / 10_000_000) for sent, at in deliveries)


def test_duplicates_are_counted_and_delivered_twice() -> None:
    link = ImpairedLink(Impairment(duplicate=0.1), seed=7)
    deliveries = stream(link, 10_000, 0.001)
    assert 0.09 <= link.counters.duplicated / 10_000 <= 0.11
    assert len(deliveries) == 10_000 + link.counters.duplicated


def test_same_seed_same_decisions_other_seed_other_decisions() -> None:
    impairment = PROFILES["3g"]
    first = stream(ImpairedLink(impairment, seed=9), 3000, 0.002)
    assert stream(ImpairedLink(impairment, seed=9), 3000, 0.002) == first
    assert stream(ImpairedLink(impairment, seed=10), 3000, 0.002) != first


def test_the_identity_changes_nothing() -> None:
    link = ImpairedLink(Impairment(), seed=0)
    assert Impairment().is_identity
    assert stream(link, 100, 0.01) == [(i * 0.01, i * 0.01) for i in range(100)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loss=5%,burst=4", Impairment(loss=0.05, burst=4)),
        ("delay=100ms,jitter=20ms,reorder=true", Impairment(delay=0.1, jitter=0.02, reorder=True)),
        ("rate=300kbit,queue=1.5s", Impairment(rate=300_000, queue=1.5)),
        ("duplicate=1%,delay=250us", Impairment(duplicate=0.01, delay=0.00025)),
        ("3g", PROFILES["3g"]),
        ("4G,loss=2%", Impairment(delay=0.040, jitter=0.015, loss=0.02, rate=10_000_000, queue=0.2)),
    ],
)
def test_specifications_parse(text: str, expected: Impairment) -> None:
    assert parse_impairment(text) == expected
    assert parse_impairment(expected.describe()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty impairment"),
        ("edge", "unknown profile"),
        ("loss=5", "percentage"),
        ("loss=100%", "below 100%"),
        ("delay=100", "time such as"),
        ("delay=61s", "between 0 and 60 s"),
        ("rate=300", "rate such as"),
        ("rate=10bit", "at least 1kbit"),
        ("burst=0.5", "at least 1 datagram"),
        ("reorder=maybe", "true or false"),
        ("loss=1%,loss=2%", "given twice"),
        ("latency=10ms", "unknown setting"),
        ("loss=1%,,delay=1ms", "empty impairment"),
    ],
)
def test_bad_specifications_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ImpairmentError, match=message):
        parse_impairment(text)


def test_profiles_describe_themselves_and_read_back() -> None:
    for name, impairment in PROFILES.items():
        assert not impairment.is_identity, name
        assert parse_impairment(impairment.describe()) == impairment
