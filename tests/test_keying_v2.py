"""Keying v2: known answers, epoch exports, receivers that follow epochs, senders that converge."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealrtc import AuthenticationFailed, FrameDecryptor, FrameEncryptor, InvalidSecret, SharedSecret, UnknownKey
from sealrtc.epochs import (
    MAX_AHEAD,
    EpochKeys,
    epoch_key_at,
    epoch_zero,
    fingerprint_v2,
    kid_v2,
    parse_export,
    ratchet,
)
from sealrtc.sframe import header_encoder

from .conftest import FakeClock

pytestmark = pytest.mark.unit

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keying_v2.json").read_text())
SECRET = "keying v2 test secret"


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"suite{c['suite']}")
def test_known_answers(case: dict[str, Any]) -> None:
    root = bytes.fromhex(str(case["root"]))
    suite = int(str(case["suite"]))
    epochs = [bytes.fromhex(e) for e in case["epochs"]]
    assert epoch_zero(root, suite) == epochs[0]
    for before, after in itertools.pairwise(epochs):
        assert ratchet(before, suite) == after
    assert fingerprint_v2(root, suite) == case["fp2"]


def test_known_kid() -> None:
    v = VECTORS["kid"]
    assert kid_v2(v["sender_tag"], v["epoch"], v["fp2"]) == int(v["kid"], 16) == 0x0102030405FFAB


def _keys(clock: FakeClock | None = None, epoch: int = 0) -> EpochKeys:
    return EpochKeys.from_secret(SECRET, context=b"room", suite=1, epoch=epoch, clock=clock or FakeClock())


def test_sender_kids_carry_epoch_and_fingerprint() -> None:
    keys = _keys()
    kid = keys.new_sender_kid()
    assert kid & 0xFF == keys.current.fingerprint and (kid >> 8) & 0xFF == 0 and kid >> 16
    keys.advance()
    assert (keys.new_sender_kid() >> 8) & 0xFF == 1 and keys.epoch == 1


def test_export_matches_the_ratchet_and_survives_json() -> None:
    exported = _keys(epoch=3).export_epoch()
    assert set(exported) == {"v", "suite", "fp2", "epoch", "key"} and exported["epoch"] == 3
    joiner = EpochKeys.from_export(json.loads(json.dumps(exported)), clock=FakeClock())
    expected = epoch_key_at(SECRET, 3, context=b"room", suite=1)
    assert joiner.current.material == expected.material and joiner.current.fingerprint == expected.fingerprint
    assert joiner.floor == 3 and joiner.suite == 1


def test_joiner_at_epoch_three_decrypts_three_and_later() -> None:
    sender = _keys()
    enc = FrameEncryptor(sender)
    frames = []
    for epoch in range(6):
        frames.append((epoch, enc.encrypt(b"frame %d" % epoch)))
        sender.advance()
    joiner = EpochKeys.from_export(_keys(epoch=3).export_epoch(), clock=FakeClock())
    dec = FrameDecryptor(joiner)
    for epoch, frame in frames:
        if epoch < 3:
            with pytest.raises(UnknownKey):
                dec.decrypt(frame)
        else:
            assert dec.decrypt(frame) == b"frame %d" % epoch
    assert dec.stats.failures["unknown_key"] == 3


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"v": 1},
        {"v": 2, "suite": 9, "fp2": 1, "epoch": 0, "key": "AA=="},
        {"v": 2, "suite": 1, "fp2": 300, "epoch": 0, "key": "AA=="},
        {"v": 2, "suite": 1, "fp2": 1, "epoch": -1, "key": "AA=="},
        {"v": 2, "suite": 1, "fp2": 1, "epoch": 0, "key": "c2VjcmV0LWtleQ=="},
        {"v": 2, "suite": 1, "fp2": 1, "epoch": 0, "key": "not base64 secret!"},
    ],
)
def test_bad_exports_are_refused_without_the_key(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidSecret) as info:
        parse_export(bad)
    assert "c2VjcmV0" not in str(info.value) and "secret!" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_repr_and_export_hold_no_key_in_repr() -> None:
    keys = _keys()
    assert keys.export_epoch()["key"] not in repr(keys) and "material" not in repr(keys.current)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=60))
def test_no_key_kid_ctr_repeats_across_epochs_and_senders(ops: list[tuple[int, bool]]) -> None:
    participants = [_keys() for _ in range(3)]
    encryptors = [FrameEncryptor(p) for p in participants]
    seen: set[tuple[bytes, int, int]] = set()
    for who, advance in ops:
        if advance:
            participants[who].advance()
        enc = encryptors[who]
        enc.encrypt(b"x")
        use = (participants[who].current.material, enc.kid, enc.ctr - 1)
        assert use not in seen
        seen.add(use)


def test_three_senders_converge_when_one_missed_an_advance() -> None:
    clock = FakeClock()
    a, b, c = (_keys(clock) for _ in range(3))
    enc = {name: FrameEncryptor(k) for name, k in (("a", a), ("b", b), ("c", c))}
    dec = {(r, s): FrameDecryptor(k) for r, k in (("a", a), ("b", b), ("c", c)) for s in "abc" if s != r}
    a.advance()
    b.advance()  # c missed it
    assert dec[("a", "c")].decrypt(enc["c"].encrypt(b"c at 0")) == b"c at 0"  # grace for the old epoch
    assert c.epoch == 0
    assert dec[("c", "a")].decrypt(enc["a"].encrypt(b"a at 1")) == b"a at 1"
    assert c.epoch == 1  # c authenticated epoch 1, so its sender moves there too
    frame = enc["c"].encrypt(b"c at 1")
    assert (enc["c"].kid >> 8) & 0xFF == 1 and enc["c"].ctr == 1 and enc["c"].take_keyframe_request()
    assert dec[("a", "c")].decrypt(frame) == dec[("b", "c")].decrypt(frame) == b"c at 1"
    assert {k.epoch for k in (a, b, c)} == {1}


def test_epoch_byte_wraps_from_255_to_256() -> None:
    clock = FakeClock()
    sender, receiver = _keys(clock, epoch=255), _keys(clock, epoch=255)
    enc, dec = FrameEncryptor(sender), FrameDecryptor(receiver)
    late = FrameEncryptor(_keys(clock, epoch=255))
    assert dec.decrypt(enc.encrypt(b"255")) == b"255"
    sender.advance()
    assert (sender.new_sender_kid() >> 8) & 0xFF == 0
    assert dec.decrypt(enc.encrypt(b"256")) == b"256" and receiver.epoch == 256
    assert dec.decrypt(late.encrypt(b"a lagging 255")) == b"a lagging 255"  # still in its grace period
    assert receiver.epoch == 256


def test_old_epochs_are_refused_after_the_grace_period() -> None:
    clock = FakeClock()
    sender, receiver = _keys(clock), _keys(clock)
    lagging = FrameEncryptor(_keys(clock))
    dec = FrameDecryptor(receiver)
    receiver.advance()
    assert dec.decrypt(lagging.encrypt(b"in grace")) == b"in grace"
    clock.advance(receiver.grace + 0.1)
    with pytest.raises(UnknownKey):
        dec.decrypt(lagging.encrypt(b"too late"))
    fresh = FrameEncryptor(sender)  # a new KID in epoch 0: no cached key to fall back on
    with pytest.raises(UnknownKey):
        dec.decrypt(fresh.encrypt(b"too late"))


def _forged(keys: EpochKeys, epoch_delta: int) -> bytes:
    kid = kid_v2(0x1234567890, keys.epoch + epoch_delta, keys.current.fingerprint)
    return header_encoder(kid)(0) + bytes(40)


def test_a_forged_far_future_epoch_costs_no_derivation() -> None:
    keys = _keys()
    dec = FrameDecryptor(keys)
    for delta in (MAX_AHEAD + 1, 200, 255):
        with pytest.raises(UnknownKey):
            dec.decrypt(_forged(keys, delta))
    assert keys.derivations == 0 and keys.epoch == 0


def test_a_forged_near_epoch_with_a_bad_tag_changes_nothing() -> None:
    keys = _keys()
    dec = FrameDecryptor(keys)
    before = keys.current
    with pytest.raises(AuthenticationFailed):
        dec.decrypt(_forged(keys, 5))
    assert keys.current is before and keys.generation == 0 and keys.derivations <= 5


def test_a_receiver_follows_up_to_sixteen_epochs_ahead() -> None:
    sender, receiver = _keys(), _keys()
    enc, dec = FrameEncryptor(sender), FrameDecryptor(receiver)
    for _ in range(MAX_AHEAD):
        sender.advance()
    assert dec.decrypt(enc.encrypt(b"far")) == b"far" and receiver.epoch == MAX_AHEAD
    sender.advance()
    sender.advance()
    assert dec.decrypt(enc.encrypt(b"again")) == b"again" and receiver.epoch == MAX_AHEAD + 2


def test_v1_and_v2_do_not_misread_each_other() -> None:
    v1 = SharedSecret(SECRET, context=b"room", suite=1)
    v2 = _keys()
    assert v1.current.fingerprint != v2.current.fingerprint  # else this test proves nothing
    with pytest.raises(UnknownKey):
        FrameDecryptor(v1).decrypt(FrameEncryptor(v2).encrypt(b"v2"))
    with pytest.raises(UnknownKey):
        FrameDecryptor(v2).decrypt(FrameEncryptor(v1).encrypt(b"v1"))


def test_advance_notifies_listeners_once_per_step() -> None:
    keys = _keys()
    calls: list[int] = []
    remove = keys.add_rotation_listener(lambda: calls.append(keys.epoch))
    keys.advance()
    keys.advance()
    remove()
    keys.advance()
    assert calls == [1, 2]


def _export_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch: int) -> dict[str, Any]:
    from sealrtc.cli.main import main

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    assert main(["keys", "export", "--epoch", str(epoch), "--suite", "1", "--context", "room",
                 "--secret-file", str(secret_file)]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    data: dict[str, Any] = json.loads(out)
    return data


def test_keys_export_cli_matches_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _export_cli(tmp_path, capsys, 3)
    assert data == _keys(epoch=3).export_epoch()


def test_an_epoch_file_gives_keying_v2_without_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from sealrtc.cli.keys import keys_from

    data = _export_cli(tmp_path, capsys, 3)
    path = tmp_path / "epoch.json"
    path.write_text(json.dumps(data))
    path.chmod(0o644)
    monkeypatch.delenv("SEALRTC_SECRET", raising=False)
    keys = keys_from(argparse.Namespace(epoch_file=str(path), no_e2ee=False, suite=None, context=""))
    assert isinstance(keys, EpochKeys) and keys.epoch == 3 and keys.suite == 1
    err = capsys.readouterr().err
    assert "readable by other users" in err and data["key"] not in err


_EPOCH_FILE_COMMANDS = {
    "load": ["load", "--server", "http://127.0.0.1:9", "--quiet"],
    "publish": ["publish", "--whip", "http://127.0.0.1:9/whip/r", "--duration", "1"],
    "subscribe": ["subscribe", "--whep", "http://127.0.0.1:9/whep/r", "--duration", "1"],
}


@pytest.mark.parametrize("command", sorted(_EPOCH_FILE_COMMANDS))
@pytest.mark.parametrize("content", ["not json but a secret", '{"v": 2, "key": "c2VjcmV0"}', "[1]", None])
def test_a_bad_epoch_file_is_a_usage_error_in_one_line_without_its_path_or_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, command: str
) -> None:
    from sealrtc.cli.main import main

    path = tmp_path / "my-secret-typed-here"
    if content is not None:  # None: a missing file (a secret given where the path belongs)
        path.write_text(content)
        path.chmod(0o600)
    status = main([*_EPOCH_FILE_COMMANDS[command], "--epoch-file", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and "--epoch-file" in err and len(err.strip().splitlines()) == 1
    assert "c2VjcmV0" not in err and "not json but" not in err and "my-secret-typed-here" not in err


def test_joins_advance_the_epoch_at_most_once_a_second() -> None:
    clock = FakeClock()
    keys = _keys(clock)
    assert keys.advance_on_join() and not keys.advance_on_join()
    clock.advance(0.5)
    assert not keys.advance_on_join() and keys.epoch == 1
    clock.advance(0.6)
    assert keys.advance_on_join() and keys.epoch == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ratchet-every", "2"], "--ratchet-every needs keying v2"),
        (["--keying", "2", "--no-e2ee"], "exclude each other"),
        (["--epoch-file", "x.json", "--keying", "1"], "drop --keying 1"),
        (["--keying", "2", "--rotate-every", "3"], "use --ratchet-every"),
        (["--no-e2ee", "--rotate-every", "3"], "--rotate-every needs E2EE"),
    ],
)
def test_keying_option_misuse_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealrtc.cli.main import main

    monkeypatch.setenv("SEALRTC_SECRET", SECRET)
    assert main(["publish", "--whip", "http://127.0.0.1:9/whip/r", *argv]) == 2
    assert message in capsys.readouterr().err


async def test_publish_rotation_follows_the_secret_files_lines_then_stops(tmp_path: Path) -> None:
    import argparse

    from sealrtc.cli.keys import rotating
    from sealrtc.keys import derive_base_key

    from .waiting import eventually

    path = tmp_path / "secrets"
    path.write_text("first secret\nsecond secret\n\nthird secret\n")
    path.chmod(0o600)
    args = argparse.Namespace(secret_file=str(path), rotate_every=0.01)
    keys = SharedSecret("first secret", context=b"c")
    async with rotating(args, keys):
        await eventually(lambda: keys.generation == 2, timeout=10, what="two rotations")
        assert keys.current.material == derive_base_key("third secret", b"c").material
    assert keys.generation == 2  # the file had two more secrets: the rotation stopped there


async def test_publish_rotation_without_more_lines_uses_the_load_rule(tmp_path: Path) -> None:
    import argparse

    from sealrtc.cli.keys import rotating
    from sealrtc.keys import derive_base_key
    from sealrtc.load.keying import rotation_secret

    from .waiting import eventually

    path = tmp_path / "secret"
    path.write_text("only secret\n")
    path.chmod(0o600)
    keys = SharedSecret("only secret")
    seen: list[bytes] = []
    keys.add_rotation_listener(lambda: seen.append(keys.current.material))
    async with rotating(argparse.Namespace(secret_file=str(path), rotate_every=0.01), keys):
        await eventually(lambda: keys.generation >= 2, timeout=10, what="two rotations")
    expected = [derive_base_key(rotation_secret("only secret", n)).material for n in range(1, len(seen) + 1)]
    assert len(seen) >= 2 and seen == expected


@pytest.mark.parametrize(
    ("data", "joined"),
    [
        ({"videoroom": "event", "publishers": [{"id": 8, "display": "x"}]}, True),
        ({"videoroom": "event", "joining": {"id": 9, "display": "x"}}, True),
        ({"videoroom": "event", "publishers": [{"id": 7}]}, False),  # ourselves
        ({"videoroom": "event", "joining": {"id": 7}}, False),
        ({"videoroom": "event", "publishers": [{"id": "8"}, "x"]}, False),  # malformed: skipped
        ({"videoroom": "event", "publishers": "nobody"}, False),
        ({"videoroom": "event", "joining": {"id": True}}, False),
        ({"videoroom": "event", "joining": [9]}, False),
        ({"videoroom": "event", "unpublished": 8}, False),
        ({"videoroom": "event", "leaving": 8}, False),
    ],
)
def test_which_janus_events_announce_a_join(data: dict[str, Any], joined: bool) -> None:
    from sealrtc.signaling.janus import announces_join

    assert announces_join(data, 7) is joined
