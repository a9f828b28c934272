"""End-to-end check of the upstream peer (:mod:`upstream`): upstream's agent serves its own executable.

On a fresh control plane with upstream's CRDs: one simulated node whose agent is upstream's ``spiderpool-agent``, a
small pool filled as upstream's webhook would, then for two pods an ADD and a DEL through upstream's ``spiderpool``
executable, once exec'd directly and once through Debian's macvlan in the pod's namespace.  After each ADD the
address must be in the pool and recorded in its status for that pod; after each DEL the record must be gone.
Exits non-zero with the agent's log tail when anything differs.  Root (namespaces); builds upstream when not cached::

    python perf/upstream_check.py
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from upstream import (
    UpstreamAgent,
    ensure_upstream_binaries,
    install_upstream_crds,
    upstream_cni_bin_dir,
    upstream_ipam,
    webhook_filled_ippool,
)

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.routes import ObjectRoute
from spiderpool.testbed.cni_runtime import CniRuntime
from spiderpool.testbed.members import SimulatedPod
from spiderpool.testbed.netconf import macvlan_config
from spiderpool.testbed.testbed import Testbed

POOL = "upstream-check"
SUBNET = "10.253.0.0/24"
IPPOOL_ROUTE = ObjectRoute("spiderpool.spidernet.io/v2beta1", "SpiderIPPool", "spiderippools", False)


def pool_body() -> dict[str, Any]:
    return webhook_filled_ippool({
        "apiVersion": IPPOOL_ROUTE.api_version, "kind": "SpiderIPPool", "metadata": {"name": POOL},
        "spec": {"subnet": SUBNET, "ips": ["10.253.0.10-10.253.0.20"]},
    })


def allocated(pool: Mapping[str, Any]) -> dict[str, Any]:
    """``status.allocatedIPs`` decoded: address -> record."""
    raw = (pool.get("status") or {}).get("allocatedIPs") or "{}"
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


async def add_then_del(bed: Testbed, runtime: CniRuntime, pod: SimulatedPod, config: Mapping[str, Any], *,
                       direct: bool) -> str:
    """ADD, check the record; terminate, DEL, check it is gone; returns a line for the report."""
    added = await runtime.add(pod, config, direct_ipam=direct)
    if not added.ok:
        raise AssertionError(f"upstream ADD of {pod.key} failed: {added.describe()}")
    address = added.json()["ips"][0]["address"].split("/")[0]
    if ipaddress.ip_address(address) not in ipaddress.ip_network(SUBNET):
        raise AssertionError(f"upstream ADD of {pod.key} gave {address}, outside {SUBNET}")
    records = allocated(await bed.core.get(IPPOOL_ROUTE, POOL))
    if (records.get(address) or {}).get("pod") != pod.key:
        raise AssertionError(f"{address} not recorded for {pod.key} in {POOL}: {records}")
    await bed.terminate_pod(pod)
    deleted = await runtime.delete(pod, config, direct_ipam=direct)
    if not deleted.ok:
        raise AssertionError(f"upstream DEL of {pod.key} failed: {deleted.describe()}")
    records = allocated(await bed.core.get(IPPOOL_ROUTE, POOL))
    if address in records:
        raise AssertionError(f"{address} still recorded after DEL of {pod.key}: {records}")
    await bed.finish_pod(pod)
    how = "exec'd directly" if direct else "through macvlan"
    return f"{pod.key}: {address} ADD {added.seconds * 1000:.1f} ms, DEL {deleted.seconds * 1000:.1f} ms ({how})"


async def check(plane: ControlPlane, binaries: Mapping[str, Path]) -> list[str]:
    async with Testbed(kubeconfig=plane.kubeconfig) as bed:
        node = await bed.add_node(f"{bed.prefix}-up", start_agent=False)
        agent = UpstreamAgent(binary=binaries["spiderpool-agent"], node_name=node.name, kubeconfig=plane.kubeconfig,
                              socket_path=node.socket_path, work_dir=bed.run_dir / "upstream-agent")
        await asyncio.to_thread(agent.start)
        try:
            await bed.core.create(pool_body())
            runtime = CniRuntime(cni_bin_dir=upstream_cni_bin_dir(bed.run_dir / "upstream-cni-bin"))
            ipam = upstream_ipam(socket_path=node.socket_path, default_ipv4_ippool=[POOL],
                                 log_file=bed.run_dir / "upstream-cni.log")
            config = macvlan_config(name="upstream-net", master=node.masters[0], ipam=ipam)
            lines = []
            for index, direct in enumerate((True, False)):
                # a sandbox for both: upstream's executable opens CNI_NETNS even when exec'd directly
                pod = await bed.create_pod(node, name=f"upstream-check-{index}")
                lines.append(await add_then_del(bed, runtime, pod, config, direct=direct))
            return lines
        except BaseException:
            print(f"upstream agent log ({agent.log_path}):\n{agent.log_tail()}", file=sys.stderr)
            raise
        finally:
            await asyncio.to_thread(agent.stop)


def main() -> int:
    binaries = ensure_upstream_binaries()
    with tempfile.TemporaryDirectory(prefix="upstream-check-") as state, ControlPlane(state_dir=Path(state)) as plane:
        print("installed:", ", ".join(install_upstream_crds(plane)))
        for line in asyncio.run(check(plane, binaries)):
            print(line)
    print("upstream peer: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
