"""Shared fixtures, and the test tiers every test must declare.

Tiers (markers declared in pyproject.toml): ``unit`` (pure: no sockets, no namespace, no Janus,
Chromium or podman) or ``network`` (the private namespace of scripts/test) plus ``janus``,
``browser`` or ``container`` for what else a test needs. A module states its usual tier with
``pytestmark``; a test that differs states all of its own tiers, and they replace the module's
(``-m unit`` then selects exactly the tests whose own tier is unit). `scripts/test --unit` runs
the unit tier alone, outside any namespace.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import pytest
from aiortc import RTCPeerConnection

from .rtc_helpers import require_namespace

TIERS = ("unit", "network", "janus", "browser", "container")
NEEDS_NETWORK = ("janus", "browser", "container")
NO_SOCKETS = "unit tests must not open sockets: mark it network"


def _tiers(node: pytest.Item | pytest.Collector) -> list[pytest.Mark]:
    return [mark for mark in node.own_markers if mark.name in TIERS]


def _tier_problem(names: set[str]) -> str | None:
    if not names:
        return "has no tier: mark it unit, or network (plus janus/browser/container as needed)"
    if "unit" in names and len(names) > 1:
        return f"is marked unit and {', '.join(sorted(names - {'unit'}))}: a unit test needs nothing else"
    missing = sorted(n for n in NEEDS_NETWORK if n in names and "network" not in names)
    if missing:
        return f"is marked {', '.join(missing)} but not network: those run in the private namespace"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Resolve every test's tiers (its own, else its class's, else its module's) before ``-m``
    selects, and refuse the run when a test has none or an impossible mix."""
    resolved: dict[str, list[pytest.Mark]] = {}
    for item in items:
        chain = item.listchain()  # session ... module, class, item
        resolved[item.nodeid] = next((marks for node in reversed(chain) if (marks := _tiers(node))), [])
    for item in items:
        for node in item.listchain():
            node.own_markers[:] = [mark for mark in node.own_markers if mark.name not in TIERS]
    problems = []
    for item in items:
        marks = resolved[item.nodeid]
        item.own_markers.extend(marks)
        problem = _tier_problem({mark.name for mark in marks})
        if problem is not None:
            problems.append(f"  {item.nodeid} {problem}")
    if problems:
        raise pytest.UsageError("tests with a wrong tier (see tests/conftest.py):\n" + "\n".join(problems))


class _SocketGuard:
    """Stands in for the socket module's names during a unit test: local socket pairs (the event
    loop's self-pipe) pass; anything that could reach a network fails the test."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        guard = self

        class GuardedSocket(socket.socket):
            def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
                if fileno is None and family != socket.AF_UNIX:
                    guard.refuse(f"socket.socket({family}, {type})")
                super().__init__(family, type, proto, fileno)

        self.socket_class = GuardedSocket

    def refuse(self, what: str) -> NoReturn:
        self.attempts.append(what)
        raise pytest.fail.Exception(f"{NO_SOCKETS} (it called {what})")

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> NoReturn:
        self.refuse(f"socket.getaddrinfo({host!r}, {port!r})")


@pytest.fixture(autouse=True)
def _unit_tests_open_no_sockets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    guard = _SocketGuard()
    monkeypatch.setattr(socket, "socket", guard.socket_class)
    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    yield
    call = request.node.stash.get(_CALL_REPORT, None)
    if guard.attempts and (call is None or call.passed):  # the code under test swallowed the failure
        pytest.fail(f"{NO_SOCKETS} (it called {', '.join(guard.attempts)})")


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


class FakeClock:
    """A manual clock for the sans-I/O core (no wall-clock sleeps in tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def pcs() -> AsyncIterator[list[RTCPeerConnection]]:
    """Peer connections a test makes (inside the private namespace), closed at its end."""
    require_namespace()
    made: list[RTCPeerConnection] = []
    yield made
    for pc in made:
        await pc.close()
