"""One simulated node's spiderpool agent: ``python -m spiderpool.agent run`` as a child process that dies with us.

Ready means ``GET /v1/ipam/healthy`` on its unix socket answers 200 (what upstream's CNI binary asks first).  The
testbed can stop it (SIGTERM), kill it (SIGKILL, the crash the e2e tests inflict) and start it again on the same
socket; its log is kept for the failure messages.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from spiderpool.devcluster.processes import ManagedProcess

HEALTH_PATH: Final = "/v1/ipam/healthy"


def unix_http_status(socket_path: Path, path: str, *, timeout: float = 2.0) -> int:
    """The HTTP status of ``GET path`` over the unix socket; 0 when nobody answers."""
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(socket_path))
            connection.sendall(request)
            head = connection.recv(64)
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


@dataclass(frozen=True, slots=True)
class AgentOptions:
    node_name: str
    kubeconfig: Path
    socket_path: Path
    log_path: Path
    config_dir: Path | None = None
    extra_args: Sequence[str] = ()
    # the node's namespace (the coordinator's host side); None: the agent's own
    host_netns: Path | None = None

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "spiderpool.agent",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--node-name",
            self.node_name,
            "--socket",
            str(self.socket_path),
            "--health-port",
            "0",
            "--metrics-port",
            "0",
        ]
        if self.config_dir is not None:
            argv += ["--config-dir", str(self.config_dir)]
        if self.host_netns is not None:
            argv += ["--host-netns", str(self.host_netns)]
        return argv + list(self.extra_args)


class AgentProcess:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self._process = ManagedProcess(
            f"spiderpool-agent[{options.node_name}]", options.argv(), log_path=options.log_path
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process.running() else None

    def running(self) -> bool:
        return self._process.running()

    def healthy(self) -> bool:
        return unix_http_status(self.options.socket_path, HEALTH_PATH) == 200

    def start(self, *, timeout: float = 60.0) -> None:
        """Start and wait until healthy; ProcessExitedError (with the log tail) if it dies, TimeoutError if slow."""
        self._process.start()
        try:
            self._process.wait_until(self.healthy, timeout=timeout, interval=0.05)
        except BaseException:
            self._process.stop(grace=2.0)
            raise

    def kill(self) -> None:
        """SIGKILL, no warning, as the OOM killer or a node crash would; returns once it is gone."""
        pid = self._process.pid
        if pid is not None and self._process.running():
            os.killpg(pid, signal.SIGKILL)
        self._process.stop(grace=5.0)

    def stop(self) -> None:
        self._process.stop(grace=10.0)

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines)
