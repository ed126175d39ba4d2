"""A realistic ``sealrtc load`` report (schema version 1) for the report-side tests.

3 rooms x (1 publisher + 4 subscribers + 1 intruder), 30 s, ramp 5 joins/s, 30 one-second
intervals. Deterministic (seeded). Room ``load-3`` has a bad second at t = 12 (a latency spike,
lost frames and a freeze) and two replayed frames at t = 20, so ``p99(latency_ms) < 50`` fails.
Interval counters (frames, lost, freezes, failures) are per interval; ``joined`` is a level.
"""

from __future__ import annotations

import random
from typing import Any

from sealrtc.errors import DECRYPT_FAILURE_REASONS
from sealrtc.metrics import Histogram
from sealrtc.report import evaluate, parse

ROOMS = ("load-1", "load-2", "load-3")
SUBSCRIBERS = 4
FPS = 30
VIDEO_KBPS = 560.0
AUDIO_KBPS = 48.0
DURATION = 30
ASSERTIONS = (
    "p95(latency_ms) < 250 ms",
    "p99(latency_ms) < 50",
    "joined == planned and failed == 0",
    "intruder_decrypts == 0",
    "loss_percent < 1%",
)


def _room_metrics() -> dict[str, Any]:
    return {
        "latency": Histogram(),
        "audio": Histogram(),
        "join": Histogram(),
        "first_frame": Histogram(),
        "frames": {"sent": 0, "received": 0, "decrypted": 0, "decoded": 0, "lost": 0},
        "decrypt_failures": dict.fromkeys(DECRYPT_FAILURE_REASONS, 0),
        "intruder_failures": {"authentication_failed": 0},
        "freezes": {"count": 0, "total_ms": 0.0},
    }


def _metrics(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "join_ms": m["join"].summary(),
        "first_frame_ms": m["first_frame"].summary(),
        "latency_ms": m["latency"].summary(),
        "latency_video_ms": m["latency"].summary(),  # the fixture's probed frames are video frames
        "latency_audio_ms": m["audio"].summary(),
        "frames": dict(m["frames"]),
        "decrypt_failures": dict(m["decrypt_failures"]),
        "intruder_decrypts": 0,
        "intruder_failures": dict(m["intruder_failures"]),
        "freezes": dict(m["freezes"]),
        "keys": {
            "rotations": 3,
            "epochs": 0,
            "near_change": {
                "decrypt_failures": dict.fromkeys(DECRYPT_FAILURE_REASONS, 0),
                "frames_lost": 0,
                "freezes": 0,
                "longest_gap_ms": 62.5,
            },
            "joins_during_run": {"count": 0, "join_ms": None, "first_frame_ms": None},
        },
        "bitrate": {
            "sent_video_kbps": VIDEO_KBPS,
            "sent_audio_kbps": AUDIO_KBPS,
            "received_video_kbps": VIDEO_KBPS - 3.0,
            "received_audio_kbps": AUDIO_KBPS - 1.0,
        },
        "reconnects": 0,
        "time_to_recover_ms": None,
        "outage_ms": 0.0,
        "outage_frames_missed": 0,
        "availability_percent": 99.5,
    }


def _participant_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for room in ROOMS:
        rows.append({"id": f"publisher-{ROOMS.index(room)}", "role": "publisher", "room": room, "worker": 0,
                     "join_ms": round(rng.uniform(150, 300), 1), "sent_kbps": VIDEO_KBPS + AUDIO_KBPS})  # fmt: skip
        for i in range(SUBSCRIBERS):
            spike = room == "load-3" and i == 0
            rows.append(
                {
                    "id": f"subscriber-{3 + ROOMS.index(room) * SUBSCRIBERS + i}",
                    "role": "subscriber",
                    "room": room,
                    "worker": 1,
                    "join_ms": round(rng.uniform(180, 420), 1),
                    "first_frame_ms": round(rng.uniform(300, 700), 1),
                    "latency_video_p50": 18.2,
                    "latency_video_p95": 140.0 if spike else 31.5,
                    "latency_audio_p50": 150.3,
                    "latency_audio_p95": 171.0,
                    "fps": 29.8,
                    "received_kbps": VIDEO_KBPS + AUDIO_KBPS - 4.0,
                    "lost": 9 if spike else 0,
                    "freezes": 1 if spike else 0,
                    "decrypt_failures": {"replayed": 2 if spike else 0},
                }
            )
    return rows


def sample_report() -> dict[str, Any]:
    """A fresh report dict (safe to mutate)."""
    rng = random.Random(9)
    audio_rng = random.Random(21)  # its own draws: the video numbers stay as they were
    rooms = {name: _room_metrics() for name in ROOMS}
    loop_lag = Histogram()
    intervals: list[dict[str, Any]] = []
    for m in rooms.values():
        for _ in range(SUBSCRIBERS + 2):
            m["join"].record(rng.uniform(180, 420))
        for _ in range(SUBSCRIBERS):
            m["first_frame"].record(rng.uniform(300, 700))
    for t in range(1, DURATION + 1):
        joined = min(15, 5 * t)
        frames = lost = freezes = failures = 0
        interval_latency = Histogram()
        interval_audio = Histogram()
        for index, (name, m) in enumerate(rooms.items()):
            room_ready = t >= 2 + index // 2  # rooms fill in ramp order; first frames after ~1 s
            m["frames"]["sent"] += FPS if t >= 1 + index else 0
            m["intruder_failures"]["authentication_failed"] += FPS if room_ready else 0
            if not room_ready:
                continue
            spike = name == "load-3" and t == 12
            room_lost = 9 if spike else 0
            replayed = 2 if name == "load-3" and t == 20 else 0
            received = SUBSCRIBERS * FPS - room_lost
            for _ in range(received - replayed):
                value = rng.uniform(80, 160) if spike else rng.lognormvariate(2.9, 0.35)
                m["latency"].record(value)
                interval_latency.record(value)
            for _ in range(SUBSCRIBERS * 50):
                audio = audio_rng.lognormvariate(5.0, 0.1)
                m["audio"].record(audio)
                interval_audio.record(audio)
            m["frames"]["received"] += received
            m["frames"]["decrypted"] += received - replayed
            m["frames"]["decoded"] += FPS - (3 if spike else 0)  # one decoding subscriber per room
            m["frames"]["lost"] += room_lost
            m["decrypt_failures"]["replayed"] += replayed
            if spike:
                m["freezes"]["count"] += 1
                m["freezes"]["total_ms"] += 412.5
                freezes += 1
            frames += received - replayed
            lost += room_lost
            failures += replayed
        lag_values = [rng.lognormvariate(0.8, 0.5) + (6.0 if t == 12 else 0.0) for _ in range(10)]
        for value in lag_values:
            loop_lag.record(value)
        tracks = sum(SUBSCRIBERS for i in range(len(ROOMS)) if t >= 2 + i // 2)
        summary = interval_latency.summary()
        audio_summary = interval_audio.summary()
        intervals.append(
            {
                "t": float(t),
                "joined": joined,
                "intruders": min(3, t),
                "frames_decrypted": frames,
                "fps": round(frames / tracks, 1) if tracks else None,
                "latency_p50": summary["p50"] if summary else None,
                "latency_p95": summary["p95"] if summary else None,
                "lost": lost,
                "freezes": freezes,
                "decrypt_failures": failures,
                "intruder_decrypts": 0,
                "cpu_percent": round(min(95.0, 22.0 + 3.0 * joined + rng.uniform(-4, 4)), 1),
                "loop_lag_ms": round(max(lag_values), 2),
                "latency_video_p50": summary["p50"] if summary else None,
                "latency_video_p95": summary["p95"] if summary else None,
                "latency_audio_p50": audio_summary["p50"] if audio_summary else None,
                "latency_audio_p95": audio_summary["p95"] if audio_summary else None,
                "sent_kbps": round(min(3, t) * (VIDEO_KBPS + AUDIO_KBPS), 1),
                "received_kbps": round(tracks * (VIDEO_KBPS + AUDIO_KBPS - 4.0), 1),
                "received_video_kbps": round(tracks * (VIDEO_KBPS - 3.0), 1),
                "received_audio_kbps": round(tracks * (AUDIO_KBPS - 1.0), 1),
            }
        )
    total = _room_metrics()
    for m in rooms.values():
        for key in ("latency", "audio", "join", "first_frame"):
            total[key].merge(m[key])
        for key in ("frames", "decrypt_failures", "intruder_failures", "freezes"):
            for k, v in m[key].items():
                total[key][k] += v
    participants = {"planned": 5, "joined": 5, "failed": 0, "intruders": 1}
    report: dict[str, Any] = {
        "version": 1,
        "tool": "sealrtc load",
        "started_at": "2026-11-26T07:30:00Z",
        "duration_s": 30.0,
        "scenario": {
            "rooms": 3,
            "publishers": 1,
            "subscribers": SUBSCRIBERS,
            "intruders": 1,
            "duration": DURATION,
            "ramp": 5.0,
            "target": "embedded relay",
            "e2ee": True,
            "suite": 6,
            "media": "synthetic",
            "decode_every": 4,
            "probe": True,
            "workers": 2,
        },
        "participants": {"planned": 15, "joined": 15, "failed": 0, "intruders": 3},
        "metrics": _metrics(total),
        "rooms": [
            {"room": name, "participants": dict(participants), "metrics": _metrics(m)} for name, m in rooms.items()
        ],
        "generator": {
            "workers": 2,
            "cpu_percent": 63.5,
            "loop_lag_ms": loop_lag.summary(),
            "saturated": False,
            "saturation_reasons": [],
        },
        "assertions": [],
        "intervals": intervals,
        "histograms": {
            "latency_ms": total["latency"].encode(),
            "join_ms": total["join"].encode(),
            "first_frame_ms": total["first_frame"].encode(),
            "loop_lag_ms": loop_lag.encode(),
        },
        "verdict": "pass",
        "exit_status": 0,
        "participant_rows": _participant_rows(random.Random(16)),
    }
    report["assertions"] = [evaluate(parse(text), report).to_dict() for text in ASSERTIONS]
    if not all(a["ok"] for a in report["assertions"]):
        report["verdict"], report["exit_status"] = "fail", 1
    return report
