"""The event loop sealrtc's commands run on: uvloop where it is installed, else asyncio's own.

uvloop (libuv) spends less CPU per packet than asyncio's selector loop (measured ~13-15% less
CPU for 48 publisher/subscriber pairs in one process, plain and E2EE alike). It is a default
dependency on Linux and macOS; ``SEALRTC_LOOP=asyncio`` forces the standard loop (to compare,
or to debug).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when installed and not disabled; None means asyncio's default."""
    if os.environ.get("SEALRTC_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` would use."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
