"""Teardown of a real node: graceful pod deletion while kubelet runs, each process stopped by its own PID, then what
kubelet and containerd left outside the state directory, the host links the node created, the kernel settings."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from spiderpool.devcluster.realnode.containerd import kill_leftover_shims
from spiderpool.devcluster.realnode.kubelet import restore_sysctls, unmount_under
from spiderpool.devcluster.realnode.layout import (
    CNI_RESULTS_DIR,
    CONTAINERD_HARDCODED,
    KUBELET_HARDCODED,
    RealNodeError,
    run,
)

if TYPE_CHECKING:
    from spiderpool.devcluster.realnode.node import RealNode


def delete_workloads(node: RealNode, timeout: int = 90) -> None:
    """Workloads outside kube-system first (their CNI DEL needs the agent), then the rest; graceful, kubelet running."""
    kinds = "deployments,statefulsets,daemonsets,replicasets,jobs,pods"
    namespaces = node.kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split()
    for group in ([n for n in namespaces if n != "kube-system"], ["kube-system"]):
        for namespace in group:
            node.kubectl("delete", kinds, "--all", "-n", namespace, "--wait=true", f"--timeout={timeout}s",
                         "--ignore-not-found", timeout=timeout + 30)


def teardown(node: RealNode) -> None:
    kubelet_ran = node.kubelet is not None and node.kubelet.running()
    if kubelet_ran and node.plane is not None:
        with contextlib.suppress(RealNodeError):
            delete_workloads(node)
    if node.kubelet is not None:
        node.kubelet.stop()
    netns = node.containerd.remove_containers()
    ids = _container_ids(node)
    node.containerd.stop()
    kill_leftover_shims(node.layout.containerd_socket)
    if node.scheduler is not None:
        node.scheduler.stop()
    if node.plane is not None:
        node.plane.stop()
    unmount_under(node.layout.kubelet, node.layout.containerd)
    for path in netns:
        with contextlib.suppress(RealNodeError):
            run(["umount", str(path)], what="unmount a pod netns")
        with contextlib.suppress(OSError):
            path.unlink()
    for link in node._created_links:
        with contextlib.suppress(RealNodeError):
            run(["ip", "link", "del", link], what=f"delete {link}")
    node._created_links.clear()
    for directory in node._created_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    node._created_dirs.clear()
    restore_sysctls(node.layout.sysctl_saved)
    _remove_hardcoded_leftovers(node, ids)


def _container_ids(node: RealNode) -> list[str]:
    root = node.layout.containerd / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
    return [p.name for p in root.iterdir()] if root.is_dir() else []


def _remove_hardcoded_leftovers(node: RealNode, container_ids: list[str]) -> None:
    logs_dir = KUBELET_HARDCODED[1]
    if logs_dir.is_dir():
        for link in logs_dir.glob("*.log"):
            with contextlib.suppress(OSError):
                if os.readlink(link).startswith(f"{node.layout.kubelet}/"):
                    link.unlink()
    (KUBELET_HARDCODED[0] / "kubelet.sock").unlink(missing_ok=True)
    if CNI_RESULTS_DIR.is_dir():
        for result in CNI_RESULTS_DIR.iterdir():
            if any(f"-{cid}-" in result.name for cid in container_ids):
                result.unlink(missing_ok=True)
    empty_first = (*KUBELET_HARDCODED, Path("/var/lib/kubelet"), CNI_RESULTS_DIR, CNI_RESULTS_DIR.parent)
    for directory in empty_first:
        with contextlib.suppress(OSError):
            directory.rmdir()
    if not _other_containerd_runs():
        for sub in ("runc/k8s.io", "runc", "fifo", "s", ""):
            with contextlib.suppress(OSError):
                (CONTAINERD_HARDCODED / sub).rmdir()


def _other_containerd_runs() -> bool:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "containerd":
                    return True
    return False


def remove_state(root: Path) -> None:
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)
