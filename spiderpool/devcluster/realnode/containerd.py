"""containerd (Debian's 1.6) + runc for the real node, every directory under the node's state directory.

Why Debian's 1.6 and not v2 built from the Go module proxy: it is one apt package (no 5-minute cold build on 2 cores),
kubelet 1.36 still accepts it (with a "losing support in 1.37" warning), and both passed the same checks by hand.
CRI option ``restrict_oom_score_adj``: this machine kind's root lacks CAP_SYS_RESOURCE, so runc cannot lower the
sandbox's ``oom_score_adj`` ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"); the option clamps
it to containerd's own score.  cgroupfs driver (cgroup v1 hierarchy, no systemd); overlayfs snapshots.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.devcluster.realnode.layout import NodeLayout, RealNodeError, run

PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"
NAMESPACE = "k8s.io"


def config_toml(layout: NodeLayout) -> str:
    cd = layout.containerd
    return f"""version = 2
root = "{cd / 'root'}"
state = "{cd / 'state'}"
[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{cd / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_unprivileged_ports = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{cd / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{layout.cni_bin}"
    conf_dir = "{layout.cni_conf}"
"""


class Containerd:
    def __init__(self, layout: NodeLayout) -> None:
        self.layout = layout
        self.process: ManagedProcess | None = None

    def ctr(self, *args: str, what: str, timeout: float = 120.0) -> str:
        return run(["ctr", "-a", str(self.layout.containerd_socket), "-n", NAMESPACE, *args], what=what,
                   timeout=timeout)

    def start(self, timeout: float = 30.0) -> None:
        binary = shutil.which("containerd")
        if binary is None or shutil.which("runc") is None or shutil.which("ctr") is None:
            raise RealNodeError("containerd, ctr and runc are needed (apt: containerd runc; `make setup` has them)")
        cd = self.layout.containerd
        for sub in ("root", "state", "runc", "opt"):
            (cd / sub).mkdir(parents=True, exist_ok=True)
        config = cd / "config.toml"
        config.write_text(config_toml(self.layout))
        self.process = ManagedProcess("containerd", [binary, "--config", str(config)],
                                      log_path=self.layout.log("containerd"))
        self.process.start()
        self.process.wait_until(self._answers, timeout=timeout, interval=0.2)

    def _answers(self) -> bool:
        try:
            self.ctr("version", what="containerd version", timeout=5)
        except RealNodeError:
            return False
        return True

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", str(archive), what=f"import {archive.name} into containerd", timeout=300)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

