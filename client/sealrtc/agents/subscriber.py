"""A subscriber test agent: receives, decrypts, decodes and counts; records secret events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..keys import SharedSecret
from ..rtc import E2EESession, attach
from ..rtc.session import TrackSecretEvent
from ..signaling.whip import delete_resource, whep_subscribe


class SubscriberAgent:
    def __init__(self, keys: SharedSecret | None, *, name: str = "subscriber") -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.session: E2EESession | None = attach(self.pc, keys) if keys is not None else None
        self.decoded: dict[str, int] = {"video": 0, "audio": 0}
        self.events: list[dict[str, Any]] = []
        self.first_decoded_at: float | None = None
        self.started = time.monotonic()
        self.resource: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)
        if self.session is not None:
            for name_ in ("secret_mismatch", "secret_match"):
                self.session.on(name_, self._on_event)

    def _on_event(self, event: TrackSecretEvent) -> None:
        self.events.append({"type": event.type, "kind": event.kind, "t": round(time.monotonic() - self.started, 3)})

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.decoded[track.kind] = self.decoded.get(track.kind, 0) + 1
                if self.first_decoded_at is None:
                    self.first_decoded_at = time.monotonic()
        except MediaStreamError:
            pass

    async def subscribe_whep(self, url: str) -> None:
        self.resource = await whep_subscribe(self.pc, url)

    def summary(self) -> dict[str, Any]:
        tracks: list[dict[str, Any]] = []
        if self.session is not None:
            for t in self.session.stats()["tracks"]:
                if t["direction"] != "recv":
                    continue
                tracks.append(
                    {
                        "kind": t["kind"],
                        "codec": t["codec"],
                        "frames_received": t["frames_received"],
                        "frames_decrypted": t["frames_decrypted"],
                        "frames_decoded": self.decoded.get(t["kind"], 0),
                        "decrypt_failures": t["decrypt_failures"],
                    }
                )
        else:
            tracks = [{"kind": k, "frames_decoded": n} for k, n in self.decoded.items()]
        return {
            "name": self.name,
            "e2ee": self.session is not None,
            "frames_decrypted": sum(t.get("frames_decrypted", 0) for t in tracks),
            "frames_decoded": sum(self.decoded.values()),
            "tracks": tracks,
            "events": self.events,
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.resource is not None:
            await delete_resource(self.resource)
        await self.pc.close()
