"""The store against the real API server: CRUD for every spiderpool kind, and compare-and-swap semantics."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.bodies import ObjectMeta, PodIPAllocation, SpiderEndpointStatus, SpiderIPPool
from spiderpool.k8s.store import (
    API_VERSION,
    AlreadyExists,
    Conflict,
    Conflicted,
    CustomObjectStore,
    Invalid,
    NotFound,
    SpiderStores,
    Swapped,
)

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def records(ip: str, uid: str) -> str:
    return f'{{"{ip}":{{"pod":"a/b","podUid":"{uid}"}}}}'


def endpoint_status() -> SpiderEndpointStatus:
    current: PodIPAllocation = {"uid": "u-1", "node": "node-a", "ips": [{"interface": "eth0", "ipv4": "10.0.0.1/24"}]}
    return {"current": current, "ownerControllerType": "Pod", "ownerControllerName": "p"}


def minimal_bodies() -> list[tuple[str, dict[str, Any], str | None]]:
    """(store attribute, body, namespace) for one valid object of every kind, with a field to modify later."""
    return [
        ("ippools", {"spec": {"subnet": "10.200.0.0/24", "ips": ["10.200.0.10-10.200.0.20"]}}, None),
        ("subnets", {"spec": {"subnet": "10.201.0.0/24", "ips": ["10.201.0.10-10.201.0.20"]}}, None),
        ("reserved_ips", {"spec": {"ips": ["10.202.0.5"]}}, None),
        ("endpoints", {"status": endpoint_status()}, "default"),
        ("multus_configs", {"spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0"]}}}, "default"),
        ("coordinators", {"spec": {"mode": "auto"}}, None),
    ]


@pytest.mark.parametrize(("attribute", "body", "namespace"), minimal_bodies(), ids=[b[0] for b in minimal_bodies()])
async def test_create_get_list_replace_delete_every_kind(
    api: ApiClient, attribute: str, body: dict[str, Any], namespace: str | None
) -> None:
    """ST01: Create get list replace delete every kind."""
    store: CustomObjectStore[Any] = getattr(SpiderStores(api), attribute)
    name = unique(attribute.replace("_", ""))
    metadata = {"name": name, "labels": {"test": name}} | ({"namespace": namespace} if namespace else {})

    created = await store.create({**body, "metadata": metadata})
    assert created["apiVersion"] == API_VERSION
    assert created["kind"] == store.kind.kind
    assert created["metadata"]["uid"]

    fetched = await store.get(name, namespace=namespace)
    assert fetched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    listed = await store.list(namespace=namespace, label_selector=f"test={name}")
    assert [item["metadata"]["name"] for item in listed.items] == [name]
    assert int(listed.resource_version) >= int(created["metadata"]["resourceVersion"])

    relabelled = {**fetched, "metadata": {**fetched["metadata"], "labels": {"test": name, "changed": "yes"}}}
    replaced = await store.replace(relabelled)
    assert replaced["metadata"]["labels"]["changed"] == "yes"
    assert replaced["metadata"]["resourceVersion"] != fetched["metadata"]["resourceVersion"]

    assert await store.delete(name, namespace=namespace) is True
    with pytest.raises(NotFound, match=name):
        await store.get(name, namespace=namespace)
    assert await store.delete(name, namespace=namespace) is False


async def test_create_twice_is_already_exists(api: ApiClient) -> None:
    """ST02: Create twice is already exists."""
    pools = SpiderStores(api).ippools
    name = unique("dup")
    await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.203.0.0/24"}})
    with pytest.raises(AlreadyExists, match=name):
        await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.203.0.0/24"}})
    await pools.delete(name)


async def test_status_swap_is_compare_and_swap(api: ApiClient) -> None:
    """ST03: Status swap is compare and swap."""
    pools = SpiderStores(api).ippools
    name = unique("cas")
    created = await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.204.0.0/24"}})
    first: SpiderIPPool = {**created, "status": {"allocatedIPCount": 1, "allocatedIPs": records("10.204.0.1", "1")}}
    second: SpiderIPPool = {**created, "status": {"allocatedIPCount": 1, "allocatedIPs": records("10.204.0.2", "2")}}

    won = await pools.swap_status(first)
    lost = await pools.swap_status(second)  # derived from the same resourceVersion: must not overwrite the first

    assert isinstance(won, Swapped)
    assert won.object["status"]["allocatedIPs"] == records("10.204.0.1", "1")
    assert lost == Conflicted("SpiderIPPool", name, created["metadata"]["resourceVersion"])
    with pytest.raises(Conflict) as raised:
        await pools.replace_status(second)
    assert raised.value.stale_resource_version == created["metadata"]["resourceVersion"]
    stored = await pools.get(name)
    assert stored["status"]["allocatedIPs"] == records("10.204.0.1", "1")
    assert stored["spec"] == created["spec"]
    await pools.delete(name)


async def test_status_write_does_not_touch_spec(api: ApiClient) -> None:
    """ST04: Status write does not touch spec."""
    pools = SpiderStores(api).ippools
    name = unique("spec")
    created = await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.205.0.0/24"}})
    sneaky: SpiderIPPool = {**created, "spec": {"subnet": "10.99.0.0/24"}, "status": {"allocatedIPCount": 0}}
    stored = await pools.replace_status(sneaky)
    assert stored["spec"]["subnet"] == "10.205.0.0/24"
    assert stored["status"] == {"allocatedIPCount": 0}
    await pools.delete(name)


async def test_delete_with_stale_precondition_conflicts(api: ApiClient) -> None:
    """ST05: Delete with stale precondition conflicts."""
    pools = SpiderStores(api).ippools
    name = unique("del")
    created = await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.206.0.0/24"}})
    await pools.replace_status({**created, "status": {"allocatedIPCount": 0}})
    with pytest.raises(Conflict):
        await pools.delete(name, resource_version=created["metadata"]["resourceVersion"])
    assert (await pools.get(name))["metadata"]["name"] == name
    assert await pools.delete(name, uid=created["metadata"]["uid"]) is True


async def test_invalid_body_names_the_field(api: ApiClient) -> None:
    """ST06: Invalid body names the field."""
    pools = SpiderStores(api).ippools
    with pytest.raises(Invalid, match="subnet"):
        await pools.create({"metadata": {"name": unique("bad")}, "spec": {"ips": ["10.0.0.1"]}})


async def test_local_validation_names_field_and_value(api: ApiClient) -> None:
    """ST07: Local validation names field and value."""
    stores = SpiderStores(api)
    with pytest.raises(ValueError, match=r"metadata\.resourceVersion: required for compare-and-swap on p, got None"):
        await stores.ippools.replace_status({"metadata": {"name": "p"}, "status": {}})
    with pytest.raises(ValueError, match=r"kind: expected 'SpiderIPPool' for this store, got 'SpiderSubnet'"):
        await stores.ippools.create(cast(SpiderIPPool, {"kind": "SpiderSubnet", "metadata": {"name": "p"}}))
    with pytest.raises(ValueError, match=r"metadata\.namespace: SpiderEndpoint is namespaced, got None"):
        await stores.endpoints.get("x")
    with pytest.raises(ValueError, match=r"metadata\.namespace: SpiderIPPool is cluster-scoped, got 'default'"):
        await stores.ippools.get("x", namespace="default")
    with pytest.raises(ValueError, match="SpiderReservedIP has no status subresource"):
        await stores.reserved_ips.replace_status({"metadata": {"name": "r", "resourceVersion": "1"}})


async def test_list_of_namespaced_kind_spans_namespaces_unless_one_is_given(api: ApiClient) -> None:
    """ST08: List of namespaced kind spans namespaces unless one is given."""
    endpoints = SpiderStores(api).endpoints
    label = unique("ns")
    for namespace in ("default", "kube-system"):
        metadata: ObjectMeta = {"name": label, "namespace": namespace, "labels": {"test": label}}
        await endpoints.create({"metadata": metadata, "status": endpoint_status()})
    everywhere = await endpoints.list(label_selector=f"test={label}")
    only_default = await endpoints.list(namespace="default", label_selector=f"test={label}")
    assert sorted(item["metadata"]["namespace"] for item in everywhere.items) == ["default", "kube-system"]
    assert [item["metadata"]["namespace"] for item in only_default.items] == ["default"]
    for namespace in ("default", "kube-system"):
        assert await endpoints.delete(label, namespace=namespace)
