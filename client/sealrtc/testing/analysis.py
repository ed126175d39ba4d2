"""Measurements on decoded media for tests: PSNR of video, dominant frequency of audio.

They check that what a subscriber decoded or recorded is the source's picture and tone; agents
never need them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB of two same-shaped 8-bit images (inf if identical)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(255.0**2 / mse))


def dominant_frequency(samples: npt.NDArray[np.floating] | npt.NDArray[np.integer], sample_rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak of a mono signal (0 for silence)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0 or not np.any(x):
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * sample_rate / x.size)
