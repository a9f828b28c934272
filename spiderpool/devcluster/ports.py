"""Free TCP ports on 127.0.0.1 for the control plane's listeners.

Ports come from below the kernel's ephemeral range, so the outgoing connections of the processes themselves (the
apiserver's many etcd clients) cannot take a port between the check here and the bind in the child.  A port can still
be taken by someone else in that window: callers retry with a fresh port when a child reports a bind failure.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOOPBACK = "127.0.0.1"
_LOWEST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((_LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nobody listens on now and that this process has not handed out before."""
    upper = max(_ephemeral_start(), _LOWEST + 1000)
    for _ in range(200):
        port = random.randrange(_LOWEST, upper)
        if port not in _handed_out and is_free(port):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # crowded range: let the kernel choose
        probe.bind((_LOOPBACK, 0))
        port = int(probe.getsockname()[1])
    _handed_out.add(port)
    return port
