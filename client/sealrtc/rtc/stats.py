"""The one statistics view of a session: a frozen record per sending and receiving track.

:meth:`E2EESession.tracks() <sealrtc.rtc.session.E2EESession.tracks>` returns them (cheap: plain
counters, no percentiles: a load worker reads them every second for every track);
:meth:`~sealrtc.rtc.session.E2EESession.stats` is their JSON view. Counter names mean the same
in E2EE and plain sessions: ``frames_accepted`` counts the frames that passed the receive path
(decrypted under E2EE, received when plain), and the encryption counters are None (JSON null)
in a plain session, never 0 beside frames that were sent or received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..failures import FailureCounts
from ..metrics import ReceiveMetrics


@dataclass(frozen=True)
class SendTrackStats:
    """One sending track. ``frames_dropped`` includes frames refused as not of the codec."""

    kind: str
    track_id: str | None
    codec: str | None
    frames_sent: int
    bytes_sent: int
    keyframes_sent: int
    keyframe_requests_received: int
    probe_stream: int | None
    frames_encrypted: int | None
    bytes_in: int | None
    bytes_out: int | None
    kid_switches: int | None
    frames_dropped: int
    frames_unsupported_codec: int
    direction: str = "send"

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "kind": self.kind,
            "track_id": self.track_id,
            "codec": self.codec,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "keyframes_sent": self.keyframes_sent,
            "keyframe_requests_received": self.keyframe_requests_received,
            "probe_stream": self.probe_stream,
            "frames_encrypted": self.frames_encrypted,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "kid_switches": self.kid_switches,
            "frames_dropped": self.frames_dropped,
            "frames_unsupported_codec": self.frames_unsupported_codec,
        }


@dataclass(frozen=True)
class ReceiveTrackStats:
    """One receiving track (listed once its first frame arrived). ``metrics`` is the track's live
    :class:`ReceiveMetrics` (its histograms, for load workers); :meth:`as_dict` adds its summary
    with ``first_frame_ms`` measured from ``since`` (the session's creation)."""

    kind: str
    track_id: str
    codec: str | None
    frames_received: int
    frames_accepted: int
    frames_decrypted: int | None
    bytes_in: int | None
    bytes_out: int | None
    decrypt_failures: FailureCounts
    frames_unsupported_codec: int
    keyframe_requests: int
    first_received_at: float | None
    first_frame_at: float | None
    looks_encrypted: bool | None
    metrics: ReceiveMetrics | None = field(default=None, repr=False, compare=False)
    since: float | None = field(default=None, repr=False)
    direction: str = "recv"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": self.direction,
            "kind": self.kind,
            "track_id": self.track_id,
            "codec": self.codec,
            "frames_received": self.frames_received,
            "frames_accepted": self.frames_accepted,
            "frames_decrypted": self.frames_decrypted,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "decrypt_failures": FailureCounts(self.decrypt_failures),
            "frames_unsupported_codec": self.frames_unsupported_codec,
            "keyframe_requests": self.keyframe_requests,
            "first_received_at": self.first_received_at,
            "first_frame_at": self.first_frame_at,
            "looks_encrypted": self.looks_encrypted,
        }
        if self.metrics is not None:
            out.update(self.metrics.summary(self.since))
        return out


TrackStats = SendTrackStats | ReceiveTrackStats
