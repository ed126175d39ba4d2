"""Reading what a server held: Janus ``.mjr`` recordings, RTP payloads, reassembled frames."""

from .mjr import MalformedRecording, MjrRecording, read_mjr
from .rtp import assemble_frames, rtp_payload

__all__ = ["MalformedRecording", "MjrRecording", "assemble_frames", "read_mjr", "rtp_payload"]
