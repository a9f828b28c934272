"""``ControlPlane``: a real etcd + kube-apiserver (+ optional kube-controller-manager) on 127.0.0.1.

Everything lives under ``state_dir``: the kubeconfig at ``state_dir/kubeconfig`` and the rest under
``state_dir/cluster/`` (etcd data, certificates, token file, logs), so removing the state is removing those two.
Children die with the process that started them (see ``processes``); ``stop`` is also registered with ``atexit``.
"""

from __future__ import annotations

import atexit
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from spiderpool.devcluster.apiserver import ApiServer, ApiServerConfig
from spiderpool.devcluster.binaries import ensure_binaries
from spiderpool.devcluster.controller_manager import CONTROLLERS, ControllerManager
from spiderpool.devcluster.credentials import (
    ADMIN_GROUPS,
    ADMIN_USER,
    TokenEntry,
    new_token,
    write_kubeconfig,
    write_service_account_key,
    write_token_file,
)
from spiderpool.devcluster.etcd import EtcdServer
from spiderpool.k8s.sync_api import SyncApi


@dataclass(frozen=True)
class StateLayout:
    """Where a control plane keeps its files under ``root``."""

    root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def cluster_dir(self) -> Path:
        return self.root / "cluster"

    @property
    def etcd_data(self) -> Path:
        return self.cluster_dir / "etcd"

    @property
    def cert_dir(self) -> Path:
        return self.cluster_dir / "pki"

    @property
    def service_account_key(self) -> Path:
        return self.cert_dir / "service-account.key"

    @property
    def token_file(self) -> Path:
        return self.cluster_dir / "tokens.csv"

    def log(self, component: str) -> Path:
        return self.cluster_dir / "logs" / f"{component}.log"

    def remove(self) -> None:
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)


class ControlPlane:
    """Context manager: ``with ControlPlane(state_dir=...) as cp:`` starts it, leaving the block stops it."""

    def __init__(
        self,
        *,
        state_dir: Path,
        with_controller_manager: bool = False,
        apiserver_args: Sequence[str] = (),
        binaries: Mapping[str, Path] | None = None,
        controllers: Sequence[str] = CONTROLLERS,
        controller_manager_args: Sequence[str] = (),
    ) -> None:
        self.layout = StateLayout(state_dir.resolve())
        self.with_controller_manager = with_controller_manager
        self.token = new_token()
        self._tokens = [TokenEntry(self.token, ADMIN_USER, ADMIN_GROUPS)]
        self._apiserver_args = tuple(apiserver_args)
        self._controllers = tuple(controllers)
        self._controller_manager_args = tuple(controller_manager_args)
        self._binaries = dict(binaries or {})
        self._etcd: EtcdServer | None = None
        self._apiserver: ApiServer | None = None
        self._controller_manager: ControllerManager | None = None

    # --- what clients need -----------------------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.layout.root

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def server(self) -> str:
        return self._running_apiserver().server

    @property
    def ca_file(self) -> Path:
        return self._running_apiserver().ca_file

    @property
    def etcd_url(self) -> str:
        """etcd's client URL (plain HTTP on 127.0.0.1), for tests that act on etcd itself (e.g. compaction)."""
        if self._etcd is None:
            raise RuntimeError("the control plane has not been started")
        return self._etcd.client_url

    def sync_api(self) -> SyncApi:
        """Synchronous requests with the admin token (readiness, CRD installation, raw requests in tooling and
        tests); the same request function and typed errors as the daemons' client."""
        return SyncApi(server=self.server, token=self.token, ca_file=self.ca_file)

    def pids(self) -> dict[str, int]:
        """Process ids of the running components, by binary name."""
        components = (self._etcd, self._apiserver, self._controller_manager)
        processes = [c.process for c in components if c is not None and c.process is not None]
        return {p.name: p.pid for p in processes if p.running() and p.pid is not None}

    def exited_components(self) -> list[str]:
        """Components that were started and have since died (the supervisor gives up when this is not empty)."""
        components = (self._etcd, self._apiserver, self._controller_manager)
        processes = [c.process for c in components if c is not None and c.process is not None]
        return [p.name for p in processes if not p.running()]

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._apiserver is not None:
            raise RuntimeError(f"control plane in {self.state_dir} is already started")
        atexit.register(self.stop)
        try:
            self._start_components()
        except BaseException:
            self.stop()
            self._etcd = self._apiserver = self._controller_manager = None
            raise

    def _start_components(self) -> None:
        names = ["etcd", "kube-apiserver"] + (["kube-controller-manager"] if self.with_controller_manager else [])
        self._binaries.update(ensure_binaries(names))
        layout = self.layout
        layout.cluster_dir.mkdir(parents=True, exist_ok=True)
        write_token_file(layout.token_file, self._tokens)
        if not layout.service_account_key.exists():
            write_service_account_key(layout.service_account_key)
        self._etcd = EtcdServer(binary=self._binaries["etcd"], data_dir=layout.etcd_data, log_path=layout.log("etcd"))
        self._etcd.start()
        config = ApiServerConfig(
            binary=self._binaries["kube-apiserver"],
            etcd_url=self._etcd.client_url,
            cert_dir=layout.cert_dir,
            token_file=layout.token_file,
            service_account_key=layout.service_account_key,
            log_path=layout.log("kube-apiserver"),
            service_account_admission=self.with_controller_manager,
            extra_args=self._apiserver_args,
        )
        self._apiserver = ApiServer(config)
        self._apiserver.start(admin_token=self.token)
        write_kubeconfig(layout.kubeconfig, server=self.server, ca_file=self.ca_file, token=self.token)
        if self.with_controller_manager:
            self.start_controller_manager()

    def stop(self) -> None:
        """Stop every component (controller-manager, apiserver, etcd); idempotent.  The state stays on disk."""
        for component in (self._controller_manager, self._apiserver, self._etcd):
            if component is not None:
                component.stop()
        atexit.unregister(self.stop)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver and start it again on the same port; etcd (and so every object) is untouched."""
        apiserver = self._running_apiserver()
        apiserver.stop()
        apiserver.start(admin_token=self.token)

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver, as a crash would (fault injection); ``start_apiserver`` brings it back."""
        self._running_apiserver().kill()

    def start_apiserver(self) -> None:
        """Start a stopped or killed kube-apiserver again on its port; returns once it serves every CRD; no-op if it
        runs."""
        apiserver = self._running_apiserver()
        if not apiserver.running():
            apiserver.start(admin_token=self.token)

    def start_controller_manager(self) -> None:
        """Start kube-controller-manager unless it runs already; returns once its controllers act."""
        if self._controller_manager is not None and self._controller_manager.running():
            return
        self._running_apiserver()
        if "kube-controller-manager" not in self._binaries:
            self._binaries.update(ensure_binaries(["kube-controller-manager"]))
        self._controller_manager = ControllerManager(
            binary=self._binaries["kube-controller-manager"],
            kubeconfig=self.kubeconfig,
            log_path=self.layout.log("kube-controller-manager"),
            controllers=self._controllers,
            extra_args=self._controller_manager_args,
        )
        self._controller_manager.start(api=self.sync_api())

    def add_token(self, *, user: str, groups: Sequence[str]) -> str:
        """A new bearer token for ``user`` in ``groups``; restarts the apiserver when it already runs (static file)."""
        token = new_token()
        self._tokens.append(TokenEntry(token, user, tuple(groups)))
        if self._apiserver is not None:
            write_token_file(self.layout.token_file, self._tokens)
            self.restart_apiserver()
        return token

    def _running_apiserver(self) -> ApiServer:
        if self._apiserver is None or self._apiserver.port is None:
            raise RuntimeError("the control plane has not been started")
        return self._apiserver

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
