"""A metric that is absent says why (issue 21 item 6)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sealrtc.cli.display import LineDisplay
from sealrtc.cli.output import load_summary, no_latency_reason
from sealrtc.cli.subscribe import _line, _rows_from_summary, absent_metrics
from sealrtc.report import check_all, judge
from sealrtc.report.model import LoadReport

from .report_fixture import sample_report

pytestmark = pytest.mark.unit


def _track(kind: str, publisher: str, latency: dict[str, float] | None) -> dict[str, Any]:
    freezes = {"count": 0, "total_ms": 0} if kind == "video" else None  # counted on video only
    return {"kind": kind, "publisher": publisher, "frames_received": 150, "frames_decrypted": 150, "fps": 30.0,
            "latency_ms": latency, "frames_lost": 0, "looks_encrypted": False, "freezes": freezes}  # fmt: skip


class _Agent:
    keys = object()

    def __init__(self, *tracks: dict[str, Any]) -> None:
        self.tracks = list(tracks)

    def track_stats(self) -> list[dict[str, Any]]:
        return self.tracks


def test_the_progress_line_reads_naturally_and_says_why_latency_is_absent() -> None:
    line = _line(_Agent(_track("video", "the publisher", None)))
    assert line == "video: 150 received, 150 decrypted, 30.0 fps, no latency (no probes)"
    line = _line(_Agent(_track("audio", "stream 0x4501eda5", {"p50": 160.5})))
    assert line == "audio (stream 0x4501eda5): 150 received, 150 decrypted, 30.0 fps, p50 160.5 ms"


def test_the_summary_names_tracks_without_probes() -> None:
    tracks = [_track("video", "feed 7", None), _track("audio", "feed 7", None), _track("video", "feed 8", {"p50": 1})]
    assert absent_metrics(tracks) == [
        "latency and loss of video (feed 7), audio (feed 7): no probes in the frames: the publisher runs without "
        "--probe (sealrtc publishers only)"
    ]
    audio = _track("audio", "feed 7", {"p50": 1})
    assert _rows_from_summary({"tracks": [audio | {"frames_decoded": 1, "bitrate_kbps": 9}]})[1][0][-1] == "n/a"
    undecrypted = _track("video", "the publisher", None) | {"frames_decrypted": 0}  # a wrong secret: its own notice
    assert absent_metrics([undecrypted, _track("video", "x", None) | {"looks_encrypted": True}]) == []


def _report(**changes: Any) -> LoadReport:
    data: dict[str, Any] = sample_report()
    data["scenario"] |= changes.pop("scenario", {})
    data["metrics"] |= changes
    return LoadReport.from_json(data)


def test_a_load_report_without_latency_says_why() -> None:
    no_samples = {"latency_ms": None, "latency_video_ms": None, "latency_audio_ms": None}
    assert no_latency_reason(_report(scenario={"probe": False}, **no_samples)) == (
        "no probes: publishers ran with --no-probe"
    )
    assert no_latency_reason(_report(scenario={"subscribers": 0}, **no_samples)) == "no subscribers: nobody received"
    frames = {"sent": 900, "received": 0, "decrypted": 0, "decoded": 0, "lost": 0}
    assert no_latency_reason(_report(frames=frames, **no_samples)) == "no frame decrypted"
    stream = io.StringIO()
    load_summary(LineDisplay("load", stream=stream), judge(_report(scenario={"probe": False}, **no_samples), []))
    said = " ".join(stream.getvalue().split())
    assert "video latency ms: - (no probes: publishers ran with --no-probe)" in said
    assert "audio latency ms: - (no probes: publishers ran with --no-probe)" in said
    no_audio = _report(scenario={"audio": False}, latency_audio_ms=None)
    assert no_latency_reason(no_audio, "audio") == "no audio: publishers ran with --no-audio"
    stream = io.StringIO()
    load_summary(LineDisplay("load", stream=stream), judge(_report(), check_all(["joined == planned"])))
    assert "no probes" not in stream.getvalue() and "latency ms: p50 " in " ".join(stream.getvalue().split())
