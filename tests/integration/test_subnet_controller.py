"""SubnetController against the real API server and kube-controller-manager (case IDs in docs/subnets.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

import orjson
import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.subnets.controller import SubnetController
from spiderpool.controller.subnets.reconcile import AppObject, PassSettings, reconcile_once
from spiderpool.core.subnet_planning import LABEL_APP_NAME, LABEL_APP_UID, LABEL_SUBNET
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.store import NotFound, SpiderStores

pytestmark = pytest.mark.integration

NAMESPACE = "default"
T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def until(fetch: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, within: float = 15.0) -> T:
    """Poll ``fetch`` until ``check`` holds on its value; AssertionError with the last value after ``within``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await fetch()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s, last value: {value!r}")
        await asyncio.sleep(0.05)


class Subnets:
    """The test's hands: subnets, pools and applications, removed again at the end."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.stores = SpiderStores(api)
        self.apps = AppsV1Api(api)
        self._cleanup: list[Callable[[], Awaitable[object]]] = []

    async def subnet(self, cidr: str, ips: list[str], *, exclude: list[str] | None = None, name: str = "") -> str:
        name = name or unique("sn")
        spec: dict[str, Any] = {"ipVersion": 4, "subnet": cidr, "ips": ips}
        if exclude:
            spec["excludeIPs"] = exclude
        await self.stores.subnets.create({"metadata": {"name": name}, "spec": spec})  # type: ignore[typeddict-item]
        self._cleanup.append(lambda: self.stores.subnets.delete(name))
        return name

    async def manual_pool(self, cidr: str, ips: list[str]) -> str:
        name = unique("manual")
        spec: Any = {"ipVersion": 4, "subnet": cidr, "ips": ips}
        await self.stores.ippools.create({"metadata": {"name": name}, "spec": spec})
        self._cleanup.append(lambda: self.stores.ippools.delete(name))
        return name

    async def reserved(self, ips: list[str]) -> None:
        name = unique("rsv")
        await self.stores.reserved_ips.create({"metadata": {"name": name}, "spec": {"ipVersion": 4, "ips": ips}})
        self._cleanup.append(lambda: self.stores.reserved_ips.delete(name))

    async def app(self, kind: str, name: str, *, subnet: str, replicas: int, extra: dict[str, str] | None = None
                  ) -> str:
        labels = {"app": name}
        annotations = {"ipam.spidernet.io/subnet": orjson.dumps({"ipv4": [subnet]}).decode(), **(extra or {})}
        body: Any = {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, "annotations": annotations},
                                  "spec": {"containers": [{"name": "c", "image": "registry.invalid/pause:1"}]}}},
        }
        if kind == "StatefulSet":
            body["spec"] |= {"serviceName": name, "podManagementPolicy": "Parallel"}
            created: Any = await self.apps.create_namespaced_stateful_set(NAMESPACE, body)
        else:
            created = await self.apps.create_namespaced_deployment(NAMESPACE, body)
        self._cleanup.append(lambda: self.delete_app(kind, name))
        return str(created.metadata.uid)

    async def scale(self, name: str, replicas: int) -> None:
        await self.apps.patch_namespaced_deployment_scale(name, NAMESPACE, {"spec": {"replicas": replicas}})

    async def delete_app(self, kind: str, name: str) -> None:
        with suppress(Exception):
            if kind == "StatefulSet":
                await self.apps.delete_namespaced_stateful_set(name, NAMESPACE, propagation_policy="Background")
            else:
                await self.apps.delete_namespaced_deployment(name, NAMESPACE, propagation_policy="Background")

    async def deployment_gone(self, name: str) -> bool:
        try:
            await self.apps.read_namespaced_deployment(name, NAMESPACE)
        except ApiException as error:
            return error.status == 404
        return False

    async def pools_of(self, subnet: str) -> dict[str, dict[str, Any]]:
        found = await self.stores.ippools.list(label_selector=f"{LABEL_SUBNET}={subnet}")
        return {pool["metadata"]["name"]: dict(pool) for pool in found.items}

    async def app_pools(self, subnet: str, app: str) -> list[dict[str, Any]]:
        return [p for p in (await self.pools_of(subnet)).values() if p["metadata"]["labels"].get(LABEL_APP_NAME) == app]

    async def controlled(self, subnet: str) -> dict[str, Any]:
        status = (await self.stores.subnets.get(subnet)).get("status") or {}
        return dict(orjson.loads(status.get("controlledIPPools") or "{}"))

    async def close(self) -> None:
        for step in reversed(self._cleanup):
            with suppress(NotFound):
                await step()


def ips_of(pool: dict[str, Any]) -> list[str]:
    return list(pool["spec"].get("ips") or [])


def one(pools: list[dict[str, Any]]) -> bool:
    return len(pools) == 1


@pytest.fixture
async def subnets(api: ApiClient, control_plane: ControlPlane) -> AsyncIterator[Subnets]:
    control_plane.start_controller_manager()
    ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api))
    controller = SubnetController(ctx, resync_seconds=5.0)
    task = asyncio.create_task(controller.run())
    hands = Subnets(api)
    try:
        yield hands
    finally:
        await hands.close()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_i01_deployment_gets_lowest_subnet_ips_and_status(subnets: Subnets) -> None:
    """I01: Deployment gets lowest subnet ips and status."""
    subnet = await subnets.subnet("10.213.1.0/24", ["10.213.1.10-10.213.1.40"])
    name = unique("web")
    uid = await subnets.app("Deployment", name, subnet=subnet, replicas=2)
    [pool] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and len(ips_of(p[0])) > 0)
    assert pool["metadata"]["name"] == f"auto4-{name}-eth0-{uid.rsplit('-', 1)[-1][:5]}"
    assert ips_of(pool) == ["10.213.1.10-10.213.1.12"]  # replicas 2 + default flexible 1, lowest first
    labels = pool["metadata"]["labels"]
    assert labels[LABEL_APP_UID] == uid
    assert labels["ipam.spidernet.io/ip-version"] == "IPv4"
    assert labels["ipam.spidernet.io/owner-application-kind"] == "Deployment"
    assert pool["spec"]["podAffinity"]["matchLabels"]["ipam.spidernet.io/app-name"] == name
    assert pool["metadata"]["ownerReferences"][0]["name"] == subnet
    status = (await until(lambda: subnets.stores.subnets.get(subnet),
                          lambda s: (s.get("status") or {}).get("allocatedIPCount") == 3))["status"]
    assert status["totalIPCount"] == 31
    assert orjson.loads(status["controlledIPPools"]) == {
        pool["metadata"]["name"]: {"ips": ["10.213.1.10-10.213.1.12"],
                                   "application": f"apps_v1_Deployment_{NAMESPACE}_{name}"}}


async def test_i02_scale_up_then_down_keeps_allocated_ips(subnets: Subnets) -> None:
    """I02: Scale up then down keeps allocated ips."""
    subnet = await subnets.subnet("10.213.2.0/24", ["10.213.2.1-10.213.2.50"])
    name = unique("scale")
    await subnets.app("Deployment", name, subnet=subnet, replicas=1)
    [pool] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and len(ips_of(p[0])) > 0)
    assert ips_of(pool) == ["10.213.2.1-10.213.2.2"]
    await subnets.scale(name, 4)
    [pool] = await until(lambda: subnets.app_pools(subnet, name), lambda p: ips_of(p[0]) == ["10.213.2.1-10.213.2.5"])
    # A pod holds the highest address: scale-down may only drop unallocated ones, the lowest first.
    record = {"10.213.2.5": {"pod": f"{NAMESPACE}/x", "podUid": "uid-x"}}
    pool["status"] = {"allocatedIPs": orjson.dumps(record).decode(), "allocatedIPCount": 1}
    await subnets.stores.ippools.replace_status(pool)  # type: ignore[arg-type]
    await subnets.scale(name, 0)
    await until(lambda: subnets.app_pools(subnet, name), lambda p: ips_of(p[0]) == ["10.213.2.5"])
    await until(lambda: subnets.controlled(subnet), lambda c: [v["ips"] for v in c.values()] == [["10.213.2.5"]])


async def test_i03_deleted_app_with_reclaim_true_loses_its_pool(subnets: Subnets) -> None:
    """I03: Deleted app with reclaim true loses its pool."""
    subnet = await subnets.subnet("10.213.3.0/24", ["10.213.3.1-10.213.3.20"])
    name = unique("gone")
    await subnets.app("Deployment", name, subnet=subnet, replicas=1)
    await until(lambda: subnets.app_pools(subnet, name), one)
    await subnets.delete_app("Deployment", name)
    await until(lambda: subnets.app_pools(subnet, name), lambda p: p == [])
    await until(lambda: subnets.controlled(subnet), lambda c: c == {})


async def test_i04_reclaim_false_pool_kept_and_reused_by_same_kind_only(subnets: Subnets) -> None:
    """I04: Reclaim false pool kept and reused by same kind only."""
    subnet = await subnets.subnet("10.213.4.0/24", ["10.213.4.1-10.213.4.30"])
    name = unique("keep")
    keep = {"ipam.spidernet.io/ippool-reclaim": "false"}
    await subnets.app("Deployment", name, subnet=subnet, replicas=2, extra=keep)
    [first] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and len(ips_of(p[0])) > 0)
    await subnets.delete_app("Deployment", name)
    [kept] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and ips_of(p[0]) == [])
    assert kept["metadata"]["name"] == first["metadata"]["name"]
    await until(lambda: subnets.controlled(subnet), lambda c: all(v["ips"] == [] for v in c.values()))
    # Different kind, same name: a pool of its own.
    sts_uid = await subnets.app("StatefulSet", name, subnet=subnet, replicas=1, extra=keep)
    # Same kind, same name, new UID: the kept pool again.
    await until(lambda: subnets.deployment_gone(name), bool)
    uid = await subnets.app("Deployment", name, subnet=subnet, replicas=3, extra=keep)
    pools = await until(lambda: subnets.app_pools(subnet, name),
                        lambda p: len(p) == 2 and all(len(ips_of(x)) > 0 for x in p)
                        and {x["metadata"]["labels"][LABEL_APP_UID] for x in p} == {uid, sts_uid})
    by_kind = {p["metadata"]["labels"]["ipam.spidernet.io/owner-application-kind"]: p for p in pools}
    assert by_kind["Deployment"]["metadata"]["name"] == first["metadata"]["name"]
    assert by_kind["Deployment"]["metadata"]["labels"][LABEL_APP_UID] == uid
    assert ips_of(by_kind["Deployment"]) != []
    assert by_kind["StatefulSet"]["metadata"]["name"].startswith("auto4-")


async def test_i05_fixed_and_flexible_ip_numbers(subnets: Subnets) -> None:
    """I05: Fixed and flexible IP numbers."""
    subnet = await subnets.subnet("10.213.5.0/24", ["10.213.5.1-10.213.5.40"])
    fixed, flexible = unique("fixed"), unique("flex")
    await subnets.app("Deployment", fixed, subnet=subnet, replicas=1, extra={"ipam.spidernet.io/ippool-ip-number": "5"})
    await subnets.app("Deployment", flexible, subnet=subnet, replicas=2,
                      extra={"ipam.spidernet.io/ippool-ip-number": "+2"})
    [fixed_pool] = await until(lambda: subnets.app_pools(subnet, fixed), lambda p: one(p) and len(ips_of(p[0])) > 0)
    [flex_pool] = await until(lambda: subnets.app_pools(subnet, flexible), lambda p: one(p) and len(ips_of(p[0])) > 0)
    sizes = {await _size(subnets, fixed_pool), await _size(subnets, flex_pool)}
    assert sizes == {5, 4}
    await subnets.scale(fixed, 3)  # fixed N ignores replicas
    await subnets.scale(flexible, 3)
    [flex_pool] = await until(lambda: subnets.app_pools(subnet, flexible), lambda p: _count(ips_of(p[0])) == 5)
    [fixed_pool] = await subnets.app_pools(subnet, fixed)
    assert _count(ips_of(fixed_pool)) == 5


async def _size(subnets: Subnets, pool: dict[str, Any]) -> int:
    return _count(ips_of(pool))


def _count(ranges: list[str]) -> int:
    from spiderpool.core.addressing import count_addresses, parse_ip_ranges

    return count_addresses(parse_ip_ranges(ranges, version=4, field="ips"))


async def test_i06_exclude_ips_and_reserved_ips_are_never_taken(subnets: Subnets) -> None:
    """I06: Exclude ips and reserved ips are never taken."""
    await subnets.reserved(["10.213.6.4", "10.213.6.6"])
    subnet = await subnets.subnet("10.213.6.0/24", ["10.213.6.1-10.213.6.20"], exclude=["10.213.6.1-10.213.6.3"])
    name = unique("excl")
    await subnets.app("Deployment", name, subnet=subnet, replicas=3)
    [pool] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and len(ips_of(p[0])) > 0)
    assert ips_of(pool) == ["10.213.6.5", "10.213.6.7-10.213.6.9"]
    status = (await subnets.stores.subnets.get(subnet))["status"]
    assert status["totalIPCount"] == 17  # excludeIPs subtracted, reserved IPs not (as upstream)


async def test_i07_two_subnets_of_one_network_never_hand_out_the_same_ip(subnets: Subnets) -> None:
    """I07: Two subnets of one network never hand out the same IP."""
    first = await subnets.subnet("10.213.7.0/24", ["10.213.7.1-10.213.7.10"])
    second = await subnets.subnet("10.213.7.0/24", ["10.213.7.5-10.213.7.20"])
    a, b = unique("twa"), unique("twb")
    await subnets.app("Deployment", a, subnet=first, replicas=7)
    await subnets.app("Deployment", b, subnet=second, replicas=3)
    [pool_a] = await until(lambda: subnets.app_pools(first, a), lambda p: one(p) and len(ips_of(p[0])) > 0)
    [pool_b] = await until(lambda: subnets.app_pools(second, b), lambda p: one(p) and len(ips_of(p[0])) > 0)
    from spiderpool.core.addressing import overlaps, parse_ip_ranges

    ranges = [parse_ip_ranges(ips_of(p), version=4, field="ips") for p in (pool_a, pool_b)]
    assert not overlaps(ranges[0], ranges[1]), (ips_of(pool_a), ips_of(pool_b))
    assert _count(ips_of(pool_a)) == 8
    assert _count(ips_of(pool_b)) == 4


async def test_i08_manual_pool_adopted_and_its_ips_left_to_it(subnets: Subnets) -> None:
    """I08: Manual pool adopted and its ips left to it."""
    manual = await subnets.manual_pool("10.213.8.0/24", ["10.213.8.1-10.213.8.4"])
    subnet = await subnets.subnet("10.213.8.0/24", ["10.213.8.1-10.213.8.30"])
    adopted = (await until(lambda: subnets.pools_of(subnet), lambda p: manual in p))[manual]
    assert adopted["metadata"]["ownerReferences"][0]["name"] == subnet
    assert adopted["metadata"]["ownerReferences"][0]["controller"] is True
    name = unique("after")
    await subnets.app("Deployment", name, subnet=subnet, replicas=1)
    [pool] = await until(lambda: subnets.app_pools(subnet, name), lambda p: one(p) and len(ips_of(p[0])) > 0)
    assert ips_of(pool) == ["10.213.8.5-10.213.8.6"]
    controlled = await until(lambda: subnets.controlled(subnet), lambda c: len(c) == 2)
    assert controlled[manual] == {"ips": ["10.213.8.1-10.213.8.4"]}


@pytest.fixture
async def hands(api: ApiClient, control_plane: ControlPlane) -> AsyncIterator[Subnets]:
    """Subnets and applications without a running controller: the test runs the passes itself."""
    control_plane.start_controller_manager()
    hands = Subnets(api)
    try:
        yield hands
    finally:
        await hands.close()


async def test_i09_claim_written_before_a_crash_is_completed(hands: Subnets) -> None:
    """I09: Claim written before a crash is completed."""
    subnet = await hands.subnet("10.213.9.0/24", ["10.213.9.1-10.213.9.30"])
    name = unique("crash")
    # A StatefulSet whose pool claim reached the subnet but whose pool was never created (the crash).
    uid = await hands.app("StatefulSet", name, subnet=subnet, replicas=2)
    pool_name = f"auto4-{name}-eth0-{uid.rsplit('-', 1)[-1][:5]}"
    claim = {pool_name: {"ips": ["10.213.9.20-10.213.9.22"], "application": f"apps_v1_StatefulSet_default_{name}"}}
    stored = await hands.stores.subnets.get(subnet)
    stored["status"] = {"controlledIPPools": orjson.dumps(claim).decode(), "allocatedIPCount": 3, "totalIPCount": 30}
    await hands.stores.subnets.replace_status(stored)
    statefulset = await hands.apps.read_namespaced_stateful_set(name, NAMESPACE)
    app = AppObject("apps/v1", "StatefulSet", hands.api.sanitize_for_serialization(statefulset))
    outcome = await reconcile_once(hands.stores, [app], settings=PassSettings())
    assert outcome.errors == []
    [pool] = await hands.app_pools(subnet, name)
    assert ips_of(pool) == ["10.213.9.20-10.213.9.22"]  # the claimed addresses, not the lowest free ones
    assert await hands.controlled(subnet) == claim
    second = await reconcile_once(hands.stores, [app], settings=PassSettings())
    assert second.errors == []
    assert await hands.controlled(subnet) == claim
