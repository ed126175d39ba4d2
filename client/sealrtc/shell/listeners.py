"""A listening socket handed down from the process that started this one.

``sealrtc load`` with the embedded relay runs itself again inside a private network namespace;
a socket belongs to the namespace it was made in, so the outer process opens the ``/metrics``
listener where the user is and hands it down (an inherited file descriptor named in
:data:`ENV`): Prometheus scrapes it from the host while everything else stays inside.
"""

from __future__ import annotations

import os
import socket

__all__ = ["ENV", "hand_down", "inherited_listener"]

ENV = "SEALRTC_METRICS_FD"


def hand_down(address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket on ``address``, inheritable by a child process (``OSError`` when
    the address cannot be had: the caller says so before starting anything)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    listener = socket.create_server(address, family=family)
    listener.set_inheritable(True)
    return listener


def inherited_listener(address: tuple[str, int]) -> socket.socket | None:
    """The handed-down listener for ``address``'s port, taken once (later callers, and the
    processes this one starts, get None and bind for themselves)."""
    text = os.environ.get(ENV, "")
    if not text.isdigit():
        return None
    listener = socket.socket(fileno=int(text))
    port = listener.getsockname()[1]
    if port != address[1]:
        listener.detach()
        return None
    del os.environ[ENV]
    return listener
