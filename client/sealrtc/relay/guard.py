"""HTTP connection hygiene for the relay: deadlines, connection caps, log limits.

Without these, a client that opens connections and sends nothing (or half a request line)
holds a file descriptor forever; at the process limit ``accept()`` fails and asyncio logs the
failure on every retry (hundreds of MB of log in a minute and a half). aiohttp only recently
started timing out connections that never send a request, so the relay does it itself, whatever
the aiohttp version:

* a connection must start a request within ``idle_timeout`` seconds of opening (or of its previous
  response), and finish the request's headers within ``header_timeout`` seconds of its first
  byte, or it is dropped;
* every request's body, on every route, must arrive within ``body_timeout`` seconds of its
  headers (:meth:`ConnectionGuard.read_body`, which reads it before any handler runs): else
  ``408`` and the connection is closed. A body that never arrives used to hold its connection
  for good, since the header deadline stops once a request is in progress;
* at most ``max_connections`` are open at once (more are dropped as they arrive), at most
  ``max_connections_per_client`` from one client (more get ``429`` with ``Retry-After``, see
  :mod:`.budget`), and none once the process is close to its open-file limit (``503``);
* :class:`RateLimitFilter` lets one record per kind of message through per interval on the
  loggers that such floods write to (``asyncio``, ``aiohttp.server``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from .budget import CONNECTION_FLOOR, FdReserve, Shares, client_of
from .state import RelayStats

logger = logging.getLogger(__name__)

IDLE, HEADERS, REQUEST = "idle", "headers", "request"
FLOODED_LOGGERS = ("asyncio", "aiohttp.server")
RETRY_AFTER = "5"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refusal(status: str) -> bytes:
    """A complete HTTP response for a connection refused before aiohttp sees it."""
    return (
        f"HTTP/1.1 {status}\r\nRetry-After: {RETRY_AFTER}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


TOO_MANY = _refusal("429 Too Many Requests")
UNAVAILABLE = _refusal("503 Service Unavailable")


class _Connection:
    __slots__ = ("client", "guard", "inner", "state", "timer", "transport")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.client: str | None = None
        self.state = IDLE
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(seconds, self.expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        if self.state != REQUEST and self.transport is not None:
            self.guard.stats.connections_timed_out += 1
            self.transport.abort()


class _GuardedProtocol(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol; watches when requests start and end."""

    def __init__(self, connection: _Connection) -> None:
        self._c = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        guard = self._c.guard
        self._c.transport = transport
        if len(guard.connections) >= guard.max_connections:
            guard.stats.connections_refused += 1
            transport.abort()
            return
        client = client_of(transport.get_extra_info("peername"))
        refusal = None
        if guard.per_client.full(client):
            guard.stats.connections_refused_client += 1
            refusal = TOO_MANY
        elif guard.fds.low(CONNECTION_FLOOR):
            guard.stats.connections_refused_fds += 1
            refusal = UNAVAILABLE
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            return
        self._c.client = client
        guard.per_client.take(client)
        guard.connections[transport] = self._c
        self._c.arm(guard.idle_timeout)
        self._c.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        c = self._c
        if c.state == IDLE:
            c.state = HEADERS
            c.arm(c.guard.header_timeout)
        c.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._c.inner.eof_received()

    def pause_writing(self) -> None:
        self._c.inner.pause_writing()

    def resume_writing(self) -> None:
        self._c.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        c = self._c
        c.disarm()
        if c.transport is not None and c.guard.connections.pop(c.transport, None) is c:
            c.guard.per_client.give(c.client)
            c.inner.connection_lost(exc)


class ConnectionGuard:
    """Per-relay connection registry and deadlines; use :meth:`protocol`, :meth:`middleware`
    (first) and :meth:`read_body` (after CORS, so that a ``408`` carries CORS headers)."""

    def __init__(
        self,
        stats: RelayStats,
        *,
        idle_timeout: float,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        max_connections_per_client: int,
        fds: FdReserve,
    ) -> None:
        if idle_timeout <= 0 or header_timeout <= 0 or body_timeout <= 0:
            raise ValueError("idle_timeout, header_timeout and body_timeout must be > 0 seconds")
        if max_connections < 1 or max_connections_per_client < 1:
            raise ValueError("max_connections and max_connections_per_client must be >= 1")
        self.stats = stats
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.per_client = Shares(max_connections_per_client)
        self.fds = fds
        self.connections: dict[asyncio.BaseTransport, _Connection] = {}

    def protocol(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        return _GuardedProtocol(_Connection(self, inner))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = self.connections.get(request.transport) if request.transport is not None else None
        if connection is not None:
            connection.state = REQUEST
            connection.disarm()
        try:
            return await handler(request)
        finally:
            if connection is not None and connection.transport in self.connections:
                connection.state = IDLE
                connection.arm(self.idle_timeout)

    @web.middleware
    async def read_body(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the whole body (bounded by the app's ``client_max_size``) within ``body_timeout``.

        Handlers then get it from aiohttp's cache (``await request.read()``) without waiting.
        After a ``408`` or ``413`` the connection closes once the answer is sent: the relay's
        runner has no lingering time (:func:`.server.start_relay`), so aiohttp does not wait for
        the rest of the body.
        """
        if request.can_read_body:
            limit = request.client_max_size
            if (request.content_length or 0) > limit:
                raise web.HTTPRequestEntityTooLarge(
                    max_size=limit,
                    actual_size=request.content_length or 0,
                    text=f"request body too large (at most {limit} bytes)\n",
                )
            try:
                async with asyncio.timeout(self.body_timeout):
                    await request.read()
            except TimeoutError:
                self.stats.requests_timed_out += 1
                raise web.HTTPRequestTimeout(
                    text=f"request body not received within {self.body_timeout:g} s\n"
                ) from None
            except web.HTTPRequestEntityTooLarge:
                raise web.HTTPRequestEntityTooLarge(
                    max_size=limit, actual_size=limit + 1, text=f"request body too large (at most {limit} bytes)\n"
                ) from None
        return await handler(request)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._guard = guard
        self.port = port
        """The bound port (the real one once started, also when 0 was asked for)."""

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: guard.protocol(server()), self._host, self._port
        )
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])


class RateLimitFilter(logging.Filter):
    """At most one record per message kind per ``interval`` seconds; the next says how many were
    suppressed. The kind is the message's first line (bounded table of kinds)."""

    MAX_KINDS = 64

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._kinds: OrderedDict[str, tuple[float, int]] = OrderedDict()  # kind -> (last, suppressed)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            kind = str(record.getMessage()).split("\n", 1)[0][:120]
        except Exception:  # a broken record is not ours to judge
            return True
        now = self._clock()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self.interval:
            self._kinds[kind] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} [{last[1]} similar messages suppressed]"
            record.args = ()
        self._kinds[kind] = (now, 0)
        self._kinds.move_to_end(kind)
        while len(self._kinds) > self.MAX_KINDS:
            self._kinds.popitem(last=False)
        return True


def install_log_limits(interval: float = 10.0) -> None:
    """Rate-limit the loggers a connection flood writes to (idempotent)."""
    for name in FLOODED_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RateLimitFilter) for f in target.filters):
            target.addFilter(RateLimitFilter(interval))
