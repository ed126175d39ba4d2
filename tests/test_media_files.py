"""Decrypted-recording writers (VP8 -> WebM, Opus -> Ogg), checked by decoding what they write.

Source files are made here with PyAV in tmp_path (no downloads). Tracks pace themselves in real
time; these tests pull well under a second of media from each.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from sealrtc.media import (
    dominant_frequency,
    pattern_image,
    psnr,
)
from sealrtc.media.errors import MediaError
from sealrtc.media.recorder import TrackRecorder, opus_head, opus_packet_samples, vp8_keyframe_size
from sealrtc.media.sources import encode_vp8_clip

TONE = 440.0


# -- source files --------------------------------------------------------------------------------


def make_media(
    path: Path,
    video: str | None,
    audio: str | None,
    *,
    seconds: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    rate: int = 48_000,
    layout: str = "stereo",
    fmt: str | None = None,
) -> Path:
    """Write a test-pattern video and/or a 440 Hz tone with PyAV's encoders."""
    width, height = size
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(video, rate=fps) if video is not None else None
        aus = out.add_stream(audio, rate=rate, layout=layout) if audio is not None else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            if video == "libx264":
                vs.options = {"crf": "18", "preset": "ultrafast"}
            else:
                vs.bit_rate = 2_000_000
            for i in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(pattern_image(width, height, i), format="rgb24")
                frame.pts = i
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        if aus is not None:
            channels = 1 if layout == "mono" else 2
            total = round(seconds * rate)
            step = 1024
            for start in range(0, total, step):
                t = (np.arange(start, min(total, start + step))) / rate
                mono = np.sin(2 * np.pi * TONE * t) * 0.3
                planar = np.repeat(mono[None, :], channels, axis=0)
                frame = av.AudioFrame.from_ndarray(planar.astype(np.float32), format="fltp", layout=layout)
                frame.sample_rate = rate
                frame.pts = start
                out.mux(aus.encode(frame))
            out.mux(aus.encode(None))
    return path


def decode_video(path: Path) -> list[npt.NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def decode_audio(path: Path) -> tuple[npt.NDArray[np.float64], int]:
    """Mono samples (channel mean) and the sample rate."""
    chunks, rate = [], 48_000
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            pcm = frame.to_ndarray().astype(np.float64)
            chunks.append(
                pcm.mean(axis=0) if frame.format.is_planar else pcm.reshape(-1, frame.layout.nb_channels).mean(1)
            )
    return np.concatenate(chunks), rate


def opus_tone(packets: int, channels: int = 1) -> list[bytes]:
    """Opus packets (20 ms) of a 440 Hz tone."""
    layout = "mono" if channels == 1 else "stereo"
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, layout, "s16"
    encoder.bit_rate = 64_000
    encoder.time_base = fractions.Fraction(1, 48_000)
    out: list[bytes] = []
    for i in range(packets):
        t = (np.arange(960) + i * 960) / 48_000
        pcm = (np.sin(2 * np.pi * TONE * t) * 0.3 * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm[None, :], channels, 0).T.reshape(1, -1).copy(), "s16", layout)
        frame.sample_rate, frame.pts = 48_000, i * 960
        out += [bytes(p) for p in encoder.encode(frame)]
    out += [bytes(p) for p in encoder.encode(None)]
    return out


# -- recorder ------------------------------------------------------------------------------------


def test_vp8_recording_decodes_to_the_source_pattern_across_a_timestamp_wrap(tmp_path: Path) -> None:
    frames = encode_vp8_clip(30, gop=10)
    start = (1 << 32) - 10 * 3000  # wraps after 10 frames
    recorder = TrackRecorder.open(tmp_path / "video", "video/VP8")
    assert recorder.path == tmp_path / "video.webm" and not recorder.path.exists()
    recorder.write(frames[1][0], start - 6000, False)  # delta frames before the first key frame
    recorder.write(frames[2][0], start - 3000, False)
    for i, (data, key) in enumerate(frames):
        recorder.write(data, (start + i * 3000) % (1 << 32), key)
    recorder.close()
    recorder.close()
    assert recorder.frames_written == 30 and recorder.frames_skipped == 2
    with av.open(str(recorder.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("vp8", 320, 240)
        decoded = list(container.decode(stream))
    assert len(decoded) == 30
    assert [f.time for f in decoded] == pytest.approx([i / 30 for i in range(30)], abs=0.002)
    for i, frame in enumerate(decoded):
        assert psnr(frame.to_ndarray(format="rgb24"), pattern_image(320, 240, i)) > 30


@pytest.mark.parametrize("channels", [1, 2])
def test_opus_recording_is_an_ogg_file_of_the_tone_across_a_wrap(tmp_path: Path, channels: int) -> None:
    packets = opus_tone(50, channels)
    start = (1 << 32) - 20 * 960
    recorder = TrackRecorder.open(tmp_path / "audio", "audio/opus")
    for i, packet in enumerate(packets):
        recorder.write(packet, (start + i * 960) % (1 << 32), True)
    recorder.close()
    assert recorder.path == tmp_path / "audio.ogg"
    assert recorder.frames_written == len(packets) and recorder.frames_skipped == 0
    with av.open(str(recorder.path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert stream.codec_context.extradata == opus_head(channels)
    samples, rate = decode_audio(recorder.path)
    assert rate == 48_000 and abs(samples.size - len(packets) * 960) <= 960
    assert abs(dominant_frequency(samples, rate) - TONE) < 3


def test_recorder_skips_bad_frames_without_raising(tmp_path: Path) -> None:
    frames = encode_vp8_clip(4)
    video = TrackRecorder.open(tmp_path / "v", "video/vp8")
    for bad in (b"", b"\x00", b"\x00" * 9, b"\x10\x02\x00\x9d\x01\x2a\x00\x00\x00\x00"):  # last: 0x0 key frame
        video.write(bad, 0, True)
    video.write(frames[0][0], 3000, True)
    video.write(frames[1][0], 3000, False)  # same timestamp
    video.write(frames[1][0], 0, False)  # older
    video.write(frames[1][0], 6000, False)
    video.close()
    assert (video.frames_written, video.frames_skipped) == (2, 6)
    video.write(frames[2][0], 9000, False)  # after close: counted, not written
    assert (video.frames_written, video.frames_skipped) == (2, 7)
    assert len(decode_video(video.path)) == 2

    audio = TrackRecorder.open(tmp_path / "a", "audio/opus")
    for bad in (b"", b"\x03", b"\x03\x00", b"\x1b\x3f"):  # empty, code 3 without/with 0 frames, > 120 ms
        audio.write(bad, 0, True)
    audio.close()
    assert (audio.frames_written, audio.frames_skipped) == (0, 4)
    assert not audio.path.exists()


def test_recorder_with_no_frames_leaves_no_file(tmp_path: Path) -> None:
    for codec in ("video/VP8", "audio/opus"):
        recorder = TrackRecorder.open(tmp_path / "empty", codec)
        recorder.write(encode_vp8_clip(2)[1][0], 0, False) if codec == "video/VP8" else None
        recorder.close()
        recorder.close()
        assert recorder.frames_written == 0 and not recorder.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_recorder_refuses_other_codecs_and_missing_directories(tmp_path: Path) -> None:
    for codec in ("video/H264", "audio/PCMU", "vp8"):
        with pytest.raises(MediaError, match="cannot record"):
            TrackRecorder.open(tmp_path / "x", codec)
    with pytest.raises(MediaError, match="not a directory"):
        TrackRecorder.open(tmp_path / "nope" / "x", "video/VP8")


def test_codec_headers() -> None:
    assert opus_head(2) == b"OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00" and len(opus_head(1)) == 19
    assert opus_packet_samples(b"\xfc") == 960  # CELT 20 ms, one frame
    assert opus_packet_samples(b"\x09") == 1920  # SILK 20 ms, two frames (code 1)
    assert opus_packet_samples(b"\x03\x03") == 3 * 480  # SILK 10 ms, three frames (code 3)
    assert opus_packet_samples(b"\x70") == 480  # hybrid 10 ms
    assert opus_packet_samples(b"\x78") == 960  # hybrid 20 ms
    data, key = encode_vp8_clip(1, 64, 48)[0]
    assert key and vp8_keyframe_size(data) == (64, 48)
