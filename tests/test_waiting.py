"""tests.waiting.eventually: returns once the state holds, wakes on events, fails naming what it waited for."""

from __future__ import annotations

import asyncio

import pytest

from .waiting import eventually

pytestmark = pytest.mark.unit


async def test_returns_at_once_when_the_predicate_holds() -> None:
    await eventually(lambda: True, timeout=0, what="nothing")


async def test_a_failure_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.1 s waiting for the moon"):
        await eventually(lambda: False, timeout=0.1, what="the moon")


async def test_async_predicates_are_awaited() -> None:
    checks: list[int] = []

    async def third_time() -> bool:
        checks.append(1)
        return len(checks) == 3

    await eventually(third_time, timeout=10, what="the third check")
    assert len(checks) == 3


async def test_any_event_wakes_the_check() -> None:
    state = {"done": False}
    quiet, loud = asyncio.Event(), asyncio.Event()

    def finish() -> None:
        state["done"] = True
        loud.set()

    asyncio.get_running_loop().call_soon(finish)
    await eventually(lambda: state["done"], timeout=10, what="the callback", event=(quiet, loud))
    assert not loud.is_set()  # consumed by the check that saw the change


async def test_an_event_that_never_comes_still_times_out() -> None:
    with pytest.raises(AssertionError, match="waiting for a silent event"):
        await eventually(lambda: False, timeout=0.1, what="a silent event", event=asyncio.Event())
