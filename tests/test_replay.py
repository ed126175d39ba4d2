from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealrtc.replay import ReplayWindow

pytestmark = pytest.mark.unit


def test_window_basics() -> None:
    w = ReplayWindow(128)
    assert w.check(0)
    w.accept(0)
    assert not w.check(0)
    w.accept(200)
    assert not w.check(72)  # 200 - 72 = 128: just outside
    assert w.check(73)
    w.accept(73)
    assert not w.check(73)
    assert w.check(199)


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=200))
def test_window_matches_model(ctrs: list[int]) -> None:
    """Against a set-based model: accept iff unseen and within size of the highest seen."""
    w = ReplayWindow(16)
    seen: set[int] = set()
    for ctr in ctrs:
        expected = ctr not in seen and (not seen or ctr > max(seen) - 16)
        assert w.check(ctr) == expected
        if expected:
            w.accept(ctr)
            seen.add(ctr)


def test_restore_refuses_everything_at_or_below() -> None:
    w = ReplayWindow(16)
    w.restore(100)
    assert w.highest == 100
    assert not any(w.check(c) for c in range(0, 101))
    assert w.check(101)
    w.accept(105)
    assert not w.check(100) and w.check(104)


@given(
    st.lists(st.integers(min_value=0, max_value=300), max_size=60),
    st.integers(min_value=-1, max_value=300),
    st.integers(min_value=0, max_value=300),
)
def test_restore_matches_model(ctrs: list[int], floor: int, probe: int) -> None:
    """After restore(floor): refused iff refused before, or at or below floor."""
    w = ReplayWindow(16)
    for ctr in ctrs:
        if w.check(ctr):
            w.accept(ctr)
    before = w.check(probe)
    w.restore(floor)
    assert w.check(probe) == (before and probe > floor)
