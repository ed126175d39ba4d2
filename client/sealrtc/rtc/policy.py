"""Codec policy under E2EE: which codecs may be negotiated (those with a layout, see
:mod:`sealrtc.layout`), and the :class:`UnsupportedCodec` check after negotiation."""

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
