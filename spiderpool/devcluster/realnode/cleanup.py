"""Teardown of a real node, and the sweep of one that died without it.

``teardown``: graceful pod deletion while kubelet runs (so the runtime's CNI DEL releases each pod's addresses and
removes its network namespace), each process stopped by its own PID, then ``sweep``.  ``sweep(layout)`` needs no live
process and no Python object of the node, only its state directory: it kills the shims of that node's containerd,
unmounts what kubelet and containerd mounted under it, removes the pods' network namespaces, the host links the node
created (listed in ``<state>/links``), what kubelet and containerd left outside it, and restores the kernel settings
kubelet changed (``<state>/sysctl.saved``).  A node that starts sweeps the previous one named in the machine lock
file, so a SIGKILLed run leaves nothing behind for long.  Every step is best-effort: one failure does not stop the rest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from spiderpool.devcluster.realnode.kubelet import restore_sysctls, unmount_under
from spiderpool.devcluster.realnode.layout import (
    CNI_RESULTS_DIR,
    CONTAINERD_HARDCODED,
    KUBELET_HARDCODED,
    NETNS_DIR,
    NodeLayout,
    RealNodeError,
    run,
)

if TYPE_CHECKING:
    from spiderpool.devcluster.realnode.node import RealNode

SOCKET_HOST_DIR = Path("/var/run/spidernet")  # the chart's default ipamUNIXSocketHostPath's directory


def _best_effort(what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except (OSError, RealNodeError, subprocess.SubprocessError) as exc:
        print(f"[realnode teardown] {what}: {exc}", file=sys.stderr, flush=True)


def delete_workloads(node: RealNode, timeout: int = 90) -> None:
    """Workloads outside kube-system first (their CNI DEL needs the agent), then the rest; graceful, kubelet running."""
    kinds = "deployments,statefulsets,daemonsets,replicasets,jobs,pods"
    namespaces = node.kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split()
    for group in ([n for n in namespaces if n != "kube-system"], ["kube-system"]):
        for namespace in group:
            node.kubectl("delete", kinds, "--all", "-n", namespace, "--wait=true", f"--timeout={timeout}s",
                         "--ignore-not-found", timeout=timeout + 30)


def teardown(node: RealNode) -> None:
    if node.kubelet is not None and node.kubelet.running() and node.plane is not None:
        _best_effort("delete the workloads", lambda: delete_workloads(node))
    if node.kubelet is not None:
        _best_effort("stop kubelet", node.kubelet.stop)
    _best_effort("kill the containers", lambda: _kill_containers(node.layout))
    for process in (node.containerd, node.scheduler, node.plane):
        if process is not None:
            _best_effort(f"stop {type(process).__name__}", process.stop)
    sweep(node.layout)


def sweep(layout: NodeLayout) -> None:
    """Remove everything a node with this state directory left on the machine (see the module's docstring)."""
    ids = _container_ids(layout)
    _best_effort("kill the containers", lambda: _kill_containers(layout))
    _best_effort("kill the shims", lambda: kill_shims(layout.containerd_socket))
    _best_effort("unmount", lambda: unmount_under(layout.kubelet, layout.containerd))
    _best_effort("remove pod network namespaces", _remove_cni_netns)
    _best_effort("delete host links", lambda: _delete_links(layout))
    _best_effort("restore kernel settings", lambda: restore_sysctls(layout.sysctl_saved))
    _best_effort("remove leftovers outside the state directory", lambda: _remove_hardcoded_leftovers(layout, ids))


def _kill_containers(layout: NodeLayout) -> None:
    """Every container of the node, through runc itself (works whether containerd still runs or not)."""
    root = layout.containerd / "runc" / "k8s.io"
    if not root.is_dir():
        return
    listed = run(["runc", "--root", str(root), "list", "-q"], what="list containers")
    for cid in listed.split():
        subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True, check=False,
                       timeout=30)


def kill_shims(socket: Path) -> None:
    """Shims of a node's containerd outlive it (sessions of their own): SIGKILL them by their PIDs."""
    proc = subprocess.run(["pgrep", "-f", f"containerd-shim-runc-v2 .*-address {socket}$"], capture_output=True,
                          text=True, check=False)
    for pid in proc.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _remove_cni_netns() -> None:
    """containerd's pod namespaces (``cni-<uuid>``); only a real node makes them, and one runs per machine (lock)."""
    if _other_containerd_runs() or not NETNS_DIR.is_dir():
        return
    for path in NETNS_DIR.glob("cni-*"):
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            path.unlink()


def record_link(layout: NodeLayout, name: str) -> None:
    with open(layout.root / "links", "a") as out:
        out.write(f"{name}\n")


def _delete_links(layout: NodeLayout) -> None:
    listed = layout.root / "links"
    if not listed.exists():
        return
    for name in listed.read_text().split():
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    listed.unlink()


def _container_ids(layout: NodeLayout) -> list[str]:
    root = layout.containerd / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
    return [p.name for p in root.iterdir()] if root.is_dir() else []


def _remove_hardcoded_leftovers(layout: NodeLayout, container_ids: list[str]) -> None:
    logs_dir = KUBELET_HARDCODED[1]
    if logs_dir.is_dir():
        for link in logs_dir.glob("*.log"):
            with contextlib.suppress(OSError):
                if os.readlink(link).startswith(f"{layout.kubelet}/"):
                    link.unlink()
    (KUBELET_HARDCODED[0] / "kubelet.sock").unlink(missing_ok=True)
    if CNI_RESULTS_DIR.is_dir():
        for result in CNI_RESULTS_DIR.iterdir():
            if any(f"-{cid}-" in result.name for cid in container_ids):
                result.unlink(missing_ok=True)
    for directory in (*KUBELET_HARDCODED, Path("/var/lib/kubelet"), CNI_RESULTS_DIR, CNI_RESULTS_DIR.parent):
        with contextlib.suppress(OSError):
            directory.rmdir()
    if (layout.root / "created-socket-dir").exists():
        shutil.rmtree(SOCKET_HOST_DIR, ignore_errors=True)
        (layout.root / "created-socket-dir").unlink()
    if not _other_containerd_runs() and not _process_named("containerd-shim"):
        # containerd 1.6's shim sockets and FIFOs: with no containerd and no shim left, all of them are dead ones
        shutil.rmtree(CONTAINERD_HARDCODED, ignore_errors=True)


def _other_containerd_runs() -> bool:
    return _process_named("containerd")


def _process_named(prefix: str) -> bool:
    """A live (not zombie) process whose name is ``prefix`` or starts with ``prefix-``."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                name = (proc / "comm").read_text().strip()
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if (name == prefix or name.startswith(f"{prefix}-")) and state not in ("Z", "X"):
                    return True
    return False


def remove_state(root: Path) -> None:
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)
