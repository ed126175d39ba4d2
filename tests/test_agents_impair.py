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


async def test_a_live_source_adapts_to_a_rate_limit_and_a_pre_encoded_clip_does_not(
    relay: tuple[Relay, str], tmp_path: Path
) -> None:
    """Up-link ``rate=350kbit``: between aiortc's VP8 floor (250 kbit/s) and what the 640x360
    pattern sends unimpaired (~450 kbit/s here). The relay's REMB follows what arrives, aiortc's
    encoder follows REMB: the live source's target falls to the floor or near it (250-335 kbit/s
    seen, against 520-820 unimpaired) and what it sends ends below the link's rate (its queue may
    still drop while the estimate comes down, and then more through retransmissions: not
    asserted). A clip is sent as it was encoded: it keeps sending more than the link carries, and
    the queue drops most of it."""
    from .test_media_files import make_media

    _, base = relay
    movie = make_media(tmp_path / "movie.mp4", "libx264", None, seconds=2.0, fps=30, size=(960, 540))
    live = ("--probe", "--no-audio", "--resolution", "640x360", "--duration", "16")
    clip = ("--media", str(movie), "--cache-dir", str(tmp_path / "cache"), "--probe", "--no-audio", "--duration", "16")
    narrow = ("--impair-up", "rate=350kbit")
    runs = {
        "live": await sealrtc("publish", "--whip", f"{base}/whip/live", *live, json_path=tmp_path / "live.json"),
        "live narrow": await sealrtc(
            "publish", "--whip", f"{base}/whip/live-narrow", *live, *narrow, json_path=tmp_path / "live-narrow.json"
        ),
        "clip": await sealrtc("publish", "--whip", f"{base}/whip/clip", *clip, json_path=tmp_path / "clip.json"),
        "clip narrow": await sealrtc(
            "publish", "--whip", f"{base}/whip/clip-narrow", *clip, *narrow, json_path=tmp_path / "clip-narrow.json"
        ),
    }
    for run in runs.values():
        await run.wait()
        assert run.returncode == 0, run.stderr
    sent = {name: run.report["sent"]["video"] for name, run in runs.items()}
    up = {name: run.report["impairment"]["up"] for name, run in runs.items() if "narrow" in name}

    free, adapted = sent["live"], sent["live narrow"]
    assert free["target_kbps"] > 350, free  # unimpaired, it aims above what the narrow link carries
    assert adapted["target_kbps"] < 0.75 * free["target_kbps"], (free, adapted)  # REMB walked it down
    assert adapted["bitrate_recent_kbps"] < 0.85 * free["bitrate_recent_kbps"], (free, adapted)
    assert adapted["bitrate_recent_kbps"] < 350, adapted  # at the end, what it sends fits the link

    assert sent["clip"]["target_kbps"] is None and sent["clip narrow"]["target_kbps"] is None
    assert sent["clip"]["bitrate_kbps"] > 450, sent["clip"]
    assert sent["clip narrow"]["bitrate_kbps"] > max(350, 0.6 * sent["clip"]["bitrate_kbps"]), sent
    assert up["clip narrow"]["queue_dropped"] > 0.3 * up["clip narrow"]["offered"], up
    summary = runs["live narrow"].stderr
    assert f"kbit/s last 5 s={adapted['bitrate_recent_kbps']}" in summary, summary
    assert f"target kbit/s={adapted['target_kbps']}" in summary, summary
