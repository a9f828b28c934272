"""Ordered fallback to the next pool on exhaustion, and the CNI error a pod gets when every pool is exhausted."""

from __future__ import annotations

import pytest

from spiderpool.agent.ipam_errors import IpamCode
from spiderpool.testbed.members import NicAttachment
from spiderpool.testbed.testbed import Testbed

from .support import Pools, audit, interface, pod_template_annotations, read_pool, unique

pytestmark = pytest.mark.e2e


async def test_p01_fallback_in_order_then_a_clear_error(bed: Testbed, namespace: str, pools: Pools) -> None:
    """P01: upstream's ippool-multi_test-ipv4-ippools.yaml (two pools of two addresses) and the pod annotation of
    ippool-multi_multi-ippool-deploy.yaml, both unchanged: pods 1-2 get the first pool, 3-4 the backup pool in the
    order the annotation gives; pod 5 gets a CNI error (JSON on stdout, non-zero exit) naming both pools, and
    nothing is recorded for it."""
    await pools.apply_example("ippool-multi_test-ipv4-ippools.yaml")
    annotations = pod_template_annotations("ippool-multi_multi-ippool-deploy.yaml")
    node = await bed.add_node(unique(f"{bed.prefix}-p01"))
    config = bed.macvlan(node, network="p01-net")
    pods = [await bed.create_pod(node, name=f"fb-{i}", namespace=namespace, annotations=annotations) for i in range(5)]

    runs = [await bed.cni.add(pod, config) for pod in pods]

    assert [run.ok for run in runs] == [True, True, True, True, False], [run.describe() for run in runs]
    addresses = [[str(a) for a in interface(pod).addresses] for pod in pods[:4]]
    assert addresses == [["172.18.41.40/24"], ["172.18.41.41/24"], ["172.18.42.40/24"], ["172.18.42.41/24"]]
    # What the runtime sees through macvlan, and what our executable itself prints (macvlan re-prints the error
    # object without cniVersion): exactly one JSON error document on stdout, a non-zero exit, code 102 (spiderpool's
    # "every candidate pool is full": a retry alone will not help, unlike 11).
    through_macvlan = runs[4]
    direct = await bed.cni.pod_command(pods[4], "ADD", config, ifname="eth0", direct_ipam=True)
    for failed in (through_macvlan, direct):
        assert failed.exit_code != 0
        error = failed.json()
        assert error["code"] == IpamCode.POOL_EXHAUSTED, (through_macvlan.describe(), direct.describe())
        text = f"{error['msg']} {error.get('details', '')}"
        assert "default-ipv4-ippool" in text, error
        assert "backup-ipv4-ippool" in text, error
    assert direct.json()["cniVersion"] == "1.0.0"
    verdict = await audit(bed, ["default-ipv4-ippool", "backup-ipv4-ippool"], namespace=namespace)
    assert verdict.clean, verdict.describe()
    assert verdict.addresses_of(pods[4].uid) == []
    for name in ("default-ipv4-ippool", "backup-ipv4-ippool"):
        assert (await read_pool(bed, name))["status"]["allocatedIPCount"] == 2


async def test_p02_a_released_address_is_reused(bed: Testbed, namespace: str, pools: Pools) -> None:
    """P02: exhaust a pool of one address, delete its pod (terminating, CNI DEL, gone): the next pod gets it."""
    pool = unique("p02-v4")
    await pools.create(pool, subnet="10.250.21.0/24", ips=["10.250.21.7"])
    node = await bed.add_node(unique(f"{bed.prefix}-p02"))
    config = bed.macvlan(node, network="p02-net", default_ipv4_ippool=[pool])
    first, second = [await bed.create_pod(node, name=f"reuse-{i}", namespace=namespace) for i in range(2)]
    assert (await bed.cni.add(first, config)).ok
    refused = await bed.cni.add(second, config)
    assert not refused.ok
    assert pool in refused.json()["msg"] + refused.json().get("details", "")

    deleted = await bed.remove_pod(first)
    await bed.replace_sandbox(second, failed=[NicAttachment(config, "eth0", direct_ipam=False)])

    assert [run.ok for run in deleted] == [True]
    assert (await read_pool(bed, pool)).get("status", {}).get("allocatedIPCount", 0) == 0
    retried = await bed.cni.add(second, config)
    assert retried.ok, retried.describe()
    assert [str(a) for a in interface(second).addresses] == ["10.250.21.7/24"]
