"""Leak collection end to end: the real spiderpool-controller process (its webhooks admitting the pools, its leader
collecting leaks) with real agents and Debian's macvlan; pods whose CNI DEL never comes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spiderpool.k8s.store import NotFound
from spiderpool.testbed.controller_process import (
    POOL_CIDR_LABEL,
    ControllerOptions,
    ControllerProcess,
    registered_webhooks,
    wait_for_admission,
)
from spiderpool.testbed.members import NicAttachment, SimulatedPod
from spiderpool.testbed.testbed import Testbed

from .support import Pools, audit, eventually, interface, read_endpoint, read_pool, records_of, result_ips, unique

pytestmark = pytest.mark.e2e

@pytest.fixture
async def controller(bed: Testbed, tmp_path: Path) -> AsyncIterator[ControllerProcess]:
    """The controller, leading in a namespace of its own (Lease, admission ledger), its webhooks in force; stopped
    afterwards, which must remove its webhook configurations (else every later pool request would fail)."""
    lease_namespace = unique("e2e-controller")
    await bed.core.create_namespace(lease_namespace)
    process = ControllerProcess(
        ControllerOptions(kubeconfig=bed.kubeconfig, log_path=tmp_path / "controller.log",
                          namespace=lease_namespace, identity=lease_namespace)
    )
    try:
        await asyncio.to_thread(process.start)
        await wait_for_admission(bed.kubeconfig)
        yield process
    finally:
        await asyncio.to_thread(process.stop)
        await bed.core.delete_namespace(lease_namespace)
    assert await registered_webhooks(bed.kubeconfig) == [], "the stopped controller left its webhooks registered"


@pytest.fixture
async def held_pools(bed: Testbed, controller: ControllerProcess) -> AsyncIterator[Pools]:
    """Pools admitted by the controller carry its finalizer, which it lifts once the last record is released: so
    the pods go first (CNI DEL), then the pools, and the controller must still run while they go."""
    made = Pools(bed)
    yield made
    await asyncio.gather(*(bed.remove_pod(pod) for pod in list(bed.pods.values())))
    await made.delete_all()

    async def all_gone() -> bool:
        for name in made.names:
            try:
                await read_pool(bed, name)
            except NotFound:
                continue
            return False
        return True

    await eventually(all_gone, within=20.0, what=f"pools {made.names} released by the controller's finalizer")


async def _holds(bed: Testbed, pools: list[str], uid: str) -> list[str]:
    return [ip for pool in pools for ip, record in (await records_of(bed, pool)).items() if record.pod_uid == uid]


async def _add(bed: Testbed, pod: SimulatedPod, config: dict[str, Any]) -> dict[str, Any]:
    """CNI ADD through macvlan and the kubelet's Running report; the result (a runtime caches it for CHECK)."""
    run = await bed.cni.add(pod, config)
    assert run.ok, run.describe()
    await bed.report_running(pod)
    return run.json()


def _ips(result: dict[str, Any]) -> list[str]:
    """The result's addresses without prefix length, sorted (IPv4 first)."""
    return sorted(ip.split("/")[0] for ip in result_ips(result))


async def test_l01_lost_del_is_collected_and_a_recreated_pod_keeps_its_address(
    bed: Testbed, namespace: str, controller: ControllerProcess, held_pools: Pools
) -> None:
    """L01: the controller (a real process) admits the pools; a pod deleted without CNI DEL and re-created at once
    with the same name keeps its new addresses, endpoint and working interface while the controller releases the old
    UID's (upstream #1187); a pod deleted without CNI DEL loses its records and endpoint within seconds, and in a
    full pool its addresses go to the next pod."""
    v4, v6 = unique("l01-v4"), unique("l01-v6")
    await held_pools.create(v4, subnet="10.250.61.0/24", ips=["10.250.61.10-10.250.61.12"], gateway="10.250.61.1")
    await held_pools.create(v6, subnet="fd00:250:61::/64", ips=["fd00:250:61::10-fd00:250:61::12"])
    assert (await read_pool(bed, v4))["metadata"]["labels"][POOL_CIDR_LABEL] == "10-250-61-0-24"
    node = await bed.add_node(unique(f"{bed.prefix}-l01"))
    config = bed.macvlan(node, network="l01-net", default_ipv4_ippool=[v4], default_ipv6_ippool=[v6])
    lost, same = [await bed.create_pod(node, name=name, namespace=namespace) for name in ("lost", "same")]
    assert _ips(await _add(bed, lost, config)) == ["10.250.61.10", "fd00:250:61::10"]
    assert _ips(await _add(bed, same, config)) == ["10.250.61.11", "fd00:250:61::11"]

    await bed.finish_pod(same)  # the Pod object and the sandbox go; CNI DEL never runs
    again = await bed.create_pod(node, name="same", namespace=namespace)
    again_result = await _add(bed, again, config)
    await eventually(lambda: _released(bed, [v4, v6], same), within=15.0, what=f"release of {same.key} {same.uid}")
    assert sorted(await _holds(bed, [v4, v6], again.uid)) == _ips(again_result)
    endpoint = await read_endpoint(bed, again)
    assert endpoint is not None
    assert endpoint["status"]["current"]["uid"] == again.uid
    assert sorted(str(address.ip) for address in interface(again).addresses) == _ips(again_result)
    check = await bed.cni.check(again, config, prev_result=again_result)
    assert check.ok, check.describe()

    filler = await bed.create_pod(node, name="filler", namespace=namespace)
    await _add_until_granted(bed, filler, config)  # the pools are full now
    await bed.finish_pod(lost)
    await eventually(lambda: _released(bed, [v4, v6], lost), within=15.0, what=f"release of {lost.key}'s records")
    # The collector has acted on a later deletion since: the re-created pod still holds what it was given.
    assert sorted(await _holds(bed, [v4, v6], again.uid)) == _ips(again_result)
    assert (await read_pool(bed, v4))["status"]["allocatedIPCount"] == 2
    successor = await bed.create_pod(node, name="successor", namespace=namespace)
    assert _ips(await _add_until_granted(bed, successor, config)) == ["10.250.61.10", "fd00:250:61::10"]
    audit_verdict = await audit(bed, [v4, v6], namespace=namespace)
    assert audit_verdict.clean, audit_verdict.describe()
    assert audit_verdict.record_count() == 6


async def _add_until_granted(bed: Testbed, pod: SimulatedPod, config: dict[str, Any], *, within: float = 10.0
                             ) -> dict[str, Any]:
    """ADD, retried as a kubelet does (DEL, new sandbox) while the pools look full: an agent's view of a pool may
    lag a release made by the controller for a moment."""
    deadline = time.monotonic() + within
    while True:
        run = await bed.cni.add(pod, config)
        if run.ok:
            await bed.report_running(pod)
            return run.json()
        assert time.monotonic() < deadline, run.describe()
        await bed.replace_sandbox(pod, failed=[NicAttachment(config, "eth0", direct_ipam=False)])
        await asyncio.sleep(0.2)


async def _released(bed: Testbed, pools: list[str], pod: SimulatedPod) -> bool:
    """No pool records ``pod``'s UID and its SpiderEndpoint (of that UID) is gone."""
    if await _holds(bed, pools, pod.uid):
        return False
    endpoint = await read_endpoint(bed, pod)
    return endpoint is None or endpoint["status"]["current"]["uid"] != pod.uid
