"""Headless Chromium and sealrtc bots in one encrypted session through a real Janus VideoRoom."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.testing.janus_server import JanusServer, RoomConfig, cleanup, start_janus

from .browser_helpers import chromium, page_stats, serve_sample, start_session, worker_totals
from .rtc_helpers import require_namespace
from .test_browser_relay import rendered, settled_picture
from .waiting import eventually

pytestmark = [pytest.mark.network, pytest.mark.janus, pytest.mark.browser]

ROOM = 2001
SECRET = "janus, browser and bots"
CONTEXT = "2001"


@pytest.fixture
async def janus() -> AsyncIterator[JanusServer]:
    require_namespace()
    server = await start_janus([RoomConfig(ROOM, require_e2ee=True)])
    yield server
    cleanup(server)


CODECS = pytest.mark.parametrize(("codec", "mime"), [("vp8", "video/VP8"), ("h264", "video/H264")])


@CODECS
async def test_browser_publishes_to_janus_sealrtc_subscribes(janus: JanusServer, codec: str, mime: str) -> None:
    good = SubscriberAgent(SharedSecret(SECRET, context=CONTEXT.encode()))
    try:
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            await start_session(
                page,
                mode="publish",
                transport="janus",
                url=janus.url,
                room=str(ROOM),
                context=CONTEXT,
                secret=SECRET,
                **{"video-codec": codec},
            )
            await good.subscribe_janus(janus.url, ROOM)

            await eventually(
                lambda: good.decoded["video"] >= 20 and good.decoded["audio"] >= 20,
                timeout=30,
                what="20 decoded video and audio frames from the browser",
                event=good.changed,
            )
            tracks = good.summary()["tracks"]
            assert {t["codec"] for t in tracks} == {mime, "audio/opus"}
            failures = {t["kind"]: (t["frames_decrypted"], t["decrypt_failures"]) for t in tracks}
            assert all(t["frames_decrypted"] > 0 for t in tracks), failures
            # Joining mid-stream, the subscriber may reassemble the tail of the frame in flight (its
            # first packets went by before it joined): that one frame has no start, so its "header"
            # is random bytes and it is dropped (malformed, or an unknown key). A second dropped
            # frame on a track is a real fault.
            assert all(sum(t["decrypt_failures"].values()) <= 1 for t in tracks), failures
            stats = await page_stats(page)
            assert worker_totals(stats, "encrypt", "video")["frames_out"] > 0
            await page.evaluate("window.sealrtc.stop()")
    finally:
        await good.close()


@CODECS
async def test_sealrtc_publishes_to_janus_browser_decrypts_and_renders(
    janus: JanusServer, codec: str, mime: str
) -> None:
    pub = PublisherAgent(SharedSecret(SECRET, context=CONTEXT.encode()), moving=False, video_codec=codec)
    try:
        await pub.publish_janus(janus.url, ROOM)
        async with serve_sample() as site, chromium() as browser:
            page = await browser.new_page(f"{site}/index.html")
            await start_session(
                page, mode="subscribe", transport="janus", url=janus.url, room=str(ROOM), context=CONTEXT, secret=SECRET
            )
            result = await rendered(page)
            assert worker_totals(result["stats"], "decrypt", "video")["frames_out"] >= 10
            assert {s["codec"] for s in result["stats"]["worker"] if s["kind"] == "video"} == {codec}
            await settled_picture(page)
            await page.evaluate("window.sealrtc.stop()")
    finally:
        await pub.close()
