"""A SpiderMultusConfig's generated NetworkAttachmentDefinition used by a pod (case IDs in docs/e2e-cases.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from controller_support import ControllerProcess, wait_for_registration

from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.network_attachments import NetworkAttachments
from spiderpool.testbed.netconf import plugin_of_list
from spiderpool.testbed.testbed import Testbed

from .support import Pools, interface, records_of, unique

pytestmark = pytest.mark.e2e


@pytest.fixture
def controller(e2e_ready: ControlPlane, tmp_path: Path) -> Iterator[ControllerProcess]:
    """A spiderpool-controller process (webhooks registered, SpiderMultusConfig controller leading), leasing in
    ``default``."""
    replica = ControllerProcess(e2e_ready, identity=unique("mx"), namespace="default", log_dir=tmp_path)
    replica.start(wait_for="LEADER START")
    yield replica
    replica.process.stop(grace=10.0)


async def test_mx01_generated_nad_gives_a_pod_an_address(bed: Testbed, namespace: str, pools: Pools, api: ApiClient,
                                                        controller: ControllerProcess) -> None:
    """MX01: a macvlan SpiderMultusConfig (master ens192, pool named) -> the controller's NAD, read from the API
    server -> its config executed as Multus delegates a network (the list's cniVersion and name injected into its
    main plugin, CNI_IFNAME net1, the pod's Kubernetes CNI_ARGS) with Debian's macvlan -> the pod's net1 has an
    address of the named pool, recorded for the pod. The chain's coordinator is upstream's executable, not run here."""
    await wait_for_registration(api)
    pool = unique("mx01-v4")
    await pools.create(pool, subnet="10.250.71.0/24", ips=["10.250.71.10-10.250.71.20"], gateway="10.250.71.1")
    smc: Any = {"metadata": {"name": "mx01-macvlan", "namespace": namespace},
                "spec": {"cniType": "macvlan", "macvlan": {"master": ["ens192"], "ippools": {"ipv4": [pool]}}}}
    await bed.stores.multus_configs.create(smc)
    nads = NetworkAttachments(api)
    nad = None
    async with asyncio.timeout(30):
        while nad is None:
            nad = await nads.get("mx01-macvlan", namespace=namespace)
            await asyncio.sleep(0 if nad is not None else 0.1)
    network = json.loads(nad["spec"]["config"])
    assert [plugin["type"] for plugin in network["plugins"]] == ["macvlan", "coordinator"]
    node = await bed.add_node(unique(f"{bed.prefix}-mx01"))
    pod = await bed.create_pod(node, name="mx01", namespace=namespace,
                               annotations={"k8s.v1.cni.cncf.io/networks": f"{namespace}/mx01-macvlan"})
    added = await bed.cni.add(pod, plugin_of_list(network, "macvlan"), ifname="net1",
                              extra_env={"SPIDERPOOL_SOCKET": str(node.socket_path)})
    assert added.ok, added.describe()
    addresses = interface(pod, "net1").addresses
    assert len(addresses) == 1
    assert ip_address(str(addresses[0]).split("/")[0]) in ip_network("10.250.71.0/24")
    address = str(addresses[0]).split("/")[0]
    assert await records_of(bed, pool) == {address: PoolIPAllocation(pod.key, pod.uid, nic="net1")}
