"""publish / subscribe as separate processes through the relay: measurements, verdicts, exit codes.

Each scenario is a real `sealrtc` process; they run concurrently against one relay so the suite
pays the media duration once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sealrtc.metrics import Histogram
from sealrtc.relay.server import Relay, start_relay

from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

SECRET = "agents-cli-secret-3f9a"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    require_namespace()
    server, runner, port = await start_relay("127.0.0.1", 0, Relay())
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


class Run:
    def __init__(self, proc: asyncio.subprocess.Process, json_path: Path | None) -> None:
        self.proc = proc
        self.json_path = json_path
        self.stderr = ""
        self.returncode: int | None = None

    async def wait(self, timeout: float = 60) -> Run:
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.stderr = err.decode()
        self.returncode = self.proc.returncode
        return self

    @property
    def report(self) -> dict[str, Any]:
        assert self.json_path is not None
        data: dict[str, Any] = json.loads(self.json_path.read_text())
        return data


async def sealrtc(
    *args: str, secret: str | None = SECRET, json_path: Path | None = None, extra_env: dict[str, str] | None = None
) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("SEALRTC_SECRET", "SEALRTC_TOKEN")} | (extra_env or {})
    if secret is not None:
        env["SEALRTC_SECRET"] = secret
    extra = ["--json", str(json_path)] if json_path is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", *args, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    return Run(proc, json_path)


async def publishing(server: Relay, *rooms: str) -> None:
    """Wait until each room forwards a connected publisher and its media reaches the relay: the
    publisher has taken the room before the subscribers that a test starts next."""

    def ready() -> bool:
        active = [server.rooms.get(room) for room in rooms]
        return server.stats.frames_received > 0 and all(r is not None and r.active is not None for r in active)

    await eventually(ready, timeout=30, what=f"a publisher sending in room(s) {', '.join(rooms)}")


async def relay_stats(base: str, token: str | None = None) -> dict[str, Any]:
    """The /stats of a relay in another process (no event crosses processes: tests poll it);
    ``token`` for a relay with tokens (its /stats needs one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(f"{base}/stats", headers=headers) as response:
        stats: dict[str, Any] = await response.json()
    return stats


async def test_measuring_subscribers_and_their_verdicts(relay: tuple[Relay, str], tmp_path: Path) -> None:
    server, base = relay
    pub = await sealrtc(
        "publish", "--whip", f"{base}/whip/a", "--probe", "--duration", "9", json_path=tmp_path / "pub.json"
    )
    await publishing(server, "a")
    runs = {
        "decode": await sealrtc(
            "subscribe", "--whep", f"{base}/whep/a", "--duration", "6", json_path=tmp_path / "d.json"
        ),
        "verify": await sealrtc(
            "subscribe", "--whep", f"{base}/whep/a", "--no-decode", "--duration", "6", json_path=tmp_path / "v.json"
        ),
        "wrong": await sealrtc(
            "subscribe", "--whep", f"{base}/whep/a", "--duration", "6", secret="not it", json_path=tmp_path / "w.json"
        ),
        "plain": await sealrtc("subscribe", "--whep", f"{base}/whep/a", "--no-e2ee", "--duration", "6", secret=None),
        "empty": await sealrtc("subscribe", "--whep", f"{base}/whep/nobody", "--duration", "6"),
    }
    for run in runs.values():
        await run.wait()
    await pub.wait()

    decode = runs["decode"]
    assert decode.returncode == 0, decode.stderr
    report = decode.report
    assert report["exit_status"] == 0 and report["frames_decoded"] > 0
    for track in report["tracks"]:
        assert track["latency_ms"]["count"] > 30 and track["latency_ms"]["p50"] < 500
        assert track["frames_lost"] == 0 and track["fps"] > 10 and track["bitrate_kbps"] > 0
        assert track["first_frame_ms"] is not None and track["publisher"].startswith("stream 0x")
    assert {t["kind"] for t in report["tracks"]} == {"video", "audio"}
    assert report["tracks"][0]["freezes"] is not None or report["tracks"][1]["freezes"] is not None
    connect = report["connect"]
    assert all(connect[k] is not None for k in connect), connect
    assert connect["signaling_ms"] <= connect["dtls_ms"] <= connect["first_decrypted_ms"] <= connect["first_decoded_ms"]
    latency = Histogram.decode(report["histograms"]["latency_ms.video"])
    video = next(t for t in report["tracks"] if t["kind"] == "video")
    assert latency.count == video["latency_ms"]["count"]
    assert "OK" in decode.stderr and SECRET not in decode.stderr

    verify = runs["verify"]
    assert verify.returncode == 0, verify.stderr
    assert verify.report["frames_decrypted"] > 0 and verify.report["frames_decoded"] == 0
    assert all(t["frames_decoded"] is None and t["latency_ms"]["count"] > 0 for t in verify.report["tracks"])

    wrong = runs["wrong"]
    assert wrong.returncode == 3, wrong.stderr
    assert "frames from the publisher fail to decrypt: unknown key" in wrong.stderr
    assert "same secret, --context and --suite" in wrong.stderr
    assert wrong.report["frames_decrypted"] == 0 and wrong.report["exit_status"] == 3

    plain = runs["plain"]
    assert plain.returncode == 1 and "media looks encrypted" in plain.stderr

    empty = runs["empty"]
    assert empty.returncode == 1 and "is anyone publishing there?" in empty.stderr

    sent = pub.report
    assert pub.returncode == 0, pub.stderr
    assert sent["sent"]["video"]["frames"] > 100 and sent["sent"]["video"]["keyframes"] >= 1
    assert sent["sent"]["audio"]["frames"] > 100 and sent["sent"]["video"]["probe_stream"] is not None
    # Each subscriber that joins a room with media flowing makes the relay ask for a key frame.
    assert sent["sent"]["video"]["keyframe_requests_received"] >= 1 and sent["sent"]["video"]["kid_switches"] == 0
    for run in [*runs.values(), pub]:
        assert "Traceback" not in run.stderr and SECRET not in run.stderr


async def test_ctrl_c_writes_the_partial_report(relay: tuple[Relay, str], tmp_path: Path) -> None:
    server, base = relay
    pub = await sealrtc("publish", "--whip", f"{base}/whip/int", "--probe", "--duration", "60")
    sub = await sealrtc("subscribe", "--whep", f"{base}/whep/int", "--duration", "60", json_path=tmp_path / "s.json")
    await eventually(
        lambda: server.stats.frames_forwarded >= 60, timeout=30, what="60 frames forwarded to the subscriber"
    )
    sub.proc.send_signal(signal.SIGINT)
    await sub.wait(timeout=20)
    pub.proc.send_signal(signal.SIGINT)
    await pub.wait(timeout=20)
    assert sub.returncode == 130 and pub.returncode == 130
    report = sub.report
    assert report["interrupted"] is True and report["exit_status"] == 130
    assert report["frames_decrypted"] > 0 and report["duration_s"] < 30
    assert "INTERRUPTED" in sub.stderr


async def test_a_dead_whip_whep_server_ends_the_run(tmp_path: Path) -> None:
    require_namespace()
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "relay", "--listen", "127.0.0.1:18471", stderr=asyncio.subprocess.PIPE
    )
    assert relay.stderr is not None
    line = await asyncio.wait_for(relay.stderr.readline(), 30)  # "sealrtc relay on ...": listening
    assert b"sealrtc relay on" in line
    base = "http://127.0.0.1:18471"
    recover = ("--recover-within", "3")  # the server never comes back: 3 s of attempts, then exit 1
    pub = await sealrtc("publish", "--whip", f"{base}/whip/x", "--duration", "60", *recover)
    sub = await sealrtc(
        "subscribe", "--whep", f"{base}/whep/x", "--duration", "60", *recover, json_path=tmp_path / "s.json"
    )

    async def flowing() -> bool:
        return int((await relay_stats(base))["frames_forwarded"]) >= 30

    await eventually(flowing, timeout=30, what="30 frames forwarded to the subscriber")
    relay.kill()
    await relay.wait()
    await sub.wait(timeout=30)
    await pub.wait(timeout=30)
    for run in (sub, pub):
        assert run.returncode == 1, run.stderr
        assert "lost the connection to the server" in run.stderr and "not recovered within 3 s" in run.stderr
    assert sub.report["duration_s"] < 30 and sub.report["frames_decrypted"] > 0
    assert sub.report["recovery"]["recovering"] is True and sub.report["recovery"]["reconnects"] == 0


async def test_media_files_publish_and_subscribers_record_them(relay: tuple[Relay, str], tmp_path: Path) -> None:
    from sealrtc.media import pattern_image
    from sealrtc.testing.analysis import dominant_frequency, psnr

    from .test_media_files import TONE, decode_audio, decode_video, make_media

    server, base = relay
    movie = make_media(tmp_path / "movie.mp4", "libx264", "aac", seconds=2.0, fps=30, size=(320, 240))
    speech = make_media(tmp_path / "speech.wav", None, "pcm_s16le", seconds=1.0, layout="mono")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    runs = [
        await sealrtc("publish", "--whip", f"{base}/whip/movie", "--media", str(movie), *cache, "--duration", "8",
                      json_path=tmp_path / "p1.json"),
        await sealrtc("publish", "--whip", f"{base}/whip/speech", "--media", str(speech), *cache, "--duration", "8",
                      json_path=tmp_path / "p2.json"),
    ]  # fmt: skip
    await publishing(server, "movie", "speech")
    movie_sub = await sealrtc(
        "subscribe", "--whep", f"{base}/whep/movie", "--no-decode", "--record", str(tmp_path / "rec-movie"),
        "--duration", "5", json_path=tmp_path / "s1.json",
    )  # fmt: skip
    speech_sub = await sealrtc(
        "subscribe", "--whep", f"{base}/whep/speech", "--record", str(tmp_path / "rec-speech"), "--duration", "5",
        json_path=tmp_path / "s2.json",
    )  # fmt: skip
    for run in [movie_sub, speech_sub, *runs]:
        await run.wait()
        assert run.returncode == 0, run.stderr
    assert set(runs[0].report["sent"]) == {"video", "audio"}
    assert set(runs[1].report["sent"]) == {"audio"}  # a file without video publishes what it has
    recordings = {Path(r["path"]).suffix: Path(r["path"]) for r in movie_sub.report["recordings"]}
    assert set(recordings) == {".webm", ".ogg"}
    for path in recordings.values():  # the user is told where the files went
        assert f"to {path}" in movie_sub.stderr
    frames = decode_video(recordings[".webm"])
    assert len(frames) >= 30  # from the first key frame on (joining mid-stream skips the frames before it)
    best = max(psnr(frames[-1], pattern_image(320, 240, i)) for i in range(60))  # the clip loops 60 frames
    assert best > 28
    samples, rate = decode_audio(recordings[".ogg"])
    assert abs(dominant_frequency(samples, rate) - TONE) < 5
    speech_files = [Path(r["path"]) for r in speech_sub.report["recordings"]]
    assert [p.suffix for p in speech_files] == [".ogg"]
    samples, rate = decode_audio(speech_files[0])
    assert abs(dominant_frequency(samples, rate) - TONE) < 5
    assert speech_sub.report["frames_decoded"] > 0


@pytest.mark.unit
async def test_bad_media_file_is_refused_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    run = await sealrtc("publish", "--whip", "http://127.0.0.1:9/whip/x", "--media", str(text), "--duration", "1")
    await run.wait()
    assert run.returncode == 1 and "--media" in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0


async def test_relay_tokens_from_the_command_line(tmp_path: Path) -> None:
    require_namespace()
    pub_tokens, sub_tokens = tmp_path / "pub.tokens", tmp_path / "sub.tokens"
    pub_tokens.write_text("# publishers\npub-token-81f2\n")
    sub_tokens.write_text("sub-token-29ac\n")
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sealrtc", "relay", "--listen", "127.0.0.1:18472", "--duration", "60",
        "--publish-token-file", str(pub_tokens), "--subscribe-token-file", str(sub_tokens),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert relay.stderr is not None
    line = await asyncio.wait_for(relay.stderr.readline(), 30)
    assert b"bearer tokens required" in line
    base = "http://127.0.0.1:18472"
    try:
        refused = await (await sealrtc("publish", "--whip", f"{base}/whip/t", "--duration", "2")).wait()
        assert refused.returncode == 1 and "401" in refused.stderr
        pub = await sealrtc(
            "publish", "--whip", f"{base}/whip/t", "--duration", "8", extra_env={"SEALRTC_TOKEN": "pub-token-81f2"}
        )

        async def sending() -> bool:
            stats = await relay_stats(base, "sub-token-29ac")
            return stats["frames_received"] > 0 and stats["rooms"].get("t", {}).get("publishers") == 1

        await eventually(sending, timeout=30, what="the publisher sending in room t")
        wrong = await sealrtc(
            "subscribe", "--whep", f"{base}/whep/t", "--token-file", str(pub_tokens), "--duration", "2"
        )
        sub = await sealrtc("subscribe", "--whep", f"{base}/whep/t", "--token-file", str(sub_tokens), "--duration", "4")
        for run in (wrong, sub, pub):
            await run.wait()
        assert wrong.returncode == 1 and "401" in wrong.stderr  # a publish token cannot subscribe
        assert sub.returncode == 0, sub.stderr
        assert pub.returncode == 0, pub.stderr
        for run in (refused, wrong, sub, pub):
            assert "pub-token-81f2" not in run.stderr and "sub-token-29ac" not in run.stderr  # never printed
    finally:
        relay.terminate()
        await relay.wait()


async def test_a_server_that_never_answers_does_not_hang_the_cli() -> None:
    require_namespace()
    held: list[asyncio.StreamWriter] = []

    async def accept_and_stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept TCP, never answer (no HTTP, no WebSocket upgrade)

    server = await asyncio.start_server(accept_and_stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        janus = await sealrtc("subscribe", "--janus", f"ws://127.0.0.1:{port}", "--room", "1", "--duration", "5")
        whep = await sealrtc("subscribe", "--whep", f"http://127.0.0.1:{port}/whep/x", "--duration", "5")
        for run in (janus, whep):
            await run.wait(timeout=60)  # hanging (the old 301 s) fails here
            assert run.returncode == 1, run.stderr
            assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_suite_option_end_to_end(relay: tuple[Relay, str], tmp_path: Path) -> None:
    """``--suite 4`` (RFC 9605 AES_128_GCM_SHA256_128) on both ends decrypts; a subscriber on the
    default suite (0x0006) with the same secret does not."""
    server, base = relay
    pub = await sealrtc("publish", "--whip", f"{base}/whip/gcm", "--suite", "4", "--probe", "--duration", "6")
    await publishing(server, "gcm")
    same = await sealrtc(
        "subscribe", "--whep", f"{base}/whep/gcm", "--suite", "4", "--no-decode", "--duration", "4",
        json_path=tmp_path / "same.json",
    )  # fmt: skip
    default = await sealrtc(
        "subscribe", "--whep", f"{base}/whep/gcm", "--no-decode", "--duration", "4", json_path=tmp_path / "d.json"
    )
    for run in (same, default, pub):
        await run.wait()
    assert same.returncode == 0, same.stderr
    assert same.report["frames_decrypted"] > 30
    assert all(t["frames_lost"] == 0 for t in same.report["tracks"])
    assert default.returncode == 3, default.stderr
    assert default.report["frames_decrypted"] == 0
    assert pub.returncode == 0, pub.stderr
