"""The CNI commands end to end: idempotent ADD, DEL (twice, of a live pod, of nothing), CHECK, GC, STATUS, VERSION.

ADD/DEL/CHECK go through Debian's macvlan where it can carry them; GC and STATUS exist only in CNI 1.1.0, which
Debian's macvlan does not speak, so they exec our ``spiderpool`` executable directly, as a 1.1.0 main plugin would.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.testbed.netconf import SPIDERPOOL_CNI_VERSIONS, with_version
from spiderpool.testbed.netns_state import interface_names
from spiderpool.testbed.testbed import Testbed

from .support import Pools, interface, read_endpoint, read_pool, records_of, result_ips, unique

pytestmark = pytest.mark.e2e


async def test_c01_repeated_add_returns_the_same_addresses(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C01: ADD repeated for the same container, then for a re-created sandbox of the same pod UID: the same
    addresses every time and one record per family."""
    v4, v6 = unique("c01-v4"), unique("c01-v6")
    await pools.create(v4, subnet="10.250.31.0/24", ips=["10.250.31.10-10.250.31.19"], gateway="10.250.31.1")
    await pools.create(v6, subnet="fd00:250:31::/64", ips=["fd00:250:31::10-fd00:250:31::19"])
    node = await bed.add_node(unique(f"{bed.prefix}-c01"))
    config = bed.macvlan(node, network="c01-net", default_ipv4_ippool=[v4], default_ipv6_ippool=[v6])
    pod = await bed.create_pod(node, name="again", namespace=namespace)

    first = await bed.cni.add(pod, config, direct_ipam=True)
    repeated = await bed.cni.add(pod, config, direct_ipam=True)
    pod.container_id = "f" * 64  # the runtime re-creates the sandbox: new container, same pod
    recreated = await bed.cni.add(pod, config, direct_ipam=True)

    assert first.ok, first.describe()
    assert sorted(result_ips(first.json())) == ["10.250.31.10/24", "fd00:250:31::10/64"]
    assert repeated.json() == first.json()
    assert recreated.ok, recreated.describe()
    assert sorted(result_ips(recreated.json())) == sorted(result_ips(first.json()))
    assert await records_of(bed, v4) == {"10.250.31.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    assert await records_of(bed, v6) == {"fd00:250:31::10": PoolIPAllocation(pod.key, pod.uid, "eth0")}


async def test_c02_del_twice_and_del_of_nothing_succeed(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C02: DEL of a terminating pod releases its record and endpoint; a second DEL and a DEL of a pod that never
    had an ADD both succeed with no output."""
    pool = unique("c02-v4")
    await pools.create(pool, subnet="10.250.32.0/24", ips=["10.250.32.10-10.250.32.19"])
    node = await bed.add_node(unique(f"{bed.prefix}-c02"))
    config = bed.macvlan(node, network="c02-net", default_ipv4_ippool=[pool])
    pod, never_added = [await bed.create_pod(node, name=f"del-{i}", namespace=namespace) for i in range(2)]
    assert (await bed.cni.add(pod, config)).ok

    await bed.terminate_pod(pod)
    deletes = [await bed.cni.pod_command(pod, "DEL", config, ifname="eth0") for _ in range(2)]
    nothing = await bed.cni.pod_command(never_added, "DEL", config, ifname="eth0")

    assert [(run.exit_code, run.stdout) for run in deletes] == [(0, b""), (0, b"")], [r.describe() for r in deletes]
    assert (nothing.exit_code, nothing.stdout) == (0, b""), nothing.describe()
    assert await records_of(bed, pool) == {}
    assert await read_endpoint(bed, pod) is None
    assert interface_names(pod.netns) == ["lo"]
    pod.attachments.clear()  # DEL'd by hand above


async def test_c03_del_of_a_live_pod_keeps_its_address(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C03: DEL while the pod is alive (its sandbox is being re-created) keeps the record; the next ADD of the new
    sandbox gets the same address back (upstream's rule; releasing here would hand the address to another pod)."""
    pool = unique("c03-v4")
    await pools.create(pool, subnet="10.250.33.0/24", ips=["10.250.33.10-10.250.33.19"])
    node = await bed.add_node(unique(f"{bed.prefix}-c03"))
    config = bed.macvlan(node, network="c03-net", default_ipv4_ippool=[pool])
    pod = await bed.create_pod(node, name="alive", namespace=namespace)
    assert (await bed.cni.add(pod, config)).ok

    deleted = await bed.cni.delete(pod, config)
    pod.container_id = "e" * 64
    readded = await bed.cni.add(pod, config)

    assert deleted.ok, deleted.describe()
    assert readded.ok, readded.describe()
    assert [str(a) for a in interface(pod).addresses] == ["10.250.33.10/24"]
    assert await records_of(bed, pool) == {"10.250.33.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}


async def test_dl02_del_with_the_agent_down_fails_until_the_agent_is_back(
        bed: Testbed, namespace: str, pools: Pools) -> None:
    """DL02: DEL through macvlan while the node's agent is stopped fails with CNI code 11 ("try again later") and
    keeps the record, so the runtime retries it; the DEL retried once the agent is back releases the address."""
    pool = unique("dl02-v4")
    await pools.create(pool, subnet="10.250.37.0/24", ips=["10.250.37.10-10.250.37.19"])
    node = await bed.add_node(unique(f"{bed.prefix}-dl02"))
    assert node.agent is not None
    config = bed.macvlan(node, network="dl02-net", default_ipv4_ippool=[pool])
    pod = await bed.create_pod(node, name="del-later", namespace=namespace)
    assert (await bed.cni.add(pod, config)).ok
    await bed.terminate_pod(pod)

    await asyncio.to_thread(node.agent.stop)
    refused = await bed.cni.delete(pod, config)
    kept = await records_of(bed, pool)
    await asyncio.to_thread(node.agent.start)
    retried = await bed.cni.delete(pod, config)

    assert refused.exit_code != 0, refused.describe()
    assert refused.json()["code"] == 11, refused.describe()
    assert refused.json()["msg"] == "spiderpool agent unreachable", refused.describe()
    assert kept == {"10.250.37.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    assert retried.ok, retried.describe()
    assert await records_of(bed, pool) == {}


async def test_c04_check_verifies_the_reservation(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C04: CHECK through macvlan with the ADD result as prevResult succeeds; the IPAM plugin's own CHECK fails when
    prevResult names an address the pod does not hold, and after the release."""
    pool = unique("c04-v4")
    await pools.create(pool, subnet="10.250.34.0/24", ips=["10.250.34.10-10.250.34.19"], gateway="10.250.34.1")
    node = await bed.add_node(unique(f"{bed.prefix}-c04"))
    config = bed.macvlan(node, network="c04-net", default_ipv4_ippool=[pool])
    pod = await bed.create_pod(node, name="checked", namespace=namespace)
    added = await bed.cni.add(pod, config)
    assert added.ok, added.describe()

    through_macvlan = await bed.cni.check(pod, config, prev_result=added.json())
    ipam_ok = await bed.cni.check(pod, config, prev_result=added.json(), direct_ipam=True)
    forged = copy.deepcopy(added.json())
    forged["ips"][0]["address"] = "10.250.34.19/24"
    ipam_forged = await bed.cni.check(pod, config, prev_result=forged, direct_ipam=True)

    assert (through_macvlan.exit_code, through_macvlan.stdout) == (0, b""), through_macvlan.describe()
    assert (ipam_ok.exit_code, ipam_ok.stdout) == (0, b""), ipam_ok.describe()
    assert ipam_forged.exit_code != 0
    assert "10.250.34.19" in ipam_forged.json()["msg"] + ipam_forged.json().get("details", ""), ipam_forged.describe()
    await bed.terminate_pod(pod)
    assert (await bed.cni.delete(pod, config)).ok
    after_release = await bed.cni.check(pod, config, prev_result=added.json(), direct_ipam=True)
    assert after_release.exit_code != 0, after_release.describe()


async def test_c05_gc_releases_only_this_networks_stale_attachments(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C05: GC (1.1.0) with ``cni.dev/valid-attachments`` naming pod A: pod B's attachment, whose pod vanished
    without a DEL, is released; A's is kept, and so is pod C's on another network, which this GC does not cover."""
    pool, other_pool = unique("c05-v4"), unique("c05-other")
    await pools.create(pool, subnet="10.250.35.0/24", ips=["10.250.35.10-10.250.35.19"])
    await pools.create(other_pool, subnet="10.250.36.0/24", ips=["10.250.36.10-10.250.36.19"])
    node = await bed.add_node(unique(f"{bed.prefix}-c05"))
    config = bed.macvlan(node, network="c05-net", default_ipv4_ippool=[pool])
    other = bed.macvlan(node, network="c05-other", default_ipv4_ippool=[other_pool])
    a, b, c = [await bed.create_pod(node, name=f"gc-{x}", namespace=namespace) for x in "abc"]
    for pod, network in ((a, config), (b, config), (c, other)):
        assert (await bed.cni.add(pod, network)).ok
    await bed.finish_pod(b)  # gone from the API server with no CNI DEL: its record is a leak

    collected = await bed.cni.gc(config, valid=[a])

    assert (collected.exit_code, collected.stdout) == (0, b""), collected.describe()
    assert await records_of(bed, pool) == {"10.250.35.10": PoolIPAllocation(a.key, a.uid, "eth0")}
    assert await records_of(bed, other_pool) == {"10.250.36.10": PoolIPAllocation(c.key, c.uid, "eth0")}


async def test_c06_status_reports_the_agent(bed: Testbed, pools: Pools) -> None:
    """C06: STATUS (1.1.0) exits 0 while the node's agent serves, and fails with code 50 once it is down."""
    node = await bed.add_node(unique(f"{bed.prefix}-c06"))
    config = bed.macvlan(node, network="c06-net")
    assert node.agent is not None

    up = await bed.cni.status(config)
    node.agent.stop()
    down = await bed.cni.status(config)

    assert (up.exit_code, up.stdout) == (0, b""), up.describe()
    assert down.exit_code != 0
    assert down.json()["code"] == 50, down.describe()
    assert down.json()["cniVersion"] == "1.1.0"


async def test_c07_version_lists_every_supported_version(bed: Testbed) -> None:
    """C07: VERSION answers for each configuration version with 0.3.0 to 1.1.0, without any agent."""
    for version in SPIDERPOOL_CNI_VERSIONS:
        run = await bed.cni.version("spiderpool", cni_version=version)
        assert run.ok, run.describe()
        assert run.json() == {"cniVersion": version, "supportedVersions": list(SPIDERPOOL_CNI_VERSIONS)}
    assert with_version({"cniVersion": "1.0.0", "name": "n"}, "1.1.0")["cniVersion"] == "1.1.0"


async def test_c08_pool_count_matches_records_after_a_round_trip(bed: Testbed, namespace: str, pools: Pools) -> None:
    """C08: three pods in and out: allocatedIPCount follows the records to zero and no endpoint remains."""
    pool = unique("c08-v4")
    await pools.create(pool, subnet="10.250.38.0/24", ips=["10.250.38.10-10.250.38.19"])
    node = await bed.add_node(unique(f"{bed.prefix}-c08"))
    config = bed.macvlan(node, network="c08-net", default_ipv4_ippool=[pool])
    pods = [await bed.create_pod(node, name=f"rt-{i}", namespace=namespace) for i in range(3)]
    for pod in pods:
        assert (await bed.cni.add(pod, config)).ok
    assert (await read_pool(bed, pool))["status"]["allocatedIPCount"] == 3

    for pod in pods:
        assert [run.ok for run in await bed.remove_pod(pod)] == [True]

    status = (await read_pool(bed, pool)).get("status", {})
    assert status.get("allocatedIPCount", 0) == 0
    assert "allocatedIPs" not in status or not status["allocatedIPs"]  # upstream: absent when empty
    assert [await read_endpoint(bed, pod) for pod in pods] == [None, None, None]
