"""Media files -> cached VP8/Opus clips -> looping pre-encoded tracks; decrypted-recording writers.

Source files are made here with PyAV in tmp_path (no downloads). Tracks pace themselves in real
time; these tests pull well under a second of media from each.
"""

from __future__ import annotations

import fractions
import os
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError

from sealrtc.errors import SealError
from sealrtc.media import (
    Clip,
    ClipFrame,
    MediaError,
    PreEncodedAudioTrack,
    PreEncodedVideoTrack,
    TrackRecorder,
    default_cache_dir,
    load_clip,
    pattern_image,
    tracks_for_clip,
)
from sealrtc.media import clips as clips_module
from sealrtc.media.recorder import opus_head, opus_packet_samples, vp8_keyframe_size
from sealrtc.media.sources import encode_h264_clip, encode_vp8_clip
from sealrtc.media.transcode import align, fit_size
from sealrtc.testing.analysis import dominant_frequency, psnr

pytestmark = pytest.mark.unit

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


def check_video(clip: Clip, fps: int, size: tuple[int, int]) -> None:
    assert clip.video is not None
    assert (clip.width, clip.height, clip.fps) == (*size, fps)
    keys = [i for i, frame in enumerate(clip.video) if frame.keyframe]
    assert keys[0] == 0 and all(k % (2 * fps) == 0 for k in keys)  # one key frame every 2 s
    assert keys == list(range(0, len(clip.video), 2 * fps))
    assert [f.pts for f in clip.video] == [i * 90_000 // fps for i in range(len(clip.video))]
    for frame in clip.video:
        assert (vp8_keyframe_size(frame.data) == size) == frame.keyframe


def check_same_length(clip: Clip) -> None:
    """Video and audio loop with the same period: they never drift apart."""
    assert clip.video is not None and clip.audio is not None
    assert len(clip.video) * 50 == len(clip.audio) * clip.fps
    assert clip.duration == pytest.approx(len(clip.audio) * 0.02)


def check_audio(clip: Clip, channels: int, seconds: float) -> None:
    assert clip.audio is not None and clip.channels == channels
    assert all(opus_packet_samples(p) == 960 for p in clip.audio)  # 20 ms each
    assert abs(len(clip.audio) * 0.02 - seconds) < 0.1
    assert all(bool(p[0] & 4) == (channels == 2) for p in clip.audio)  # TOC stereo flag


# -- load_clip -----------------------------------------------------------------------------------


def test_mp4_h264_aac_becomes_vp8_and_opus(tmp_path: Path) -> None:
    source = make_media(tmp_path / "a.mp4", "libx264", "aac", seconds=4.5, rate=44_100)
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    check_video(clip, 10, (160, 120))
    assert len([f for f in clip.video or () if f.keyframe]) == 3  # at 0, 2 and 4 s
    check_audio(clip, 2, 4.5)
    check_same_length(clip)
    assert abs(clip.duration - 4.5) < 0.1 and not clip.from_cache and clip.source == "a.mp4"


def test_h264_clip_is_cached_apart_and_decodes(tmp_path: Path) -> None:
    source = make_media(tmp_path / "a.webm", "libvpx", "libopus", seconds=2.5)
    vp8 = load_clip(source, cache_dir=tmp_path / "cache")
    clip = load_clip(source, cache_dir=tmp_path / "cache", video_codec="h264")
    assert clip.video_codec == "h264" and vp8.video_codec == "vp8" and clip.key != vp8.key
    assert not clip.from_cache and clip.video is not None
    keyframes = [f for f in clip.video if f.keyframe]
    assert len(keyframes) == 2 and all(b"\x00\x00\x01\x67" in f.data for f in keyframes)  # SPS in band
    decoder = av.CodecContext.create("h264", "r")
    pictures = sum(len(decoder.decode(av.Packet(f.data))) for f in clip.video)
    assert pictures >= len(clip.video) - 1
    again = load_clip(source, cache_dir=tmp_path / "cache", video_codec="h264")
    assert (
        again.from_cache
        and again.video_codec == "h264"
        and [f.data for f in again.video or ()] == [f.data for f in clip.video]
    )
    with pytest.raises(MediaError, match="vp9"):
        load_clip(source, cache_dir=tmp_path / "cache", video_codec="vp9")


@pytest.mark.parametrize(
    ("name", "video", "audio"),
    [("b.webm", "libvpx-vp9", "libopus"), ("c.mkv", "mpeg4", "flac"), ("d.webm", "libvpx", "libopus")],
)
def test_webm_and_mkv(tmp_path: Path, name: str, video: str, audio: str) -> None:
    source = make_media(tmp_path / name, video, audio, seconds=1.0, size=(176, 144))
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    check_video(clip, 10, (176, 144))
    check_audio(clip, 2, 1.0)
    check_same_length(clip)


def test_wav_is_audio_only_and_mono_stays_mono(tmp_path: Path) -> None:
    source = make_media(tmp_path / "tone.wav", None, "pcm_s16le", seconds=1.0, rate=16_000, layout="mono")
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    assert clip.video is None and clip.fps == 0
    check_audio(clip, 1, 1.0)
    assert tracks_for_clip(clip)[0] is None


def test_mp4_without_audio_is_video_only(tmp_path: Path) -> None:
    source = make_media(tmp_path / "silent.mp4", "mpeg4", None, seconds=1.0)
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    check_video(clip, 10, (160, 120))
    assert clip.audio is None and clip.channels == 0
    assert tracks_for_clip(clip)[1] is None


def test_video_and_audio_are_given_the_same_length() -> None:
    def video(n: int) -> list[tuple[bytes, bool, int]]:
        return [(b"v", i == 0, i) for i in range(n)]

    audio = [b"\xfc\x01"] * 170
    v, a = align(video(100), 30, audio, 2)  # 3.33 s and 3.4 s
    assert (len(v), len(a)) == (99, 165)  # 3.3 s: video cut to a multiple of 3 frames (100 ms)
    v, a = align(video(50), 24, audio[:100], 2)
    assert (len(v), len(a)) == (48, 100)  # 2 s: 12 frames (0.5 s) is the unit at 24 fps
    v, a = align(video(30), 30, audio[:45], 1)  # audio 100 ms short: padded with silence
    assert len(v) == 30 and a == audio[:45] + [b"\xf8\xff\xfe"] * 5
    assert opus_packet_samples(a[-1]) == 960
    v, a = align(video(30), 30, audio, 2)  # 1 s of video, 3.4 s of audio: each loops alone
    assert (len(v), len(a)) == (30, 170)
    v, a = align(video(2), 30, audio[:3], 2)  # shorter than one unit: left alone
    assert (len(v), len(a)) == (2, 3)


def test_large_video_is_scaled_down_keeping_its_aspect(tmp_path: Path) -> None:
    source = make_media(tmp_path / "big.mkv", "mpeg4", None, seconds=0.3, size=(1440, 1080))
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    check_video(clip, 10, (960, 720))
    assert fit_size(1920, 1080) == (1280, 720)
    assert fit_size(720, 1280) == (404, 720)  # portrait: even dimensions
    assert fit_size(641, 361) == (640, 360)  # never scaled up, made even


def test_second_load_is_a_cache_hit_that_does_not_transcode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_media(tmp_path / "a.webm", "libvpx", "libopus", seconds=1.0)
    cache = tmp_path / "cache"
    first = load_clip(source, cache_dir=cache)
    assert not first.from_cache
    assert [p.name for p in cache.iterdir()] == [f"{first.key}.clip"]  # no temporary file left

    def no_transcoding(path: Path) -> None:
        raise AssertionError("transcoded again")

    monkeypatch.setattr(clips_module.transcode, "transcode", no_transcoding)
    copy = tmp_path / "renamed.webm"
    copy.write_bytes(source.read_bytes())
    for again in (load_clip(source, cache_dir=cache), load_clip(copy, cache_dir=cache)):  # keyed by content
        assert again.from_cache and again.key == first.key
        assert again.video == first.video and again.audio == first.audio
        assert (again.width, again.height, again.fps, again.channels) == (first.width, first.height, first.fps, 2)
        assert again.duration == first.duration


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_cache_entry_is_made_again(tmp_path: Path, damage: str) -> None:
    source = make_media(tmp_path / "a.wav", None, "pcm_s16le", seconds=0.5)
    cache = tmp_path / "cache"
    first = load_clip(source, cache_dir=cache)
    entry = cache / f"{first.key}.clip"
    blob = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        entry.write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    else:
        entry.write_bytes(b"")
    remade = load_clip(source, cache_dir=cache)
    assert not remade.from_cache and remade.audio == first.audio
    assert entry.read_bytes() == blob
    assert load_clip(source, cache_dir=cache).from_cache


def test_cache_is_pruned_least_recently_used_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for i, name in enumerate(["old.clip", "hit.clip", "new.clip"]):
        (cache / name).write_bytes(b"x" * 100)
        os.utime(cache / name, (1000 + i, 1000 + i))
    (cache / ".tmp-crashed.clip").write_bytes(b"x")
    os.utime(cache / ".tmp-crashed.clip", (1000, 1000))
    (cache / ".tmp-in-progress.clip").write_bytes(b"x")  # another process is writing it now
    os.utime(cache / "hit.clip")  # what a cache hit does
    removed = clips_module.prune_cache(cache, keep=cache / "new.clip", max_bytes=200)
    assert sorted(p.name for p in removed) == [".tmp-crashed.clip", "old.clip"]
    assert sorted(p.name for p in cache.iterdir()) == [".tmp-in-progress.clip", "hit.clip", "new.clip"]
    clips_module.prune_cache(cache, keep=cache / "new.clip", max_bytes=0)
    assert sorted(p.name for p in cache.iterdir()) == [".tmp-in-progress.clip", "new.clip"]
    # load_clip prunes after each write, keeping what it just wrote.
    monkeypatch.setattr(clips_module, "MAX_CACHE_BYTES", 0)
    clip = load_clip(make_media(tmp_path / "a.wav", None, "pcm_s16le", seconds=0.2), cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == [".tmp-in-progress.clip", f"{clip.key}.clip"]


def test_cache_entry_round_trip() -> None:
    clip = Clip(
        video=[ClipFrame(b"key", True, 0), ClipFrame(b"", False, 3000)],
        audio=[b"\xfc\x01", b"\xfc"],
        width=2,
        height=4,
        fps=30,
        channels=1,
        duration=0.04,
        source="x.mp4",
    )
    back = clips_module.decode_entry(clips_module.encode_entry(clip), "k")
    assert back.from_cache and back.key == "k"
    assert (back.video, back.audio, back.width, back.height, back.fps, back.channels, back.duration, back.source) == (
        clip.video,
        clip.audio,
        2,
        4,
        30,
        1,
        0.04,
        "x.mp4",
    )
    audio_only = Clip(video=None, audio=[b"\xfc"], channels=2, duration=0.02)
    assert clips_module.decode_entry(clips_module.encode_entry(audio_only)).video is None


def test_cache_key_depends_on_content_parameters_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = clips_module.cache_key("ab" * 32)
    assert key == clips_module.cache_key("ab" * 32) and key != clips_module.cache_key("cd" * 32)
    monkeypatch.setitem(clips_module.transcode.PARAMS, "keyframe_seconds", 1.0)
    assert clips_module.cache_key("ab" * 32) != key
    monkeypatch.undo()
    monkeypatch.setattr(clips_module, "FORMAT_VERSION", 2)
    assert clips_module.cache_key("ab" * 32) != key


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALRTC_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SEALRTC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sealrtc" / "clips"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "sealrtc" / "clips"


def test_default_cache_dir_is_used_without_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALRTC_CACHE_DIR", str(tmp_path / "env-cache"))
    clip = load_clip(make_media(tmp_path / "a.wav", None, "pcm_s16le", seconds=0.2))
    assert (tmp_path / "env-cache" / f"{clip.key}.clip").is_file()


def test_unusable_files_give_a_clean_media_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello\nthis is not a video\n")
    metadata_only = tmp_path / "meta.txt"
    metadata_only.write_text(";FFMETADATA1\ntitle=nothing to play\n")  # opens, with no stream
    cases = [
        (text, "notes.mp4 is not a media file PyAV can open"),
        (metadata_only, "meta.txt has neither a video nor an audio stream"),
        (tmp_path / "missing.webm", "no such file"),
        (tmp_path, "is not a file"),
    ]
    for path, expected in cases:
        with pytest.raises(MediaError) as info:
            load_clip(path, cache_dir=tmp_path / "cache")
        message = str(info.value)
        assert expected in message and "\n" not in message and "Traceback" not in message
        assert isinstance(info.value, SealError)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# -- looping tracks ------------------------------------------------------------------------------


async def test_video_track_loops_with_increasing_timestamps_and_jumps_to_key_frames() -> None:
    frames = encode_vp8_clip(6, 64, 48, gop=3)  # key frames at 0 and 3
    clip = Clip(video=[ClipFrame(data, key, i * 3000) for i, (data, key) in enumerate(frames)], audio=None, fps=60)
    track, audio = tracks_for_clip(clip)
    assert track is not None and audio is None
    packets = [await track.recv() for _ in range(14)]
    pts = [p.pts for p in packets]
    assert pts == [i * 1500 for i in range(14)]  # 60 fps in 90 kHz units, no jump back at the loop
    assert all(p.time_base == fractions.Fraction(1, 90_000) for p in packets)
    assert [bytes(p) for p in packets] == [frames[i % 6][0] for i in range(14)]
    assert track.frames_sent == 14 and track.keyframes_sent == 5  # 0, 3, 6, 9, 12
    # Position is now 2 (a delta frame): a request makes the next packet the key frame at 3.
    track.request_keyframe()
    track.request_keyframe()
    jumped = await track.recv()
    assert bytes(jumped) == frames[3][0] and jumped.pts == 14 * 1500
    assert track.keyframe_requests == 2 and track.keyframes_sent == 6
    assert bytes(await track.recv()) == frames[4][0]  # and plays on from there
    # aiortc packetizes it without re-encoding.
    payloads, timestamp = Vp8Encoder().pack(jumped)
    assert timestamp == 14 * 1500 and b"".join(p[4:] if i else p[6:] for i, p in enumerate(payloads))
    track.stop()


async def test_audio_track_loops_20ms_opus_packets_with_increasing_pts() -> None:
    packets = opus_tone(4)
    track = PreEncodedAudioTrack(packets, channels=1, duration=0.2)
    got = []
    with pytest.raises(MediaStreamError):
        while True:
            got.append(await track.recv())
    assert len(got) == 10 == track.frames_sent  # 0.2 s of 20 ms packets, then the track ends
    assert [p.pts for p in got] == [i * 960 for i in range(10)]
    assert all(p.time_base == fractions.Fraction(1, 48_000) for p in got)
    assert [bytes(p) for p in got] == [packets[i % len(packets)] for i in range(10)]
    assert OpusEncoder().pack(got[7]) == ([packets[7 % len(packets)]], 7 * 960)
    assert track.readyState == "ended"


def test_tracks_refuse_empty_clips() -> None:
    with pytest.raises(ValueError):
        PreEncodedAudioTrack([])
    with pytest.raises(ValueError):
        PreEncodedVideoTrack([ClipFrame(b"x", False, 0)])
    with pytest.raises(ValueError):
        PreEncodedVideoTrack(encode_vp8_clip(2), fps=0)


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


def test_vp8_recording_of_a_clip_made_from_a_file(tmp_path: Path) -> None:
    source = make_media(tmp_path / "pattern.mp4", "libx264", None, seconds=2.5, size=(320, 240))
    clip = load_clip(source, cache_dir=tmp_path / "cache")
    assert clip.video is not None
    with TrackRecorder.open(tmp_path / "rec", "VIDEO/vp8") as recorder:
        for frame in clip.video:
            recorder.write(frame.data, 123_456 + frame.pts, frame.keyframe)
    assert recorder.frames_written == len(clip.video) == 25
    decoded = decode_video(recorder.path)
    assert len(decoded) == 25
    for i in (0, 12, 24):
        assert psnr(decoded[i], pattern_image(320, 240, i)) > 30


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


def test_opus_recording_of_a_clip_made_from_a_wav(tmp_path: Path) -> None:
    clip = load_clip(make_media(tmp_path / "t.wav", None, "pcm_s16le", seconds=1.0), cache_dir=tmp_path / "c")
    assert clip.audio is not None
    with TrackRecorder.open(tmp_path / "rec", "audio/OPUS") as recorder:
        for i, packet in enumerate(clip.audio):
            recorder.write(packet, 7 + i * 960, True)
    samples, rate = decode_audio(recorder.path)
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


def test_recorder_carries_on_over_a_restarted_rtp_clock(tmp_path: Path) -> None:
    frames = encode_vp8_clip(20, gop=10)
    packets = opus_tone(20)
    video = TrackRecorder.open(tmp_path / "v", "video/VP8")
    audio = TrackRecorder.open(tmp_path / "a", "audio/opus")
    for i in range(20):
        jump = 0 if i < 10 else 1_234_567_890  # the sender restarts with a new random offset
        video.write(frames[i][0], 5000 + i * 3000 + jump, frames[i][1])
        back = 0 if i < 10 else 48_000 * 100  # ... or with an offset 100 s back
        audio.write(packets[i], (7 + i * 960 - back) % (1 << 32), True)
    video.close()
    audio.close()
    assert (video.frames_written, video.discontinuities, audio.frames_written, audio.discontinuities) == (20, 1, 20, 1)
    with av.open(str(video.path)) as container:
        times = [f.time for f in container.decode(video=0)]
    assert times == pytest.approx([i / 30 for i in range(20)], abs=0.002)  # no gap
    samples, _ = decode_audio(audio.path)
    assert abs(samples.size - 20 * 960) <= 960  # no gap, no overlap


def test_recorder_with_no_frames_leaves_no_file(tmp_path: Path) -> None:
    for codec in ("video/VP8", "audio/opus"):
        recorder = TrackRecorder.open(tmp_path / "empty", codec)
        recorder.write(encode_vp8_clip(2)[1][0], 0, False) if codec == "video/VP8" else None
        recorder.close()
        recorder.close()
        assert recorder.frames_written == 0 and not recorder.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_h264_recording_is_an_mpegts_file_that_decodes(tmp_path: Path) -> None:
    clip = encode_h264_clip(frames=40, gop=20)
    recorder = TrackRecorder.open(tmp_path / "video", "video/H264")
    recorder.write(clip[1][0], 0)  # a delta frame before any IDR frame: skipped
    for i, (data, _) in enumerate(clip):
        recorder.write(data, 1_000 + 3000 * i)
    recorder.close()
    assert recorder.path == tmp_path / "video.ts" and recorder.frames_written == 40 and recorder.frames_skipped == 1
    with av.open(str(recorder.path)) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(pictures) == 40 and psnr(pictures[0], pattern_image(320, 240, 0)) > 30


def test_recorder_refuses_other_codecs_and_missing_directories(tmp_path: Path) -> None:
    for codec in ("video/VP9", "audio/PCMU", "vp8"):
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
