"""Attacks on the embedded relay, round 2 (issue 17, items 1-4, 6, 7), each against the real relay.

Real HTTP and real aiortc peers in the private namespace. The namespace has two addresses: the
attacker's sockets are bound to 10.77.0.1, the relay listens on 10.77.0.2, so a legitimate client
that connects there without binding comes from 10.77.0.2 (another client to the relay's budgets).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from sealrtc import SharedSecret
from sealrtc.agents import PublisherAgent, SubscriberAgent
from sealrtc.cli.main import main
from sealrtc.relay.auth import BearerTokens, exposed_without_tokens
from sealrtc.relay.budget import FdReserve, Shares, client_of
from sealrtc.relay.cors import check_origin
from sealrtc.relay.server import Relay, start_relay
from sealrtc.relay.trickle import MAX_SESSION_CANDIDATES

from .rtc_helpers import new_pc, require_namespace
from .waiting import eventually

pytestmark = pytest.mark.network

ATTACKER, RELAY_ADDRESS = "10.77.0.1", "10.77.0.2"
SDPFRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}


async def serve(host: str = "127.0.0.1", **options: object) -> tuple[Relay, aiohttp.web.AppRunner, str]:
    require_namespace()
    relay, runner, port = await start_relay(host, 0, **options)  # type: ignore[arg-type]
    return relay, runner, f"http://{host}:{port}"


async def silent_offer(direction: str = "recvonly") -> str:
    """A real aiortc offer without ICE candidates (it can never connect by itself)."""
    pc = new_pc()
    pc.addTransceiver("video", direction=direction)
    pc.addTransceiver("audio", direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    lines = [line for line in sdp.splitlines() if not line.startswith(("a=candidate", "a=end-of-candidates"))]
    return "\r\n".join(lines) + "\r\n"


def candidates(first: int, count: int) -> list[str]:
    """``count`` distinct host candidates (ports nobody listens on, inside the namespace)."""
    return [f"a=candidate:{n} 1 udp 2122260223 {ATTACKER} {20000 + n} typ host" for n in range(first, first + count)]


async def raw(base: str, source: str | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port), local_addr=(source, 0) if source else None)


async def request(
    base: str, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, base + path, data=body, headers=headers or {}) as r:
            return r.status, await r.text(), dict(r.headers)


async def refusal(reader: asyncio.StreamReader) -> bytes:
    """What a refused connection got before it closed: its answer, or ``b"reset"`` (a client that
    had already sent bytes the relay never read may get a reset rather than the 429)."""
    try:
        return await asyncio.wait_for(reader.read(), 30)
    except ConnectionResetError:
        return b"reset"


async def whep(base: str, offer: str, source: str | None = None) -> tuple[int, str, dict[str, str]]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(f"{base}/whep/r", data=offer, headers={"Content-Type": "application/sdp"}) as r:
            return r.status, await r.text(), dict(r.headers)


# -- 1. every request body has a deadline ------------------------------------------------------


async def test_a_body_that_never_arrives_gets_408_on_every_route() -> None:
    """PATCH headers with ``Content-Length: 16000`` and no body held their connection forever."""
    relay, runner, base = await serve(body_timeout=1.0, idle_timeout=30.0)
    try:
        status, _, headers = await request(
            base, "POST", "/whep/r", await silent_offer(), {"Content-Type": "application/sdp"}
        )
        assert status == 201
        resource_path = headers["Location"]
        heads = [
            f"PATCH {resource_path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/trickle-ice-sdpfrag\r\n",
            f"DELETE {resource_path} HTTP/1.1\r\nHost: x\r\n",
            "GET /stats HTTP/1.1\r\nHost: x\r\n",
            "POST /nowhere HTTP/1.1\r\nHost: x\r\n",
        ]
        stalled = []
        for head in heads:
            connection = await raw(base)
            connection[1].write(f"{head}Content-Length: 16000\r\n\r\n".encode())
            stalled.append(connection)
        for reader, writer in stalled:
            answer = await asyncio.wait_for(reader.read(), 30)  # until the relay closes it
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
            assert b"not received within 1 s" in answer
            writer.close()
        assert relay.stats.requests_timed_out == len(heads)
        assert len(relay.guard.connections) == 0  # nothing held
        assert (await request(base, "GET", "/stats"))[0] == 200
    finally:
        await runner.cleanup()


# -- 2. trickle candidates per session are capped ---------------------------------------------


async def test_trickle_candidates_per_session_are_capped() -> None:
    """60 PATCHes of 64 candidates made 3840 remote candidates: the relay crawled."""
    relay, runner, base = await serve()
    try:
        status, _, headers = await request(
            base, "POST", "/whep/r", await silent_offer(), {"Content-Type": "application/sdp"}
        )
        assert status == 201
        path = headers["Location"]
        session = relay._resources[path.rsplit("/", 1)[1]][1]
        statuses = []
        for batch in range(10):  # 10 PATCHes of 10 candidates: 100 offered, at most 32 kept
            fragment = "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + "\r\n".join(candidates(batch * 10, 10))
            statuses.append((await request(base, "PATCH", path, fragment + "\r\n", SDPFRAG))[0])
        assert statuses[:3] == [204, 204, 204] and set(statuses[3:]) == {422}
        assert relay.stats.candidates_refused == 7
        ice = session.pc.getTransceivers()[0].receiver.transport.transport
        assert len(ice.getRemoteCandidates()) == 30 <= MAX_SESSION_CANDIDATES
        assert len(session.candidates) == 30
        again = "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + "\r\n".join(candidates(0, 10) + candidates(200, 2))
        assert (await request(base, "PATCH", path, again, SDPFRAG))[0] == 204  # 10 known + 2 new: 32
        status, text, _ = await request(base, "PATCH", path, "\r\n".join(candidates(500, 1)), SDPFRAG)
        assert status == 422 and "at most 32" in text
        assert len(ice.getRemoteCandidates()) == len(session.candidates) == MAX_SESSION_CANDIDATES
        for _ in range(60):  # the review's attack: 60 PATCHes of 64 candidates, refused whole
            fragment = "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + "\r\n".join(candidates(1000, 64))
            assert (await request(base, "PATCH", path, fragment, SDPFRAG))[0] == 422
        assert len(ice.getRemoteCandidates()) == MAX_SESSION_CANDIDATES
        big = (await silent_offer()).replace("a=mid:0", "a=mid:0\r\n" + "\r\n".join(candidates(0, 40)), 1)
        status, text, _ = await request(base, "POST", "/whep/r", big, {"Content-Type": "application/sdp"})
        assert status == 400 and "ICE candidates" in text  # nor through the offer
    finally:
        await runner.cleanup()


# -- 3. secure defaults ------------------------------------------------------------------------


async def test_by_default_a_second_publisher_cannot_take_a_live_room() -> None:
    relay, runner, base = await serve()
    owner = PublisherAgent(SharedSecret("owner"))
    try:
        await owner.publish_whip(f"{base}/whip/live")
        await eventually(
            lambda: relay.rooms["live"].active is not None, timeout=20, what="the owner to connect", event=relay.changed
        )
        status, text, headers = await request(
            base, "POST", "/whip/live", await silent_offer("sendonly"), {"Content-Type": "application/sdp"}
        )
        assert status == 409 and "publisher" in text and headers["Retry-After"]
        assert relay.rooms["live"].active is not None and len(relay.rooms["live"].publishers) == 1
    finally:
        await owner.close()
        await runner.cleanup()


@pytest.mark.unit
def test_exposed_relay_refuses_to_start_without_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    for listen in ("0.0.0.0:0", "10.77.0.2:0", "[::]:0", "relay.example:0"):
        assert main(["relay", "--listen", listen, "--duration", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "--publish-token-file" in err and "--open" in err and "token_urlsafe" in err


@pytest.mark.unit
def test_only_loopback_may_run_without_publish_tokens() -> None:
    for host in ("127.0.0.1", "127.3.2.1", "localhost", "LOCALHOST", "[::1]", "::1"):
        assert not exposed_without_tokens(host, None), host
    for host in ("0.0.0.0", "::", "[::]", "10.77.0.2", "relay.example", "127.0.0.1.example", "::ffff:10.0.0.1"):
        assert exposed_without_tokens(host, None), host
        assert not exposed_without_tokens(host, BearerTokens(["t"]))


def test_exposed_relay_starts_open_on_purpose_or_with_tokens(tmp_path: Path) -> None:
    require_namespace()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRTC_") or k == "SEALRTC_NETNS"}
    cmd = [sys.executable, "-m", "sealrtc", "relay", "--listen", f"{RELAY_ADDRESS}:0", "--duration", "0.5"]
    opened = subprocess.run([*cmd, "--open"], capture_output=True, text=True, timeout=60, env=env)
    assert opened.returncode == 0 and "(open: no tokens)" in opened.stderr
    (tmp_path / "token").write_text("pub-only-token\n")
    guarded = subprocess.run(
        [*cmd, "--publish-token-file", str(tmp_path / "token")], capture_output=True, text=True, timeout=60, env=env
    )
    assert guarded.returncode == 0 and "required to publish" in guarded.stderr
    assert "pub-only-token" not in guarded.stderr


# -- 4. per-client budgets and the descriptor reserve -----------------------------------------


async def test_one_client_cannot_hold_every_connection() -> None:
    """256 idle sockets or 300 half-sent requests from one address used to lock everyone out."""
    relay, runner, base = await serve(RELAY_ADDRESS, max_connections=24, max_connections_per_client=8)
    held = []
    try:
        for n in range(24):
            connection = await raw(base, ATTACKER)
            if n % 2:
                connection[1].write(b"POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Ty")  # half-sent
            held.append(connection)
        answers = [await refusal(reader) for reader, _ in held[8:]]
        assert all(a.startswith(b"HTTP/1.1 429") and b"Retry-After: 5" in a for a in answers[::2])  # idle ones
        assert all(a.startswith(b"HTTP/1.1 429") or a == b"reset" for a in answers[1::2])  # half-sent ones
        assert relay.stats.connections_refused_client == 16
        status, _, _ = await request(base, "GET", "/stats")  # another address is served
        assert status == 200
        assert relay.stats.connections_refused == 0  # the global cap was never reached
    finally:
        for _, writer in held:
            writer.close()
        await runner.cleanup()


async def test_one_client_cannot_hold_every_pending_session() -> None:
    """256 candidate-less WHEP POSTs used to make the relay answer 503 to everyone for 20 s."""
    relay, runner, base = await serve(RELAY_ADDRESS, max_sessions=12, max_pending_per_client=4)
    offer = await silent_offer()
    keys = SharedSecret("legit")
    pub, sub = PublisherAgent(keys), SubscriberAgent(keys)
    try:
        answers = [await whep(base, offer, ATTACKER) for _ in range(12)]
        assert [a[0] for a in answers] == [201] * 4 + [429] * 8
        assert all(a[2]["Retry-After"] == "5" for a in answers[4:]) and "still connecting" in answers[4][1]
        assert relay.sessions == 4 and relay.stats.requests_refused_client == 8
        await pub.publish_whip(f"{base}/whip/r")  # another address: served, and its media flows
        await sub.subscribe_whep(f"{base}/whep/r")
        await eventually(
            lambda: sub.decoded["video"] >= 10, timeout=20, what="10 decoded video frames", event=sub.changed
        )
    finally:
        for agent in (pub, sub):
            await agent.close()
        await runner.cleanup()


async def test_the_reported_floods_at_default_limits() -> None:
    """The review's numbers, against a relay with its default limits: 300 half-sent requests and
    256 idle sockets, then 256 candidate-less WHEP POSTs, all from one address."""
    relay, runner, base = await serve(RELAY_ADDRESS)
    held = []
    try:
        for n in range(300 + 256):
            connection = await raw(base, ATTACKER)
            if n < 300:
                connection[1].write(b"POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Ty")
            held.append(connection)
        assert (await request(base, "GET", "/stats"))[0] == 200  # another address: served at once
        assert len(relay.guard.connections) <= 32 + 1
        for _, writer in held:
            writer.close()
        offer = await silent_offer()
        statuses = [(await whep(base, offer, ATTACKER))[0] for _ in range(256)]
        assert statuses.count(201) == 32 and statuses.count(429) == 224
        assert (await whep(base, offer))[0] == 201  # another address still gets a session
    finally:
        for _, writer in held:
            writer.close()
        await runner.cleanup()


@pytest.mark.unit
def test_budget_keys_and_shares() -> None:
    assert client_of(("10.77.0.1", 5000)) == "10.77.0.1"
    assert client_of(("::ffff:10.77.0.1", 5000, 0, 0)) == "10.77.0.1"
    assert client_of(("2001:db8:1:2:aaaa::1", 1, 0, 0)) == client_of(("2001:db8:1:2:bbbb::9", 1, 0, 0))
    assert client_of(("2001:db8:1:2::1", 1, 0, 0)) != client_of(("2001:db8:1:3::1", 1, 0, 0))
    for loopback in (("127.0.0.1", 1), ("127.9.9.9", 1), ("::1", 1, 0, 0), ("::ffff:127.0.0.1", 1, 0, 0)):
        assert client_of(loopback) is None  # this host: only the global limits
    assert client_of(None) is None and client_of("/tmp/socket") is None
    shares = Shares(2)
    for _ in range(2):
        assert not shares.full("a")
        shares.take("a")
    assert shares.full("a") and not shares.full("b") and not shares.full(None)
    shares.give("a")
    shares.give("a")
    shares.give("a")  # never below zero
    assert shares.held("a") == 0
    assert FdReserve(64, limit=10**6).low() is False
    assert FdReserve(64, limit=len(os.listdir("/proc/self/fd")) + 10).low() is True


RELAY_UNDER_256_FDS = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from sealrtc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


async def stats_of(base: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(base + "/stats") as response:
        assert response.status == 200
        result: dict[str, object] = await response.json()
        return result


async def test_fd_reserve_keeps_the_relay_answering_at_its_limit() -> None:
    """Under ``ulimit -n 256``, 300 candidate-less POSTs and 200 half-sent requests made
    ``accept()`` fail: nothing was answered, and a new subscriber got nothing afterwards.

    The attacker's pending-session share is lifted here (``--max-pending-per-client 1000``) so
    that the descriptor reserve, not the per-client budget, is what stops it.
    """
    require_namespace()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RELAY_UNDER_256_FDS, "relay", "--listen", f"{RELAY_ADDRESS}:0", "--open",
        "--duration", "180", "--max-pending-per-client", "1000", "--max-sessions", "1000",
        "--max-sessions-per-room", "1000",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    banner = ""
    while "sealrtc relay on" not in banner:  # after the warning that the limit is low
        banner = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        assert banner, "the relay exited before listening"
    base = "http://" + banner.split("http://", 1)[1].split()[0]
    keys = SharedSecret("established")
    pub, sub, late = PublisherAgent(keys), SubscriberAgent(keys), SubscriberAgent(keys, name="late")
    held: list[asyncio.StreamWriter] = []
    try:
        await pub.publish_whip(f"{base}/whip/kept")
        await sub.subscribe_whep(f"{base}/whep/kept")
        await eventually(lambda: sub.decoded["video"] >= 10, timeout=20, what="media before", event=sub.changed)
        offer = await silent_offer()
        host, port = base.removeprefix("http://").split(":")
        head = f"POST /whep/flood HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: {len(offer)}"

        async def flood_post() -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(ATTACKER, 0))
            writer.write(f"{head}\r\nConnection: close\r\n\r\n{offer}".encode())
            try:
                return await asyncio.wait_for(reader.readline(), 60)
            finally:
                writer.close()

        statuses: list[bytes] = []
        for _ in range(300 // 20):  # 20 at a time: within the attacker's connection share
            statuses += await asyncio.gather(*(flood_post() for _ in range(20)))
        created = statuses.count(b"HTTP/1.1 201 Created\r\n")
        short = statuses.count(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert created + short == 300, statuses  # every POST was answered...
        assert 0 < created < 100 and short > 200, (created, short)  # ...and the reserve stopped them
        half_sent = []
        for _ in range(200):
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(ATTACKER, 0))
            writer.write(b"POST /whip/r HTTP/1.1\r\nHost: x\r\nContent-Ty")
            held.append(writer)
            half_sent.append(reader)
        # Another address is served near the limit while they are held (once the burst of refusals,
        # which each take a descriptor for a moment, has been answered).
        stats = {}
        turned_away = 0

        async def served() -> bool:
            nonlocal stats, turned_away
            try:
                stats = await stats_of(base)
            except AssertionError:  # a 503 while the burst is being refused
                turned_away += 1
                return False
            return True

        await eventually(served, timeout=15, what="/stats to be answered from another address")
        assert stats["requests_refused_fds"] == short
        answers = await asyncio.gather(*(refusal(r) for r in half_sent))
        kept = answers.count(b"")  # closed at their header deadline
        refused = [a for a in answers if a.startswith((b"HTTP/1.1 429", b"HTTP/1.1 503")) or a == b"reset"]
        assert kept <= 32 and len(refused) == 200 - kept  # within the share; every other one refused
        stats = await stats_of(base)
        refusals = stats["connections_refused_client"] + stats["connections_refused_fds"]  # type: ignore[operator]
        assert refusals >= len(refused) + turned_away  # (the agents' own liveness probes may add some)
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) < 256
        before = sub.decoded["video"]
        await eventually(
            lambda: sub.decoded["video"] >= before + 30, timeout=20, what="media to keep flowing", event=sub.changed
        )
        for writer in held:
            writer.close()

        async def flood_gone() -> bool:
            return "flood" not in (await stats_of(base))["rooms"]  # type: ignore[operator]

        await eventually(flood_gone, timeout=40, what="the attacker's pending sessions to expire")
        await late.subscribe_whep(f"{base}/whep/kept")  # a new subscriber after the attack
        await eventually(
            lambda: late.decoded["video"] >= 10, timeout=40, what="the late one's media", event=late.changed
        )
    finally:
        for writer in held:
            writer.close()
        for agent in (pub, sub, late):
            await agent.close()
        proc.terminate()
        await proc.wait()


# -- 6. /stats needs a token when there are tokens --------------------------------------------


async def test_stats_needs_a_token_when_tokens_are_configured() -> None:
    relay, runner, base = await serve(publish_tokens=["pub-token"], subscribe_tokens=["sub-token"])
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic cHViLXRva2Vu"}):
            status, text, response_headers = await request(base, "GET", "/stats", headers=headers)
            assert status == 401 and response_headers["WWW-Authenticate"].startswith("Bearer")
            assert "rooms" not in text and "token" in text
        assert relay.stats.requests_unauthorized == 3
        for token in ("pub-token", "sub-token"):
            status, text, _ = await request(base, "GET", "/stats", headers={"Authorization": f"Bearer {token}"})
            assert status == 200 and "rooms" in json.loads(text)
    finally:
        await runner.cleanup()
    _, runner, base = await serve()  # no tokens: open, as before
    try:
        assert (await request(base, "GET", "/stats"))[0] == 200
    finally:
        await runner.cleanup()


# -- 7. the CORS origin is checked at start ---------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    "origin", ["https://app.example\r\nX-Evil: 1", "https://app.example/path", "app.example", "https://a b", "null", ""]
)
def test_a_bad_cors_origin_is_refused_at_start(origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        Relay(cors_origin=origin)
    assert main(["relay", "--cors-origin", origin, "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cors-origin" in err and "Traceback" not in err and "\r" not in err


@pytest.mark.unit
def test_good_cors_origins() -> None:
    for origin in ("*", "https://app.example", "http://127.0.0.1:8080", "http://[::1]:3000", "app-x://h"):
        assert check_origin(origin) == origin
