"""Property tests of the status writer's pure planning step (``plan_batch``, ``status_body``): no control plane.

Random pool states and random batches of allocations and releases (repeated pod UIDs, stale and foreign releases,
pre-chosen addresses that are taken) must never give one pod two records, overwrite or drop another pod's record, hand
out an address released in the same write, or report a pool exhausted while it still had room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set

from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import (
    Allocated,
    AllocateIntent,
    Intent,
    PendingIntent,
    PoolExhausted,
    PoolUnavailable,
    Released,
    ReleaseIntent,
    plan_batch,
    status_body,
)

CANDIDATES = [f"10.0.0.{i}" for i in range(1, 9)]
UIDS = [f"u{i}" for i in range(6)]
POOL: SpiderIPPool = {"metadata": {"name": "p", "resourceVersion": "7"}, "spec": {"subnet": "10.0.0.0/24"}}


def first_fit(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
    return next((ip for ip in CANDIDATES if ip not in taken), None)


@st.composite
def pool_records(draw: st.DrawFn) -> dict[str, PoolIPAllocation]:
    owners = draw(st.lists(st.sampled_from(UIDS), unique=True, max_size=len(UIDS)))
    ips = draw(st.permutations(CANDIDATES))
    return {ip: PoolIPAllocation(pod=f"ns/pod-{uid}", pod_uid=uid) for ip, uid in zip(ips, owners, strict=False)}


intents = st.one_of(
    st.builds(
        lambda uid, ip: AllocateIntent(pod=f"ns/pod-{uid}", pod_uid=uid, ip=ip),
        st.sampled_from(UIDS),
        st.none() | st.sampled_from(CANDIDATES),
    ),
    st.builds(lambda uid, ip: ReleaseIntent(ip=ip, pod_uid=uid), st.sampled_from(UIDS), st.sampled_from(CANDIDATES)),
)


def pending(batch: list[Intent], loop: asyncio.AbstractEventLoop) -> list[PendingIntent]:
    return [
        PendingIntent(intent, loop.create_future(), intent.ip if isinstance(intent, AllocateIntent) else None)
        for intent in batch
    ]


@settings(max_examples=400, deadline=None)
@given(start=pool_records(), batch=st.lists(intents, max_size=14))
def test_plan_keeps_every_invariant(start: dict[str, PoolIPAllocation], batch: list[Intent]) -> None:
    """STP01: Plan keeps every invariant."""
    before = dict(start)
    loop = asyncio.new_event_loop()
    try:
        plan = plan_batch("p", POOL, start, pending(batch, loop), first_fit)
    finally:
        loop.close()
    final = plan.records
    released_by_owner = {(o.ip, o.pod_uid) for o in plan.outcomes if isinstance(o, Released) and o.removed}
    released_ips = {ip for ip, _ in released_by_owner}

    assert len(plan.outcomes) == len(batch)
    assert start == before, "the input records must not be modified"
    uids = [record.pod_uid for record in final.values()]
    assert len(uids) == len(set(uids)), "one pod, one record per pool"
    for ip, record in start.items():  # another pod's record is only ever removed by that pod's own release
        assert final.get(ip) == record or (ip, record.pod_uid) in released_by_owner
    released_so_far: set[str] = set()
    for intent, outcome in zip(batch, plan.outcomes, strict=True):
        if isinstance(outcome, Released) and outcome.removed:
            released_so_far.add(outcome.ip)
        if isinstance(outcome, Allocated) and not outcome.existing:
            assert outcome.ip not in start, "a new allocation never takes a recorded address"
            assert outcome.ip not in released_so_far, "an address released in this write is not handed out in it"
        if isinstance(outcome, Allocated):
            assert outcome.pod_uid == intent.pod_uid
            kept = final.get(outcome.ip) == PoolIPAllocation(outcome.pod, outcome.pod_uid)
            assert kept or (outcome.ip, outcome.pod_uid) in released_by_owner, "an allocation was lost"
        if isinstance(outcome, PoolExhausted):
            assert all(ip in final or ip in released_ips for ip in CANDIDATES), "exhausted while room was left"
    assert plan.changed or final == start


@given(records=pool_records())
def test_status_body_round_trips_and_keeps_count_equal_to_records(records: dict[str, PoolIPAllocation]) -> None:
    """STP02: Status body round trips and keeps count equal to records."""
    stale: SpiderIPPool = {
        **POOL,
        "status": {"allocatedIPs": '{"10.9.9.9":{"pod":"a/b","podUid":"x"}}', "totalIPCount": 8},
    }

    body = status_body(stale, records)

    status = body["status"]
    assert status["allocatedIPCount"] == len(records)
    assert status["totalIPCount"] == 8
    assert ("allocatedIPs" in status) == bool(records), "the field is omitted when there are no records"
    assert decode_allocated_ips(status.get("allocatedIPs")) == records
    assert body["metadata"] == POOL["metadata"], "the compare-and-swap precondition (resourceVersion) is kept"


def test_a_redecided_choice_is_kept_for_the_retry() -> None:
    """STP03: A redecided choice is kept for the retry."""
    loop = asyncio.new_event_loop()
    try:
        batch = pending([AllocateIntent(pod="ns/a", pod_uid="ua", ip="10.0.0.1")], loop)
        taken = {"10.0.0.1": PoolIPAllocation("ns/b", "ub")}
        first = plan_batch("p", POOL, taken, batch, first_fit)
        calls: list[str] = []

        def must_not_be_called(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
            calls.append(intent.pod_uid)
            return None

        retry = plan_batch("p", POOL, {**taken, "10.0.0.3": PoolIPAllocation("ns/c", "uc")}, batch, must_not_be_called)
    finally:
        loop.close()
    assert first.outcomes == [Allocated("p", "10.0.0.2", "ns/a", "ua", existing=False)]
    assert first.redecisions == 1
    assert retry.outcomes == first.outcomes
    assert calls == []


class Rechecked(AllocateIntent):
    recheck = True


def test_a_rechecked_choice_is_asked_at_every_plan_and_may_be_refused() -> None:
    """STP04: An intent that asks for a re-check (the record combiner's) reaches ``redecide`` at every plan even
    while its choice is free, not counted as a redecision; a StatusWriteError ``redecide`` raises is the intent's
    outcome as it is (its type names why), not a generic failure, and the rest of the batch is written (before: the
    first choice was written without ``redecide`` ever seeing it)."""
    loop = asyncio.new_event_loop()
    calls: list[str] = []

    def refuse_b(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        calls.append(intent.pod_uid)
        if intent.pod_uid == "ub":
            raise PoolUnavailable("p", "not for ub")
        return intent.ip

    try:
        batch = pending([Rechecked(pod="ns/a", pod_uid="ua", ip="10.0.0.1"),
                         Rechecked(pod="ns/b", pod_uid="ub", ip="10.0.0.2")], loop)
        plans = [plan_batch("p", POOL, {}, batch, refuse_b) for _ in range(2)]
    finally:
        loop.close()
    assert calls == ["ua", "ub", "ua", "ub"]
    for plan in plans:
        assert plan.outcomes[0] == Allocated("p", "10.0.0.1", "ns/a", "ua", existing=False)
        assert isinstance(plan.outcomes[1], PoolUnavailable)
        assert str(plan.outcomes[1]) == "not for ub"
        assert list(plan.added) == ["10.0.0.1"]
        assert plan.redecisions == 0
