"""The sans-I/O metrics layer: probe codec, loss, freezes, histograms, per-track summaries."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealrtc.metrics import (
    PROBE_SIZE,
    FreezeDetector,
    Histogram,
    Probe,
    ProbeStamper,
    ReceiveMetrics,
    SequenceTracker,
    encode_probe,
    read_probe,
    split_probe,
)

pytestmark = pytest.mark.unit


@given(st.binary(max_size=200), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_probe_round_trip(frame: bytes, stream_id: int, sequence: int, capture_ns: int) -> None:
    stamped = frame + encode_probe(stream_id, sequence, capture_ns)
    assert len(stamped) == len(frame) + PROBE_SIZE
    assert split_probe(stamped) == (frame, Probe(stream_id, sequence, capture_ns))


@given(st.binary(max_size=64).filter(lambda b: not b.endswith(b"sRp1")))
def test_frames_without_trailer_pass_unchanged(frame: bytes) -> None:
    assert split_probe(frame) == (frame, None)
    assert read_probe(frame) is None


def test_read_probe_is_the_typed_view_of_split_probe() -> None:
    probe = read_probe(b"frame" + encode_probe(1, 2, 3))
    assert isinstance(probe, Probe) and (probe.stream_id, probe.sequence, probe.capture_ns) == (1, 2, 3)


def test_probe_layout_is_big_endian_with_magic() -> None:
    assert encode_probe(1, 2, 3) == bytes.fromhex("00000001000000020000000000000003") + b"sRp1"


def test_stamper_numbers_frames() -> None:
    stamper = ProbeStamper(stream_id=7)
    probes = [split_probe(stamper.stamp(b"x", 100 + i))[1] for i in range(3)]
    assert probes == [Probe(7, 0, 100), Probe(7, 1, 101), Probe(7, 2, 102)]


def test_sequence_gaps_are_lost_and_late_frames_fill_them() -> None:
    tracker = SequenceTracker()
    for seq in [0, 1, 2, 5, 6, 3, 9]:
        tracker.add(seq)
    # missing: 3 4 (3 came late), 7 8
    assert tracker.lost == 3
    assert tracker.out_of_order == 1
    assert tracker.received == 7
    tracker.add(6)
    assert tracker.duplicates == 1 and tracker.received == 7


def test_sequence_wraps_at_32_bits() -> None:
    tracker = SequenceTracker()
    for seq in [2**32 - 2, 2**32 - 1, 0, 2]:
        tracker.add(seq)
    assert tracker.lost == 1 and tracker.out_of_order == 0


@given(st.lists(st.booleans(), min_size=2, max_size=300), st.randoms())
def test_loss_counts_exactly_the_dropped_frames(kept: list[bool], rnd: random.Random) -> None:
    kept = [True, *kept[1:-1], True]  # the first and last frames arrive: every gap is knowable
    arrivals = [i for i, keep in enumerate(kept) if keep]
    for i in range(1, len(arrivals) - 2, 5):  # reorder some neighbours (never the first frame)
        if rnd.random() < 0.5:
            arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    tracker = SequenceTracker()
    for seq in arrivals:
        tracker.add(seq)
    assert tracker.lost == kept.count(False)
    assert tracker.received == len(arrivals)
    assert tracker.expected == len(kept)


def test_steady_frames_do_not_freeze() -> None:
    detector = FreezeDetector()
    for i in range(300):
        detector.frame(i / 30 + random.uniform(-0.004, 0.004))
    assert detector.count == 0


def test_a_pause_is_one_freeze_of_its_length() -> None:
    detector = FreezeDetector()
    t = 0.0
    for _ in range(60):
        t += 1 / 30
        detector.frame(t)
    t += 1.0  # a one second pause
    assert detector.frame(t) is True
    for _ in range(60):
        t += 1 / 30
        detector.frame(t)
    assert detector.count == 1
    assert detector.total_ms == pytest.approx(1000, abs=1)


def test_the_w3c_threshold_is_max_of_three_means_and_mean_plus_150() -> None:
    detector = FreezeDetector()
    t = 0.0
    for _ in range(30):
        t += 0.1  # mean 100 ms: threshold max(300, 250) = 300 ms
        detector.frame(t)
    detector.frame(t + 0.29)
    assert detector.count == 0
    detector2 = FreezeDetector()
    t = 0.0
    for _ in range(30):
        t += 0.02  # mean 20 ms: threshold max(60, 170) = 170 ms
        detector2.frame(t)
    detector2.frame(t + 0.16)
    assert detector2.count == 0
    detector2.frame(t + 0.16 + 0.18)
    assert detector2.count == 1


def test_histogram_percentiles_and_exact_max() -> None:
    histogram = Histogram()
    for value in range(1, 1001):
        histogram.record(value / 10)  # 0.1 .. 100 ms
    summary = histogram.summary()
    assert summary is not None
    assert summary["count"] == 1000
    assert summary["p50"] == pytest.approx(50, rel=0.002)
    assert summary["p99"] == pytest.approx(99, rel=0.002)
    assert summary["max"] == 100
    assert Histogram().summary() is None


def test_merged_histograms_equal_the_histogram_of_the_union() -> None:
    rnd = random.Random(4)
    a_values = [rnd.expovariate(1 / 40) for _ in range(5000)]
    b_values = [rnd.expovariate(1 / 200) for _ in range(500)]
    a, b, union = Histogram(), Histogram(), Histogram()
    for v in a_values:
        a.record(v)
        union.record(v)
    for v in b_values:
        b.record(v)
        union.record(v)
    merged = Histogram.decode(a.encode(), max_ms=a.max_ms)
    merged.merge(Histogram.decode(b.encode(), max_ms=b.max_ms))
    assert merged.summary() == union.summary()
    # and differs from averaging the percentiles (the mistake reports must not make)
    pa, pb, pu = a.percentile(95), b.percentile(95), union.percentile(95)
    assert pa is not None and pb is not None and pu is not None
    assert abs((pa + pb) / 2 - pu) > 10


def test_negative_latency_is_clamped_and_counted() -> None:
    histogram = Histogram()
    histogram.record(-5)
    assert histogram.clamped == 1 and histogram.percentile(50) == 0


def test_receive_metrics_measure_latency_loss_fps_and_bitrate() -> None:
    metrics = ReceiveMetrics(video=True)
    capture = 1_000_000_000_000
    t = 10.0
    for seq in range(31):
        if seq in (10, 11):
            continue  # lost in transit
        at = t + seq / 30
        now_ns = capture + int(seq / 30 * 1e9) + 80_000_000  # 80 ms after capture
        metrics.frame(at, now_ns, 1000, Probe(9, seq, capture + int(seq / 30 * 1e9)))
    summary = metrics.summary(since=9.5)
    assert summary["frames_lost"] == 2
    assert summary["latency_ms"]["p50"] == pytest.approx(80, abs=0.1)
    assert summary["fps"] == pytest.approx(28 / 1.0, rel=0.01)
    assert summary["bitrate_kbps"] == pytest.approx(29 * 1000 * 8 / 1.0 / 1000, rel=0.01)
    assert summary["first_frame_ms"] == pytest.approx(500)
    assert summary["probe_streams"] == [9]


def test_receive_metrics_without_probes_report_what_they_can() -> None:
    metrics = ReceiveMetrics(video=False)
    for i in range(50):
        metrics.frame(i * 0.02, 0, 100, None)
    summary = metrics.summary()
    assert summary["latency_ms"] is None and summary["frames_lost"] is None
    assert summary["freezes"] is None
    assert summary["fps"] == pytest.approx(50, rel=0.01)


def test_bucketed_recording_equals_hdrhistogram_record_value() -> None:
    from hdrh.histogram import HdrHistogram

    rnd = random.Random(7)
    values = [rnd.lognormvariate(3, 1.5) for _ in range(20_000)]  # ms, from µs to minutes
    ours, reference = Histogram(), HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        ours.record(v)
        reference.record_value(int(v * 1000))
    assert ours.count == reference.get_total_count()
    for p in (1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100):
        assert ours.percentile(p) == reference.get_value_at_percentile(p) / 1000, p
