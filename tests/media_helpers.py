"""Collect what remote tracks deliver to the application (decoded frames or encoded frames)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class Collector:
    """Pumps every remote track of a peer connection; sets :attr:`changed` on each frame."""

    def __init__(self, pc: RTCPeerConnection, keep_audio_seconds: float = 2.0) -> None:
        self.video_count = 0
        self.audio_count = 0
        self.other: list[Any] = []
        self.last_video: npt.NDArray[np.uint8] | None = None
        self.audio_rate = 48_000
        self._audio: list[npt.NDArray[np.float64]] = []
        self._keep = int(keep_audio_seconds * 48_000)
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tasks.append(asyncio.ensure_future(self._pump(track)))

    async def _pump(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if hasattr(frame, "to_ndarray") and track.kind == "video":
                    self.video_count += 1
                    self.last_video = frame.to_ndarray(format="rgb24")
                elif hasattr(frame, "to_ndarray"):
                    self.audio_count += 1
                    pcm = frame.to_ndarray().astype(np.float64)
                    channels = len(frame.layout.channels)
                    mono = pcm.reshape(-1, channels).mean(axis=1) if pcm.ndim == 2 and channels > 1 else pcm.reshape(-1)
                    self.audio_rate = frame.sample_rate
                    self._audio.append(mono)
                    total = sum(a.size for a in self._audio)
                    while self._audio and total - self._audio[0].size >= self._keep:
                        total -= self._audio.pop(0).size
                else:
                    self.other.append(frame)
                self.changed.set()
        except MediaStreamError:
            pass

    @property
    def audio_samples(self) -> int:
        return sum(a.size for a in self._audio)

    def audio(self) -> npt.NDArray[np.float64]:
        return np.concatenate(self._audio) if self._audio else np.zeros(0)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()


def band_energy_ratio(samples: npt.NDArray[np.float64], rate: int, frequency: float, width: float = 30.0) -> float:
    """Share of spectral energy within ``width`` Hz of ``frequency`` (≈1 for a pure tone)."""
    if samples.size == 0 or not np.any(samples):
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    band = (freqs > frequency - width) & (freqs < frequency + width)
    return float(spectrum[band].sum() / spectrum.sum())
