"""etcd for the local control plane: one member on 127.0.0.1, no fsync (test data, speed over durability)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from spiderpool.devcluster.ports import free_port
from spiderpool.devcluster.processes import ManagedProcess, ProcessExitedError

_MEMBER = "default"


class EtcdServer:
    def __init__(self, *, binary: Path, data_dir: Path, log_path: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.client_port: int | None = None
        self.process: ManagedProcess | None = None

    @property
    def client_url(self) -> str:
        if self.client_port is None:
            raise RuntimeError("etcd has not been started")
        return f"http://127.0.0.1:{self.client_port}"

    def start(self, *, timeout: float = 30.0, attempts: int = 5) -> None:
        """Start on fresh ports, retrying with new ones when a port was taken before etcd could bind it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # etcd refuses a data dir others can read
        for attempt in range(1, attempts + 1):
            client_port, peer_port = free_port(), free_port()
            process = ManagedProcess("etcd", self._argv(client_port, peer_port), log_path=self.log_path)
            process.start()
            self.client_port, self.process = client_port, process
            try:
                process.wait_until(self.healthy, timeout=timeout)
                return
            except ProcessExitedError:
                if attempt == attempts or not process.failed_to_bind():
                    raise
            finally:
                if not process.running():
                    process.stop()

    def _argv(self, client_port: int, peer_port: int) -> list[str]:
        client = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        return [
            str(self.binary),
            f"--name={_MEMBER}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={_MEMBER}={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def healthy(self) -> bool:
        """etcd's own ``/health`` (plain HTTP on 127.0.0.1; not the Kubernetes API, so not its client)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=2.0)
        try:
            connection.request("GET", "/health")
            reply = connection.getresponse()
            status, body = reply.status, reply.read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        try:
            return status == 200 and bool(json.loads(body).get("health") == "true")
        except ValueError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
