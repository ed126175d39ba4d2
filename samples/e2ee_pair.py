"""Two aiortc peers in one process, end-to-end encrypted with sealrtc.

    export SEALRTC_SECRET='my session secret'        # never put it in argv
    scripts/isolated python samples/e2ee_pair.py

``python`` is the project's Python: the interpreter of the environment sealrtc is installed in
(``.venv/bin/python`` once ``scripts/test`` has made that venv; ``SEALRTC_VENV`` picks another).

The publisher sends a moving VP8 test pattern and an Opus tone; the subscriber decrypts and
decodes them and prints what arrived after a few seconds. Set SEALRTC_WRONG=1 to give the
subscriber another secret and watch ``secret_mismatch`` fire instead.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

import sealrtc
from sealrtc.media import TestPatternVideoTrack, ToneAudioTrack
from sealrtc.rtc.closing import close_peer


async def main() -> int:
    secret = os.environ.get("SEALRTC_SECRET")
    if not secret:
        print("set SEALRTC_SECRET to the session secret", file=sys.stderr)
        return 2
    subscriber_secret = secret + "-wrong" if os.environ.get("SEALRTC_WRONG") else secret

    pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no public STUN
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sealrtc.attach(pub, sealrtc.SharedSecret(secret, context=b"sample-room"))
    session = sealrtc.attach(sub, sealrtc.SharedSecret(subscriber_secret, context=b"sample-room"))
    session.on("secret_mismatch", lambda e: print(f"secret_mismatch on {e.kind} track (kid {e.kid:#x})"))
    session.on("secret_match", lambda e: print(f"secret_match on {e.kind} track"))

    pub.addTrack(TestPatternVideoTrack(duration=5))
    pub.addTrack(ToneAudioTrack(duration=5))
    received = {"video": 0, "audio": 0}

    async def consume(track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                received[track.kind] += 1
        except MediaStreamError:
            pass

    sub.on("track", lambda track: asyncio.ensure_future(consume(track)))
    await pub.setLocalDescription(await pub.createOffer())
    await sub.setRemoteDescription(pub.localDescription)
    await sub.setLocalDescription(await sub.createAnswer())
    await pub.setRemoteDescription(sub.localDescription)
    await asyncio.sleep(5)  # let media stream for the demo's duration
    print("decoded frames:", received)
    for track in session.stats()["tracks"]:
        print(
            track["direction"],
            track["kind"],
            track["codec"],
            "decrypted:",
            track.get("frames_decrypted"),
            "failures:",
            track.get("decrypt_failures"),
        )
    await close_peer(pub)  # bounded, and safe if a close was interrupted
    await close_peer(sub)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
