"""Signaling clients: WHIP/WHEP (``sealrtc.signaling.whip``)."""
