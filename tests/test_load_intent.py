"""Typos that would run: ``load`` refuses what cannot be meant and says what it changes (issue 21 item 11)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sealrtc.cli.common import CliError, ExitStatus
from sealrtc.cli.load import _check_intent, _say_workers
from sealrtc.cli.main import main
from sealrtc.load.scenario import Scenario, ScenarioError, build, load_file

pytestmark = pytest.mark.unit


def test_room_on_the_embedded_relay_is_refused_with_the_flag_meant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--room", "5", "--no-isolate", "--quiet", "--duration", "1"]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert "the embedded relay starts with none" in err and "did you mean --rooms 5?" in err
    assert err.strip().count("\n") == 0


def _args(*, room: list[str] | None = None, rooms: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(room=room, rooms=rooms)


def test_room_on_janus_is_run_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    _check_intent(_args(room=["5"]), Scenario(room_ids=("5",)), "janus")
    assert "--room 5: one existing room, 5 (for 5 rooms: --rooms 5)" in capsys.readouterr().err
    _check_intent(_args(room=["1234", "1235"], rooms=2), Scenario(rooms=2, room_ids=("1234", "1235")), "janus")
    assert capsys.readouterr().err == ""  # several existing rooms: clearly meant


def test_no_subscribers_is_refused_only_where_nothing_would_be_measured(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CliError, match="nothing would be measured") as refused:
        _check_intent(_args(), Scenario(subscribers=0), "relay")
    assert refused.value.status == ExitStatus.USAGE
    _check_intent(_args(), Scenario(subscribers=0), "janus")  # a publishers-only load of a real server
    assert "publishers-only run measures joins and frames sent" in capsys.readouterr().err
    _check_intent(_args(), Scenario(subscribers=0, intruders=2), "relay")  # intruders still prove something
    assert "only the intruders receive" in capsys.readouterr().err


def test_no_subscribers_through_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--subscribers", "0", "--no-isolate", "--quiet", "--duration", "1"]) == ExitStatus.USAGE
    assert "give --subscribers N" in capsys.readouterr().err


def test_workers_cut_or_oversubscribed_are_said_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sealrtc.load.runner as runner

    monkeypatch.setattr(runner, "available_cpus", lambda: 2)
    _say_workers("64", 64, Scenario(), (0, 1))
    err = capsys.readouterr().err
    assert "--workers 64: 3 participants, so 3 workers" in err and err.count("\n") == 1
    _say_workers("3", 3, Scenario(subscribers=8), (0, 1))
    assert "--workers 3 on 2 CPUs: workers share cores" in capsys.readouterr().err
    _say_workers("auto", 2, Scenario(), (0, 1))
    _say_workers("2", 2, Scenario(), (0, 1))
    assert capsys.readouterr().err == ""


def test_relative_media_in_a_scenario_is_next_to_the_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "run.toml").write_text('media = "clips/talk.mp4"\n')
    (folder / "abs.yaml").write_text("media: /srv/clips/talk.mp4\n")
    settings = load_file(folder / "run.toml")
    assert settings["media"] == str(folder / "clips" / "talk.mp4")
    assert load_file(folder / "abs.yaml")["media"] == "/srv/clips/talk.mp4"
    assert build(settings, {"media": "here.mp4"}).media == "here.mp4"  # the flag: the working directory's


def test_a_yaml_scenario_error_says_where_as_toml_does(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rooms: 2\nsubscribers: [1\nduration: 5\n")
    with pytest.raises(ScenarioError) as error:
        load_file(bad)
    assert str(error.value) == (
        f"scenario {bad} is not valid YAML: expected ',' or ']', but got ':' (at line 3, column 9)"
    )
