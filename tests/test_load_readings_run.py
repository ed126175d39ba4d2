"""One small real `sealrtc load` run (embedded relay, private namespace): the bitrates, the video
and audio latencies and the participant rows a tester reads (issue 21 items 1, 3 and 4)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from sealrtc.report import first_problem

from .test_load import load

pytestmark = pytest.mark.network


async def test_bitrates_latencies_and_participants_of_a_real_run(tmp_path: Path) -> None:
    people = tmp_path / "participants.csv"
    run = await load(
        tmp_path, "readings", "--rooms", "1", "--subscribers", "2", "--intruders", "1", "--duration", "6",
        "--workers", "1", "--csv-participants", str(people), "--html", str(tmp_path / "readings.html"),
        "--assert", "video_bitrate_kbps > 0", "--assert", "p95(latency_video_ms) < 2000",
    )  # fmt: skip
    await run.wait()
    assert run.returncode == 0, run.stderr
    report = run.report
    assert first_problem(report) is None
    bitrate = report["metrics"]["bitrate"]
    sent, received = bitrate["sent_video_kbps"], bitrate["received_video_kbps"]
    assert sent > 20 and received > 20, bitrate
    assert abs(received - sent) / sent < 0.25, bitrate  # what the publisher sent arrives (less the E2EE overhead)
    assert bitrate["received_audio_kbps"] > 0 and bitrate["sent_audio_kbps"] > 0
    assert report["rooms"][0]["metrics"]["bitrate"] == bitrate  # one room: the same means
    late = [row for row in report["intervals"] if row["t"] >= 3]
    assert late and all(row["received_video_kbps"] > 0 and row["sent_kbps"] > 0 for row in late), late
    assert any(row["latency_video_p95"] is not None and row["latency_audio_p95"] is not None for row in late)
    metrics = report["metrics"]
    assert metrics["latency_video_ms"]["count"] > 0 and metrics["latency_audio_ms"]["count"] > 0
    rows = report["participant_rows"]
    assert sorted(r["role"] for r in rows) == ["intruder", "publisher", "subscriber", "subscriber"]
    subscribers = [r for r in rows if r["role"] == "subscriber"]
    for row in subscribers:
        assert row["room"] == report["rooms"][0]["room"] and row["worker"] == 0
        assert row["latency_video_p95"] is not None and row["latency_audio_p50"] is not None
        assert row["received_kbps"] > 20 and row["fps"] > 5 and row["first_frame_ms"] > 0
    publisher = next(r for r in rows if r["role"] == "publisher")
    assert publisher["sent_kbps"] > 20 and publisher["received_kbps"] is None
    intruder = next(r for r in rows if r["role"] == "intruder")
    assert sum(intruder["decrypt_failures"].values()) > 0  # it saw frames and could not open them
    table = list(csv.DictReader(io.StringIO(people.read_text())))
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    html = (tmp_path / "readings.html").read_text()
    assert "Participants, worst first" in html and "Bitrate: sent by all publishers" in html
