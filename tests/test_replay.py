from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sealrtc.replay import ReplayWindow


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
