"""A small reader for Janus ``.mjr`` recordings (version 2).

Layout: ``b"MJR00002"``, u16 header length, a JSON header (``"t"``: ``"v"``/``"a"``, ``"c"``:
codec, ...), then records ``b"MEET"`` + u32 milliseconds + u16 length + one RTP packet as the
server held it after SRTP decryption.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"MJR00002"
RECORD = b"MEET"


class MalformedRecording(ValueError):
    """The file is not a version-2 MJR recording, or is truncated inside its header."""


@dataclass
class MjrRecording:
    path: Path
    header: dict[str, Any]
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    """``(milliseconds, rtp_packet)`` in file order."""
    truncated: bool = False

    @property
    def kind(self) -> str:
        return "video" if self.header.get("t") == "v" else "audio" if self.header.get("t") == "a" else "data"

    @property
    def codec(self) -> str:
        return str(self.header.get("c", ""))


def read_mjr(path: Path | str) -> MjrRecording:
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise MalformedRecording(f"{path.name} is not an MJR00002 recording")
    (length,) = struct.unpack_from("!H", data, 8)
    start = 10
    try:
        header = json.loads(data[start : start + length])
    except ValueError:
        raise MalformedRecording(f"{path.name} has an unreadable JSON header") from None
    recording = MjrRecording(path, header)
    pos = start + length
    while pos < len(data):
        if data[pos : pos + 4] != RECORD or pos + 10 > len(data):
            recording.truncated = True
            break
        ms, size = struct.unpack_from("!IH", data, pos + 4)
        pos += 10
        if pos + size > len(data):
            recording.truncated = True
            break
        recording.packets.append((ms, data[pos : pos + size]))
        pos += size
    return recording
