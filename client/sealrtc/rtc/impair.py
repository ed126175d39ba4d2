"""``impair(pc, up=..., down=...)``: a participant's link, impaired in process.

The shell of :mod:`sealrtc.impairment`: every data datagram the peer connection's ICE transports
send goes through the ``up`` link, every one they receive through the ``down`` link, under DTLS,
so SRTP, RTCP, NACK/RTX and PLI all see the impaired link. No root, no netem, per participant.
ICE's own connectivity and consent checks are not impaired (a lossy link must not look dead).

Delivery happens on the event loop's clock: a datagram the model delays is held in a
:class:`_DelayLine` (one timer per direction, datagrams in the order the model gives them).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from ..impairment import ImpairedLink, Impairment
from . import internals

logger = logging.getLogger(__name__)

__all__ = ["LinkImpairment", "impair"]

MAX_HELD = 4096
"""Datagrams a direction may hold at once; beyond it, they are dropped (counted as queue drops)."""


class _DelayLine:
    """Datagrams waiting for their delivery time, delivered in (time, arrival) order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None], link: ImpairedLink) -> None:
        self._loop = loop
        self._deliver = deliver
        self._link = link
        self._heap: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        return bool(self._heap)

    def hold(self, at: float, item: Any) -> None:
        if len(self._heap) >= MAX_HELD:
            self._link.counters.queue_dropped += 1
            return
        heapq.heappush(self._heap, (at, next(self._order), item))
        if self._heap[0][2] is item:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._heap[0][0], self._release) if self._heap else None

    def _release(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._heap and self._heap[0][0] <= now:
            _, _, item = heapq.heappop(self._heap)
            self._deliver(item)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()


class LinkImpairment:
    """The impaired link of one peer connection: its two directions and what they did."""

    def __init__(self, pc: Any, up: Impairment | None, down: Impairment | None, seed: int) -> None:
        self.pc = pc
        self.up = ImpairedLink(up or Impairment(), seed=seed)
        self.down = ImpairedLink(down or Impairment(), seed=seed + 1)
        self._hooked: set[int] = set()
        self._lines: list[_DelayLine] = []
        self._wrap_peer_connection()

    def stats(self) -> dict[str, object]:
        """``{"up": {...}, "down": {...}}``: each direction's specification and counters."""
        return {
            name: {"impairment": link.impairment.describe(), **link.counters.as_dict()}
            for name, link in (("up", self.up), ("down", self.down))
        }

    def close(self) -> None:
        """Drop what is still held (the peer connection is closing)."""
        for line in self._lines:
            line.close()

    def _wrap_peer_connection(self) -> None:
        pc = self.pc
        set_local, set_remote = pc.setLocalDescription, pc.setRemoteDescription

        async def wrapped_set_local(*args: Any, **kwargs: Any) -> None:
            await set_local(*args, **kwargs)
            self._scan()

        async def wrapped_set_remote(*args: Any, **kwargs: Any) -> None:
            await set_remote(*args, **kwargs)
            self._scan()

        # aiortc starts ICE (and DTLS) in a task scheduled by these calls: transports hooked
        # right after them are hooked before any datagram flows.
        pc.setLocalDescription = wrapped_set_local
        pc.setRemoteDescription = wrapped_set_remote

    def _scan(self) -> None:
        loop = asyncio.get_running_loop()
        for transport in internals.ice_transports(self.pc):
            if id(transport) in self._hooked:
                continue
            self._hooked.add(id(transport))
            internals.wrap_ice_datagrams(
                transport,
                lambda send: self._impaired_send(loop, send),
                lambda deliver: self._impaired_receive(loop, deliver),
            )

    def _impaired_send(self, loop: asyncio.AbstractEventLoop, send: internals.SendDatagram) -> internals.SendDatagram:
        link = self.up
        if link.impairment.is_identity:
            return send

        def transmit(data: bytes) -> None:
            task = loop.create_task(send(data))
            task.add_done_callback(_ignore_closed)

        line = _DelayLine(loop, transmit, link)
        self._lines.append(line)

        async def impaired(data: bytes) -> None:
            now = loop.time()
            for at in link.decide(now, len(data)):
                if at <= now and not line.holding:
                    await send(data)
                else:
                    line.hold(at, data)

        return impaired

    def _impaired_receive(
        self, loop: asyncio.AbstractEventLoop, deliver: internals.ReceiveDatagram
    ) -> internals.ReceiveDatagram:
        link = self.down
        if link.impairment.is_identity:
            return deliver
        line = _DelayLine(loop, lambda item: deliver(*item), link)
        self._lines.append(line)

        def impaired(data: bytes, component: int) -> None:
            now = loop.time()
            for at in link.decide(now, len(data)):
                if at <= now and not line.holding:
                    deliver(data, component)
                else:
                    line.hold(at, (data, component))

        return impaired


def _ignore_closed(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:  # a transport closed meanwhile
        logger.debug("impaired datagram not sent: %s", task.exception())


def impair(pc: Any, *, up: Impairment | None = None, down: Impairment | None = None, seed: int = 0) -> LinkImpairment:
    """Impair what ``pc`` sends (``up``) and receives (``down``), from its next
    ``setLocalDescription``/``setRemoteDescription`` on. Deterministic given ``seed`` and the
    datagram times. Call it before negotiating."""
    return LinkImpairment(pc, up, down, seed)
