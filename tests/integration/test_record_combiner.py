"""The controller's record combiner against the real API server: several agents, one pool, one ADD in flight each.

Agents are in-process (their counters are read directly); the combiner is either served in-process on HTTPS (so a
test can lose its answer on purpose) or the real ``spiderpool-controller`` process (so a test can SIGKILL it).
Every case checks the invariants, never timings: every ADD answered, one record per pod, no address twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from agent_support import Cluster, cni_request, eventually, running_agent, span, unique
from aiohttp import web
from combiner_support import Combiner, certificate_files, post_json, served_combiner, service_account_token
from controller_support import ControllerProcess
from kubernetes_asyncio.client import (
    ApiClient,
    V1Pod,
)
from prometheus_client import generate_latest

from spiderpool.agent.combining import CombinerClient
from spiderpool.agent.daemon import Agent
from spiderpool.controller.metrics import ControllerMetrics
from spiderpool.controller.webhook_server import server_ssl_context, start_site
from spiderpool.core.record_combining import PATH, CombineRequest
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.access_reviews import CallerCache
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter, resource_version_number
from spiderpool.k8s.store import SpiderStores

pytestmark = pytest.mark.integration

@asynccontextmanager
async def agents(control_plane: ControlPlane, socket_dir: Path, nodes: Sequence[str], pool: str,
                 combiners: Sequence[Combiner | None], *, always: bool = True) -> AsyncIterator[list[Agent]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_agent(control_plane, node, socket_dir / f"{node}.sock",
                                                             pools=[pool], combiner=combiner, always=always))
               for node, combiner in zip(nodes, combiners, strict=True)]


async def add_one_at_a_time(agent: Agent, pods: Sequence[V1Pod], pool: str) -> list[str]:
    """The node's ADDs, one in flight (a kubelet starting pods one after the other); the addresses given."""
    given = []
    for pod in pods:
        result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        given.append(str(result.ips[0].address.ip))
    return given


async def every_node(running: Sequence[Agent], pods: Sequence[Sequence[V1Pod]], pool: str,
                     part: slice = slice(None)) -> list[str]:
    """Every node's ADDs of ``part`` of its pods at once, one in flight per node; every address given."""
    given = await asyncio.gather(*(add_one_at_a_time(agent, mine[part], pool)
                                   for agent, mine in zip(running, pods, strict=True)))
    return [ip for ips in given for ip in ips]


async def nodes_and_pods(cluster: Cluster, *, nodes: int, pods_each: int) -> tuple[list[str], list[list[V1Pod]]]:
    names = [await cluster.node() for _ in range(nodes)]
    return names, [[await cluster.pod(node) for _ in range(pods_each)] for node in names]


async def assert_one_record_per_pod(cluster: Cluster, pool: str, pods: Sequence[V1Pod], given: Sequence[str]) -> None:
    records = await cluster.records(pool)
    assert len(given) == len(set(given)) == len(pods), f"an address was given twice: {sorted(given)}"
    by_uid = {record.pod_uid: ip for ip, record in records.items()}
    assert len(by_uid) == len(records) == len(pods), f"{len(records)} records for {len(pods)} pods"
    assert {by_uid[pod.metadata.uid] for pod in pods} == set(given)


async def test_agents_at_one_in_flight_share_the_combiners_writes(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB01: Three agents, one ADD in flight each, race for a pool of exactly 24 addresses through one combiner:
    every ADD is answered, each pod holds one record and no address is given twice; every record went through the
    combiner (no agent wrote the pool itself, none fell back), and the pods' DELs are written by it too; the
    controller's metrics count them."""
    pool = await cluster.pool(subnet="10.211.0.0/24", ips=[span("10.211.0.1", 24)])
    names, pods = await nodes_and_pods(cluster, nodes=3, pods_each=8)
    async with served_combiner(api, tmp_path) as (address, combiner), \
            agents(control_plane, socket_dir, names, pool, [address] * 3) as running:
        given = await every_node(running, pods, pool)
        every = [pod for mine in pods for pod in mine]
        await assert_one_record_per_pod(cluster, pool, every, given)
        assert [(agent.record_writer.stats.combined, agent.record_writer.stats.fallbacks) for agent in running
                ] == [(8, 0)] * 3
        assert [agent.writer.stats.write_requests for agent in running] == [0, 0, 0]
        assert combiner.writer.stats.intents_committed == 24
        for pod in every:
            await cluster.terminate(pod.metadata.name)
        for agent, mine in zip(running, pods, strict=True):
            for pod in mine:
                await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
        assert await cluster.records(pool) == {}
        assert combiner.writer.stats.intents_committed == 48
        metrics = ControllerMetrics()
        metrics.watch_combiner(lambda: combiner.writer.stats)
        exposition = generate_latest(metrics.registry).decode()
        assert "spiderpool_record_combiner_intents_committed_total 48.0" in exposition
        assert [agent.writer.stats.write_requests for agent in running] == [0, 0, 0]


def tls_args(directory: Path) -> tuple[list[str], Path]:
    cert_file, key_file, ca_file = certificate_files(directory)
    return ["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file), "--tls-ca-file", str(ca_file)], ca_file


async def test_a_killed_combiner_leaves_agents_writing_directly(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB02: The real controller process serves three agents' records and is SIGKILLed while their ADDs are in
    flight: every ADD (those in flight at the kill and those after) is still answered, through the agents' own
    writers, with one record per pod and no address twice; the agents count the combiner as unreachable."""
    pool = await cluster.pool(subnet="10.211.1.0/24", ips=[span("10.211.1.1", 30)])
    names, pods = await nodes_and_pods(cluster, nodes=3, pods_each=10)
    namespace = f"rcb-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    args, ca_file = tls_args(tmp_path)
    controller = ControllerProcess(control_plane, identity="rcb02", namespace=namespace, log_dir=tmp_path,
                                   register="none", extra_args=args)
    await asyncio.to_thread(controller.start)
    try:
        address = (controller.webhook_url(), ca_file)
        async with agents(control_plane, socket_dir, names, pool, [address] * 3) as running:
            first = asyncio.create_task(every_node(running, pods, pool, slice(0, 8)))
            await eventually(lambda: sum(agent.record_writer.stats.combined for agent in running) >= 3, within=30)
            await asyncio.to_thread(controller.process.kill)
            given = await first + await every_node(running, pods, pool, slice(8, None))
            await assert_one_record_per_pod(cluster, pool, [pod for mine in pods for pod in mine], given)
            assert all(agent.record_writer.stats.unreachable >= 1 for agent in running)
    finally:
        controller.process.kill()


async def test_a_lost_answer_is_resolved_by_the_pods_uid(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB03: The combiner writes a pod's record and the connection dies before the answer (the agent cannot know
    whether it was written): the agent writes directly, finds the pod's record by its UID and answers with that
    address; the pool holds one record for the pod, not two."""
    pool = await cluster.pool(subnet="10.211.2.0/24", ips=[span("10.211.2.1", 4)])
    names, pods = await nodes_and_pods(cluster, nodes=1, pods_each=1)
    async with served_combiner(api, tmp_path, lose_answers=1) as (address, combiner), \
            agents(control_plane, socket_dir, names, pool, [address]) as running:
        given = await add_one_at_a_time(running[0], pods[0], pool)
        await assert_one_record_per_pod(cluster, pool, pods[0], given)
        stats = running[0].record_writer.stats
        assert (stats.combined, stats.fallbacks, stats.unreachable) == (0, 1, 1)
        assert combiner.writer.stats.intents_committed == 1  # the combiner did write it
        assert running[0].writer.stats.writes == 0  # ... and the direct path found it instead of writing another


async def test_direct_writers_and_the_combiner_race_without_a_duplicate(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB04: Two agents through the combiner and two writing directly (no combiner configured) race for a pool of
    exactly 24 addresses, one ADD in flight each: compare-and-swap conflicts between the combiner and the direct
    writers are re-decided on both sides; every pod gets one record and no address is given twice."""
    pool = await cluster.pool(subnet="10.211.3.0/24", ips=[span("10.211.3.1", 24)])
    names, pods = await nodes_and_pods(cluster, nodes=4, pods_each=6)
    async with served_combiner(api, tmp_path) as (address, combiner), \
            agents(control_plane, socket_dir, names, pool, [address, address, None, None]) as running:
        given = await every_node(running, pods, pool)
        await assert_one_record_per_pod(cluster, pool, [pod for mine in pods for pod in mine], given)
        combined = [agent.record_writer.stats.combined + agent.record_writer.stats.fallbacks for agent in running]
        assert combined == [6, 6, 0, 0]
        assert combiner.writer.stats.intents_committed == 12 - sum(agent.record_writer.stats.fallbacks
                                                                  for agent in running[:2])


async def post(url: str, ca_file: Path, *, token: str | None) -> tuple[int, dict[str, object]]:
    return await post_json(url, ca_file, {"op": "release", "pool": "p", "podUid": "u", "ip": "10.211.4.1"},
                           token=token)


async def test_the_combiner_writes_only_for_callers_that_may_write_themselves(
        api: ApiClient, control_plane: ControlPlane, tmp_path: Path) -> None:
    """RCB05: The combiner grants nothing: no bearer token or one the API server does not authenticate is 401, a
    service account without RBAC on spiderippools/status is 403 (TokenReview + SubjectAccessReview), and only the
    admin's token reaches the writer (a release of a pool that does not exist: 409 naming it)."""
    namespace = unique("rcb")
    await CoreObjects(api).create_namespace(namespace)
    nobody = await service_account_token(api, namespace, "nobody")
    admin = control_plane.token
    async with served_combiner(api, tmp_path) as ((url, ca_file), _):
        assert (await post(url, ca_file, token=None))[0] == 401
        assert (await post(url, ca_file, token="not-a-token"))[0] == 401
        status, body = await post(url, ca_file, token=nobody)
        assert status == 403
        assert "may not update spiderippools/status" in str(body["message"])
        status, body = await post(url, ca_file, token=admin)
        assert status == 409
        assert "pool p not found" in str(body["message"])


async def test_a_late_combiner_write_finds_the_record_the_agent_wrote(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB06: The combiner is slower than the agent's patience: the agent gives up on it and writes the record
    itself; when the combiner finally carries the request out, it finds the pod's record by UID and writes nothing:
    one record for the pod, the address the CNI answer named."""
    pool = await cluster.pool(subnet="10.211.5.0/24", ips=[span("10.211.5.1", 4)])
    names, pods = await nodes_and_pods(cluster, nodes=1, pods_each=1)
    hold = asyncio.Event()
    async with served_combiner(api, tmp_path, hold=hold) as (address, combiner), \
            agents(control_plane, socket_dir, names, pool, [address]) as running:
        given = await add_one_at_a_time(running[0], pods[0], pool)
        stats = running[0].record_writer.stats
        assert (stats.combined, stats.fallbacks, stats.unreachable) == (0, 1, 1)
        assert running[0].writer.stats.writes == 1
        hold.set()
        await eventually(lambda: combiner.writer.stats.intents_committed == 1, within=30)
        assert combiner.writer.stats.write_requests == 0  # it found the record: nothing to write
        await assert_one_record_per_pod(cluster, pool, pods[0], given)


async def test_an_agent_alone_writes_directly_until_another_writer_gets_in_the_way(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB07: With the default policy an agent's first record of a pool asks the combiner, which says nobody else
    writes the pool: its next records it writes itself (no hop to the controller); once its writer finds the pool
    changed by another writer (here a record written meanwhile by someone else), its next records go through the
    combiner again."""
    pool = await cluster.pool(subnet="10.211.6.0/24", ips=[span("10.211.6.1", 8)])
    names, pods = await nodes_and_pods(cluster, nodes=1, pods_each=4)
    async with served_combiner(api, tmp_path) as (address, combiner), \
            agents(control_plane, socket_dir, names, pool, [address], always=False) as running:
        agent = running[0]
        given = await add_one_at_a_time(agent, pods[0][:1], pool)
        assert (agent.record_writer.stats.combined, agent.writer.stats.writes) == (1, 0)  # the first one asks
        await watch_caught_up(agent, api, pool)
        given += await add_one_at_a_time(agent, pods[0][1:2], pool)
        assert (agent.record_writer.stats.combined, agent.writer.stats.writes) == (1, 1)  # alone: directly
        other = PoolStatusWriter(SpiderStores(api).ippools, redecide=lambda *_: None)
        await other.allocate(pool, AllocateIntent(pod="default/other", pod_uid=unique("uid"), ip="10.211.6.8"))
        await other.close()
        await watch_caught_up(agent, api, pool)
        given += await add_one_at_a_time(agent, pods[0][2:3], pool)
        assert (agent.record_writer.stats.combined, agent.writer.stats.writes, agent.writer.stats.foreign_changes) == (
            1, 2, 1)
        given += await add_one_at_a_time(agent, pods[0][3:], pool)
        assert (agent.record_writer.stats.combined, agent.writer.stats.writes) == (2, 2)
        assert combiner.writer.stats.intents_committed == 2
        records = await cluster.records(pool)
        assert sorted(records) == sorted([*given, "10.211.6.8"])


async def watch_caught_up(agent: Agent, api: ApiClient, pool: str) -> None:
    """Until the agent's pool watch has delivered the pool as the API server has it now."""
    current = resource_version_number(await SpiderStores(api).ippools.get(pool))
    assert current is not None

    def seen() -> bool:
        copy = resource_version_number(agent.watched_pool(pool))
        return copy is not None and copy >= current

    await eventually(seen, within=30)


async def test_a_controller_without_the_combiner_costs_one_request_per_pause(
        cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB08: A controller that does not serve the combiner (an older one: 404) is asked once; the agent writes
    directly and, within its pause, does not ask again: two ADDs, one request, both records written."""
    pool = await cluster.pool(subnet="10.211.7.0/24", ips=[span("10.211.7.1", 4)])
    names, pods = await nodes_and_pods(cluster, nodes=1, pods_each=2)
    asked: list[str] = []

    async def older(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_post(PATH, older)
    cert_file, key_file, ca_file = certificate_files(tmp_path)
    runner, port = await start_site(app, host="127.0.0.1", port=0,
                                    ssl_context=server_ssl_context(cert_file=cert_file, key_file=key_file))
    try:
        async with agents(control_plane, socket_dir, names, pool, [(f"https://127.0.0.1:{port}", ca_file)]) as running:
            given = await add_one_at_a_time(running[0], pods[0], pool)
            stats = running[0].record_writer.stats
            assert (stats.combined, stats.unreachable, len(asked)) == (0, 1, 1)
            await assert_one_record_per_pod(cluster, pool, pods[0], given)
    finally:
        await runner.cleanup()


async def test_a_replaced_ca_file_is_read_again_after_a_tls_failure(
        api: ApiClient, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path) -> None:
    """RCB09: The agent's CA file first holds another CA (the Secret before the controller's new certificate): the
    TLS handshake fails and counts as no answer; once the file holds the serving certificate's CA (the mounted Secret
    updated), the same client reads it again and the combiner writes the record."""
    pool = await cluster.pool(subnet="10.211.8.0/24", ips=[span("10.211.8.1", 4)])
    (tmp_path / "served").mkdir()
    (tmp_path / "other").mkdir()
    other_ca = certificate_files(tmp_path / "other")[2]
    mounted = tmp_path / "mounted-ca.crt"
    mounted.write_bytes(other_ca.read_bytes())
    token = control_plane.token

    async def bearer() -> str:
        return f"Bearer {token}"

    async with served_combiner(api, tmp_path / "served") as ((url, ca_file), combiner):
        client = CombinerClient(url, token=bearer, ca_file=mounted)
        request = CombineRequest("allocate", pool, unique("uid"), pod="default/rcb09", candidates=("10.211.8.1",))
        try:
            with pytest.raises(ConnectionError, match="certificate verify failed"):
                await client.send(request)
            mounted.write_bytes(ca_file.read_bytes())
            answer = await client.send(request)
        finally:
            await client.close()
    assert answer is not None
    assert (answer["ip"], answer["podUid"]) == ("10.211.8.1", request.pod_uid)
    assert combiner.writer.stats.intents_committed == 1
    assert {ip: record.pod_uid for ip, record in (await cluster.records(pool)).items()} == {
        "10.211.8.1": request.pod_uid}


async def test_an_answer_that_is_not_json_leaves_the_agent_writing_directly(
        cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, tmp_path: Path) -> None:
    """RCB10: Another HTTPS server at the combiner's address answers 200 with a page that is not JSON: no ADD fails;
    the agent counts it as no answer, writes directly and does not ask again within its pause (both records
    written, one request)."""
    pool = await cluster.pool(subnet="10.211.11.0/24", ips=[span("10.211.11.1", 4)])
    names, pods = await nodes_and_pods(cluster, nodes=1, pods_each=2)
    asked: list[str] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        return web.Response(text="<html>not a combiner</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post(PATH, elsewhere)
    cert_file, key_file, ca_file = certificate_files(tmp_path)
    runner, port = await start_site(app, host="127.0.0.1", port=0,
                                    ssl_context=server_ssl_context(cert_file=cert_file, key_file=key_file))
    try:
        async with agents(control_plane, socket_dir, names, pool, [(f"https://127.0.0.1:{port}", ca_file)]) as running:
            given = await add_one_at_a_time(running[0], pods[0], pool)
            stats = running[0].record_writer.stats
            assert (stats.combined, stats.fallbacks, stats.unreachable, len(asked)) == (0, 1, 1, 1)
            await assert_one_record_per_pod(cluster, pool, pods[0], given)
    finally:
        await runner.cleanup()


async def test_the_caller_cache_keeps_at_most_its_limit(api: ApiClient, control_plane: ControlPlane) -> None:
    """RCB11: tokens that do not authenticate (a flood of made-up ones) are each reviewed and remembered, but at most
    ``limit`` answers are kept, the oldest forgotten first; a real token is still answered and kept."""
    cache = CallerCache(api, limit=3)
    for number in range(6):
        assert await cache.caller(f"made-up-{number}") is None
    assert len(cache) == 3
    admin = await cache.caller(control_plane.token)
    assert admin is not None
    assert admin.may_write_pool_status
    assert len(cache) == 3
    assert await cache.caller(control_plane.token) == admin  # remembered: the same answer
