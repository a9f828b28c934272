"""The agent with workload shapes: multi-NIC ``ippools`` pods, StatefulSets, Deployments, crash leftovers, CHECK, GC.

The tests make the pods of their StatefulSets and ReplicaSets themselves, whether or not the session's
kube-controller-manager runs (``test_subnet_controller.py`` starts it for the rest of the session): the templates name a
PriorityClass that does not exist, so the Priority admission plugin refuses every pod the controllers would make, and
the hand-made pods carry the selector's labels, so the controllers count them as their own instead of orphaning them.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from agent_support import NAMESPACE, AgentLauncher, Cluster, cni_request, eventually, span, unique, wait_for_pools
from kubernetes_asyncio.client import AppsV1Api, V1OwnerReference

from spiderpool.agent.endpoints import CONTAINER_ID_ANNOTATION
from spiderpool.agent.ipam_errors import IpamCode
from spiderpool.core.cni_types import Attachment, CniError
from spiderpool.k8s.status_plan import AllocateIntent, ReleaseIntent
from spiderpool.k8s.status_writer import PoolStatusWriter

pytestmark = pytest.mark.integration


# No such PriorityClass: kube-controller-manager, if it runs, cannot create pods from these templates.
NO_PRIORITY_CLASS = "spiderpool-tests-pods-made-by-hand"


def _template(labels: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"labels": labels},
            "spec": {"priorityClassName": NO_PRIORITY_CLASS,
                     "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]}}


async def _statefulset(apps: AppsV1Api, name: str, replicas: int) -> V1OwnerReference:
    labels = {"app": name}
    body: Any = {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                 "template": _template(labels)},
    }
    created = await apps.create_namespaced_stateful_set(NAMESPACE, body)
    return V1OwnerReference(api_version="apps/v1", kind="StatefulSet", name=name, uid=created.metadata.uid,
                            controller=True)


async def test_ippools_multi_nic_first_add_allocates_every_nic(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AW01: IPPools multi NIC first ADD allocates every NIC."""
    node = await cluster.node()
    eth0_pool = await cluster.pool(subnet="10.81.0.0/24", ips=[span("10.81.0.2", 4)], gateway="10.81.0.1")
    net1_pool = await cluster.pool(subnet="10.81.1.0/24", ips=[span("10.81.1.2", 4)], gateway="10.81.1.1")
    ippools = [{"interface": "eth0", "ipv4": [eth0_pool]},
               {"interface": "net1", "ipv4": [net1_pool], "cleangateway": True}]
    pod = await cluster.pod(node, annotations={"ipam.spidernet.io/ippools": orjson.dumps(ippools).decode()})
    async with node_agent(node, eth0_pool, net1_pool) as agent:
        eth0 = await agent.service.add(cni_request("ADD", pod))
        writes = agent.writer.stats.writes
        net1 = await agent.service.add(cni_request("ADD", pod, ifname="net1"))
        assert agent.writer.stats.writes == writes  # the second NIC came from the endpoint

    assert set(await cluster.records(net1_pool)) == {"10.81.1.2"}
    assert [str(ip.address) for ip in eth0.ips] == ["10.81.0.2/24"]
    assert [(str(r.dst), str(r.gw)) for r in eth0.routes] == [("0.0.0.0/0", "10.81.0.1")]
    assert [str(ip.address) for ip in net1.ips] == ["10.81.1.2/24"]
    assert net1.routes == ()
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert [(e["interface"], e.get("ipv4"), e.get("cleanGateway")) for e in endpoint["status"]["current"]["ips"]] == [
        ("eth0", "10.81.0.2/24", False), ("net1", "10.81.1.2/24", True)]


async def test_statefulset_pod_recreated_with_a_new_uid_keeps_its_address(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AW02: StatefulSet pod recreated with a new UID keeps its address."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.82.0.0/24", ips=[span("10.82.0.2", 8)])
    apps = AppsV1Api(cluster.api)
    name = unique("web")
    owner = await _statefulset(apps, name, replicas=2)
    first = await cluster.pod(node, name=f"{name}-1", owners=[owner], labels={"app": name})
    async with node_agent(node, pool) as agent:
        other = await cluster.pod(node, owners=None)
        await agent.service.add(cni_request("ADD", other, default_ipv4_ippool=[pool]))  # takes 10.82.0.2
        before = await agent.service.add(cni_request("ADD", first, default_ipv4_ippool=[pool]))
        await cluster.terminate(first.metadata.name)
        await agent.service.delete(cni_request("DEL", first, default_ipv4_ippool=[pool]))
        assert {r.pod_uid for r in (await cluster.records(pool)).values()} >= {first.metadata.uid}
        await cluster.force_delete(first.metadata.name)
        second = await cluster.pod(node, name=f"{name}-1", owners=[owner], labels={"app": name})
        after = await agent.service.add(cni_request("ADD", second, default_ipv4_ippool=[pool]))

        assert [str(ip.address) for ip in after.ips] == [str(ip.address) for ip in before.ips] == ["10.82.0.3/24"]
        records = await cluster.records(pool)
        assert (records["10.82.0.3"].pod, records["10.82.0.3"].pod_uid) == (f"default/{name}-1", second.metadata.uid)
        endpoint = await cluster.endpoint(f"{name}-1")
        assert endpoint is not None
        assert endpoint["status"]["current"]["uid"] == second.metadata.uid
        assert endpoint["status"]["ownerControllerType"] == "StatefulSet"
        assert "ownerReferences" not in endpoint["metadata"]

        # Scaled down: the ordinal is no longer wanted, so DEL releases.
        await apps.patch_namespaced_stateful_set_scale(name, NAMESPACE, {"spec": {"replicas": 1}})
        await cluster.terminate(second.metadata.name)
        await agent.service.delete(cni_request("DEL", second, default_ipv4_ippool=[pool]))
        assert "10.82.0.3" not in await cluster.records(pool)
        assert await cluster.endpoint(f"{name}-1") is None
    await cluster.force_delete(second.metadata.name)


async def test_deployment_pod_names_the_deployment_as_its_controller(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AW03: Deployment pod names the deployment as its controller."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.83.0.0/24", ips=[span("10.83.0.2", 4)])
    apps = AppsV1Api(cluster.api)
    app = unique("app")
    labels = {"app": app}
    deployment_body: Any = {"metadata": {"name": app}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels}, "template": _template(labels)}}
    deployment = await apps.create_namespaced_deployment(NAMESPACE, deployment_body)
    replica_set_body: Any = {
        "metadata": {"name": f"{app}-5d8f", "labels": labels, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": deployment.metadata.uid,
            "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": _template(labels)}}
    replica_set = await apps.create_namespaced_replica_set(NAMESPACE, replica_set_body)
    owner = V1OwnerReference(api_version="apps/v1", kind="ReplicaSet", name=replica_set.metadata.name,
                             uid=replica_set.metadata.uid, controller=True)
    pod = await cluster.pod(node, owners=[owner], labels=labels)
    async with node_agent(node, pool) as agent:
        await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert (endpoint["status"]["ownerControllerType"], endpoint["status"]["ownerControllerName"]) == (
        "Deployment", app)


async def test_a_record_written_before_a_crash_is_returned_to_the_retried_add(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AW04: A record written before a crash is returned to the retried ADD."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.84.0.0/24", ips=["10.84.0.6-10.84.0.7"])
    pod = await cluster.pod(node)
    # The agent died after its status write and before the endpoint: only the record exists, and the pool is
    # full (upstream #2517: the pod was blocked for ever).
    writer = PoolStatusWriter(cluster.stores.ippools, redecide=lambda *_: None)
    await writer.allocate(pool, AllocateIntent(pod="default/someone-else", pod_uid="other-uid", ip="10.84.0.6"))
    await writer.allocate(pool, AllocateIntent(pod=f"default/{pod.metadata.name}", pod_uid=pod.metadata.uid,
                                               ip="10.84.0.7"))
    await writer.close()
    async with node_agent(node, pool) as agent:
        result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    assert [str(ip.address) for ip in result.ips] == ["10.84.0.7/24"]
    assert {ip: r.pod_uid for ip, r in (await cluster.records(pool)).items()} == {
        "10.84.0.6": "other-uid", "10.84.0.7": pod.metadata.uid}
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert endpoint["status"]["current"]["ips"][0]["ipv4"] == "10.84.0.7/24"


async def test_check_and_add_trust_the_records_over_the_endpoint(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AW05: Check and ADD trust the records over the endpoint."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.85.0.0/24", ips=[span("10.85.0.2", 4)])
    pod = await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        added = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.85.0.2/24"}]}
        check = cni_request("CHECK", pod, default_ipv4_ippool=[pool], extra={"prevResult": prev})
        held = await agent.service.check(check)
        # Somebody else (a garbage collector) removed the record: CHECK must no longer report it.
        collector = PoolStatusWriter(cluster.stores.ippools, redecide=lambda *_: None)
        await collector.release(pool, ReleaseIntent(ip="10.85.0.2", pod_uid=pod.metadata.uid))
        await collector.close()
        await eventually(lambda: agent.book.record(pool, "10.85.0.2") is None)
        gone = await agent.service.check(check)
        # The endpoint still lists the address, but its record is the truth: ADD records an address again.
        again = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    assert held.ips == added.ips
    assert gone.ips == ()
    assert [str(ip.address) for ip in again.ips] == ["10.85.0.2/24"]
    assert {ip: r.pod_uid for ip, r in (await cluster.records(pool)).items()} == {"10.85.0.2": pod.metadata.uid}


async def test_gc_releases_dead_pods_missing_from_the_valid_list_only(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AW06: GC releases dead pods missing from the valid list only."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.86.0.0/24", ips=[span("10.86.0.2", 8)])
    dead, listed, alive, stopping = [await cluster.pod(node) for _ in range(4)]
    async with node_agent(node, pool) as agent:
        for pod in (dead, listed, alive, stopping):
            await agent.service.add(cni_request("ADD", pod, container_id=f"sandbox-{pod.metadata.name}",
                                                default_ipv4_ippool=[pool]))
        await cluster.force_delete(dead.metadata.name)
        await cluster.terminate(stopping.metadata.name)  # within its grace period: still running
        valid = [Attachment(container_id=f"sandbox-{listed.metadata.name}", ifname="eth0")]
        gc = cni_request("GC", listed, version="1.1.0", default_ipv4_ippool=[pool],
                         extra={"cni.dev/valid-attachments": [{"containerID": valid[0].container_id,
                                                                "ifname": "eth0"}]})
        await agent.service.gc(gc, valid)
    owners = {r.pod_uid for r in (await cluster.records(pool)).values()}
    assert owners == {listed.metadata.uid, alive.metadata.uid, stopping.metadata.uid}
    assert await cluster.endpoint(dead.metadata.name) is None
    kept = await cluster.endpoint(alive.metadata.name)
    assert kept is not None
    assert kept["metadata"]["annotations"][CONTAINER_ID_ANNOTATION] == f"sandbox-{alive.metadata.name}"
    await cluster.force_delete(stopping.metadata.name)


async def test_unnamed_ippools_nics_are_served_in_annotation_order(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AW07: Unnamed IPPools NICs are served in annotation order."""
    node = await cluster.node()
    first = await cluster.pool(subnet="10.87.0.0/24", ips=[span("10.87.0.2", 4)])
    second = await cluster.pool(subnet="10.87.1.0/24", ips=[span("10.87.1.2", 4)])
    ippools = [{"ipv4": [first]}, {"ipv4": [second]}]
    pod = await cluster.pod(node, annotations={"ipam.spidernet.io/ippools": orjson.dumps(ippools).decode()})
    async with node_agent(node, first, second) as agent:
        eth0 = await agent.service.add(cni_request("ADD", pod))
        net1 = await agent.service.add(cni_request("ADD", pod, ifname="net1"))
    assert [str(ip.address) for ip in eth0.ips] == ["10.87.0.2/24"]
    assert [str(ip.address) for ip in net1.ips] == ["10.87.1.2/24"]
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert [entry["interface"] for entry in endpoint["status"]["current"]["ips"]] == ["eth0", "net1"]


async def test_subnet_annotation_uses_an_existing_auto_pool_only(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AW08: Subnet annotation uses an existing auto pool only."""
    node = await cluster.node()
    apps = AppsV1Api(cluster.api)
    name = unique("db")
    owner = await _statefulset(apps, name, replicas=1)
    pod = await cluster.pod(node, name=f"{name}-0", owners=[owner], labels={"app": name},
                            annotations={"ipam.spidernet.io/subnet": '{"ipv4": ["subnet-88"]}'})
    async with node_agent(node) as agent:
        with pytest.raises(CniError) as missing:
            await agent.service.add(cni_request("ADD", pod))
        app_labels = {"ipam.spidernet.io/app-api-group": "apps", "ipam.spidernet.io/app-api-version": "v1",
                      "ipam.spidernet.io/app-kind": "StatefulSet", "ipam.spidernet.io/app-namespace": NAMESPACE,
                      "ipam.spidernet.io/app-name": name}
        pool = unique("auto4")
        await cluster.stores.ippools.create({
            "metadata": {"name": pool, "labels": {
                "ipam.spidernet.io/owner-spider-subnet": "subnet-88", "ipam.spidernet.io/interface": "eth0",
                "ipam.spidernet.io/ip-version": "IPv4", "ipam.spidernet.io/owner-application-kind": "StatefulSet",
                "ipam.spidernet.io/owner-application-namespace": NAMESPACE,
                "ipam.spidernet.io/owner-application-name": name}},
            "spec": {"subnet": "10.88.0.0/24", "ips": [span("10.88.0.2", 2)],
                     "podAffinity": {"matchLabels": app_labels}}})
        await wait_for_pools(agent, pool)
        served = await agent.service.add(cni_request("ADD", pod))
    assert missing.value.code == IpamCode.SUBNET_POOL_MISSING
    assert missing.value.msg == (
        "the SpiderSubnet auto pool of this application does not exist yet (spiderpool-controller creates it)"
    )
    assert [str(ip.address) for ip in served.ips] == ["10.88.0.2/24"]
