"""Headless Chromium and sealrtc bots in one encrypted session through the embedded relay.

The sample page (served from 127.0.0.1 on one port) uses the vendored third-party whip-whep
client against the relay (127.0.0.1, another port: another origin, so CORS is exercised), with
frame format v1 in an RTCRtpScriptTransform worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.relay.server import Relay, start_relay
from sealrtc.relay.state import Publisher

from .browser_helpers import chromium, page_stats, serve_sample, start_session, worker_totals
from .cdp import Page
from .rtc_helpers import require_namespace
from .waiting import eventually

pytestmark = [pytest.mark.network, pytest.mark.browser]

SECRET = "browser and bots share this"
CONTEXT = "room-b"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, str]]:
    require_namespace()
    server, runner, port = await start_relay("127.0.0.1", 0, Relay(record_digests=True))
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def live(base: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/stats") as response:
        stats: dict[str, Any] = await response.json()
    return dict(stats["live"])


def trickled_host_candidates(server: Relay) -> int:
    """Host candidates the relay's sessions learned: whip-whep posts its offer without candidates,
    so these came in through trickle-ICE PATCH (peer-reflexive ones would come from checks)."""
    count = 0
    for _, resource in server._resources.values():
        if not isinstance(resource, Publisher):  # the aiortc subscribers put candidates in their offers
            continue
        for transceiver in resource.pc.getTransceivers()[:1]:
            ice = transceiver.receiver.transport.transport
            count += sum(1 for c in ice.getRemoteCandidates() if c.type == "host")
    return count


@pytest.mark.parametrize("suite", [6, 4])  # the default (AES-256-CTR + HMAC-SHA-512) and AES-128-GCM
async def test_browser_publishes_sealrtc_subscribes(relay: tuple[Relay, str], suite: int) -> None:
    server, base = relay
    good = SubscriberAgent(SharedSecret(SECRET, context=CONTEXT.encode(), suite=suite))
    bad = SubscriberAgent(SharedSecret("not the secret", context=CONTEXT.encode(), suite=suite))
    try:
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            await start_session(
                page,
                mode="publish",
                transport="whip",
                url=f"{base}/whip/b",
                context=CONTEXT,
                suite=str(suite),
                secret=SECRET,
            )
            await good.subscribe_whep(f"{base}/whep/b")
            await bad.subscribe_whep(f"{base}/whep/b")

            async def decoded() -> bool:
                return good.decoded["video"] >= 20 and good.decoded["audio"] >= 20 and len(bad.events) >= 2

            await eventually(decoded, timeout=30, what="the browser's media decrypted by the right secret only")
            tracks = good.summary()["tracks"]
            assert {t["codec"] for t in tracks} == {"video/VP8", "audio/opus"}
            assert all(t["frames_decrypted"] > 0 for t in tracks)
            assert bad.decoded == {"video": 0, "audio": 0}
            assert all(t["frames_decrypted"] == 0 for t in bad.summary()["tracks"])
            stats = await page_stats(page)
            assert worker_totals(stats, "encrypt", "video")["frames_out"] > 0
            assert worker_totals(stats, "encrypt", "audio")["frames_dropped"] == 0
            assert server.stats.frames_forwarded > 0
            assert (await live(base))["publishers"] == 1
            assert trickled_host_candidates(server) > 0
            await page.evaluate("window.sealrtc.stop()")  # the library's teardown: DELETE

            async def gone() -> bool:
                return (await live(base))["publishers"] == 0

            await eventually(gone, timeout=10, what="the relay to let the browser's session go")
    finally:
        await good.close()
        await bad.close()


CORNERS = [[0.03, 0.03], [0.97, 0.03], [0.03, 0.97], [0.5, 0.5]]


def picture_matches(snapshot: dict[str, Any] | None) -> bool:
    """The still test pattern: red grows left to right, green top to bottom, white square in the middle."""
    if not snapshot:
        return False
    top_left, top_right, bottom_left, centre = snapshot["points"]
    close = [
        top_left[0] < 60 and top_left[1] < 60,
        top_right[0] > 190 and top_right[1] < 60,
        bottom_left[0] < 60 and bottom_left[1] > 190,
        all(c > 200 for c in centre),
        all(80 < p[2] < 180 for p in (top_left, top_right, bottom_left)),
    ]
    return all(close)


async def settled_picture(page: Page) -> None:
    """The decoder may still show an early frame: wait until the page shows the still pattern."""
    snapshot: dict[str, Any] | None = None

    async def matches() -> bool:
        nonlocal snapshot
        snapshot = await page.evaluate(f"window.sealrtc.snapshot({CORNERS})")
        return picture_matches(snapshot)

    try:
        await eventually(matches, timeout=10, what="the still test pattern on the page")
    except AssertionError as failure:
        raise AssertionError(f"{failure}; the page shows {snapshot}") from None


async def rendered(page: Page) -> dict[str, Any]:
    return dict(
        await page.wait_for(
            f"(async () => {{ const s = await window.sealrtc.stats();"
            f" const v = s.rtp['inbound-rtp-video'];"
            f" if (!v || !(v.framesDecoded >= 20)) return null;"
            f" return {{ stats: s, snapshot: window.sealrtc.snapshot({CORNERS}) }}; }})()",
            timeout=30,
        )
    )


async def test_sealrtc_publishes_browser_decrypts_and_renders(relay: tuple[Relay, str]) -> None:
    _, base = relay
    pub = PublisherAgent(SharedSecret(SECRET, context=CONTEXT.encode()), moving=False)
    try:
        await pub.publish_whip(f"{base}/whip/r")
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            await start_session(
                page, mode="subscribe", transport="whip", url=f"{base}/whep/r", context=CONTEXT, secret=SECRET
            )
            result = await rendered(page)
            stats = result["stats"]
            assert worker_totals(stats, "decrypt", "video")["frames_out"] >= 10  # worker counts lag by <= 200 ms
            assert worker_totals(stats, "decrypt", "audio")["frames_out"] > 0
            assert stats["rtp"]["inbound-rtp-audio"]["packets"] > 0
            await settled_picture(page)
            assert (await live(base))["subscribers"] == 1
            await page.evaluate("window.sealrtc.stop()")

            async def gone() -> bool:
                return (await live(base))["subscribers"] == 0

            await eventually(gone, timeout=10, what="the relay to let the browser's session go")

            # Same page, wrong secret: frames arrive and none decrypts or decodes.
            await start_session(
                page, mode="subscribe", transport="whip", url=f"{base}/whep/r", context=CONTEXT, secret="wrong"
            )
            await page.wait_for(
                "(async () => { const s = await window.sealrtc.stats();"
                " return s.events.some(e => e.event === 'secret_mismatch' && e.kind === 'video')"
                " && s.worker.filter(w => w.kind === 'video').reduce((n, w) => n + w.frames_in, 0) >= 30; })()"
            )
            stats = await page_stats(page)
            for kind in ("video", "audio"):
                totals = worker_totals(stats, "decrypt", kind)
                assert totals["frames_out"] == 0 and totals["frames_in"] > 0, (kind, totals)
            assert not stats["rtp"].get("inbound-rtp-video", {}).get("framesDecoded")
            await page.evaluate("window.sealrtc.stop()")
    finally:
        await pub.close()


async def test_browser_changes_the_secret_on_the_fly(relay: tuple[Relay, str]) -> None:
    """The page switches secrets: a fresh KID under the new fingerprint, and bots that staged it keep decoding."""
    _, base = relay
    keys = SharedSecret(SECRET, context=CONTEXT.encode())
    keys.add_decryption_secret("the next secret")
    sub = SubscriberAgent(keys)
    try:
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            await start_session(
                page, mode="publish", transport="whip", url=f"{base}/whip/k", context=CONTEXT, secret=SECRET
            )
            await sub.subscribe_whep(f"{base}/whep/k")

            async def video_at_least(n: int) -> bool:
                return sub.decoded["video"] >= n

            await eventually(lambda: video_at_least(10), timeout=30, what="10 decoded frames from the browser")
            stats = await page_stats(page)
            [before] = [int(w["kid"]) for w in stats["worker"] if w["operation"] == "encrypt" and w["kind"] == "video"]
            assert before & 0xFF == keys.current.fingerprint
            await page.evaluate("window.sealrtc.setSecret('the next secret')")
            rotated = await page.wait_for(
                "(async () => { const s = await window.sealrtc.stats();"
                " const w = s.worker.find(w => w.operation === 'encrypt' && w.kind === 'video');"
                f" return w && w.kid !== '{before}' ? w.kid : null; }})()"
            )
            after = int(rotated)
            assert after & 0xFF == SharedSecret("the next secret", context=CONTEXT.encode()).current.fingerprint
            decoded = sub.decoded["video"]
            await eventually(
                lambda: video_at_least(decoded + 20), timeout=30, what="20 more decoded frames after the switch"
            )
            assert sub.events == []  # the staged secret means no mismatch
    finally:
        await sub.close()


async def test_h264_browser_to_sealrtc_and_sealrtc_to_browser(relay: tuple[Relay, str]) -> None:
    """Both directions in H.264 through the relay: the browser's frames decrypt in sealrtc, and
    sealrtc's test pattern renders in the browser."""
    server, base = relay
    keys = SharedSecret(SECRET, context=CONTEXT.encode())
    good = SubscriberAgent(keys)
    pub = PublisherAgent(SharedSecret(SECRET, context=CONTEXT.encode()), moving=False, video_codec="h264")
    try:
        await pub.publish_whip(f"{base}/whip/h264-out")
        async with serve_sample() as site, chromium() as browser:
            sender = await browser.new_page(f"{site}/index.html")
            await start_session(
                sender, mode="publish", transport="whip", url=f"{base}/whip/h264-in", context=CONTEXT, secret=SECRET,
                **{"video-codec": "h264"},
            )  # fmt: skip
            await good.subscribe_whep(f"{base}/whep/h264-in")
            await eventually(
                lambda: good.decoded["video"] >= 20,
                timeout=30,
                what="20 decoded H.264 frames from the browser",
                event=good.changed,
            )
            video = next(t for t in good.summary()["tracks"] if t["kind"] == "video")
            assert video["codec"] == "video/H264" and sum(video["decrypt_failures"].values()) == 0
            await sender.evaluate("window.sealrtc.stop()")

            viewer = await browser.new_page(f"{site}/index.html")
            await start_session(
                viewer, mode="subscribe", transport="whip", url=f"{base}/whep/h264-out", context=CONTEXT, secret=SECRET,
                **{"video-codec": "h264"},
            )  # fmt: skip
            result = await rendered(viewer)
            assert worker_totals(result["stats"], "decrypt", "video")["frames_out"] >= 10
            assert {s["codec"] for s in result["stats"]["worker"] if s["kind"] == "video"} == {"h264"}
            await settled_picture(viewer)
            await viewer.evaluate("window.sealrtc.stop()")
        assert server.stats.frames_dropped_slow_subscriber == 0
    finally:
        await good.close()
        await pub.close()


async def test_browser_joins_from_an_epoch_file_and_follows_the_ratchet(relay: tuple[Relay, str]) -> None:
    """Keying v2 in the page: a browser given an epoch-2 file (no secret) decrypts a bot that
    ratchets past it, and nothing from before epoch 2."""
    from sealrtc.epochs import EpochKeys

    _, base = relay
    keys = EpochKeys.from_secret(SECRET, context=CONTEXT.encode())
    pub = PublisherAgent(keys, moving=False)
    try:
        await pub.publish_whip(f"{base}/whip/e")
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            epoch = EpochKeys.from_secret(SECRET, context=CONTEXT.encode(), epoch=2).export_epoch()
            await page.call(
                "async (o) => { await window.sealrtc.start(o); return window.sealrtc.state.status; }",
                {"mode": "subscribe", "transport": "whip", "url": f"{base}/whep/e", "epoch": epoch},
                timeout=30,
            )
            await page.wait_for(
                "(async () => { const s = await window.sealrtc.stats();"
                " return s.worker.filter(w => w.kind === 'video')"
                ".reduce((n, w) => n + (w.decrypt_failures.unknown_key || 0), 0) >= 5; })()"
            )
            keys.advance()
            keys.advance()  # epoch 2: the browser's first
            await page.wait_for(
                "(async () => { const s = await window.sealrtc.stats();"
                " return s.worker.filter(w => w.operation === 'decrypt' && w.kind === 'video')"
                ".reduce((n, w) => n + w.frames_out, 0) >= 10; })()"
            )
            keys.advance()  # the browser follows to epoch 3 by itself
            before = worker_totals(await page_stats(page), "decrypt", "video")["frames_out"]
            await page.wait_for(
                "(async () => { const s = await window.sealrtc.stats();"
                " return s.worker.filter(w => w.operation === 'decrypt' && w.kind === 'video')"
                f".reduce((n, w) => n + w.frames_out, 0) >= {before + 10}; }})()"
            )
            stats = await page_stats(page)
            for w in stats["worker"]:
                if w["operation"] == "decrypt":
                    assert {r for r, n in w["decrypt_failures"].items() if n} <= {"unknown_key"}, w
            await page.evaluate("window.sealrtc.stop()")
    finally:
        await pub.close()
