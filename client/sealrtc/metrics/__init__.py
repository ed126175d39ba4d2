"""Measurement, sans-I/O: probe trailers, per-track receive metrics, HdrHistograms.

Nothing here waits on a socket or imports asyncio/aiortc: it is fed timestamps and sizes by the
shells above (the aiortc adapter, the agents) and unit-tested with made-up clocks.
"""

from .freeze import FreezeDetector
from .histogram import Histogram, summarize
from .probe import PROBE_MAGIC, PROBE_SIZE, Probe, ProbeStamper, encode_probe, read_probe, split_probe
from .receive import ReceiveMetrics
from .sequence import SequenceTracker

__all__ = [
    "PROBE_MAGIC",
    "PROBE_SIZE",
    "FreezeDetector",
    "Histogram",
    "Probe",
    "ProbeStamper",
    "ReceiveMetrics",
    "SequenceTracker",
    "encode_probe",
    "read_probe",
    "split_probe",
    "summarize",
]
