"""kubelet for the real node, and what it needs around it: a client CA for ``kubectl logs/exec``, kernel settings.

kubelet 1.36 on this machine kind: cgroup v1 must be allowed (``failCgroupV1: false``), no QoS cgroup tree, no
node-allocatable enforcement, loose eviction thresholds, no cluster DNS, every directory under the state directory.
It serves on the node's IP (the apiserver dials the Node's InternalIP for logs/exec) and accepts only client
certificates of the node's own CA.  It sets ``vm.overcommit_memory=1``, ``kernel.panic=10`` and
``kernel.panic_on_oops=1`` on the whole machine and nothing opts out of it: the old values are saved before it starts
and restored by ``restore_sysctls``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.devcluster.realnode.layout import NodeLayout, RealNodeError, run

SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")


def node_ip() -> str:
    """The source address of the default route (a route lookup; nothing is sent)."""
    out = run(["ip", "-4", "-j", "route", "get", "1.1.1.1"], what="find the node IP")
    routes = json.loads(out)
    if not routes or "prefsrc" not in routes[0]:
        raise RealNodeError(f"no IPv4 default route to take the node IP from: {out.strip()}")
    return str(routes[0]["prefsrc"])


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def save_sysctls(path: Path) -> None:
    """Record the kernel settings kubelet changes (once: a restarted kubelet must not record its own values)."""
    if path.exists():
        return
    lines = [f"{key}={_sysctl_path(key).read_text().strip()}" for key in SYSCTLS if _sysctl_path(key).exists()]
    path.write_text("\n".join(lines) + "\n")


def restore_sysctls(path: Path) -> None:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            _sysctl_path(key).write_text(value)
    path.unlink()


def write_pki(pki: Path) -> None:
    """A CA kubelet trusts for clients, and the apiserver's client certificate signed by it (system:masters)."""
    if (pki / "apiserver-kubelet-client.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    ca, client = pki / "kubelet-client-ca", pki / "apiserver-kubelet-client"
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=spiderpool-realnode-ca",
         "-keyout", f"{ca}.key", "-out", f"{ca}.crt"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
         "-keyout", f"{client}.key", "-out", f"{client}.csr"],
        ["x509", "-req", "-in", f"{client}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
         "-days", "3650", "-out", f"{client}.crt"],
    ]
    for step in steps:
        run(["openssl", *step], what="create the kubelet client certificates")


def apiserver_args(pki: Path) -> list[str]:
    """kube-apiserver flags for the node: kubelet client certificates, webhooks through EndpointSlices."""
    return [
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        "--kubelet-preferred-address-types=InternalIP",
        # Without kube-proxy nothing routes a ClusterIP: call webhooks on their Service's endpoint addresses.
        "--enable-aggregator-routing=true",
    ]


def kubelet_config(layout: NodeLayout, *, address: str, port: int) -> dict[str, object]:
    root = layout.kubelet
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageServiceEndpoint": f"unix://{layout.containerd_socket}",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 0,
        "podLogsDir": str(root / "pod-logs"),
        "volumePluginDir": str(root / "volume-plugins"),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(layout.pki / "kubelet-client-ca.crt")}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        "serializeImagePulls": False,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "resolvConf": "/etc/resolv.conf",
        "clusterDNS": [],
        "maxPods": 60,
    }


class Kubelet:
    def __init__(self, *, binary: Path, layout: NodeLayout, kubeconfig: Path, node_name: str, address: str,
                 port: int) -> None:
        self.layout = layout
        root = layout.kubelet
        for sub in ("root", "pki", "pod-logs", "volume-plugins"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        config = root / "config.yaml"
        config.write_text(yaml.safe_dump(kubelet_config(layout, address=address, port=port)))
        self.argv = [str(binary), f"--config={config}", f"--kubeconfig={kubeconfig}", f"--root-dir={root / 'root'}",
                     f"--cert-dir={root / 'pki'}", f"--hostname-override={node_name}", f"--node-ip={address}",
                     "--v=2"]
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        save_sysctls(self.layout.sysctl_saved)
        self.process = ManagedProcess("kubelet", self.argv, log_path=self.layout.log("kubelet"))
        self.process.start()

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def unmount_under(*roots: Path) -> None:
    """Unmount (lazily, deepest first) whatever kubelet and containerd mounted under ``roots``."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    targets = [line.split()[1].replace("\\040", " ") for line in mounts]
    mine = sorted((t for t in targets if any(t == str(r) or t.startswith(f"{r}/") for r in roots)), reverse=True)
    for target in mine:
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
