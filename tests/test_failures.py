"""FailureCounts: the one way dropped frames are added up."""

from __future__ import annotations

import json

import pytest

from sealrtc.errors import DECRYPT_FAILURE_REASONS
from sealrtc.failures import FailureCounts

pytestmark = pytest.mark.unit


def test_every_reason_is_present_and_sums_reason_by_reason() -> None:
    empty = FailureCounts()
    assert list(empty) == list(DECRYPT_FAILURE_REASONS)
    assert empty.total == 0
    total = FailureCounts.sum([{"replayed": 2, "unknown_key": 1}, FailureCounts({"authentication_failed": 4})])
    assert total["replayed"] == 2 and total["unknown_key"] == 1 and total["authentication_failed"] == 4
    assert total.total == 7
    assert total.key_failures == 5


def test_unknown_reasons_are_kept_and_json_round_trips() -> None:
    counts = FailureCounts({"from_a_newer_version": 3})
    counts.count("malformed")
    again = FailureCounts(json.loads(json.dumps(counts)))
    assert again == counts
    assert again["from_a_newer_version"] == 3 and again["malformed"] == 1
    assert again.key_failures == 0
