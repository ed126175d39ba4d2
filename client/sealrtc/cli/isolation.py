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


def run_isolated(argv: list[str]) -> int:
    """Run ``argv`` in a fresh private namespace; return its exit code (127 if impossible)."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        print("sealrtc: 'unshare' and 'ip' (util-linux, iproute2) are needed to isolate the demo", file=sys.stderr)
        return 127
    flags = "-n" if os.geteuid() == 0 else "-rn"
    script = f"{SETUP} && export SEALRTC_NETNS=1 && exec {shlex.join(argv)}"
    process = subprocess.Popen(["unshare", flags, "--", "sh", "-c", script])

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
