"""``-v`` in publish and subscribe: one stamped line a second, and aiortc's per-frame decode
warnings only at ``-vv``."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealrtc.cli.display import LiveView, choose_display
from sealrtc.cli.main import main
from sealrtc.cli.output import stats_line

pytestmark = pytest.mark.unit


def _piped_run(verbose: bool) -> list[str]:
    """Ten seconds of a piped publish/subscribe run, ticked as the commands tick their display."""
    out = io.StringIO()
    view = LiveView(lambda: (("track",), []), lambda: "video: 150 received")
    display = choose_display("subscribe", view=view, stream=out, verbose=verbose)
    for second in range(1, 11):
        display.tick(float(second))
        if verbose:
            display.say(stats_line(float(second), "video: 150 received"))
    return out.getvalue().splitlines()


def test_piped_verbose_runs_say_one_line_a_second_and_no_more() -> None:
    lines = _piped_run(verbose=True)
    assert len(lines) == 10 and all("video: 150 received" in line for line in lines)
    assert [line.count("[") for line in lines] == [1] * 10
    assert len(_piped_run(verbose=False)) == 2  # without -v: the line every 5 s


@pytest.fixture
def logger_levels() -> Iterator[None]:
    names = ("", "aiortc", "aioice", "aiortc.rtcrtpreceiver")
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(("flags", "decode_warnings"), [([], False), (["-v"], False), (["-vv"], True)])
def test_aiortc_decode_warnings_need_vv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], logger_levels: None, flags: list[str], decode_warnings: bool
) -> None:
    missing = str(tmp_path / "none.json")  # refused after logging is set up, before any socket
    assert main(["subscribe", "--whep", "http://127.0.0.1:9/whep/r", "--epoch-file", missing, *flags]) == 2
    capsys.readouterr()
    assert logging.getLogger("aiortc.rtcrtpreceiver").isEnabledFor(logging.WARNING) is decode_warnings
    assert logging.getLogger("aiortc.rtcpeerconnection").isEnabledFor(logging.WARNING) is bool(flags)
