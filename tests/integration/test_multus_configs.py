"""SpiderMultusConfig -> NetworkAttachmentDefinition and the SpiderCoordinator status, against the real API server
with a running controller (its webhooks registered) and kube-controller-manager (garbage collection).
Case IDs in docs/multus.md."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from controller_support import ControllerProcess, wait_for_registration

from spiderpool.core.multus_render import render_network_attachment
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.client import ApiClient, close_api_client, make_api_client
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.network_attachments import NetworkAttachments, list_events
from spiderpool.k8s.store import NotFound, SpiderStores, StoreError

pytestmark = [pytest.mark.integration]
WAIT = 30.0
KUBEADM_PATH = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    namespace = f"smc-{uuid.uuid4().hex[:6]}"
    control_plane.start_controller_manager()  # the garbage collector deletes a NAD with its SpiderMultusConfig

    async def prepare() -> None:
        api = await make_api_client(kubeconfig=control_plane.kubeconfig)
        try:
            await CoreObjects(api).create_namespace(namespace)
        finally:
            await close_api_client(api)

    asyncio.run(prepare())
    settings = {"SPIDERPOOL_COORDINATOR_RESYNC_SECONDS": "0.5",  # what the chart's coordinator.* values set:
                "SPIDERPOOL_DEFAULT_COORDINATOR_SPEC": '{"podCIDRType": "cluster", "podRPFilter": 0}',
                "SPIDERPOOL_DEFAULT_MULTUS_CONFIG": orjson.dumps({
                    "metadata": {"name": "calico", "namespace": namespace,
                                 "annotations": {"multus.spidernet.io/cr-name": "k8s-pod-network"}},
                    "spec": {"cniType": "custom", "enableCoordinator": False}}).decode()}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        replica = ControllerProcess(control_plane, identity="smc", namespace=namespace,
                                    log_dir=tmp_path_factory.mktemp("controller"))
    finally:
        for key, value in previous.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    replica.start(wait_for="LEADER START")
    replica.namespace = namespace  # type: ignore[attr-defined]
    yield replica
    replica.process.stop(grace=10.0)


@pytest.fixture
async def namespace(controller: ControllerProcess, api: ApiClient) -> str:
    await wait_for_registration(api)
    name = f"smc-{uuid.uuid4().hex[:8]}"
    await CoreObjects(api).create_namespace(name)
    return name


async def eventually(probe: Callable[[], Awaitable[Any]], *, what: str) -> Any:
    """The first truthy answer of ``probe`` (polled), failing after WAIT seconds with ``what``."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                found = await probe()
                if found:
                    return found
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"not within {WAIT}s: {what}")


def macvlan(name: str, namespace: str, master: str = "eth0", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"cniType": "macvlan", "macvlan": {"master": [master],
                                                                          "ippools": {"ipv4": ["v4-pool"]}}}}


async def nad_matching(api: ApiClient, smc: dict[str, Any]) -> dict[str, Any] | None:
    """The NAD of ``smc`` once it is exactly its render (annotations, config, controlling owner)."""
    fresh: Any = await SpiderStores(api).multus_configs.get(smc["metadata"]["name"],
                                                            namespace=smc["metadata"]["namespace"])
    want = render_network_attachment(fresh)
    nad = await NetworkAttachments(api).get(want.name, namespace=want.namespace)
    if nad is None or nad["spec"].get("config") != want.config or (nad["metadata"].get("annotations") or {}) != dict(
            want.annotations):
        return None
    owners = nad["metadata"].get("ownerReferences") or []
    return nad if [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [
        ("SpiderMultusConfig", fresh["metadata"]["uid"], True)] else None


async def test_smc20_created_nad_carries_the_render_and_the_owner(api: ApiClient, namespace: str) -> None:
    """SMC20: a created SpiderMultusConfig is defaulted by the webhook and gets its NAD: config as rendered
    (macvlan + coordinator, pool named), annotations, controlling ownerReference."""
    stores = SpiderStores(api)
    created: Any = await stores.multus_configs.create(macvlan("mv", namespace))  # type: ignore[arg-type]
    assert created["spec"]["coordinator"]["mode"] == "auto"  # the mutating webhook ran
    nad = await eventually(lambda: nad_matching(api, created), what="the NAD of mv")
    config = orjson.loads(nad["spec"]["config"])
    assert [p["type"] for p in config["plugins"]] == ["macvlan", "coordinator"]
    assert config["plugins"][0]["ipam"] == {"type": "spiderpool", "default_ipv4_ippool": ["v4-pool"]}


async def test_smc21_update_drift_and_deletion_of_the_nad(api: ApiClient, namespace: str) -> None:
    """SMC21: an updated spec rewrites the NAD; a NAD edited by hand is overwritten; a deleted NAD is re-created;
    deleting the SpiderMultusConfig deletes its NAD (ownerReference, garbage collector)."""
    stores, nads = SpiderStores(api), NetworkAttachments(api)
    smc: Any = await stores.multus_configs.create(macvlan("drift", namespace))  # type: ignore[arg-type]
    await eventually(lambda: nad_matching(api, smc), what="the first NAD")
    smc["spec"]["macvlan"]["master"] = ["ens224"]
    smc = await stores.multus_configs.replace(smc)
    nad = await eventually(lambda: nad_matching(api, smc), what="the NAD rewritten after the update")
    assert '"master":"ens224"' in nad["spec"]["config"]
    nad["spec"]["config"] = '{"cniVersion":"0.3.1","name":"drift","plugins":[{"type":"bridge"}]}'
    await nads.replace(nad)
    await eventually(lambda: nad_matching(api, smc), what="the drifted NAD overwritten")
    assert await nads.delete("drift", namespace=namespace)
    await eventually(lambda: nad_matching(api, smc), what="the deleted NAD re-created")
    await stores.multus_configs.delete("drift", namespace=namespace)

    async def gone() -> bool:
        return await nads.get("drift", namespace=namespace) is None

    await eventually(gone, what="the NAD deleted with its SpiderMultusConfig")


async def test_smc22_foreign_nad_is_left_alone_with_an_event(api: ApiClient, namespace: str) -> None:
    """SMC22: a NAD of the same name that no SpiderMultusConfig owns is never modified; a Warning Event on the
    SpiderMultusConfig says why; once the foreign NAD is deleted, the generated one takes its place."""
    nads = NetworkAttachments(api)
    foreign = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": "taken", "namespace": namespace},
               "spec": {"config": '{"cniVersion":"0.3.1","name":"taken","type":"bridge"}'}}
    before = await nads.create(foreign)
    smc: Any = await SpiderStores(api).multus_configs.create(macvlan("taken", namespace))  # type: ignore[arg-type]

    async def warned() -> list[dict[str, Any]]:
        events = await list_events(api, namespace=namespace, involved_name="taken")
        return [e for e in events if e["reason"] == "NetworkAttachmentDefinitionNotOwned"]

    events = await eventually(warned, what="a Warning Event on the SpiderMultusConfig")
    assert events[0]["type"] == "Warning"
    assert "not managed by any SpiderMultusConfig" in events[0]["message"]
    after = await nads.get("taken", namespace=namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    await nads.delete("taken", namespace=namespace)
    await eventually(lambda: nad_matching(api, smc), what="the generated NAD after the foreign one went")


async def test_smc23_webhook_refuses_with_field_and_value(api: ApiClient, namespace: str) -> None:
    """SMC23: through the API server, the validating webhook refuses an invalid spec naming field and value, and a
    second SpiderMultusConfig whose cr-name is another one's NAD."""
    stores = SpiderStores(api)
    bad: Any = {"metadata": {"name": "bad", "namespace": namespace},
                "spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0", "eth1"]}}}
    with pytest.raises(StoreError) as caught:
        await stores.multus_configs.create(bad)
    assert "spec.macvlan.bond" in str(caught.value)
    first: Any = await stores.multus_configs.create(macvlan("owner", namespace))  # type: ignore[arg-type]
    await eventually(lambda: nad_matching(api, first), what="the NAD of owner")
    second: Any = macvlan("other", namespace, **{"multus.spidernet.io/cr-name": "owner"})
    with pytest.raises(StoreError) as caught:
        await stores.multus_configs.create(second)
    assert "managed by SpiderMultusConfig owner" in str(caught.value)


async def _coordinator(api: ApiClient) -> Any:
    try:
        return await SpiderStores(api).coordinators.get("default")
    except NotFound:
        return None


async def test_scc20_default_coordinator_status(api: ApiClient, controller: ControllerProcess) -> None:
    """SCC20: the controller creates the default SpiderCoordinator from its settings (the chart's coordinator.*
    values), defaulted by its webhook (finalizer); without kubeadm-config or a
    kube-controller-manager pod its status is NotReady with upstream's reason; with kubeadm-config it is Synced,
    overlayPodCIDR the cluster's pod CIDR (podCIDRType cluster) and serviceCIDR from the ServiceCIDR objects."""
    await wait_for_registration(api)
    stores = SpiderStores(api)
    created = await eventually(lambda: _coordinator(api), what="the default SpiderCoordinator created")
    try:
        assert created["metadata"]["finalizers"] == ["spiderpool.spidernet.io"]
        assert created["spec"]["hostRuleTable"] == 500

        async def phase(want: str) -> Any:
            found = await _coordinator(api)
            return found if found and (found.get("status") or {}).get("phase") == want else None

        not_ready = await eventually(lambda: phase("NotReady"), what="status NotReady")
        assert "kube-controller-manager" in not_ready["status"]["reason"]
        cidrs = await request_json(api, "GET", "/apis/networking.k8s.io/v1/servicecidrs", what="ServiceCIDRs")
        service = [c for item in cidrs["items"] for c in item["spec"]["cidrs"]]
        kubeadm = "networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"
        await request_json(api, "POST", KUBEADM_PATH.rsplit("/", 1)[0], what="create kubeadm-config", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": kubeadm}})
        synced = await eventually(lambda: phase("Synced"), what="status Synced")
        assert synced["status"]["overlayPodCIDR"] == ["10.244.0.0/16"]
        assert synced["status"]["serviceCIDR"] == service
        assert service
    finally:
        with contextlib.suppress(NotFound):
            await request_json(api, "DELETE", KUBEADM_PATH, what="delete kubeadm-config")
        await stores.coordinators.delete("default")
        await eventually(lambda: _absent(api), what="the default coordinator deleted (finalizer dropped)")


async def _absent(api: ApiClient) -> bool:
    return await _coordinator(api) is None


async def test_smc24_cluster_network_config_created_by_the_controller(api: ApiClient,
                                                                     controller: ControllerProcess) -> None:
    """SMC24: the controller creates the cluster network's SpiderMultusConfig it is given (the chart's
    multus.multusCNI.defaultCniCRName), admitted by its webhook; its NAD (Calico's legacy name) has no config."""
    await wait_for_registration(api)
    namespace = controller.namespace  # type: ignore[attr-defined]

    async def config() -> Any:
        try:
            return await SpiderStores(api).multus_configs.get("calico", namespace=namespace)
        except NotFound:
            return None

    smc = await eventually(config, what="the cluster network's SpiderMultusConfig")
    assert smc["spec"]["enableCoordinator"] is False
    assert smc["spec"]["customCNI"] == ""  # the mutating webhook's default
    nad = await eventually(lambda: nad_matching(api, smc), what="its NAD")
    assert nad["metadata"]["name"] == "k8s-pod-network"
    assert nad["spec"]["config"] == ""
