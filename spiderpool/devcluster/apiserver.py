"""kube-apiserver for the local control plane: 127.0.0.1 only, static bearer tokens, RBAC, self-signed serving cert."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spiderpool.devcluster.ports import free_port, is_free
from spiderpool.devcluster.processes import ManagedProcess, ProcessExitedError
from spiderpool.k8s.sync_api import SyncApi

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


@dataclass(frozen=True)
class ApiServerConfig:
    binary: Path
    etcd_url: str
    cert_dir: Path
    token_file: Path
    service_account_key: Path
    log_path: Path
    # The ServiceAccount admission plugin rejects pods until the controller-manager has created the namespace's
    # default ServiceAccount, so it is only enabled when that controller runs from the start.
    service_account_admission: bool = False
    extra_args: Sequence[str] = field(default_factory=tuple)


class ApiServer:
    def __init__(self, config: ApiServerConfig) -> None:
        self.config = config
        self.port: int | None = None
        self.process: ManagedProcess | None = None

    @property
    def server(self) -> str:
        if self.port is None:
            raise RuntimeError("kube-apiserver has not been started")
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed serving certificate (and its CA) kube-apiserver writes into ``--cert-dir`` on first start."""
        return self.config.cert_dir / "apiserver.crt"

    def start(self, *, admin_token: str, timeout: float = 60.0, attempts: int = 5) -> None:
        """Start and wait for ``/readyz``; the first start picks the port, later starts (restarts) keep it."""
        fixed_port = self.port
        for attempt in range(1, attempts + 1):
            if fixed_port is None:
                self.port = free_port()
            elif not is_free(fixed_port):
                time.sleep(0.5 * attempt)  # the old listener's socket is still closing
            process = ManagedProcess("kube-apiserver", self._argv(), log_path=self.config.log_path)
            process.start()
            self.process = process
            api = SyncApi(server=self.server, token=admin_token, ca_file=self.ca_file)
            try:
                process.wait_until(api.fully_serving, timeout=timeout, interval=0.25)
                return
            except ProcessExitedError:
                process.stop()
                if attempt == attempts or not process.failed_to_bind():
                    raise

    def _argv(self) -> list[str]:
        config = self.config
        argv = [
            str(config.binary),
            f"--etcd-servers={config.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",  # without it the apiserver looks for a default route and fails
            f"--secure-port={self.port}",
            f"--cert-dir={config.cert_dir}",
            f"--token-auth-file={config.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={config.service_account_key}",
            f"--service-account-signing-key-file={config.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
        ]
        if not config.service_account_admission:
            argv.append("--disable-admission-plugins=ServiceAccount")
        return argv + list(config.extra_args)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, open connections reset (``start`` brings it back on the same port)."""
        if self.process is not None:
            self.process.kill()

    def running(self) -> bool:
        return self.process is not None and self.process.running()

