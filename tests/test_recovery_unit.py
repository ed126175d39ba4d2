"""Backoff delays and the recovery log, on fake clocks; the probe numbering it matches."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from types import SimpleNamespace

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from sealrtc.agents.feeds import Feed
from sealrtc.agents.recovery import Backoff, RecoveryLog, estimate_missed, frames_missed_between
from sealrtc.metrics import ProbeStamper, ReceiveMetrics, read_probe
from sealrtc.rtc import attach

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
        "frames_missed": 0,
        "frames_missed_estimated": False,
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


def test_missed_frames_match_the_probes_of_one_stream_across_a_reconnect() -> None:
    assert frames_missed_between({7: 100}, {7: 131}) == 30
    assert frames_missed_between({7: 100, 8: 50}, {7: 101, 8: 60, 9: 0}) == 9  # 0 + 9; stream 9 is new
    assert frames_missed_between({7: (1 << 32) - 2}, {7: 3}) == 4  # across the 32-bit wrap
    assert frames_missed_between({7: 100}, {7: 90}) == 0  # numbering restarted: nothing known missed
    assert frames_missed_between({7: 100}, {8: 131}) is None  # another stream: no exact count
    assert frames_missed_between({}, {}) is None


def test_an_estimate_is_the_outage_times_the_frame_rate_before_it() -> None:
    assert estimate_missed(2.0, 30.0) == 60
    assert estimate_missed(0.5, 29.97) == 15
    assert estimate_missed(2.0, None) == 0 and estimate_missed(-1.0, 30.0) == 0


def test_the_log_counts_an_outage_exactly_when_the_new_connection_continues_the_stream() -> None:
    now = [10.0]
    log = RecoveryLog(clock=lambda: now[0])
    log.lost("gone", since=9.0, frame_rate=30.0, last_probes={0xABC: 269})
    now[0] = 12.0
    assert log.missed_frames() == (90, True)  # still going: 3 s at 30 fps, an estimate so far
    log.recovered(at=13.0)
    assert log.awaiting_probes and log.missed_frames() == (120, True)  # until its first probe
    log.first_probes({0xABC: 370})
    assert not log.awaiting_probes
    assert (log.frames_missed, log.frames_missed_estimated) == (100, False)
    report = log.as_dict()
    assert report["frames_missed"] == 100 and report["frames_missed_estimated"] is False


def test_the_log_estimates_an_outage_without_matching_probes() -> None:
    now = [0.0]
    log = RecoveryLog(clock=lambda: now[0])
    log.lost("gone", since=0.0, frame_rate=25.0, last_probes={1: 10})
    log.recovered(at=2.0)
    log.first_probes({})  # the new connection's video carries no probes
    assert log.missed_frames() == (50, True)
    now[0] = 10.0
    log.lost("again", frame_rate=25.0, last_probes={1: 500})
    log.recovered(at=11.0)
    log.first_probes({1: 511})  # exact for this one; the total stays marked as estimated
    assert log.missed_frames() == (60, True)


def test_an_outage_never_matched_settles_by_its_estimate() -> None:
    now = [0.0]
    log = RecoveryLog(clock=lambda: now[0])
    log.lost("gone", frame_rate=30.0, last_probes={1: 10})
    log.recovered(at=1.0)
    now[0] = 5.0
    log.lost("again", frame_rate=30.0, last_probes={1: 40})  # no video came between the two
    assert (log.frames_missed, log.frames_missed_estimated) == (30, True)
    log.recovered(at=6.0)
    log.settle()
    assert log.missed_frames() == (60, True)


def test_receivers_tell_where_each_probe_stream_began_and_how_far_it_got() -> None:
    metrics = ReceiveMetrics(video=True)
    assert metrics.sequence_span() == {}
    for at, sequence in enumerate([40, 41, 43, 42, 44]):
        metrics.frame(float(at), 0, 100, (7, sequence, 0))
    metrics.frame(9.0, 0, 100, (8, 5, 0))
    assert metrics.sequence_span() == {7: (40, 44), 8: (5, 5)}


def test_a_skipped_frame_leaves_its_probe_number_unused() -> None:
    stamper = ProbeStamper(stream_id=7)
    stamper.stamp(b"a", 1)
    stamper.skip()
    stamper.skip()
    assert read_probe(stamper.stamp(b"b", 2)) == (7, 3, 2)


async def test_a_session_numbers_its_senders_with_the_stampers_it_is_given() -> None:
    kept = {"video": ProbeStamper(stream_id=0x1234), "audio": ProbeStamper(stream_id=0x5678)}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    session = attach(pc, None, probe=True, stampers=kept)
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    streams = {t.kind: t.probe_stream for t in session.send_tracks()}
    assert streams == {"video": 0x1234, "audio": 0x5678}
    plain = attach(RTCPeerConnection(RTCConfiguration(iceServers=[])), None, probe=True)
    plain.pc.addTrack(VideoStreamTrack())
    assert plain.send_tracks()[0].probe_stream not in (None, 0x1234)  # a new stream of its own
    await pc.close()
    await plain.pc.close()


class _BackloggedSource:
    """A 30 fps source ``behind`` frames behind its clock, each frame taking ``render`` seconds
    to make (on the fake clock ``now``); once caught up, each frame waits for its time."""

    kind = "video"

    def __init__(self, now: list[float], behind: int, render: float) -> None:
        self.now, self.behind, self.render, self.index = now, behind, render, 0

    async def recv(self) -> SimpleNamespace:
        self.now[0] += self.render if self.index < self.behind else 1 / 30
        frame = SimpleNamespace(pts=self.index * 3000, time_base=Fraction(1, 90_000))
        self.index += 1
        return frame


async def test_a_feed_after_an_outage_skips_a_backlog_that_takes_milliseconds_to_make() -> None:
    now = [0.0]
    skipped: list[int] = []
    source = _BackloggedSource(now, behind=90, render=0.008)  # 3 s behind, 8 ms a frame
    feed = Feed(source, skip_backlog=True, on_skip=lambda: skipped.append(1), clock=lambda: now[0])
    first = await feed.recv()
    assert first.pts == 90 * 3000 and feed.skipped == len(skipped) == 90  # the backlog, not sent
    assert (await feed.recv()).pts == 91 * 3000  # then every frame, skipping nothing more
    assert feed.skipped == 90


def test_a_gap_that_ends_a_stall_is_missed_not_lost() -> None:
    metrics = ReceiveMetrics(video=True)
    at = 0.0
    for sequence in range(10):  # a working link at 30 fps, one frame lost on it
        if sequence != 4:
            metrics.frame(at, 0, 100, (7, sequence, 0))
        at += 1 / 30
    at += 3.0  # the server paused (or the publisher reconnected): nothing for 3 s
    for sequence in range(100, 105):
        metrics.frame(at, 0, 100, (7, sequence, 0))
        at += 1 / 30
    assert metrics.frames_lost == 1 and metrics.frames_missed == 90
    summary = metrics.summary()
    assert (summary["frames_lost"], summary["frames_missed"]) == (1, 90)
    assert metrics.sequence_span() == {7: (0, 104)}


@pytest.mark.parametrize("fps", [1, 2])
def test_a_slow_tracks_lost_frame_is_lost_not_missed(fps: int) -> None:
    # at 1 or 2 fps one lost frame leaves a gap of 1-2 s: loss, not an outage
    metrics = ReceiveMetrics(video=True)
    for sequence in (0, 1, 2, 4, 5, 6):
        metrics.frame(sequence / fps, 0, 100, (7, sequence, 0))
    assert (metrics.frames_lost, metrics.frames_missed) == (1, 0)
    # while a real stall of the same slow track still is an outage
    metrics.frame(6 / fps + 10.0, 0, 100, (7, 20, 0))
    assert (metrics.frames_lost, metrics.frames_missed) == (1, 13)


def test_a_late_frame_of_an_outage_gap_fills_it() -> None:
    # a frame of the outage's gap that arrives after all is out of order, not a duplicate
    metrics = ReceiveMetrics(video=True)
    for sequence in range(5):
        metrics.frame(sequence / 30, 0, 100, (7, sequence, 0))
    metrics.frame(5.0, 0, 100, (7, 40, 0))  # after a 5 s stall: 35 missed
    metrics.frame(5.01, 0, 100, (7, 39, 0))  # one of them, late
    summary = metrics.summary()
    assert (summary["frames_missed"], summary["frames_lost"], summary["frames_out_of_order"]) == (34, 0, 1)
