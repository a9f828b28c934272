"""The controller's leader work under a kube-apiserver crash: step down, not-ready meanwhile, lead again after
(SV07, docs/controller.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from controller_support import ControllerProcess, wait_for_registration
from prometheus_client.parser import text_string_to_metric_families

from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.ports import free_port
from spiderpool.k8s.client import ApiClient, close_api_client, make_api_client
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import NotFound, SpiderStores
from spiderpool.testbed.controller_process import wait_for_admission

pytestmark = [pytest.mark.integration]

UNITS = ("webhook-registration", "gc", "pool-lifecycle", "subnets", "multus-configs", "coordinator-status")


class Probes:
    """The replica's readiness probe and metrics, as the kubelet and Prometheus read them."""

    def __init__(self, *, health: int, metrics: int) -> None:
        self.health, self.metrics = health, metrics

    async def readiness(self) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.health}/v1/runtime/readiness"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()

    async def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        url = f"http://127.0.0.1:{self.metrics}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    async def units_up(self) -> dict[str, float]:
        samples = await self.samples()
        return {unit: samples.get(("spiderpool_controller_component_up", (("component", unit),)), -1.0)
                for unit in UNITS}

    async def is_leader(self) -> float:
        return (await self.samples())[("spiderpool_controller_is_leader", ())]


async def until(condition: Callable[[], object], *, within: float, what: str) -> None:
    """Poll ``condition`` (sync or async) every 50 ms; AssertionError naming ``what`` after ``within`` seconds."""
    for _ in range(int(within / 0.05)):
        outcome = condition()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within:.0f}s: {what}")


async def test_sv07_apiserver_killed_right_after_the_leader_starts_its_work(
        control_plane: ControlPlane, api: ApiClient, tmp_path: Path) -> None:
    """SV07: kube-apiserver SIGKILLed right after ``LEADER START``: the leader steps down (``is_leader`` 0, every
    unit of its work down) and its readiness is never 200 while the API server is gone; once it is back the replica
    leads again, re-registers its webhooks (an invalid pool is refused), every unit is up, readiness is 200, and
    leak collection works (a record of a pod that does not exist is released)."""
    namespace = f"sv07-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    probes = Probes(health=free_port(), metrics=free_port())
    replica = ControllerProcess(control_plane, identity="sv07", namespace=namespace, log_dir=tmp_path,
                                extra_args=["--health-port", str(probes.health), "--metrics-port", str(probes.metrics)])
    fresh = await make_api_client(kubeconfig=control_plane.kubeconfig)  # connects only once the API server is back
    try:
        replica.start(wait_for="LEADER START")
        readiness, leader_while_down, units_while_down = await _while_the_apiserver_is_down(
            control_plane, replica, probes)
        assert all(status != 200 for status, _ in readiness), readiness
        assert any("cannot be read or written" in body for _, body in readiness), readiness
        assert leader_while_down == 0
        assert units_while_down == dict.fromkeys(UNITS, 0.0)

        await until(lambda: replica.log().count("LEADER START") >= 2, within=30, what="leadership re-acquired")
        await wait_for_registration(fresh, wait_seconds=30)
        await wait_for_admission(control_plane.kubeconfig, within=30)
        await until(lambda: _all_up(probes), within=30, what="every unit of the leader's work up")
        await until(lambda: _ready(probes), within=30, what="readiness 200")
        assert await _leak_is_collected(fresh)
        assert await probes.is_leader() == 1
    finally:
        replica.process.stop(grace=10.0)
        await close_api_client(fresh)


async def _while_the_apiserver_is_down(control_plane: ControlPlane, replica: ControllerProcess, probes: Probes
                                       ) -> tuple[list[tuple[int, str]], float, dict[str, float]]:
    """Kill kube-apiserver; once the leader has stepped down, sample its readiness until its elector has failed to
    reach the Lease three more times; read its metrics; start kube-apiserver again (whatever happened)."""
    try:
        await asyncio.to_thread(control_plane.kill_apiserver)
        await until(lambda: "LEADER STOP" in replica.log(), within=20, what="the leader steps down")
        stepped_down = len(replica.log())
        readiness = [await probes.readiness()]
        for _ in range(400):
            if replica.log()[stepped_down:].count("leader election spiderpool-controller-leases:") >= 3:
                break
            readiness.append(await probes.readiness())
            await asyncio.sleep(0.05)
        return readiness, await probes.is_leader(), await probes.units_up()
    finally:
        await asyncio.to_thread(control_plane.start_apiserver)


async def _all_up(probes: Probes) -> bool:
    return set((await probes.units_up()).values()) == {1.0}


async def _ready(probes: Probes) -> bool:
    return (await probes.readiness())[0] == 200


async def _leak_is_collected(api: ApiClient) -> bool:
    """A pool (admitted by the webhooks) with a record of a pod that never existed: True once the record is gone;
    the pool is then deleted and its finalizer dropped by the pool lifecycle."""
    stores = SpiderStores(api)
    name = f"sv07-{uuid.uuid4().hex[:6]}"
    created = await stores.ippools.create({"metadata": {"name": name},
                                           "spec": {"subnet": "10.196.0.0/24", "ips": ["10.196.0.10-10.196.0.20"]}})
    assert "spiderpool.spidernet.io" in created["metadata"].get("finalizers", []), "mutated by the webhook"
    writer = PoolStatusWriter(stores.ippools, redecide=lambda *_: None)
    try:
        await writer.allocate(name, AllocateIntent("sv07-gone/ghost", str(uuid.uuid4()), "10.196.0.10"))
    finally:
        await writer.close()

    async def released() -> bool:
        pool = await stores.ippools.get(name)
        return not decode_allocated_ips(pool.get("status", {}).get("allocatedIPs"))

    await until(released, within=30, what="the ghost's record released by leak collection")
    await stores.ippools.delete(name)

    async def gone() -> bool:
        try:
            await stores.ippools.get(name)
        except NotFound:
            return True
        return False

    await until(gone, within=30, what="the empty pool's finalizer dropped")
    return True

