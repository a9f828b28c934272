"""The record combiner trusts no agent: what it writes is checked against the pool object, and an allocation the
agent no longer waits for is dropped, not written late.  Real API server; the combiner is served in-process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from agent_support import Cluster, eventually, span, unique
from combiner_support import post_json, served_combiner, service_account_token
from kubernetes_asyncio.client import ApiClient

from spiderpool.agent.combining import CombinerClient
from spiderpool.core.record_combining import CombineRequest
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.access_reviews import Caller, may_write_status, review_token
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.crd_schema import GROUP, IPPOOL

pytestmark = pytest.mark.integration

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def allocation(pool: str, uid: str, *candidates: str, deadline: float | None = None) -> dict[str, Any]:
    return CombineRequest("allocate", pool, uid, pod=f"default/{uid}", candidates=candidates,
                          deadline=deadline).to_json()


async def test_the_combiner_writes_only_addresses_the_pool_allows(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path) -> None:
    """RCB12: Offered addresses are checked against the pool object the combiner writes: one in excludeIPs, one
    outside ips (inside the subnet), one of the other family, one another pod's record holds: each alone is refused
    (409, the reason named) and nothing is written; offered after an excluded one, an eligible address is written
    (before: the agent's first choice was written unchecked, excluded or not)."""
    pool = await cluster.pool(subnet="10.211.12.0/24", ips=[span("10.211.12.1", 4)], excludeIPs=["10.211.12.2"])
    token = control_plane.token
    async with served_combiner(api, tmp_path) as ((url, ca_file), _):
        refusals = {}
        for ip in ("10.211.12.2", "10.211.12.100", "fd00::1"):
            status, body = await post_json(url, ca_file, allocation(pool, unique("uid"), ip), token=token)
            refusals[ip] = (status, body["reason"], str(body["message"]))
        owner = unique("uid")
        status, body = await post_json(url, ca_file, allocation(pool, owner, "10.211.12.2", "10.211.12.3"),
                                       token=token)
        assert (status, body["ip"]) == (200, "10.211.12.3")
        taken = await post_json(url, ca_file, allocation(pool, unique("uid"), "10.211.12.3"), token=token)
    assert refusals["10.211.12.2"][:2] == (409, "CandidatesTaken")
    assert "10.211.12.2 is not in the pool's ips minus excludeIPs" in refusals["10.211.12.2"][2]
    assert refusals["10.211.12.100"][:2] == (409, "CandidatesTaken")
    assert "10.211.12.100 is not in the pool's ips minus excludeIPs" in refusals["10.211.12.100"][2]
    assert refusals["fd00::1"][:2] == (409, "CandidatesTaken")
    assert "fd00::1 is not IPv4" in refusals["fd00::1"][2]
    assert taken[0] == 409
    assert "1 taken" in str(taken[1]["message"])
    assert {ip: record.pod_uid for ip, record in (await cluster.records(pool)).items()} == {"10.211.12.3": owner}


async def test_an_allocation_past_the_agents_deadline_is_dropped_unwritten(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path) -> None:
    """RCB13: An allocation whose deadline has passed when the combiner plans it is answered DeadlinePassed and not
    written; one without a deadline (an older agent) or with one ahead is written.  The agent's own client sends its
    deadline: when the combiner reaches a request only after the agent gave up on it (a pod whose DEL may already
    have run), the record is not written (before: written whenever the combiner got to it, a leak until GC)."""
    pool = await cluster.pool(subnet="10.211.13.0/24", ips=[span("10.211.13.1", 4)])
    token = control_plane.token

    async def bearer() -> str:
        return f"Bearer {token}"

    hold = asyncio.Event()
    past, ahead, old = unique("uid"), unique("uid"), unique("uid")
    async with served_combiner(api, tmp_path) as ((url, ca_file), combiner):
        late = await post_json(url, ca_file, allocation(pool, past, "10.211.13.1", deadline=time.time() - 1),
                               token=token)
        on_time = await post_json(url, ca_file, allocation(pool, ahead, "10.211.13.1", deadline=time.time() + 30),
                                  token=token)
        no_deadline = await post_json(url, ca_file, allocation(pool, old, "10.211.13.2"), token=token)
    (tmp_path / "held").mkdir()
    async with served_combiner(api, tmp_path / "held", hold=hold) as ((url, ca_file), held):
        client = CombinerClient(url, token=bearer, ca_file=ca_file, timeout=0.5)
        gave_up = unique("uid")
        try:
            with pytest.raises(TimeoutError):
                await client.send(CombineRequest("allocate", pool, gave_up, pod="default/rcb13",
                                                 candidates=("10.211.13.3",)))
        finally:
            await client.close()
        hold.set()
        await eventually(lambda: held.writer.stats.intents_failed + held.writer.stats.intents_committed == 1,
                         within=30)
    assert late[0] == 409
    assert late[1]["reason"] == "DeadlinePassed"
    assert (on_time[0], on_time[1]["ip"], no_deadline[0], no_deadline[1]["ip"]) == (200, "10.211.13.1", 200,
                                                                                    "10.211.13.2")
    assert (combiner.candidates.expired, held.candidates.expired) == (1, 1)
    assert {ip: record.pod_uid for ip, record in (await cluster.records(pool)).items()} == {
        "10.211.13.1": ahead, "10.211.13.2": old}


async def test_a_caller_allowed_some_pools_by_name_is_served_for_those(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path) -> None:
    """RCB14: A service account whose ClusterRole allows updating spiderippools/status of one pool only (RBAC
    resourceNames) is served for that pool (the pool is named in a further SubjectAccessReview) and refused (403,
    the pool named) for another, where nothing is written (before: 403 for both, the review named no pool)."""
    mine = await cluster.pool(subnet="10.211.14.0/24", ips=[span("10.211.14.1", 2)])
    other = await cluster.pool(subnet="10.211.15.0/24", ips=[span("10.211.15.1", 2)])
    namespace, role = unique("rcb"), unique("rcb14")
    await CoreObjects(api).create_namespace(namespace)
    token = await service_account_token(api, namespace, "one-pool")
    await request_json(api, "POST", f"{RBAC}/clusterroles", what="ClusterRole", body={
        "metadata": {"name": role},
        "rules": [{"apiGroups": [GROUP], "resources": [f"{IPPOOL.plural}/status"], "verbs": ["update"],
                   "resourceNames": [mine]}]})
    await request_json(api, "POST", f"{RBAC}/clusterrolebindings", what="ClusterRoleBinding", body={
        "metadata": {"name": role}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "one-pool", "namespace": namespace}]})
    caller = await authorized(api, token, mine)
    assert not await may_write_status(api, caller, pool=None), "the review without a name (the old one) refuses"
    uid = unique("uid")
    async with served_combiner(api, tmp_path) as ((url, ca_file), _):
        served = await post_json(url, ca_file, allocation(mine, uid, "10.211.14.1"), token=token)
        refused = await post_json(url, ca_file, allocation(other, unique("uid"), "10.211.15.1"), token=token)
    assert (served[0], served[1]["ip"]) == (200, "10.211.14.1")
    assert refused[0] == 403
    assert f"of {other}" in str(refused[1]["message"])
    assert {ip: record.pod_uid for ip, record in (await cluster.records(mine)).items()} == {"10.211.14.1": uid}
    assert await cluster.records(other) == {}


async def authorized(api: ApiClient, token: str, pool: str) -> Caller:
    """Until the API server's authorizer has the RBAC objects just created (its informer): the combiner remembers a
    refusal for a minute, so it must not be asked before."""
    caller = await review_token(api, token)
    assert caller is not None
    for _ in range(300):
        if await may_write_status(api, caller, pool=pool):
            return caller
        await asyncio.sleep(0.05)
    raise AssertionError(f"{caller.user} never became allowed to update {pool}'s status")
