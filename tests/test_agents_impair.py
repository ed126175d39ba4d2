"""``--impair*`` on the agents' commands: what the impaired link does shows in their reports.

Real ``sealrtc`` processes against the embedded relay (in process): an unimpaired subscriber next
to impaired ones in the same room, so each impaired number is compared with its own baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealrtc.relay.server import Relay

from .rtc_helpers import require_namespace
from .test_agents_cli import publishing, relay, sealrtc

pytestmark = pytest.mark.network

__all__ = ["relay"]  # the fixture, shared with test_agents_cli


def video(report: dict[str, Any]) -> dict[str, Any]:
    tracks = [t for t in report["tracks"] if t["kind"] == "video"]
    assert len(tracks) == 1, report["tracks"]
    return tracks[0]


async def test_delay_and_loss_on_the_subscribers_down_link(relay: tuple[Relay, str], tmp_path: Path) -> None:
    server, base = relay
    pub = await sealrtc("publish", "--whip", f"{base}/whip/a", "--probe", "--duration", "14")
    await publishing(server, "a")
    subscribe = ("subscribe", "--whep", f"{base}/whep/a", "--no-decode", "--duration", "8")
    runs = {
        "base": await sealrtc(*subscribe, json_path=tmp_path / "base.json"),
        "delay": await sealrtc(*subscribe, "--impair-down", "delay=100ms", json_path=tmp_path / "delay.json"),
        "loss": await sealrtc(
            *subscribe, "--impair-down", "loss=5%", "--impair-seed", "7", json_path=tmp_path / "loss.json"
        ),
    }
    for run in runs.values():
        await run.wait()
        assert run.returncode == 0, run.stderr
    await pub.wait()
    assert pub.returncode == 0, pub.stderr

    base_report, delay_report, loss_report = (runs[k].report for k in ("base", "delay", "loss"))
    assert base_report["impairment"] is None  # no flag: the connection is left alone
    rise = video(delay_report)["latency_ms"]["p50"] - video(base_report)["latency_ms"]["p50"]
    assert 70 <= rise <= 140, (video(base_report)["latency_ms"], video(delay_report)["latency_ms"])
    down = delay_report["impairment"]["down"]
    assert down["impairment"] == "delay=100ms" and down["lost"] == 0 and down["offered"] > 100
    assert delay_report["impairment"]["up"]["impairment"] == "none"
    assert "impairment down (delay=100ms)" in runs["delay"].stderr and "mean delay 100." in runs["delay"].stderr

    lossy = loss_report["impairment"]["down"]
    assert 0.02 <= lossy["lost"] / lossy["offered"] <= 0.09, lossy
    track = video(loss_report)
    assert sum(track["decrypt_failures"].values()) == 0  # retransmissions carry the same ciphertext
    assert track["frames_lost"] < 0.05 * (track["frames_decrypted"] + track["frames_lost"]), track
    assert "impairment down (loss=5%)" in runs["loss"].stderr


async def test_a_rate_limit_below_a_pre_encoded_clips_bitrate_freezes_it(
    relay: tuple[Relay, str], tmp_path: Path
) -> None:
    from .test_media_files import make_media

    server, base = relay
    movie = make_media(tmp_path / "movie.mp4", "libx264", None, seconds=2.0, fps=30, size=(960, 540))
    pub = await sealrtc(
        "publish", "--whip", f"{base}/whip/clip", "--media", str(movie), "--cache-dir", str(tmp_path / "cache"),
        "--probe", "--duration", "14",
    )  # fmt: skip
    await publishing(server, "clip")
    subscribe = ("subscribe", "--whep", f"{base}/whep/clip", "--no-decode", "--duration", "8")
    free = await sealrtc(*subscribe, json_path=tmp_path / "free.json")
    narrow = await sealrtc(*subscribe, "--impair-down", "rate=300kbit", json_path=tmp_path / "narrow.json")
    for run in (free, narrow):
        await run.wait()
    await pub.wait()
    assert free.returncode == 0, free.stderr
    fast, slow = video(free.report), video(narrow.report)
    assert fast["bitrate_kbps"] > 450, fast  # the clip needs more than the link carries
    assert slow["fps"] < 0.8 * fast["fps"], (fast, slow)
    assert (slow["freezes"] or {}).get("count", 0) > (fast["freezes"] or {}).get("count", 0), (fast, slow)
    down = narrow.report["impairment"]["down"]
    assert down["queue_dropped"] > 0 and down["impairment"] == "rate=300kbit"


async def test_demo_impairs_every_participant_and_says_what_it_did(tmp_path: Path) -> None:
    require_namespace()
    out = tmp_path / "demo.json"
    run = await sealrtc(
        "demo", "--no-isolate", "--impair", "lossy", "--impair-seed", "3", "--duration", "5", secret=None,
        json_path=out,
    )  # fmt: skip
    await run.wait(timeout=90)
    assert run.returncode == 0, run.stderr
    report = run.report
    for part in (report["publisher"], *report["subscribers"]):
        assert part["impairment"]["up"]["impairment"] == "loss=5%,burst=4,delay=20ms,jitter=5ms"
        assert part["impairment"]["up"]["offered"] > 0
    down = report["subscribers"][0]["impairment"]["down"]
    assert down["lost"] > 0 and down["mean_delay_ms"] > 15
    assert "with-secret: impairment down (loss=5%,burst=4,delay=20ms,jitter=5ms)" in run.stderr
