"""Where a real node keeps its files: everything under one state directory, and what it must touch outside it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Paths kubelet 1.36 and containerd 1.6 use whatever their root directories are: teardown removes what this node left.
KUBELET_HARDCODED = (Path("/var/lib/kubelet/device-plugins"), Path("/var/log/containers"))
CNI_RESULTS_DIR = Path("/var/lib/cni/results")
CONTAINERD_HARDCODED = Path("/run/containerd")
NETNS_DIR = Path("/var/run/netns")
NETNS_RUN_DIR = Path("/run/netns")  # what NETNS_DIR resolves to (/var/run -> /run)


class RealNodeError(RuntimeError):
    """A step of the real node failed; the message says which and carries the command's output."""


def run(cmd: Sequence[str], *, what: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        input_text: str | None = None, timeout: float | None = None) -> str:
    """Run ``cmd`` and return its stdout; RealNodeError naming ``what`` with the tail of stderr when it fails."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=env, input=input_text, capture_output=True, text=True,
                              check=False, timeout=timeout)
    except FileNotFoundError as exc:
        raise RealNodeError(f"{what}: `{cmd[0]}` is not installed (run `make setup`)") from exc
    except subprocess.TimeoutExpired as exc:
        raise RealNodeError(f"{what}: `{' '.join(cmd)}` did not finish in {timeout:.0f}s") from exc
    if proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip())[-4000:]
        raise RealNodeError(f"{what}: `{' '.join(cmd)}` failed ({proc.returncode}):\n{output}")
    return proc.stdout


@dataclass(frozen=True)
class NodeLayout:
    """The state directory of one real node (``root``): the control plane's state is ``root/cp``."""

    root: Path

    @property
    def control_plane(self) -> Path:
        return self.root / "cp"

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def cni_bin(self) -> Path:
        return self.root / "cni" / "bin"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_state(self) -> Path:
        """host-local's leases, Multus' cache, the cluster network's configuration (not read by containerd)."""
        return self.root / "cni" / "state"

    @property
    def agent_socket(self) -> Path:
        return self.root / "run" / "spidernet" / "spiderpool.sock"

    @property
    def sysctl_saved(self) -> Path:
        return self.root / "sysctl.saved"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def timings(self) -> Path:
        return self.root / "timings.log"

    def log(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"


def shared_netns_dir() -> None:
    """Make NETNS_RUN_DIR a shared mount point, as ``ip netns`` does: the agent mounts it with HostToContainer
    propagation (detection, the coordinator) and containerd refuses that on this machine's private root mount."""
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    fields = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    mine = [f for f in fields if f[4] == str(NETNS_RUN_DIR)]
    if not mine:
        run(["mount", "--bind", str(NETNS_RUN_DIR), str(NETNS_RUN_DIR)], what=f"bind-mount {NETNS_RUN_DIR}")
    elif any(tag.startswith("shared:") for tag in mine[-1][6:mine[-1].index("-")]):
        return
    run(["mount", "--make-shared", str(NETNS_RUN_DIR)], what=f"make {NETNS_RUN_DIR} a shared mount")
