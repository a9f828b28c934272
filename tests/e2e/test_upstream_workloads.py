"""Workloads in upstream's formats (the project's own, and upstream's examples when present) applied unchanged: a
bare Pod, and a Deployment whose pods a real ReplicaSet controller creates; the testbed schedules them
(``pods/binding``) and is their kubelet."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from upstream_examples import Corpus, corpus_params

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import Pod
from spiderpool.k8s.client import close_api_client, make_api_client
from spiderpool.k8s.core_objects import ROUTES
from spiderpool.k8s.crds import install_crds
from spiderpool.testbed.prerequisites import missing_prerequisites
from spiderpool.testbed.testbed import Testbed

from .support import (
    Pools,
    bare_ip,
    first_addresses,
    interface,
    pool_documents,
    read_endpoint,
    records_of,
    unique,
)

pytestmark = pytest.mark.e2e
DEPLOYMENT = ROUTES[("apps/v1", "Deployment")]


@pytest.mark.parametrize("corpus", corpus_params())
async def test_u01_bare_pod_manifest(bed: Testbed, namespace: str, pools: Pools, corpus: Corpus) -> None:
    """U01: a corpus' "bare pod" (a Pod with ``ipam.spidernet.io/ippool``: upstream's ippool-multi_dummy-pod.yaml, or
    the project's fallback_bare-pod.yaml) created unchanged with its pools, bound by the testbed: it gets the first
    address of the pool it names; its endpoint says it has no owner."""
    await pools.apply_role(corpus, "fallback pools")
    pool_docs = {doc["metadata"]["name"]: doc for doc in pool_documents(corpus, "fallback pools")}
    [manifest] = corpus.role("bare pod")
    [pool] = json.loads(manifest["metadata"]["annotations"]["ipam.spidernet.io/ippool"])["ipv4"]
    node = await bed.add_node(unique(f"{bed.prefix}-u01"))
    created = await bed.core.create(manifest, namespace=namespace)
    pod = await bed.adopt_pod(created, node)

    run = await bed.cni.add(pod, bed.macvlan(node, network="u01-net"))

    assert run.ok, run.describe()
    [address] = first_addresses(pool_docs[pool], 1)
    assert [str(a) for a in interface(pod).addresses] == [address]
    assert set(await records_of(bed, pool)) == {bare_ip(address)}
    endpoint = await read_endpoint(bed, pod)
    assert endpoint is not None
    owner = (endpoint["status"]["ownerControllerType"], endpoint["status"]["ownerControllerName"])
    assert owner == ("Pod", manifest["metadata"]["name"])


@pytest.fixture(scope="module")
def workload_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of this module's own with the workload controllers running (the session's has none, and
    starting them there would change what later tests see)."""
    missing = missing_prerequisites()
    if missing:
        pytest.fail("the e2e tests need: " + "; ".join(missing), pytrace=False)
    with ControlPlane(state_dir=tmp_path_factory.mktemp("workload-plane"), with_controller_manager=True) as plane:
        asyncio.run(_install_crds(plane))
        yield plane


async def _install_crds(plane: ControlPlane) -> None:
    api = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(api)
    finally:
        await close_api_client(api)


@pytest.fixture
async def workload_bed(workload_plane: ControlPlane) -> AsyncIterator[Testbed]:
    # The full mode (an endpoint for every pod): these cases check the owner each pod's endpoint names.
    full_mode = "enableStatelessSpiderEndpoint: true\n"
    async with Testbed(kubeconfig=workload_plane.kubeconfig, conf_yml=full_mode) as testbed:
        yield testbed


async def pods_of(bed: Testbed, namespace: str, app: str, *, count: int, within: float = 30.0) -> list[Pod]:
    """The pods the ReplicaSet controller made for ``app``, once there are ``count``."""
    deadline = time.monotonic() + within
    while True:
        found = await bed.core.list_pods(namespace=namespace, label_selector=f"app={app}")
        if len(found) >= count:
            return sorted(found, key=lambda pod: pod["metadata"]["name"])
        if time.monotonic() > deadline:
            pytest.fail(f"the Deployment {app} has {len(found)} of {count} pods after {within:.0f} s")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("corpus", corpus_params())
async def test_u02_deployment_manifest(workload_bed: Testbed, corpus: Corpus) -> None:
    """U02: a corpus' "dual-stack deployment" (3 replicas: upstream's basic_custom-dual-ippool-deploy.yaml, or the
    project's addressing_dual-stack-deploy.yaml) with its two pools, all unchanged: the ReplicaSet controller makes
    the pods, the testbed binds them over two nodes and runs macvlan; each pod gets a dual-stack pair from the pools'
    first addresses, and its endpoint names the top controller (the Deployment)."""
    bed = workload_bed
    namespace = unique("e2e-u02")
    await bed.core.create_namespace(namespace)
    v4_doc, v6_doc = pool_documents(corpus, "dual-stack pools")
    for document in (v4_doc, v6_doc):
        await bed.stores.ippools.create(document)  # type: ignore[arg-type]
    [deployment] = corpus.role("dual-stack deployment")
    name = deployment["metadata"]["name"]
    app = deployment["spec"]["selector"]["matchLabels"]["app"]
    replicas = deployment["spec"]["replicas"]
    await bed.core.create(deployment, namespace=namespace)
    nodes = [await bed.add_node(f"{bed.prefix}-u02n{i}") for i in range(2)]
    made = await pods_of(bed, namespace, app, count=replicas)
    pods = [await bed.adopt_pod(found, nodes[i % 2]) for i, found in enumerate(made)]

    runs = [await bed.cni.add(pod, bed.macvlan(pod.node, network="u02-net", cni_version="0.3.1")) for pod in pods]

    assert all(run.ok for run in runs), [run.describe() for run in runs]
    held = sorted(sorted(str(a.ip) for a in interface(pod).addresses) for pod in pods)
    pairs = zip(first_addresses(v4_doc, replicas), first_addresses(v6_doc, replicas), strict=True)
    assert held == sorted(sorted(bare_ip(address) for address in pair) for pair in pairs)
    v6_records = await records_of(bed, v6_doc["metadata"]["name"])
    assert {record.pod_uid for record in v6_records.values()} == {pod.uid for pod in pods}
    for pod in pods:
        endpoint = await read_endpoint(bed, pod)
        assert endpoint is not None
        owner = (endpoint["status"]["ownerControllerType"], endpoint["status"]["ownerControllerName"])
        assert owner == ("Deployment", name)
    await bed.core.delete(DEPLOYMENT, name, namespace=namespace)
