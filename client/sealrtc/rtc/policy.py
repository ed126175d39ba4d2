"""Codec policy: under E2EE which codecs may be negotiated (those with a layout, see
:mod:`sealrtc.layout`) and the :class:`UnsupportedCodec` check after negotiation; the user's
choice of video codec (:func:`prefer_video_codec`)."""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

from ..errors import UnsupportedCodec
from ..layout import e2ee_supported
from . import internals

logger = logging.getLogger(__name__)


def prefer_e2ee_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Offer only the video codecs whose frames can be protected."""
    if transceiver.kind != "video":
        return
    codecs = RTCRtpSender.getCapabilities("video").codecs
    allowed = [c for c in codecs if e2ee_supported(c.mimeType)]
    try:
        transceiver.setCodecPreferences(allowed)
    except Exception:  # e.g. a stopped transceiver: the negotiation check still applies
        logger.debug("could not set codec preferences", exc_info=True)


VIDEO_CODECS = ("vp8", "h264")
"""The video codecs a sealrtc publisher can be told to send (``--video-codec``)."""


def prefer_video_codec(pc: RTCPeerConnection, codec: str) -> None:
    """Make every video transceiver of ``pc`` offer only ``codec`` (``"vp8"`` or ``"h264"``;
    H.264 is constrained baseline, packetization-mode 1) and RTX. Call it after adding the
    tracks and before the offer."""
    name = codec.lower()
    if name not in VIDEO_CODECS:
        raise UnsupportedCodec(f"unknown video codec {codec!r}: choose one of {', '.join(VIDEO_CODECS)}")
    wanted = [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType.lower() in (f"video/{name}", "video/rtx") and c.parameters.get("packetization-mode", "1") == "1"
    ]
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences(wanted)


def check_negotiated_codecs(pc: RTCPeerConnection) -> None:
    """Raise :class:`UnsupportedCodec` if the remote side made a transceiver of ``pc`` use a
    codec whose frames cannot be protected."""
    for transceiver in pc.getTransceivers():
        names = internals.negotiated_codec_names(transceiver)
        if names and not e2ee_supported(names[0]):
            raise UnsupportedCodec(
                f"{names[0]} was negotiated for {transceiver.kind} (mid {transceiver.mid}), but sealrtc "
                "cannot end-to-end encrypt it: offer VP8 or H.264"
            )
