"""Helpers of the e2e tests: manifests in upstream's formats (both corpora), pools made per test, reads, audits
and polling."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import pytest
from upstream_examples import Corpus

from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips
from spiderpool.k8s.bodies import SpiderEndpoint, SpiderIPPool
from spiderpool.k8s.store import NotFound
from spiderpool.testbed.members import SimulatedPod
from spiderpool.testbed.netns_state import InterfaceState, read_interface
from spiderpool.testbed.pool_audit import PoolAudit, audit_pools
from spiderpool.testbed.testbed import Testbed


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class Pools:
    """Creates pools for one test and deletes them afterwards (cluster-scoped: names must not outlive the test)."""

    def __init__(self, bed: Testbed) -> None:
        self._bed = bed
        self.names: list[str] = []

    async def create(self, name: str, *, subnet: str, ips: Sequence[str], **spec: Any) -> SpiderIPPool:
        body = {"metadata": {"name": name}, "spec": {"subnet": subnet, "ips": list(ips), **spec}}
        created = await self._bed.stores.ippools.create(cast(SpiderIPPool, body))
        self.names.append(name)
        return created

    async def apply_role(self, corpus: Corpus, role: str) -> list[SpiderIPPool]:
        """Create every SpiderIPPool of the files that play ``role`` in ``corpus``, unchanged."""
        created = []
        for document in pool_documents(corpus, role):
            created.append(await self._bed.stores.ippools.create(document))  # type: ignore[arg-type]
            self.names.append(document["metadata"]["name"])
        return created

    async def delete_all(self) -> None:
        for name in self.names:
            await self._bed.stores.ippools.delete(name)


def pool_documents(corpus: Corpus, role: str) -> list[dict[str, Any]]:
    """The SpiderIPPools of a role, in file order."""
    return [document for document in corpus.role(role) if document.get("kind") == "SpiderIPPool"]


def pod_template_annotations(corpus: Corpus, role: str) -> dict[str, str]:
    """The pod (template) annotations of the first workload of a role, exactly as written."""
    for document in corpus.role(role):
        if document.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
            return dict(document["spec"]["template"]["metadata"]["annotations"])
        if document.get("kind") == "Pod":
            return dict(document["metadata"]["annotations"])
    raise AssertionError(f"{corpus.name} corpus: role {role!r} has no pod template")


def first_addresses(pool: Mapping[str, Any], count: int) -> list[str]:
    """The first ``count`` addresses a pool hands out in lowest-free order, as ``address/prefix``: its ``ips`` in
    order minus ``excludeIPs``, with the prefix length of its ``subnet`` (worked out with the standard library, apart
    from the code under test)."""
    spec = pool["spec"]
    prefix = ipaddress.ip_network(spec["subnet"], strict=False).prefixlen
    excluded = {address for item in spec.get("excludeIPs", []) for address in _expand(item)}
    found: list[str] = []
    for item in sorted(spec["ips"], key=lambda text: _expand(text)[0]):
        for address in _expand(item):
            if address not in excluded and len(found) < count:
                found.append(f"{address}/{prefix}")
    assert len(found) == count, f"pool {pool['metadata']['name']} has fewer than {count} addresses"
    return found


def _expand(item: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    first, _, last = item.partition("-")
    start, end = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
    return [ipaddress.ip_address(int(start) + offset) for offset in range(min(int(end) - int(start) + 1, 256))]


def bare_ip(address_with_prefix: str) -> str:
    return address_with_prefix.split("/")[0]


async def read_pool(bed: Testbed, name: str) -> SpiderIPPool:
    return await bed.stores.ippools.get(name)


async def read_endpoint(bed: Testbed, pod: SimulatedPod) -> SpiderEndpoint | None:
    try:
        return await bed.stores.endpoints.get(pod.name, namespace=pod.namespace)
    except NotFound:
        return None


async def audit(
    bed: Testbed, pool_names: Iterable[str], *, namespace: str | None = None, per_pod: int = 1
) -> PoolAudit:
    """Pool records vs live pods vs endpoints (see ``pool_audit``), read fresh from the API server."""
    pools = [await read_pool(bed, name) for name in pool_names]
    pods = await bed.core.list_pods(namespace=namespace)
    endpoints = (await bed.stores.endpoints.list(namespace=namespace)).items
    return audit_pools(pools, pods=pods, endpoints=endpoints, per_pod=per_pod)


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str, interval: float = 0.1
) -> None:
    """Poll an async ``probe`` until true; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await probe():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def interface(pod: SimulatedPod, ifname: str = "eth0") -> InterfaceState:
    return read_interface(pod.netns, ifname)


def result_ips(result: Mapping[str, Any]) -> list[str]:
    """The ``ips[].address`` of a CNI result."""
    return [str(entry["address"]) for entry in result.get("ips", [])]


def nics(endpoint: Any) -> dict[str, dict[str, Any]]:
    """The endpoint's ``status.current.ips`` by interface."""
    assert endpoint is not None, "no SpiderEndpoint for the pod"
    return {entry["interface"]: entry for entry in endpoint["status"]["current"]["ips"]}


async def records_of(bed: Testbed, pool: str) -> dict[str, PoolIPAllocation]:
    found = await read_pool(bed, pool)
    status = found.get("status", {})
    records = decode_allocated_ips(status.get("allocatedIPs"))
    assert status.get("allocatedIPCount", 0) == len(records), status
    return records
