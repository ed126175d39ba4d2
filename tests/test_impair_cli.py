"""The ``--impair*`` options: what they parse into, and a bad spec refused as a usage error."""

from __future__ import annotations

import pytest

from sealrtc.agents.impairing import impairment_lines
from sealrtc.cli.args import build_parser
from sealrtc.cli.impair import link_shape
from sealrtc.impairment import PROFILES, Impairment

pytestmark = pytest.mark.unit


def parse(*argv: str) -> object:
    return build_parser().parse_args(["subscribe", "--whep", "http://127.0.0.1:1/whep/a", *argv])


def test_impair_sets_both_directions_and_the_directional_flags_win() -> None:
    shape = link_shape(parse("--impair", "3g", "--impair-down", "loss=5%", "--impair-seed", "9"))  # type: ignore[arg-type]
    assert shape is not None
    assert shape.up == PROFILES["3g"] and shape.down == Impairment(loss=0.05) and shape.seed == 9
    assert link_shape(parse()) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["publish", "subscribe", "demo"])
def test_a_bad_spec_is_a_usage_error_with_the_models_message(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = {"publish": ["--whip", "http://127.0.0.1:1/whip/a"], "subscribe": ["--whep", "http://127.0.0.1:1/whep/a"]}
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, *target.get(command, []), "--impair-up", "edge"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --impair-up: unknown profile (known: good, wifi, 4g, 3g, lossy, satellite" in err, err


def test_the_summary_lines_say_what_the_impairment_did() -> None:
    stats = {
        "connections": 1,
        "up": {"impairment": "none", "offered": 0, "delivered": 0, "lost": 0, "queue_dropped": 0,
               "duplicated": 0, "mean_delay_ms": None},
        "down": {"impairment": "loss=5%", "offered": 1000, "delivered": 950, "lost": 50, "queue_dropped": 0,
                 "duplicated": 0, "mean_delay_ms": 0.0},
    }  # fmt: skip
    assert impairment_lines(stats) == [
        "impairment down (loss=5%): 1000 datagrams received, 50 lost (5.0%), 0 queue-dropped, mean delay 0.0 ms"
    ]
