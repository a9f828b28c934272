"""Every webhook rule through real API calls against a running controller (case IDs in docs/controller.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from controller_support import ControllerProcess, wait_for_registration

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.client import ApiClient, close_api_client, make_api_client
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.store import Conflict, SpiderStores, StoreError

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    namespace = f"wh-{uuid.uuid4().hex[:6]}"

    async def prepare() -> None:
        api = await make_api_client(kubeconfig=control_plane.kubeconfig)
        try:
            await CoreObjects(api).create_namespace(namespace)
        finally:
            await close_api_client(api)

    asyncio.run(prepare())
    replica = ControllerProcess(control_plane, identity="wh", namespace=namespace,
                                log_dir=tmp_path_factory.mktemp("controller"))
    replica.start(wait_for="LEADER START")
    yield replica
    replica.process.stop(grace=10.0)


@pytest.fixture
async def stores(controller: ControllerProcess, api: ApiClient) -> SpiderStores:
    await wait_for_registration(api)
    return SpiderStores(api)


def _pool(name: str, **spec: Any) -> Any:  # each store wants its own TypedDict
    return {"metadata": {"name": name}, "spec": spec}


async def _rejected(call: Any) -> str:
    with pytest.raises(StoreError) as caught:
        await call
    return str(caught.value)


async def _live_pod(api: ApiClient) -> tuple[str, str]:
    """A real pod (``ns/name``, uid), so leak collection on the leader keeps its record."""
    core = CoreObjects(api)
    namespace = _uniq("wpod")
    await core.create_namespace(namespace)
    pod = await core.create_pod({"metadata": {"name": "holder", "namespace": namespace},
                                 "spec": {"containers": [{"name": "c", "image": "pause"}]}})  # type: ignore[typeddict-unknown-key]
    return f"{namespace}/holder", pod["metadata"]["uid"]


async def _rejected_edit(store: Any, name: str, **spec: Any) -> str:
    """The rejection of a spec edit; re-read on Conflict (the leader's reconcilers write status concurrently)."""
    for _ in range(20):
        current = await store.get(name)
        try:
            await store.replace({**current, "spec": {**current["spec"], **spec}})
        except Conflict:
            await asyncio.sleep(0.1)
            continue
        except StoreError as error:
            return str(error)
        raise AssertionError(f"the edit {spec} of {name} was admitted")
    raise AssertionError(f"{name}: conflicts never stopped")


async def _record(stores: SpiderStores, name: str, *, ip: str, pod: str, uid: str) -> None:
    """Write one allocation record into the pool's status (as an agent would), retrying lost compare-and-swaps."""
    for _ in range(20):
        current = await stores.ippools.get(name)
        status = {**current.get("status", {}), "allocatedIPCount": 1,
                  "allocatedIPs": f'{{"{ip}":{{"pod":"{pod}","podUid":"{uid}"}}}}'}
        try:
            await stores.ippools.replace_status({**current, "status": status})  # type: ignore[typeddict-item]
            return
        except Conflict:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name}: status conflicts never stopped")


def _uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def test_w01_pool_mutation(stores: SpiderStores) -> None:
    """W01: Pool mutation."""
    name = _uniq("w01")
    created = await stores.ippools.create(_pool(name, subnet="10.61.0.1/16",
                                                ips=["10.61.0.20-10.61.0.30", "10.61.0.10-10.61.0.21"]))
    meta, spec = created["metadata"], created["spec"]
    assert meta.get("finalizers") == ["spiderpool.spidernet.io"]
    assert meta.get("labels", {})["ipam.spidernet.io/ippool-cidr"] == "10-61-0-0-16"
    assert spec["ipVersion"] == 4
    assert spec["subnet"] == "10.61.0.0/16"
    assert spec["ips"] == ["10.61.0.10-10.61.0.30"]


async def test_w02_gateway_outside_subnet_rejected(stores: SpiderStores) -> None:
    """W02: Gateway outside subnet rejected."""
    message = await _rejected(stores.ippools.create(_pool(_uniq("w02"), subnet="10.62.0.0/24", gateway="10.63.0.1",
                                                          ips=["10.62.0.10"])))
    assert "spec.gateway" in message
    assert "10.63.0.1" in message


async def test_w03_overlapping_cidr_rejected_naming_the_other_pool(stores: SpiderStores) -> None:
    """W03: Overlapping CIDR rejected naming the other pool."""
    first = _uniq("w03")
    await stores.ippools.create(_pool(first, subnet="10.64.0.0/16", ips=["10.64.0.10"]))
    message = await _rejected(stores.ippools.create(_pool(_uniq("w03b"), subnet="10.64.1.0/24", ips=["10.64.1.10"])))
    assert "spec.subnet" in message
    assert "10.64.1.0/24" in message
    assert first in message


async def test_w04_same_subnet_overlapping_ips_rejected(stores: SpiderStores) -> None:
    """W04: Same subnet overlapping ips rejected."""
    first = _uniq("w04")
    await stores.ippools.create(_pool(first, subnet="10.65.0.0/24", ips=["10.65.0.10-10.65.0.20"]))
    await stores.ippools.create(_pool(_uniq("w04b"), subnet="10.65.0.0/24", ips=["10.65.0.21-10.65.0.30"]))
    message = await _rejected(stores.ippools.create(_pool(_uniq("w04c"), subnet="10.65.0.0/24",
                                                          ips=["10.65.0.15-10.65.0.25"])))
    assert "spec.ips" in message
    assert "10.65.0.15-10.65.0.20" in message
    assert first in message


async def test_w05_subnet_immutable_and_allocated_ip_kept(stores: SpiderStores, api: ApiClient) -> None:
    """W05: Subnet immutable and allocated IP kept."""
    name = _uniq("w05")
    pod, uid = await _live_pod(api)
    await stores.ippools.create(_pool(name, subnet="10.66.0.0/24", ips=["10.66.0.10-10.66.0.20"]))
    await _record(stores, name, ip="10.66.0.12", pod=pod, uid=uid)
    message = await _rejected_edit(stores.ippools, name, ips=["10.66.0.13-10.66.0.20"])
    assert "spec.ips" in message
    assert "10.66.0.12" in message
    assert pod in message
    assert "10.66.0.12" in await _rejected_edit(stores.ippools, name, excludeIPs=["10.66.0.12"])
    message = await _rejected_edit(stores.ippools, name, subnet="10.66.0.0/23")
    assert "spec.subnet" in message
    assert "immutable" in message


async def test_w06_subnet_adopts_pool_and_bounds_its_ips(stores: SpiderStores) -> None:
    """W06: Subnet adopts pool and bounds its ips."""
    subnet = _uniq("w06")
    created = await stores.subnets.create(_pool(subnet, subnet="10.67.0.0/24", ips=["10.67.0.10-10.67.0.50"],
                                                gateway="10.67.0.1"))
    assert created["metadata"]["labels"]["ipam.spidernet.io/subnet-cidr"] == "10-67-0-0-24"
    assert created["metadata"]["finalizers"] == ["spiderpool.spidernet.io"]
    pool = await stores.ippools.create(_pool(_uniq("w06p"), subnet="10.67.0.0/24", ips=["10.67.0.10-10.67.0.20"]))
    assert pool["metadata"]["labels"]["ipam.spidernet.io/owner-spider-subnet"] == subnet
    assert pool["metadata"]["ownerReferences"][0]["name"] == subnet
    assert pool["spec"]["gateway"] == "10.67.0.1"
    message = await _rejected(stores.ippools.create(_pool(_uniq("w06q"), subnet="10.67.0.0/24",
                                                          ips=["10.67.0.60"])))
    assert "spec.ips" in message
    assert "10.67.0.60" in message
    assert subnet in message
    message = await _rejected_edit(stores.subnets, subnet, ips=["10.67.0.15-10.67.0.50"])
    assert "spec.ips" in message
    assert "10.67.0.10-10.67.0.14" in message
    message = await _rejected(stores.subnets.create(_pool(_uniq("w06s"), subnet="10.67.0.0/16")))
    assert "spec.subnet" in message
    assert subnet in message


async def test_w07_reserved_ip_mutation_and_allocated_refusal(stores: SpiderStores, api: ApiClient) -> None:
    """W07: Reserved IP mutation and allocated refusal."""
    pod, uid = await _live_pod(api)
    created = await stores.reserved_ips.create(_pool(_uniq("w07"), ips=["10.68.0.5", "10.68.0.3-10.68.0.4"]))
    assert created["spec"] == {"ipVersion": 4, "ips": ["10.68.0.3-10.68.0.5"]}
    pool_name = _uniq("w07p")
    await stores.ippools.create(_pool(pool_name, subnet="10.68.1.0/24", ips=["10.68.1.10-10.68.1.20"]))
    await _record(stores, pool_name, ip="10.68.1.11", pod=pod, uid=uid)
    message = await _rejected(stores.reserved_ips.create(_pool(_uniq("w07r"), ips=["10.68.1.11"])))
    assert "spec.ips" in message
    assert "10.68.1.11" in message
    assert pod in message


async def test_w08_concurrent_overlapping_creations_exactly_one_succeeds(stores: SpiderStores) -> None:
    """W08: Concurrent overlapping creations exactly one succeeds."""
    prefix = _uniq("w08")
    names = [f"{prefix}-{i}" for i in range(20)]
    results = await asyncio.gather(*(stores.ippools.create(_pool(n, subnet="10.69.0.0/24", ips=["10.69.0.10"]))
                                     for n in names), return_exceptions=True)
    stored = [p["metadata"]["name"] for p in (await stores.ippools.list()).items
              if p["metadata"]["name"].startswith(prefix)]
    assert len(stored) == 1
    assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_w09_terminating_pool_spec_frozen(stores: SpiderStores, api: ApiClient) -> None:
    """W09: Terminating pool spec frozen."""
    name = _uniq("w09")
    pod, uid = await _live_pod(api)
    await stores.ippools.create(_pool(name, subnet="10.70.0.0/24", ips=["10.70.0.10-10.70.0.20"]))
    await _record(stores, name, ip="10.70.0.10", pod=pod, uid=uid)
    await stores.ippools.delete(name)
    current = await stores.ippools.get(name)  # the finalizer holds it while a live pod's record remains
    assert current["metadata"].get("deletionTimestamp")
    message = await _rejected_edit(stores.ippools, name, ips=["10.70.0.10-10.70.0.30"])
    assert "spec" in message
    assert "terminating" in message




async def test_w10_a_dry_run_creation_books_no_addresses(stores: SpiderStores, api: ApiClient) -> None:
    """W10: ``kubectl create --dry-run=server`` is decided like a create, but nothing is stored, so nothing is booked:
    a real pool over the same addresses right after it is admitted."""
    dry = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderIPPool",
           **_pool(_uniq("w10-dry"), subnet="10.199.10.0/24", ips=["10.199.10.10-10.199.10.20"])}
    answer = await request_json(api, "POST", "/apis/spiderpool.spidernet.io/v2beta1/spiderippools?dryRun=All",
                                what="dry-run create", body=dry)
    assert answer["metadata"]["labels"]["ipam.spidernet.io/ippool-cidr"] == "10-199-10-0-24"
    real = _uniq("w10-real")
    await stores.ippools.create(_pool(real, subnet="10.199.10.0/24", ips=["10.199.10.15-10.199.10.25"]))
    assert (await stores.ippools.get(real))["metadata"]["name"] == real
