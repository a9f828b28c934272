"""``RealNode``: the control plane plus one real node (containerd, kubelet, kube-scheduler, Multus), optionally the
chart, all under one state directory.

Only one real node runs on a machine at a time (kubelet and containerd use a few machine-wide paths): ``start`` takes
an exclusive lock and waits for it.  ``stop`` deletes pods gracefully while kubelet still runs (so the runtime's CNI
DEL releases their addresses and removes their network namespaces), then stops each process by its own PID, removes
what kubelet and containerd left outside the state directory and restores the kernel settings kubelet changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from spiderpool.devcluster.binaries import BINARIES, NODE_BINARIES, ensure_binaries
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.controller_manager import CONTROLLERS
from spiderpool.devcluster.ports import free_port
from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.devcluster.realnode import cleanup
from spiderpool.devcluster.realnode.cleanup import SOCKET_HOST_DIR, record_link
from spiderpool.devcluster.realnode.containerd import Containerd
from spiderpool.devcluster.realnode.images import chart_image, pause_image
from spiderpool.devcluster.realnode.kubelet import Kubelet, apiserver_args, node_ip, write_pki
from spiderpool.devcluster.realnode.layout import NodeLayout, RealNodeError, run, shared_netns_dir
from spiderpool.devcluster.realnode.multus import (
    ensure_multus,
    install_plugins,
    kubeadm_config,
    nad_crd,
    write_cni_config,
)
from spiderpool.devcluster.realnode.project_image import project_image

NODE_NAME = "realnode-1"
# What a node needs beyond the workload controllers: DaemonSets, the not-ready taint removed, EndpointSlices (webhooks
# are reached through them), kube-root-ca.crt (every projected service-account token needs it), PDBs.
NODE_CONTROLLERS = (
    "daemonset-controller",
    "node-lifecycle-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "root-ca-certificate-publisher-controller",
    "ttl-controller",
    "disruption-controller",
)
MACHINE_LOCK = Path("/run/lock/spiderpool-realnode.lock")


def _log(message: str) -> None:
    print(f"[realnode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(time.monotonic() - started, 1)
            _log(f"{name}: {self.steps[name]}s")


@contextlib.contextmanager
def machine_lock(timeout: float = 1800) -> Iterator[IO[str]]:
    MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(MACHINE_LOCK, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RealNodeError(f"another real node holds {MACHINE_LOCK} (one per machine)") from None
                time.sleep(1)
        yield handle


class RealNode:
    def __init__(self, *, state_dir: Path, project: Path, node_name: str = NODE_NAME,
                 masters: Sequence[str] = ("rnmv0",)) -> None:
        self.layout = NodeLayout(state_dir.resolve())
        self.project = project.resolve()
        self.node_name = node_name
        self.masters = list(masters)
        self.timings = Timings()
        self.node_ip = ""
        self.image_name = chart_image(self.project)  # the project image, as the chart names it
        self.binaries: dict[str, Path] = {}
        self.plane: ControlPlane | None = None
        self.scheduler: ManagedProcess | None = None
        self.containerd = Containerd(self.layout)
        self.kubelet: Kubelet | None = None
        self._lock: contextlib.ExitStack | None = None

    # --- what clients need -----------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.layout.control_plane / "kubeconfig"

    def running_plane(self) -> ControlPlane:
        if self.plane is None:
            raise RealNodeError("the real node has not been started")
        return self.plane

    def kubectl(self, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
        return run([str(self.binaries["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args],
                   what=f"kubectl {' '.join(args[:3])}", input_text=input_text, timeout=timeout)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> str:
        items = manifest if isinstance(manifest, list) else [manifest]
        return self.kubectl("apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                         "items": items}))

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self._lock = contextlib.ExitStack()
        with self.timings.step("wait for the machine's real-node lock"):
            handle = self._lock.enter_context(machine_lock())
        previous = Path(MACHINE_LOCK.with_suffix(".owner").read_text().strip()) if MACHINE_LOCK.with_suffix(
            ".owner").exists() else None
        if previous is not None and previous.is_dir():
            _log(f"sweeping what the real node in {previous} left behind (it ended without its teardown)")
            cleanup.sweep(NodeLayout(previous))
        MACHINE_LOCK.with_suffix(".owner").write_text(f"{self.layout.root}\n")
        del handle
        try:
            self._prepare()
            self._start_processes()
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        with self.timings.step("Kubernetes binaries (cache or build)"):
            self.binaries = ensure_binaries([*BINARIES, *NODE_BINARIES])
        with self.timings.step("Multus (cache or build)"):
            self._multus = ensure_multus()
        with self.timings.step("pause image (cache or build)"):
            self._pause = pause_image()
        with self.timings.step("project image (cache or build)"):
            self._project_image = project_image(self.project)
        self.node_ip = node_ip()
        write_pki(self.layout.pki)
        for master in self.masters:
            self.add_master(master)
        shared_netns_dir()
        if not SOCKET_HOST_DIR.exists():  # the chart's hostPath (DirectoryOrCreate): removed on stop
            (self.layout.root / "created-socket-dir").touch()

    def _start_processes(self) -> None:
        cp = self.layout.control_plane
        with self.timings.step("control plane (etcd, kube-apiserver, kube-controller-manager, CRDs)"):
            self.plane = ControlPlane(
                state_dir=cp, with_controller_manager=True, apiserver_args=apiserver_args(self.layout.pki),
                binaries=self.binaries, controllers=(*CONTROLLERS, *NODE_CONTROLLERS),
                controller_manager_args=[f"--root-ca-file={cp / 'cluster' / 'pki' / 'apiserver.crt'}"])
            self.plane.start()
            self.plane.sync_api().install_crds()
            self.apply(nad_crd())
            self.kubectl("wait", "--for=condition=Established", "crd/network-attachment-definitions.k8s.cni.cncf.io")
        self.scheduler = ManagedProcess("kube-scheduler", [
            str(self.binaries["kube-scheduler"]), f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            "--secure-port=0"], log_path=self.layout.log("kube-scheduler"))
        self.scheduler.start()
        with self.timings.step("containerd + image import"):
            self.containerd.start()
            self.containerd.import_image(self._pause.archive)
            self.containerd.import_image(self._project_image.archive)
        install_plugins(self.layout, self._multus)
        write_cni_config(self.layout, self.kubeconfig)
        with self.timings.step("kubelet start -> Node Ready"):
            self.kubelet = Kubelet(binary=self.binaries["kubelet"], layout=self.layout, kubeconfig=self.kubeconfig,
                                   node_name=self.node_name, address=self.node_ip, port=free_port())
            self.kubelet.start()
            self.wait_node_ready()
        self.apply(kubeadm_config())  # kube-system exists by now

    def wait_node_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.kubelet is None or not self.kubelet.running():
                tail = self.kubelet.process.log_tail() if self.kubelet and self.kubelet.process else ""
                raise RealNodeError(f"kubelet is not running; log {self.layout.log('kubelet')}:\n{tail}")
            try:
                self.kubectl("wait", "--for=condition=Ready", f"node/{self.node_name}", "--timeout=5s", timeout=30)
                return
            except RealNodeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def add_master(self, name: str) -> None:
        """A veth pair ``name``/``name``p on the host, both up: a macvlan master (this kernel has no dummy links)."""
        if subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0:
            return
        run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], what=f"create master {name}")
        record_link(self.layout, name)
        for link in (name, f"{name}p"):
            run(["ip", "link", "set", link, "up"], what=f"set {link} up")

    def stop_kubelet(self) -> None:
        """Stop only the kubelet (pods keep running; their DELs are not sent): the leak-collection scenario."""
        if self.kubelet is not None:
            self.kubelet.stop()

    def start_kubelet(self) -> None:
        if self.kubelet is None:
            raise RealNodeError("the real node has not been started")
        self.kubelet.start()
        self.wait_node_ready()

    def stop(self) -> None:
        with self.timings.step("teardown"):
            cleanup.teardown(self)
        if self._lock is not None:
            MACHINE_LOCK.with_suffix(".owner").unlink(missing_ok=True)
            self._lock.close()
            self._lock = None
