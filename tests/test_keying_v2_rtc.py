"""Keying v2 on real aiortc peers: receivers follow a ratcheting sender, joiners cannot read the past."""

from __future__ import annotations

from typing import Any

import pytest
from aiortc import RTCPeerConnection

import sealrtc
from sealrtc.epochs import EpochKeys
from sealrtc.media import TestPatternVideoTrack, ToneAudioTrack

from .media_helpers import Collector
from .rtc_helpers import connect, new_pc, wait_until
from .waiting import eventually

pytestmark = pytest.mark.network

SECRET = "epochs on the wire"


def _recv(session: sealrtc.E2EESession, kind: str) -> dict[str, Any]:
    empty: dict[str, Any] = {"frames_decrypted": 0, "decrypt_failures": {}}
    return next((t for t in session.stats()["tracks"] if t["direction"] == "recv" and t["kind"] == kind), empty)


def _failures(session: sealrtc.E2EESession, kind: str) -> dict[str, int]:
    """Decrypt failures by reason, the reasons that happened only."""
    return {reason: n for reason, n in dict(_recv(session, kind)["decrypt_failures"]).items() if n}


def _sent(session: sealrtc.E2EESession) -> int:
    return sum(int(t["frames_encrypted"]) for t in session.stats()["tracks"] if t["direction"] == "send")


async def _advance_while_sending(session: sealrtc.E2EESession, steps: int) -> None:
    """Advance ``steps`` epochs, each after a few more frames went out under the one before."""
    for _ in range(steps):
        sent = _sent(session)
        await eventually(lambda sent=sent: _sent(session) >= sent + 10, timeout=10, what="frames sent in this epoch")
        session.advance_epoch()


def _pair(pcs: list[RTCPeerConnection]) -> tuple[RTCPeerConnection, RTCPeerConnection]:
    pub, sub = new_pc(), new_pc()
    pcs.extend([pub, sub])
    return pub, sub


async def test_a_receiver_follows_a_ratcheting_sender_without_a_failure(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = _pair(pcs)
    tx, rx = EpochKeys.from_secret(SECRET, context=b"r"), EpochKeys.from_secret(SECRET, context=b"r")
    pub_session, sub_session = sealrtc.attach(pub, tx), sealrtc.attach(sub, rx)
    pub.addTrack(TestPatternVideoTrack(moving=False))
    pub.addTrack(ToneAudioTrack(440.0))
    got = Collector(sub)
    await connect(pub, sub)
    await wait_until(lambda: got.video_count >= 10, got.changed, 20)
    await _advance_while_sending(pub_session, 3)
    v0 = got.video_count
    await wait_until(lambda: got.video_count >= v0 + 20, got.changed, 20)
    assert tx.epoch == rx.epoch == 3  # the receiver followed the frames, no call needed
    for kind in ("video", "audio"):
        assert _failures(sub_session, kind) == {}
    got.stop()


async def test_advance_epoch_needs_keying_v2(pcs: list[RTCPeerConnection]) -> None:
    pc = new_pc()
    pcs.append(pc)
    with pytest.raises(TypeError):
        sealrtc.attach(pc, sealrtc.SharedSecret(SECRET)).advance_epoch()


async def test_a_joiner_from_an_epoch_3_file_reads_epochs_3_and_later_only(pcs: list[RTCPeerConnection]) -> None:
    pub, sub = _pair(pcs)
    tx = EpochKeys.from_secret(SECRET, context=b"j")
    joiner = EpochKeys.from_export(EpochKeys.from_secret(SECRET, context=b"j", epoch=3).export_epoch())
    pub_session, sub_session = sealrtc.attach(pub, tx), sealrtc.attach(sub, joiner)
    pub.addTrack(TestPatternVideoTrack(moving=False))
    pub.addTrack(ToneAudioTrack(440.0))
    got = Collector(sub)
    await connect(pub, sub)
    await eventually(
        lambda: _failures(sub_session, "video").get("unknown_key", 0) >= 5,
        timeout=20,
        what="epoch 0 frames refused",
    )
    await _advance_while_sending(pub_session, 3)
    await wait_until(lambda: got.video_count >= 20 and got.audio_count >= 20, got.changed, 20)
    assert tx.epoch == joiner.epoch == 3
    for kind in ("video", "audio"):
        assert set(_failures(sub_session, kind)) == {"unknown_key"}  # epochs 0-2: nothing else went wrong
        assert _recv(sub_session, kind)["frames_decrypted"] >= 20
    got.stop()
