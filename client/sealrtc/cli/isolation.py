"""Run sealrtc inside a private network namespace (what ``scripts/isolated`` does, in Python).

``sealrtc demo`` re-executes itself in one so that its WebRTC traffic cannot leave the machine:
``unshare -n`` as root, ``unshare -rn`` otherwise, then a veth pair with two addresses (WebRTC
stacks ignore loopback). Inside, ``SEALRTC_NETNS=1``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys

SETUP = (
    "ip link set lo up && "
    "ip link add sealrtc0 type veth peer name sealrtc1 && "
    "ip addr add 10.77.0.1/24 dev sealrtc0 && ip addr add 10.77.0.2/24 dev sealrtc1 && "
    "ip link set sealrtc0 up && ip link set sealrtc1 up && "
    "(sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true)"
)


def inside_namespace() -> bool:
    return os.environ.get("SEALRTC_NETNS") == "1"


_NOT_THERE = ("cannot reach ", "did not answer within", "did not complete the WebSocket handshake", " answered 404",
              " answered 405")  # fmt: skip
"""What a server error says when the server may simply live in another network namespace."""


def namespace_hint(message: str) -> str:
    """A hint to add to a server that cannot be reached (or answers as another one would), for a
    command started outside any private namespace: a relay or Janus started with
    ``scripts/isolated --name NAME`` is only there for commands started the same way, and
    outside, whatever listens on the host's port answers instead."""
    if inside_namespace() or not any(text in message for text in _NOT_THERE):
        return ""
    return (" (this command runs outside any private network namespace: if the server runs in one, start this "
            "command in it too: scripts/isolated --name NAME sealrtc ...)")  # fmt: skip


def run_isolated(argv: list[str], *, pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None) -> int:
    """Run ``argv`` in a fresh private namespace; return its exit code (127 if impossible).
    ``pass_fds`` stay open in it (sockets opened here stay in this namespace: a way out for a
    listener only); ``env`` is added to the environment."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        print("sealrtc: 'unshare' and 'ip' (util-linux, iproute2) are needed to isolate the demo", file=sys.stderr)
        return 127
    flags = "-n" if os.geteuid() == 0 else "-rn"
    script = f"{SETUP} && export SEALRTC_NETNS=1 && exec {shlex.join(argv)}"
    process = subprocess.Popen(
        ["unshare", flags, "--", "sh", "-c", script], pass_fds=pass_fds, env={**os.environ, **(env or {})}
    )

    def forward(signum: int, _frame: object) -> None:
        # The isolated command (same PID: unshare and sh exec it) reports and exits by itself.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
