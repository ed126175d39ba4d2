"""A media file published pre-encoded over E2EE, recorded decrypted by the subscriber, played back.

file -> load_clip -> tracks_for_clip -> aiortc pack() -> SFrame -> ... -> decrypt (decode=False)
-> TrackRecorder -> WebM/Ogg -> PyAV decode: the picture and the tone of the source file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

import sealrtc
from sealrtc import SharedSecret
from sealrtc.media import TrackRecorder, load_clip, pattern_image, tracks_for_clip
from sealrtc.rtc.frames import EncodedFrame
from sealrtc.testing.analysis import dominant_frequency, psnr

from .media_helpers import Collector
from .rtc_helpers import connect, new_pc
from .test_media_files import TONE, decode_audio, decode_video, make_media
from .waiting import eventually

pytestmark = pytest.mark.network


async def test_file_clip_published_and_recorded_decrypted(pcs: list[RTCPeerConnection], tmp_path: Path) -> None:
    source = make_media(tmp_path / "talk.webm", "libvpx", "libopus", seconds=2.0, fps=30, size=(320, 240))
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    video, audio = tracks_for_clip(clip)
    assert video is not None and audio is not None
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    sealrtc.attach(pub, SharedSecret("file secret"))
    sealrtc.attach(sub, SharedSecret("file secret"), decode=False)
    pub.addTrack(video)
    pub.addTrack(audio)
    got = Collector(sub)
    recorders = {
        "video/VP8": TrackRecorder.open(tmp_path / "video", "video/VP8"),
        "audio/opus": TrackRecorder.open(tmp_path / "audio", "audio/opus"),
    }
    await connect(pub, sub)

    def recorded() -> bool:
        while got.other:
            frame = got.other.pop(0)
            assert isinstance(frame, EncodedFrame) and frame.kid is not None  # decrypted
            recorders[frame.codec].write(frame.data, frame.timestamp, frame.keyframe)
        return recorders["video/VP8"].frames_written >= 30 and recorders["audio/opus"].frames_written >= 50

    await eventually(recorded, timeout=20, what="30 video and 50 audio frames recorded", event=got.changed)
    got.stop()
    for recorder in recorders.values():
        recorder.close()
        assert recorder.frames_skipped <= 2  # at most frames still in flight when a key frame came
    pictures = decode_video(recorders["video/VP8"].path)
    assert len(pictures) >= 30
    sources = [pattern_image(320, 240, i) for i in range(len(clip.video or ()))]
    for picture in (pictures[0], pictures[-1]):
        assert max(psnr(picture, s) for s in sources) > 30
    samples, rate = decode_audio(recorders["audio/opus"].path)
    assert abs(dominant_frequency(samples, rate) - TONE) < 3
    assert video.frames_sent >= 30 and audio.frames_sent >= 50
