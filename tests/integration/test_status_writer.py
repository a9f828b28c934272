"""The batched pool status writer against the real API server: group commit, CAS retries, idempotency, races."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable, Set
from contextlib import AsyncExitStack

import pytest
from kubernetes_asyncio.client import ApiClient

from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderIPPool, SpiderIPPoolSpec
from spiderpool.k8s.client import close_api_client, make_api_client
from spiderpool.k8s.status_plan import (
    Allocated,
    AllocateIntent,
    PoolExhausted,
    PoolNotFound,
    PoolUnavailable,
    Redecide,
    Released,
    ReleaseIntent,
    WriteAbandoned,
)
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import IPPOOL, Conflicted, CustomObjectStore, SpiderStores, Swapped, Unavailable
from spiderpool.k8s.watch_cache import WatchCache, custom_object_source

pytestmark = pytest.mark.integration


def addresses(first: str, count: int) -> list[str]:
    start = ipaddress.ip_address(first)
    return [str(start + offset) for offset in range(count)]


def first_fit(candidates: list[str]) -> Redecide:
    """What a node's allocator does when its choice was taken: the lowest candidate not taken."""

    def redecide(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        return next((ip for ip in candidates if ip not in taken), None)

    return redecide


class LocalAllocator:
    """A simulated node's allocator: first-fit over its own view only, so nodes collide like upstream's do."""

    def __init__(self, candidates: list[str]) -> None:
        self.candidates = candidates
        self.used: set[str] = set()

    def choose(self) -> str | None:
        for ip in self.candidates:
            if ip not in self.used:
                self.used.add(ip)
                return ip
        return None

    def redecide(self, pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        self.used |= taken
        return self.choose()


async def make_pool(api: ApiClient, *, size: int, first: str = "10.50.0.1", disable: bool = False) -> str:
    name = f"writer-{uuid.uuid4().hex[:10]}"
    last = addresses(first, size)[-1]
    spec: SpiderIPPoolSpec = {"subnet": "10.50.0.0/16", "ips": [f"{first}-{last}"], "disable": disable}
    await SpiderStores(api).ippools.create({"metadata": {"name": name}, "spec": spec})
    return name


async def stored_records(api: ApiClient, pool: str) -> tuple[dict[str, tuple[str, str]], SpiderIPPool]:
    obj = await SpiderStores(api).ippools.get(pool)
    status = obj.get("status", {})
    records = decode_allocated_ips(status.get("allocatedIPs"))
    assert status.get("allocatedIPCount", 0) == len(records)
    return {ip: (record.pod, record.pod_uid) for ip, record in records.items()}, obj


def intent(index: int, ip: str | None = None) -> AllocateIntent:
    return AllocateIntent(pod=f"default/pod-{index}", pod_uid=f"uid-{index}", ip=ip)


@pytest.fixture
async def writers(control_plane: ControlPlane) -> AsyncIterator[Callable[..., PoolStatusWriter]]:
    """A factory of writers, each on its own ApiClient (a simulated node), all closed after the test."""
    async with AsyncExitStack() as stack:
        credentials = await make_api_client(kubeconfig=control_plane.kubeconfig)
        stack.push_async_callback(credentials.close)

        def make(**options: object) -> PoolStatusWriter:
            client = ApiClient(configuration=credentials.configuration)  # same credentials, connections of its own
            stack.push_async_callback(client.close)
            writer = PoolStatusWriter(SpiderStores(client).ippools, **options)  # type: ignore[arg-type]
            stack.push_async_callback(writer.close)
            return writer

        yield make


async def test_group_commit_writes_a_burst_in_few_updates(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW01: Group commit writes a burst in few updates."""
    pool = await make_pool(api, size=64)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 64)))

    results = await asyncio.gather(*(writer.allocate(pool, intent(i)) for i in range(50)))

    assert len({result.ip for result in results}) == 50
    assert writer.stats.writes <= 2
    assert writer.stats.intents_committed == 50
    records, _ = await stored_records(api, pool)
    assert records == {r.ip: (r.pod, r.pod_uid) for r in results}


async def test_batching_off_writes_one_update_per_intent(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW02: Batching off writes one update per intent."""
    pool = await make_pool(api, size=32)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 32)), batching=False)

    results = await asyncio.gather(*(writer.allocate(pool, intent(i)) for i in range(20)))

    assert writer.stats.writes == 20
    assert writer.stats.largest_batch == 1
    records, _ = await stored_records(api, pool)
    assert sorted(records) == sorted(result.ip for result in results)


async def test_allocation_is_idempotent_by_pod_uid(api: ApiClient, writers: Callable[..., PoolStatusWriter]) -> None:
    """SW03: Allocation is idempotent by pod UID."""
    pool = await make_pool(api, size=8)
    candidates = addresses("10.50.0.1", 8)
    writer = writers(redecide=first_fit(candidates))

    same_batch = await asyncio.gather(
        writer.allocate(pool, intent(1)), writer.allocate(pool, intent(1, ip="10.50.0.5"))
    )
    later = await writer.allocate(pool, intent(1, ip="10.50.0.7"))
    restarted = await writers(redecide=first_fit(candidates)).allocate(pool, intent(1))  # a fresh agent, same pod

    assert {result.ip for result in [*same_batch, later, restarted]} == {same_batch[0].ip}
    assert [same_batch[0].existing, same_batch[1].existing, later.existing, restarted.existing] == [
        False,
        True,
        True,
        True,
    ]
    records, _ = await stored_records(api, pool)
    assert records == {same_batch[0].ip: ("default/pod-1", "uid-1")}


async def test_release_removes_only_the_same_pods_record(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW04: Release removes only the same pods record."""
    pool = await make_pool(api, size=8)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 8)))
    mine = await writer.allocate(pool, intent(1))

    by_stranger = await writer.release(pool, ReleaseIntent(ip=mine.ip, pod_uid="someone-else"))
    records, _ = await stored_records(api, pool)
    assert by_stranger == Released(pool, mine.ip, "someone-else", removed=False)
    assert records == {mine.ip: ("default/pod-1", "uid-1")}

    by_owner = await writer.release(pool, ReleaseIntent(ip=mine.ip, pod_uid="uid-1"))
    again = await writer.release(pool, ReleaseIntent(ip=mine.ip, pod_uid="uid-1"))
    records, obj = await stored_records(api, pool)
    assert (by_owner.removed, again.removed) == (True, False)
    assert records == {}
    assert "allocatedIPs" not in obj["status"]  # upstream omits the field when empty (lets the finalizer go)
    assert obj["status"]["allocatedIPCount"] == 0


async def test_conflict_rereads_and_redecides_a_taken_address(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW05: Conflict rereads and redecides a taken address."""
    pool = await make_pool(api, size=8)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 8)))
    await writer.allocate(pool, intent(0, ip="10.50.0.1"))
    other_node = writers(redecide=first_fit(addresses("10.50.0.1", 8)))
    await other_node.allocate(pool, intent(1, ip="10.50.0.2"))  # behind the first writer's back

    result = await writer.allocate(pool, intent(2, ip="10.50.0.2"))

    assert result.ip == "10.50.0.3"
    assert writer.stats.conflicts == 1
    assert writer.stats.redecisions == 1
    records, _ = await stored_records(api, pool)
    assert records == {
        "10.50.0.1": ("default/pod-0", "uid-0"),
        "10.50.0.2": ("default/pod-1", "uid-1"),
        "10.50.0.3": ("default/pod-2", "uid-2"),
    }


async def test_exhausted_pool_fails_only_the_callers_without_an_address(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW06: Exhausted pool fails only the callers without an address."""
    pool = await make_pool(api, size=2)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 2)))

    outcomes = await asyncio.gather(*(writer.allocate(pool, intent(i)) for i in range(3)), return_exceptions=True)

    allocated = [o for o in outcomes if isinstance(o, Allocated)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert sorted(o.ip for o in allocated) == ["10.50.0.1", "10.50.0.2"]
    assert len(failed) == 1
    assert isinstance(failed[0], PoolExhausted)
    assert str(failed[0]) == f"pool {pool} exhausted"


async def test_disabled_pool_refuses_allocation_but_allows_release(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW07: Disabled pool refuses allocation but allows release."""
    pool = await make_pool(api, size=4)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 4)))
    held = await writer.allocate(pool, intent(1))
    pools = SpiderStores(api).ippools
    current = await pools.get(pool)
    await pools.replace({**current, "spec": {**current["spec"], "disable": True}})

    with pytest.raises(PoolUnavailable, match=f"pool {pool} is disabled"):
        await writer.allocate(pool, intent(2))
    released = await writer.release(pool, ReleaseIntent(ip=held.ip, pod_uid="uid-1"))

    assert released.removed
    assert (await stored_records(api, pool))[0] == {}


async def test_missing_pool_fails_with_its_name(writers: Callable[..., PoolStatusWriter]) -> None:
    """SW08: Missing pool fails with its name."""
    writer = writers(redecide=first_fit([]))
    with pytest.raises(PoolNotFound, match="pool no-such-pool not found"):
        await writer.allocate("no-such-pool", intent(1))


async def test_bad_intent_is_rejected_naming_field_and_value(writers: Callable[..., PoolStatusWriter]) -> None:
    """SW09: Bad intent is rejected naming field and value."""
    writer = writers(redecide=first_fit([]))
    with pytest.raises(ValueError, match=r"pod: Invalid value: \"pod-without-namespace\""):
        writer.submit("p", AllocateIntent(pod="pod-without-namespace", pod_uid="u"))
    with pytest.raises(ValueError, match=r"ip: Invalid value: \"10.0.0.300\""):
        writer.submit("p", ReleaseIntent(ip="10.0.0.300", pod_uid="u"))


async def test_two_writers_racing_lose_no_update(api: ApiClient, writers: Callable[..., PoolStatusWriter]) -> None:
    """SW10: Two writers racing lose no update."""
    pool = await make_pool(api, size=200)
    candidates = addresses("10.50.0.1", 200)
    nodes = [LocalAllocator(candidates) for _ in range(2)]
    racing = [writers(redecide=node.redecide) for node in nodes]

    async def one(index: int) -> Allocated:
        node = index % 2
        return await racing[node].allocate(pool, intent(index, ip=nodes[node].choose()))

    results = await asyncio.gather(*(one(i) for i in range(150)))

    records, _ = await stored_records(api, pool)
    assert len(records) == 150
    assert records == {r.ip: (r.pod, r.pod_uid) for r in results}
    assert sum(w.stats.redecisions for w in racing) > 0  # both nodes aimed at the same addresses: a real race


async def test_four_nodes_fill_a_pool_of_exactly_500(api: ApiClient, writers: Callable[..., PoolStatusWriter]) -> None:
    """SW11: Four nodes fill a pool of exactly 500."""
    pool = await make_pool(api, size=500)
    candidates = addresses("10.50.0.1", 500)
    nodes = [LocalAllocator(candidates) for _ in range(4)]
    node_writers = [writers(redecide=node.redecide) for node in nodes]

    async def one(index: int) -> Allocated:
        node = index % 4  # every node starts first-fit at the same lowest address: collisions are certain
        return await node_writers[node].allocate(pool, intent(index, ip=nodes[node].choose()))

    results = await asyncio.gather(*(one(i) for i in range(500)))

    records, obj = await stored_records(api, pool)
    assert obj["status"]["allocatedIPCount"] == 500
    assert len({r.ip for r in results}) == 500
    assert sorted(records, key=ipaddress.ip_address) == candidates
    assert records == {r.ip: (r.pod, r.pod_uid) for r in results}
    assert sorted(uid for _, uid in records.values()) == sorted(f"uid-{i}" for i in range(500))
    assert sum(w.stats.redecisions for w in node_writers) > 0
    with pytest.raises(PoolExhausted):
        await node_writers[0].allocate(pool, intent(501))


async def test_concurrent_allocations_and_releases_keep_count_equal_to_records(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW12: Concurrent allocations and releases keep count equal to records."""
    pool = await make_pool(api, size=100)
    candidates = addresses("10.50.0.1", 100)
    first, second = writers(redecide=first_fit(candidates)), writers(redecide=first_fit(candidates))
    held = await asyncio.gather(*(first.allocate(pool, intent(i)) for i in range(60)))

    releases = [second.release(pool, ReleaseIntent(ip=r.ip, pod_uid=r.pod_uid)) for r in held[:30]]
    allocations = [first.allocate(pool, intent(i)) for i in range(100, 130)]
    outcomes = await asyncio.gather(*releases, *allocations)

    assert all(o.removed for o in outcomes[:30] if isinstance(o, Released))
    records, _ = await stored_records(api, pool)
    expected = {r.ip: (r.pod, r.pod_uid) for r in [*held[30:], *outcomes[30:]] if isinstance(r, Allocated)}
    assert records == expected
    assert len(records) == 60


class LostResponses(CustomObjectStore[SpiderIPPool]):
    """The first ``lose`` successful status writes reach the server, but their responses are lost on the way back."""

    def __init__(self, api: ApiClient, *, lose: int) -> None:
        super().__init__(api, IPPOOL)
        self.lose = lose

    async def swap_status(self, body: SpiderIPPool) -> Swapped[SpiderIPPool] | Conflicted:
        result = await super().swap_status(body)
        if self.lose > 0 and isinstance(result, Swapped):
            self.lose -= 1
            raise Unavailable("update status: API server unavailable: Server disconnected")
        return result


async def test_a_write_whose_response_was_lost_is_not_applied_twice(api: ApiClient) -> None:
    """SW13: A write whose response was lost is not applied twice."""
    pool = await make_pool(api, size=16)
    writer = PoolStatusWriter(
        LostResponses(api, lose=3), redecide=first_fit(addresses("10.50.0.1", 16)), batching=False
    )

    results = await asyncio.gather(*(writer.allocate(pool, intent(i)) for i in range(6)))
    await writer.close()

    assert writer.stats.transient_errors == 3
    assert sum(result.existing for result in results) == 3  # found by pod UID after the re-read, not written again
    records, _ = await stored_records(api, pool)
    assert records == {r.ip: (r.pod, r.pod_uid) for r in results}
    assert len(records) == 6


class Unreachable(CustomObjectStore[SpiderIPPool]):
    async def get(self, name: str, *, namespace: str | None = None) -> SpiderIPPool:
        raise Unavailable("get pool: API server unavailable: Connection refused")


async def test_an_unreachable_server_fails_callers_after_the_deadline(api: ApiClient) -> None:
    """SW14: An unreachable server fails callers after the deadline."""
    writer = PoolStatusWriter(
        Unreachable(api, IPPOOL), redecide=first_fit([]), deadline=0.3, error_backoff=(0.01, 0.05)
    )
    with pytest.raises(WriteAbandoned, match=r"pool p1: no successful write within 0\.[3-9]s: .*Connection refused"):
        await writer.allocate("p1", intent(1))
    assert writer.stats.transient_errors >= 2


async def test_first_base_can_come_from_a_watch_cache(api: ApiClient, writers: Callable[..., PoolStatusWriter]) -> None:
    """SW15: First base can come from a watch cache."""
    pool = await make_pool(api, size=8)
    async with WatchCache(custom_object_source(api, IPPOOL), name="pools") as cache:
        writer = writers(redecide=first_fit(addresses("10.50.0.1", 8)), cached_pool=lambda name: cache.get(name))
        result = await writer.allocate(pool, intent(1))
    assert writer.stats.fresh_reads == 0
    assert (await stored_records(api, pool))[0] == {result.ip: ("default/pod-1", "uid-1")}


async def test_writes_queued_across_an_apiserver_restart_all_land(
    control_plane: ControlPlane, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW16: Writes queued across an API server restart all land."""
    client = await make_api_client(kubeconfig=control_plane.kubeconfig)
    try:
        pool = await make_pool(client, size=1024)
    finally:
        await close_api_client(client)
    writer = writers(redecide=first_fit(addresses("10.50.0.1", 1024)), deadline=90.0)

    restart = asyncio.create_task(asyncio.to_thread(control_plane.restart_apiserver))
    results: list[Allocated] = []
    while not restart.done():  # keep writing before, during and after the downtime
        results += await asyncio.gather(*(writer.allocate(pool, intent(len(results) + i)) for i in range(3)))
        await asyncio.sleep(0.02)
    await restart

    assert writer.stats.transient_errors >= 1  # some writes really did meet the restart
    client = await make_api_client(kubeconfig=control_plane.kubeconfig)
    try:
        records, _ = await stored_records(client, pool)
    finally:
        await close_api_client(client)
    assert records == {r.ip: (r.pod, r.pod_uid) for r in results}
    assert len(records) == len(results)


async def _lost_race(api: ApiClient, writers: Callable[..., PoolStatusWriter], *, watch_delivers: bool
                     ) -> PoolStatusWriter:
    """A writer plans on a stale copy (another node's write of 10.50.0.1 landed since) and loses; afterwards its
    watch copy is the newer object (``watch_delivers``) or still the stale one (the watch lags)."""
    pool = await make_pool(api, size=8)
    stale = await SpiderStores(api).ippools.get(pool)
    candidates = addresses("10.50.0.1", 8)
    await writers(redecide=first_fit(candidates)).allocate(pool, intent(1, ip="10.50.0.1"))
    newer = await SpiderStores(api).ippools.get(pool)
    lost: list[PoolStatusWriter] = []

    def watch_copy(name: str) -> SpiderIPPool:
        return newer if watch_delivers and lost[0].stats.conflicts else stale

    writer = writers(redecide=first_fit(candidates), cached_pool=watch_copy)
    lost.append(writer)
    result = await writer.allocate(pool, intent(2, ip="10.50.0.1"))
    assert result.ip == "10.50.0.2"
    assert (await stored_records(api, pool))[0] == {"10.50.0.1": ("default/pod-1", "uid-1"),
                                                     "10.50.0.2": ("default/pod-2", "uid-2")}
    assert writer.stats.conflicts == 1
    return writer


async def test_sw17_a_lost_race_is_replanned_on_the_watch_copy_without_a_read(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW17: after a 409, the watch already holds the object of the write that won: the writer re-decides on it and
    writes, with no direct read (before: every lost race cost a GET, whatever the watch had)."""
    writer = await _lost_race(api, writers, watch_delivers=True)
    assert (writer.stats.fresh_reads, writer.stats.watch_catch_ups) == (0, 1)


async def test_sw18_a_lagging_watch_still_gets_a_read_after_a_lost_race(
    api: ApiClient, writers: Callable[..., PoolStatusWriter]
) -> None:
    """SW18: after a 409 the watch still shows the copy that lost: the writer reads the pool directly (never plans
    twice on what it knows is stale)."""
    writer = await _lost_race(api, writers, watch_delivers=False)
    assert (writer.stats.fresh_reads, writer.stats.watch_catch_ups) == (1, 0)
