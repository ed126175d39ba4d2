"""The shape of what a publisher sends: checks, clips transcoded (and cached) per shape, the
synthetic source's size and rate, kinds left out, the fixed-bitrate live encoder, load scenarios, the
command line's clips."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest
from aiortc.codecs import vpx

from sealrtc.load.scenario import Scenario, ScenarioError, build, load_file
from sealrtc.media import (
    MediaShape,
    ShapeError,
    cache_dir_problem,
    clip_key,
    load_clip,
    synthetic_tracks,
    tracks_for_clip,
)
from sealrtc.media import clips as clips_module
from sealrtc.rtc import internals

from .test_media_files import make_media

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "size"), [("320x180", (320, 180)), ("1280X720", (1280, 720)), (" 16x16 ", (16, 16))])
def test_resolution_parses(text: str, size: tuple[int, int]) -> None:
    shape = MediaShape.of(resolution=text)
    assert (shape.width, shape.height) == size


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"resolution": "321x180"}, "must be even"),
        ({"resolution": "8x8"}, "outside 16x16"),
        ({"resolution": "7680x4320"}, "outside"),
        ({"resolution": "640"}, "WxH"),
        ({"resolution": "axb"}, "WxH"),
        ({"fps": 61}, "fps must be 1..60"),
        ({"fps": -1}, "fps must be 1..60"),
        ({"video_kbps": 49}, "50..20000"),
        ({"video_kbps": 20001}, "50..20000"),
        ({"audio": False, "video": False}, "nothing to send"),
    ],
)
def test_bad_shapes_are_refused_in_one_line(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ShapeError, match=words) as caught:
        MediaShape.of(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_default_shape_is_empty_and_keeps_default_cache_keys() -> None:
    assert MediaShape().transcode_params == {}
    assert clips_module.cache_key("ab" * 32, "vp8", MediaShape()) == clips_module.cache_key("ab" * 32)
    # which kinds are sent is not the clip's business: same clip, same key
    assert clips_module.cache_key("ab" * 32, "vp8", MediaShape(audio=False)) == clips_module.cache_key("ab" * 32)


def test_clip_key_ignores_the_kinds_sent_and_is_empty_by_default() -> None:
    assert clip_key(MediaShape()) == () == clip_key(MediaShape(video=False))
    assert clip_key(MediaShape(640, 360, 15, audio=False)) == clip_key(MediaShape(640, 360, 15))
    assert clip_key(MediaShape(fps=15)) != clip_key(MediaShape(fps=20))


async def test_prepare_clips_makes_one_clip_per_clip_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sealrtc.cli.media as cli_media

    made: list[MediaShape] = []

    async def fake_load_media(path: str, *, shape: MediaShape, **kwargs: object) -> None:
        made.append(shape)

    monkeypatch.setattr(cli_media, "load_media", fake_load_media)
    shapes = [MediaShape(fps=15), MediaShape(fps=15, audio=False), MediaShape(), MediaShape(video=False)]
    directory = await cli_media.prepare_clips(
        "x.mp4", shapes, cache_dir=str(tmp_path), video_codec="vp8", command="load"
    )
    assert directory == str(tmp_path) and sorted(map(clip_key, made)) == [(), (("fps", 15),)]


def test_cache_key_includes_size_rate_and_bitrate() -> None:
    content = "ab" * 32
    keys = {
        clips_module.cache_key(content),
        clips_module.cache_key(content, "vp8", MediaShape.of(resolution="320x180")),
        clips_module.cache_key(content, "vp8", MediaShape.of(resolution="640x360")),
        clips_module.cache_key(content, "vp8", MediaShape.of(fps=15)),
        clips_module.cache_key(content, "vp8", MediaShape.of(video_kbps=300)),
        clips_module.cache_key(content, "vp8", MediaShape.of(video_kbps=1200)),
        clips_module.cache_key(content, "h264", MediaShape.of(video_kbps=300)),
    }
    assert len(keys) == 7
    same = MediaShape.of(resolution="320x180", fps=15, video_kbps=300)
    assert clips_module.cache_key(content, "vp8", same) == clips_module.cache_key(
        content, "vp8", MediaShape.of(resolution="320x180", fps=15, video_kbps=300)
    )


def test_clip_is_transcoded_to_the_shape_and_cached_under_it(tmp_path: Path) -> None:
    source = make_media(tmp_path / "in.mp4", "libx264", "aac", seconds=2.0, fps=10, size=(320, 240))
    cache = tmp_path / "cache"
    low = load_clip(source, cache_dir=cache, shape=MediaShape.of(resolution="160x90", fps=5, video_kbps=60))
    assert (low.width, low.height, low.fps) == (160, 90, 5)
    assert low.video is not None and 9 <= len(low.video) <= 11  # 2 s at 5 fps
    high = load_clip(source, cache_dir=cache, shape=MediaShape.of(resolution="160x90", fps=5, video_kbps=2000))
    assert not high.from_cache and high.key != low.key
    assert high.video is not None
    assert sum(len(f.data) for f in high.video) > sum(len(f.data) for f in low.video)
    again = load_clip(source, cache_dir=cache, shape=MediaShape.of(resolution="160x90", fps=5, video_kbps=60))
    assert again.from_cache and again.key == low.key
    assert {p.name for p in cache.glob("*.clip")} == {f"{low.key}.clip", f"{high.key}.clip"}


def test_transcode_reports_progress_up_to_the_whole(tmp_path: Path) -> None:
    source = make_media(tmp_path / "in.mp4", "libx264", None, seconds=2.0, fps=10)
    seen: list[float] = []
    load_clip(source, cache_dir=tmp_path / "cache", progress=seen.append)
    assert seen == sorted(seen) and len(seen) >= 3 and seen[-1] == 1.0
    hit: list[float] = []
    load_clip(source, cache_dir=tmp_path / "cache", progress=hit.append)
    assert hit == []  # a cache hit transcodes nothing


def test_clip_tracks_leave_out_the_kinds_the_shape_drops(tmp_path: Path) -> None:
    clip = load_clip(make_media(tmp_path / "in.mp4", "libx264", "aac"), cache_dir=tmp_path / "cache")
    video, audio = tracks_for_clip(clip, shape=MediaShape(audio=False))
    assert video is not None and audio is None
    video, audio = tracks_for_clip(clip, shape=MediaShape(video=False))
    assert video is None and audio is not None


async def test_synthetic_source_takes_size_and_rate() -> None:
    video, audio = synthetic_tracks(MediaShape.of(resolution="320x180", fps=15), duration=1.0)
    assert video is not None and audio is not None
    frames = [await video.recv() for _ in range(3)]
    assert {(f.width, f.height) for f in frames} == {(320, 180)}
    assert [f.pts for f in frames] == [0, 6000, 12000]  # 15 fps in 90 kHz units
    video.stop()
    audio.stop()
    assert synthetic_tracks(MediaShape(video=False))[0] is None
    assert synthetic_tracks(MediaShape(audio=False))[1] is None
    default_video, _ = synthetic_tracks()
    assert default_video is not None and (default_video.width, default_video.height, default_video.fps) == (
        320,
        240,
        30,
    )


def test_cache_dir_problem_names_files_and_unwritable_directories(tmp_path: Path) -> None:
    assert cache_dir_problem(tmp_path / "new" / "dir") is None
    assert (tmp_path / "new" / "dir").is_dir() and not list((tmp_path / "new" / "dir").iterdir())
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cache_dir_problem(a_file) == "it is not a directory"
    assert cache_dir_problem(a_file / "below") == "it is not a directory"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        problem = cache_dir_problem(locked)
        if problem is None:  # root ignores the mode bits
            pytest.skip("running as root: every directory is writable")
        assert "denied" in problem.lower()
    finally:
        locked.chmod(0o700)


class _FakeSender:
    """The one attribute and method ``fix_video_bitrate`` uses, without a connection."""

    def __init__(self) -> None:
        self._RTCRtpSender__encoder: object = None
        self.sent: list[object] = []

    async def send(self, parameters: object) -> None:
        self.sent.append(parameters)


def _vp8_parameters() -> object:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

    return RTCRtpSendParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000)])


@pytest.mark.parametrize("bitrate", [100_000, 4_000_000])  # below and above aiortc's VP8 bounds
def test_fixed_encoder_holds_the_bitrate_whatever_remb_says(bitrate: int) -> None:
    sender = _FakeSender()
    internals.fix_video_bitrate(sender, bitrate)  # type: ignore[arg-type]
    asyncio.run(sender.send(_vp8_parameters()))
    encoder = sender._RTCRtpSender__encoder
    assert isinstance(encoder, vpx.Vp8Encoder) and len(sender.sent) == 1
    assert encoder.target_bitrate == bitrate
    assert encoder._Vp8Encoder__target_bitrate == bitrate  # type: ignore[attr-defined]  # libvpx's bufsize
    for remb in (10_000, 600_000, 50_000_000):
        encoder.target_bitrate = remb  # what aiortc does on every REMB
        assert encoder.target_bitrate == bitrate
    assert encoder.remb_bps == 50_000_000  # type: ignore[attr-defined]


def test_fixed_bitrate_leaves_an_encoder_already_made_alone() -> None:
    sender = _FakeSender()
    made = vpx.Vp8Encoder()
    sender._RTCRtpSender__encoder = made
    internals.fix_video_bitrate(sender, 100_000)  # type: ignore[arg-type]
    asyncio.run(sender.send(_vp8_parameters()))
    assert sender._RTCRtpSender__encoder is made


async def test_a_bitrate_gives_the_pattern_a_moving_texture() -> None:
    plain, _ = synthetic_tracks(MediaShape(audio=False))
    textured, _ = synthetic_tracks(MediaShape.of(video_kbps=1000, audio=False))
    assert plain is not None and textured is not None
    first, second = textured.pattern(0), textured.pattern(1)
    assert first.shape == plain.pattern(0).shape == (240, 320, 3)
    # the whole picture changes from frame to frame, not only the moving square
    changed_rows = (first != second).any(axis=(1, 2)).mean()
    assert changed_rows > 0.9
    assert (plain.pattern(0) != plain.pattern(1)).any(axis=(1, 2)).mean() < 0.5


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--resolution", "641x360"], "argument --resolution: resolution 641x360: width and height must be even"),
        (["--fps", "90"], "argument --fps: fps must be 1..60 (got 90)"),
        (["--fps", "ten"], "argument --fps: fps must be a whole number"),
        (["--video-bitrate", "30000"], "argument --video-bitrate: video bitrate must be 50..20000 kbit/s"),
        (["--no-audio", "--no-video"], "argument --no-video: not allowed with argument --no-audio"),
    ],
)
@pytest.mark.parametrize("command", ["publish", "demo", "load"])
def test_shape_flags_are_checked_in_one_line_exit_2(
    command: str, flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sealrtc.cli.args import build_parser

    target = ["--whip", "http://relay/whip/x"] if command == "publish" else []
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, *target, *flags])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sealrtc {command}: error: {words}"), lines


@pytest.mark.parametrize("flags", [["--resolution", "640x360", "--fps", "15", "--video-bitrate", "700"],
                                   ["--resolution", "641x360"], ["--help"]])  # fmt: skip
def test_parsing_shape_flags_loads_neither_aiortc_nor_pyav(flags: list[str]) -> None:
    code = (
        "import sys\n"
        "from sealrtc.cli.args import build_parser\n"
        "try:\n"
        f"    build_parser().parse_args(['load', *{flags!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('aiortc', 'av') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_shape_flags_make_the_shape() -> None:
    from sealrtc.cli.args import build_parser
    from sealrtc.cli.media import shape_from

    args = build_parser().parse_args(
        ["publish", "--whip", "http://r/whip/x", "--resolution", "640X360", "--fps", "15", "--video-bitrate", "800"]
    )
    assert shape_from(args) == MediaShape(640, 360, 15, 800)
    default = build_parser().parse_args(["publish", "--whip", "http://r/whip/x", "--no-video"])
    assert shape_from(default) == MediaShape(video=False)


# -- load scenarios ------------------------------------------------------------------------------


def _scenario(tmp_path: Path, text: str, suffix: str = ".toml", **flags: object) -> Scenario:
    path = tmp_path / f"s{suffix}"
    path.write_text(text)
    return build(load_file(path), dict(flags))


def test_scenario_shape_settings_and_room_tables(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        'rooms = 4\nvideo-bitrate = 400\nresolution = "640x360"\n'
        "[[room]]\ncount = 2\nvideo-bitrate = 1500\nno-audio = true\n"
        '[[room]]\nresolution = "320x180"\nfps = 15\n',
    )
    shapes = scenario.room_shape_list()
    assert shapes[0] == shapes[1] == MediaShape(640, 360, None, 1500, audio=False)
    assert shapes[2] == MediaShape(320, 180, 15, 400)
    assert shapes[3] == MediaShape(640, 360, None, 400)  # not covered by a table: the scenario's own
    recorded = scenario.as_dict()
    assert recorded["video_bitrate"] == 400 and recorded["resolution"] == "640x360" and recorded["audio"] is True
    assert recorded["room_shapes"] == [
        {"count": 2, "video_bitrate": 1500, "audio": False},
        {"count": 1, "resolution": "320x180", "fps": 15},
    ]


def test_flags_win_over_the_scenario_and_tables_over_both(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path, "rooms = 2\nvideo-bitrate = 400\n[[room]]\nfps = 10\n", video_bitrate=900, audio=False
    )
    assert scenario.room_shape_list() == [
        MediaShape(fps=10, video_kbps=900, audio=False),
        MediaShape(video_kbps=900, audio=False),
    ]


def test_yaml_rooms(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "rooms: 2\nroom:\n  - no-video: true\n  - video-bitrate: 250\n", ".yaml")
    assert scenario.room_shape_list() == [MediaShape(video=False), MediaShape(video_kbps=250)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('resolution = "641x360"', "resolution 641x360: width and height must be even"),
        ("fps = 61", "fps must be 1..60"),
        ("video-bitrate = 20", "video bitrate must be 50..20000 kbit/s"),
        ("no-audio = true\nno-video = true", "nothing to send"),
        ("no-audio = 1", "'no-audio' must be true or false"),
        ("rooms = 1\n[[room]]\ncount = 2", "[[room]] tables cover 2 rooms, the scenario has 1"),
        ("[[room]]\nbitrate = 300", "[[room]] 1: unknown setting 'bitrate' (did you mean video_bitrate?"),
        ("[[room]]\nfps = 90", "[[room]] 1: fps must be 1..60"),
        ("[[room]]\nno-audio = true\n[[room]]\nfps = 0.5", "[[room]] 2: setting 'fps' must be a whole number"),
        ("rooms = 2\n[[room]]\ncount = 0", "[[room]] 1: count must be >= 1"),
        ('room = "big"', "setting room must be a list of tables"),
    ],
)
def test_bad_shape_scenarios_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        _scenario(tmp_path, text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_load_flags_reach_the_scenario() -> None:
    from sealrtc.cli.args import build_parser
    from sealrtc.cli.load import _scenario as scenario_of

    args = build_parser().parse_args(["load", "--video-bitrate", "700", "--resolution", "480x270", "--no-audio"])
    assert scenario_of(args).room_shape_list() == [MediaShape(480, 270, None, 700, audio=False)]
    plain = build_parser().parse_args(["load"])
    assert scenario_of(plain).room_shape_list() == [MediaShape()]


# -- the command line's clips: progress and the cache ------------------------------------------


def test_an_unusable_cache_dir_is_said_once_and_a_temporary_one_used(tmp_path: Path) -> None:
    from sealrtc.cli.media import usable_cache_dir

    a_file = tmp_path / "cache-file"
    a_file.write_text("not a directory")
    said = io.StringIO()
    directory = usable_cache_dir(str(a_file), "publish", said)
    assert said.getvalue().count("\n") == 1
    assert said.getvalue().startswith(f"sealrtc publish: --cache-dir {a_file} cannot be used (it is not a directory)")
    assert directory.is_dir() and directory != a_file and cache_dir_problem(directory) is None
    quiet = io.StringIO()
    assert usable_cache_dir(str(tmp_path / "good"), "publish", quiet) == tmp_path / "good" and not quiet.getvalue()


async def test_a_transcode_piped_says_one_line_and_a_cache_hit_nothing(tmp_path: Path) -> None:
    from sealrtc.cli.media import load_media

    source = make_media(tmp_path / "clip.mp4", "libx264", "aac", seconds=2.0)
    shown = io.StringIO()
    shape = MediaShape.of(resolution="160x90", video_kbps=200)
    clip = await load_media(
        str(source), cache_dir=tmp_path / "c", video_codec="vp8", shape=shape, command="load", stream=shown
    )
    assert (clip.width, clip.height) == (160, 90) and not clip.from_cache
    assert (
        shown.getvalue() == "sealrtc load: transcoding clip.mp4 to VP8 160x90 200 kbit/s (once: the clip is cached)\n"
    )
    again = io.StringIO()
    hit = await load_media(
        str(source), cache_dir=tmp_path / "c", video_codec="vp8", shape=shape, command="load", stream=again
    )
    assert hit.from_cache and again.getvalue() == ""


def test_fixed_bitrate_for_h264_too() -> None:
    from aiortc.codecs import h264
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

    sender = _FakeSender()
    internals.fix_video_bitrate(sender, 8_000_000)  # type: ignore[arg-type]
    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000)
    asyncio.run(sender.send(RTCRtpSendParameters(codecs=[codec])))
    encoder = sender._RTCRtpSender__encoder
    assert isinstance(encoder, h264.H264Encoder) and encoder.target_bitrate == 8_000_000  # above aiortc's 3 Mbit/s
    encoder.target_bitrate = 500_000
    assert encoder.target_bitrate == 8_000_000
