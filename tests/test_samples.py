"""The runnable Python sample does what its docstring says (the browser sample has its own tests)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .rtc_helpers import require_namespace

pytestmark = pytest.mark.network

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "e2ee_pair.py"


def run_sample(**env: str) -> tuple[dict[str, int], str, str]:
    require_namespace()
    base = {k: v for k, v in os.environ.items() if k not in ("SEALRTC_SECRET", "SEALRTC_WRONG")}
    result = subprocess.run(
        [sys.executable, str(SAMPLE)], env=base | env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("decoded frames:"))
    decoded: dict[str, int] = ast.literal_eval(line.removeprefix("decoded frames:").strip())
    return decoded, result.stdout, result.stderr


def test_sample_pair_decrypts_and_decodes() -> None:
    decoded, out, stderr = run_sample(SEALRTC_SECRET="sample secret")
    assert decoded["video"] > 30 and decoded["audio"] > 100, out
    assert "secret_mismatch" not in out
    assert "sample secret" not in out + stderr


def test_sample_pair_with_a_wrong_secret_reports_the_mismatch() -> None:
    decoded, out, _ = run_sample(SEALRTC_SECRET="sample secret", SEALRTC_WRONG="1")
    assert decoded == {"video": 0, "audio": 0}, out
    assert "secret_mismatch on video track" in out and "secret_mismatch on audio track" in out


@pytest.mark.unit
def test_sample_without_a_secret_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SEALRTC_SECRET"}
    result = subprocess.run(
        [sys.executable, str(SAMPLE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "set SEALRTC_SECRET" in result.stderr
