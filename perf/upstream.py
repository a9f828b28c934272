"""Upstream Spiderpool v1.2.2 as a peer in the benchmarks: its agent on a simulated node, its CNI executables.

The benchmarks compare our IPAM (and coordinator) with upstream's on the same local control plane
(:class:`spiderpool.devcluster.cluster.ControlPlane`) and the same network-namespace nodes
(:class:`spiderpool.testbed.testbed.Testbed`).  This module is the upstream side; it is a benchmark tool, not used
by any test (``make test`` never builds Go code for it).

- **binaries** (:mod:`upstream_build`): ``spiderpool-agent``, ``spiderpool`` and ``coordinator`` built from the Go
  module proxy's source of the release and cached in ``~/.cache/spiderpool/upstream/v1.2.2/``;
- **CRDs** (:func:`install_upstream_crds`): upstream's own, from its chart's ``crds/`` (the ``spiderpool.spidernet.io``
  kinds and the Multus NAD; the SR-IOV operator's are left out).  They replace ours when ours are installed: same
  group and versions, so one control plane serves either IPAM;
- **agent** (:class:`UpstreamAgent`): ``spiderpool-agent daemon`` for one simulated node, with the environment and
  ``conf.yml`` rendered by ``helm template`` from upstream's chart (not rewritten by hand), the fields a pod would get
  from the downward API filled in, and per-node values so several agents share a host: its IPAM unix socket
  (``global.ipamUNIXSocketHostPath``) and ports (health, metrics, gops).  Deviations from the chart's defaults, all
  through its values: ``ipam.enableIPv6=false`` unless asked (a dual-stack agent refuses an ADD without an IPv6
  pool), ``spiderpoolAgent.tuneSysctlConfig=false`` (it would retune the shared host's sysctls, not the node's; no
  IPAM cost) and ``multus.multusCNI.defaultCniCRName`` set (see :data:`CLUSTER_NETWORK`).  It reaches the API
  server with ``KUBECONFIG`` (controller-runtime's ``GetConfig``); started means its unix socket answers
  ``GET /v1/ipam/healthy`` 200 (what upstream's executable asks first); its log goes to a file;
- **pools** (:func:`webhook_filled_ippool`): upstream's controller is not run, so nothing would mutate a pool; this
  fills it the way upstream's mutating webhook does (finalizer, ``ipam.spidernet.io/ippool-cidr`` label, explicit
  ``ipVersion``, merged ranges), using the mutation our controller applies (:mod:`spiderpool.core.pool_mutation`,
  the same rules, checked against upstream's by our admission tests) without SpiderSubnet adoption;
- **netconf** (:func:`upstream_ipam`, :func:`upstream_cni_bin_dir`): the ``ipam`` block for upstream's executable
  pointing at an agent's socket, and a CNI_PATH holding Debian's plugins with upstream's executables.

Example (root; see ``python perf/upstream.py --help`` for the end-to-end check it runs)::

    binaries = ensure_upstream_binaries()
    install_upstream_crds(plane)
    agent = UpstreamAgent(binary=binaries["spiderpool-agent"], node_name="node-1", kubeconfig=plane.kubeconfig,
                          socket_path=run_dir / "up-1.sock", work_dir=run_dir / "up-1")
    agent.start()
    config = macvlan_config(name="net", master="ens192", ipam=upstream_ipam(socket_path=agent.socket_path,
                            default_ipv4_ippool=["pool"], log_file=run_dir / "up-cni.log"))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from upstream_build import UPSTREAM_VERSION, ensure_upstream_binaries, source_dir

from spiderpool.core.pool_mutation import mutate_ippool
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.helm import render_chart
from spiderpool.devcluster.ports import free_port
from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.testbed.agent_process import HEALTH_PATH, unix_http_status
from spiderpool.testbed.prerequisites import DEBIAN_CNI_DIR

__all__ = [
    "UPSTREAM_VERSION",
    "UpstreamAgent",
    "agent_settings",
    "ensure_upstream_binaries",
    "install_upstream_crds",
    "upstream_cni_bin_dir",
    "upstream_crds",
    "upstream_ipam",
    "webhook_filled_ippool",
]

AGENT_NAMESPACE: Final = "kube-system"
# Upstream's agent refuses a pod's first NIC (eth0) any pool unless the pod names its Multus default network or the
# agent knows the cluster's (MULTUS_CLUSTER_NETWORK, from the chart's multus.multusCNI.defaultCniCRName), even for a
# pool without multusName.  The simulated pods have no Multus, so the agents are told the cluster network's name.
CLUSTER_NETWORK: Final = "underlay"
_CRD_GROUPS: Final = ("spiderpool.spidernet.io", "k8s.cni.cncf.io")
_DOWNWARD_API: Final = ("SPIDERPOOL_POD_NAME", "SPIDERPOOL_POD_NAMESPACE", "SPIDERPOOL_NODE_NAME")


def _chart() -> Path:
    return source_dir() / "charts" / "spiderpool"


def _render(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``helm template`` of upstream's chart with ``values`` (CRDs included)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="upstream-values-") as handle:
        yaml.safe_dump(dict(values), handle)
        handle.flush()
        return render_chart(_chart(), release="spiderpool", namespace=AGENT_NAMESPACE, values=[Path(handle.name)])


# ------------------------------------------------------------------------------------------------------------ CRDs


def upstream_crds() -> list[dict[str, Any]]:
    """Upstream's CRDs of the ``spiderpool.spidernet.io`` and ``k8s.cni.cncf.io`` groups, from its chart."""
    ensure_upstream_binaries()  # the source (and its chart) arrives with the build
    return [
        doc for doc in _render({})
        if doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] in _CRD_GROUPS
    ]


def install_upstream_crds(plane: ControlPlane) -> list[str]:
    """Create or replace upstream's CRDs on ``plane`` and wait until they are served; their names."""
    return plane.sync_api().install_crds(crds=upstream_crds())


# ----------------------------------------------------------------------------------------------------------- agent


def agent_settings(
    *, node_name: str, socket_path: Path, ports: Mapping[str, int], enable_ipv6: bool = False,
    cluster_network: str = CLUSTER_NETWORK,
) -> tuple[dict[str, str], str]:
    """The agent container's environment and its ``conf.yml``, as upstream's chart renders them for this node.

    ``ports``: ``health``, ``metrics`` and ``gops``.  The downward-API variables get what a DaemonSet pod would.
    ``cluster_network``: the chart's ``multus.multusCNI.defaultCniCRName`` (the agent's ``MULTUS_CLUSTER_NETWORK``).
    """
    values = {
        "global": {"ipamUNIXSocketHostPath": str(socket_path)},
        "ipam": {"enableIPv6": enable_ipv6},
        "multus": {"multusCNI": {"defaultCniCRName": cluster_network}},
        "spiderpoolAgent": {
            "tuneSysctlConfig": False,
            "httpPort": ports["health"],
            "prometheus": {"port": ports["metrics"]},
            "debug": {"gopsPort": ports["gops"]},
        },
    }
    docs = _render(values)
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "spiderpool-conf")
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "spiderpool-agent")
    container = next(c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "spiderpool-agent")
    env = {item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item}
    downward = dict(zip(_DOWNWARD_API, (f"spiderpool-agent-{node_name}", AGENT_NAMESPACE, node_name), strict=True))
    return env | downward, str(conf["data"]["conf.yml"])


class UpstreamAgent:
    """Upstream's ``spiderpool-agent daemon`` for one simulated node; files under ``work_dir`` (conf, log)."""

    def __init__(
        self,
        *,
        binary: Path,
        node_name: str,
        kubeconfig: Path,
        socket_path: Path,
        work_dir: Path,
        enable_ipv6: bool = False,
    ) -> None:
        self.node_name = node_name
        self.socket_path = socket_path
        self.ports = {"health": free_port(), "metrics": free_port(), "gops": free_port()}
        env, conf = agent_settings(node_name=node_name, socket_path=socket_path, ports=self.ports,
                                   enable_ipv6=enable_ipv6)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = work_dir / "conf.yml"
        self.conf_path.write_text(conf)
        self.log_path = work_dir / "agent.log"
        base = {key: value for key, value in os.environ.items() if not key.startswith(("SPIDERPOOL_", "KUBE"))}
        self._process = ManagedProcess(
            f"upstream-spiderpool-agent[{node_name}]",
            [str(binary), "daemon", "--config-path", str(self.conf_path)],
            log_path=self.log_path,
            env=base | env | {"KUBECONFIG": str(kubeconfig)},
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process.running() else None

    def running(self) -> bool:
        return self._process.running()

    def healthy(self) -> bool:
        return unix_http_status(self.socket_path, HEALTH_PATH) == 200

    def start(self, *, timeout: float = 90.0) -> None:
        """Start and wait until its socket answers; ProcessExitedError (log tail) if it dies, TimeoutError if slow."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self._process.start()
        try:
            self._process.wait_until(self.healthy, timeout=timeout, interval=0.1)
        except BaseException:
            self._process.stop(grace=2.0)
            raise

    def stop(self) -> None:
        """SIGTERM (it shuts its servers down), SIGKILL after 10 s; idempotent."""
        self._process.stop(grace=10.0)

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines)


# ----------------------------------------------------------------------------------------------------------- pools


def webhook_filled_ippool(body: Mapping[str, Any]) -> dict[str, Any]:
    """A SpiderIPPool body as upstream's mutating webhook would admit it (no SpiderSubnet adoption).

    Applies the JSON-patch ops of :func:`spiderpool.core.pool_mutation.mutate_ippool`; every op it emits without
    subnets is an ``add`` of a top-level member of ``metadata`` or of ``spec``.
    """
    filled: dict[str, Any] = {**body, "metadata": dict(body.get("metadata") or {})}
    filled["spec"] = dict(body.get("spec") or {})
    for op in mutate_ippool(filled, subnets=(), subnet_feature=False):
        path = op["path"].split("/")[1:]
        if op["op"] != "add" or len(path) not in (1, 2):
            raise ValueError(f"unexpected mutation op {op}")
        target = filled[path[0]] if len(path) == 2 else filled
        target[path[-1]] = op["value"]
    return filled


# --------------------------------------------------------------------------------------------------------- netconf


def upstream_ipam(
    *,
    socket_path: Path,
    default_ipv4_ippool: Sequence[str] = (),
    default_ipv6_ippool: Sequence[str] = (),
    log_file: Path | None = None,
) -> dict[str, Any]:
    """``"ipam": {"type": "spiderpool", ...}`` for upstream's executable on ``socket_path`` (its agent).

    Everything else keeps upstream's defaults, as the NAD its SpiderMultusConfig generates does (log level debug);
    ``log_file`` moves its log out of ``/var/log/spidernet/spiderpool.log``.
    """
    ipam: dict[str, Any] = {"type": "spiderpool", "ipam_unix_socket_path": str(socket_path)}
    if default_ipv4_ippool:
        ipam["default_ipv4_ippool"] = list(default_ipv4_ippool)
    if default_ipv6_ippool:
        ipam["default_ipv6_ippool"] = list(default_ipv6_ippool)
    if log_file is not None:
        ipam["log_file_path"] = str(log_file)
    return ipam


def upstream_cni_bin_dir(directory: Path, *, plugin_dir: Path = DEBIAN_CNI_DIR) -> Path:
    """A CNI_PATH with Debian's plugins and upstream's ``spiderpool`` and ``coordinator`` (symlinks); ``directory``."""
    binaries = ensure_upstream_binaries()
    directory.mkdir(parents=True, exist_ok=True)
    links = {plugin.name: plugin for plugin in plugin_dir.iterdir()}
    links |= {name: binaries[name] for name in ("spiderpool", "coordinator")}
    for name, target in sorted(links.items()):
        link = directory / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return directory
