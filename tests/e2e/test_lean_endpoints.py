"""The default agent (lean endpoints) end to end: a two-NIC pod through Debian's macvlan, no SpiderEndpoint at all.

Its records name their NIC; CHECK of each NIC through macvlan passes, and the IPAM executable's own CHECK of one NIC
with the other NIC's result fails (the records say which address belongs to which interface); DEL of both NICs
releases everything, and no endpoint was ever written.
"""

from __future__ import annotations

import pytest

from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.testbed.testbed import Testbed

from .support import interface, read_endpoint, records_of, unique

pytestmark = pytest.mark.e2e


async def test_ln01_lean_two_nic_pod_through_macvlan(lean_bed: Testbed) -> None:
    """LN01: A lean pod with eth0 and net1 (two networks): records name their NIC, CHECK is per NIC, DEL frees all."""
    bed = lean_bed
    namespace, eth0_pool, net1_pool = unique("ln01"), unique("ln01-eth0"), unique("ln01-net1")
    await bed.core.create_namespace(namespace)
    for name, octet in ((eth0_pool, 63), (net1_pool, 64)):
        await bed.stores.ippools.create({"metadata": {"name": name}, "spec": {
            "subnet": f"10.250.{octet}.0/24", "ips": [f"10.250.{octet}.10-10.250.{octet}.19"]}})
    try:
        node = await bed.add_node(unique(f"{bed.prefix}-ln01"))
        configs = {"eth0": bed.macvlan(node, network="ln01-eth0", default_ipv4_ippool=[eth0_pool]),
                   "net1": bed.macvlan(node, network="ln01-net1", default_ipv4_ippool=[net1_pool])}
        pod = await bed.create_pod(node, name="lean", namespace=namespace)
        added = {nic: await bed.cni.add(pod, config, ifname=nic) for nic, config in configs.items()}
        assert all(run.ok for run in added.values()), [run.describe() for run in added.values()]
        assert [str(a) for a in interface(pod, "net1").addresses] == ["10.250.64.10/24"]
        assert await records_of(bed, eth0_pool) == {"10.250.63.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}
        assert await records_of(bed, net1_pool) == {"10.250.64.10": PoolIPAllocation(pod.key, pod.uid, "net1")}
        assert await read_endpoint(bed, pod) is None

        for nic, config in configs.items():
            checked = await bed.cni.check(pod, config, prev_result=added[nic].json(), ifname=nic)
            assert (checked.exit_code, checked.stdout) == (0, b""), checked.describe()
        # eth0's address as a prevResult that names no interface: the IPAM executable's CHECK of net1 must refuse it.
        eth0_result = added["eth0"].json()
        crossed_result = {"cniVersion": eth0_result["cniVersion"],
                          "ips": [{"address": ip["address"]} for ip in eth0_result["ips"]]}
        crossed = await bed.cni.check(pod, configs["net1"], prev_result=crossed_result, ifname="net1",
                                      direct_ipam=True)
        assert crossed.exit_code != 0, "net1's CHECK must not accept eth0's address"
        assert "10.250.63.10" in crossed.json()["msg"], crossed.describe()

        await bed.terminate_pod(pod)
        deleted = await bed.cni.delete_all(pod)
        assert all(run.ok for run in deleted), [run.describe() for run in deleted]
        assert await records_of(bed, eth0_pool) == {}
        assert await records_of(bed, net1_pool) == {}
        assert await read_endpoint(bed, pod) is None
    finally:
        for name in (eth0_pool, net1_pool):
            await bed.stores.ippools.delete(name)
        await bed.core.delete_namespace(namespace)
