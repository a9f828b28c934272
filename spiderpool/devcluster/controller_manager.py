"""kube-controller-manager with only the controllers a kubelet-less cluster can use.

Workload controllers (Deployment, ReplicaSet, StatefulSet), ownerReference garbage collection, namespace finalisation
and default ServiceAccounts.  Left out on purpose: pod-gc (force-deletes pods bound to Nodes without a kubelet) and
node-lifecycle (taints kubelet-less Nodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.k8s.api_errors import StoreError
from spiderpool.k8s.sync_api import SyncApi

CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "job-controller",
)


class ControllerManager:
    def __init__(self, *, binary: Path, kubeconfig: Path, log_path: Path, controllers: Sequence[str] = CONTROLLERS,
                 extra_args: Sequence[str] = ()) -> None:
        self.binary = binary
        self.controllers = tuple(controllers)
        self.extra_args = tuple(extra_args)
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    def start(self, *, api: SyncApi, timeout: float = 60.0) -> None:
        """Start and wait until its controllers act: the ``default`` namespace gets its ServiceAccount."""
        argv = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--controllers={','.join(self.controllers)}",
            *self.extra_args,
        ]
        self.process = ManagedProcess("kube-controller-manager", argv, log_path=self.log_path)
        self.process.start()

        def default_service_account_exists() -> bool:
            try:
                api.get("/api/v1/namespaces/default/serviceaccounts/default")
            except StoreError:
                return False
            return True

        self.process.wait_until(default_service_account_exists, timeout=timeout, interval=0.25)

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
