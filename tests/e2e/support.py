"""Helpers of the e2e tests: upstream example manifests, pools made per test, reads, audits and polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import pytest
import yaml
from upstream_examples import examples_dir

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

    async def apply_example(self, file_name: str) -> list[SpiderIPPool]:
        """Create every SpiderIPPool of an upstream example manifest, unchanged."""
        created = []
        for document in example(file_name):
            if document.get("kind") == "SpiderIPPool":
                created.append(await self._bed.stores.ippools.create(document))  # type: ignore[arg-type]
                self.names.append(document["metadata"]["name"])
        return created

    async def delete_all(self) -> None:
        for name in self.names:
            await self._bed.stores.ippools.delete(name)


def example(file_name: str) -> list[dict[str, Any]]:
    """The documents of an upstream example manifest (shared/upstream-examples)."""
    path = examples_dir() / file_name
    if not path.is_file():
        pytest.fail(f"upstream example {path} is missing (the shared material is expected next to the project)")
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def pod_template_annotations(file_name: str) -> dict[str, str]:
    """The pod template annotations of an upstream example Deployment, exactly as written."""
    for document in example(file_name):
        if document.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
            return dict(document["spec"]["template"]["metadata"]["annotations"])
        if document.get("kind") == "Pod":
            return dict(document["metadata"]["annotations"])
    raise AssertionError(f"{file_name} has no pod template")


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
