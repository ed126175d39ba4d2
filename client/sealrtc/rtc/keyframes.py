"""Key-frame requests that reach a sender's source track (one rule for sessions and forwarders).

aiortc answers PLI/FIR by asking its own encoder for a key frame, but tracks that yield
pre-encoded frames go through ``encoder.pack()``, which ignores the request: such a track
(a pre-encoded clip, a :class:`~sealrtc.rtc.passthrough.ForwardingTrack`) makes key frames
itself when its ``request_keyframe()`` is called.
"""

from __future__ import annotations

from aiortc import RTCRtpSender


def forward_keyframe_request(sender: RTCRtpSender) -> None:
    """Call ``request_keyframe()`` on ``sender``'s track, if it has one."""
    request = getattr(sender.track, "request_keyframe", None)
    if callable(request):
        request()
