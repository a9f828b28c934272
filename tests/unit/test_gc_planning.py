"""Leak collection decisions, row by row of the reference's section 5 (and the defects fixed beyond upstream)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spiderpool.core.gc_planning import (
    EndpointSeen,
    GcDecision,
    GcPolicy,
    Holder,
    NodeState,
    Observation,
    PodSeen,
    Reason,
    StatefulSetSeen,
    Verdict,
    plan,
    statefulset_ordinal,
    wanted_by_statefulset,
)

NOW = 1_000_000.0
HOLDER = Holder(pod="ns/web-1", pod_uid="uid-a", ip="10.0.0.5")
STS_HOLDER = Holder(pod="ns/db-2", pod_uid="uid-a", ip="10.0.0.7")
ALIVE = PodSeen(uid="uid-a", phase="Running", node_name="n1", pod_ips=("10.0.0.5",))
DEFAULT = GcPolicy()


def seen(pod: PodSeen | None = ALIVE, *, node: NodeState = NodeState.READY, endpoint: EndpointSeen | None = None,
         statefulset: StatefulSetSeen | None = None, now: float = NOW, leak_since: float | None = None) -> Observation:
    return Observation(pod=pod, node=node, endpoint=endpoint, statefulset=statefulset, now=now, leak_since=leak_since)


def terminating(*, at: float, grace: float = 30.0) -> PodSeen:
    return replace(ALIVE, deletion_timestamp=at, deletion_grace=grace)


CASES: list[tuple[str, Holder, Observation, GcPolicy, GcDecision]] = [
    # --- the pod is gone
    ("G01 pod and endpoint gone: release", HOLDER, seen(None), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.POD_DELETED)),
    ("G01 pod gone, endpoint present: release", HOLDER, seen(None, endpoint=EndpointSeen("uid-a")), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.POD_DELETED)),
    ("G01 pod gone, additional grace delay pending: trace", HOLDER, seen(None, leak_since=NOW - 1),
     GcPolicy(additional_grace_delay=5), GcDecision(Verdict.TRACE, Reason.POD_DELETED, until=NOW + 4)),
    ("G01 pod gone, additional grace delay over: release", HOLDER, seen(None, leak_since=NOW - 6),
     GcPolicy(additional_grace_delay=5), GcDecision(Verdict.RELEASE, Reason.POD_DELETED)),
    # --- terminating past the grace period, gated by node readiness
    ("G02 terminating within grace: trace", HOLDER, seen(terminating(at=NOW - 10)), DEFAULT,
     GcDecision(Verdict.TRACE, Reason.TERMINATING, until=NOW + 20)),
    ("G02 terminating past grace: release", HOLDER, seen(terminating(at=NOW - 31)), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.TERMINATING)),
    ("G02 terminating past grace + delay pending: trace", HOLDER, seen(terminating(at=NOW - 31)),
     GcPolicy(additional_grace_delay=10), GcDecision(Verdict.TRACE, Reason.TERMINATING, until=NOW + 9)),
    ("G03 ready node, gate off: keep", HOLDER, seen(terminating(at=NOW - 100)),
     GcPolicy(terminating_on_ready_node=False), GcDecision(Verdict.KEEP, "TerminatingGcDisabledForNodeState")),
    ("G03 not-ready node, gate off: keep", HOLDER, seen(terminating(at=NOW - 100), node=NodeState.NOT_READY),
     GcPolicy(terminating_on_not_ready_node=False), GcDecision(Verdict.KEEP, "TerminatingGcDisabledForNodeState")),
    ("G03 not-ready node, ready gate off: release", HOLDER, seen(terminating(at=NOW - 100), node=NodeState.NOT_READY),
     GcPolicy(terminating_on_ready_node=False), GcDecision(Verdict.RELEASE, Reason.TERMINATING)),
    # --- Succeeded / Failed
    ("G04 succeeded, grace over: release", HOLDER,
     seen(replace(ALIVE, phase="Succeeded", finished_at=NOW - 40)), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.COMPLETED)),
    ("G04 failed within termination grace: trace", HOLDER,
     seen(replace(ALIVE, phase="Failed", finished_at=NOW - 10)), DEFAULT,
     GcDecision(Verdict.TRACE, Reason.COMPLETED, until=NOW + 20)),
    ("G04 failed, unknown finish, no grace: release", HOLDER,
     seen(replace(ALIVE, phase="Failed", termination_grace=0)), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.COMPLETED)),
    ("G04 succeeded on ready node, gate off: keep", HOLDER,
     seen(replace(ALIVE, phase="Succeeded", finished_at=NOW - 40)), GcPolicy(terminating_on_ready_node=False),
     GcDecision(Verdict.KEEP, "CompletedGcDisabledForNodeState")),
    # --- alive pods are kept
    ("G00 running with its IPs: keep", HOLDER, seen(), DEFAULT, GcDecision(Verdict.KEEP, "Alive")),
    ("G00 pending: keep", HOLDER, seen(replace(ALIVE, phase="Pending", pod_ips=())), DEFAULT,
     GcDecision(Verdict.KEEP, "Alive")),
    ("G00 running without IPs, flag off: keep", HOLDER, seen(replace(ALIVE, pod_ips=())), DEFAULT,
     GcDecision(Verdict.KEEP, "Alive")),
    ("G08 running without IPs, flag on: release", HOLDER, seen(replace(ALIVE, pod_ips=())),
     GcPolicy(running_pod_on_empty_pod_ips=True), GcDecision(Verdict.RELEASE, Reason.EMPTY_POD_IPS)),
    # --- node gone
    ("G06 node gone: trace for the termination grace", HOLDER, seen(node=NodeState.GONE), DEFAULT,
     GcDecision(Verdict.TRACE, Reason.NODE_GONE, until=NOW + 30)),
    ("G06 node gone long enough: release", HOLDER, seen(node=NodeState.GONE, leak_since=NOW - 31), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.NODE_GONE)),
    ("G06 node gone, not-ready gate off: keep", HOLDER, seen(node=NodeState.GONE),
     GcPolicy(terminating_on_not_ready_node=False), GcDecision(Verdict.KEEP, "NodeGoneGcDisabled")),
    # --- same name, another UID (re-created pod)
    ("G07 record of an older incarnation: release", HOLDER, seen(replace(ALIVE, uid="uid-b")), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.UID_MISMATCH)),
    # --- StatefulSets
    ("G05 sts pod gone, ordinal wanted: keep", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=StatefulSetSeen("db", replicas=3)),
     DEFAULT, GcDecision(Verdict.KEEP, "StatefulSetMember")),
    ("G10 sts pod restarting (new UID, no IPs yet): keep", STS_HOLDER,
     seen(replace(ALIVE, uid="uid-b", pod_ips=(), statefulset="db"), statefulset=StatefulSetSeen("db", replicas=3)),
     DEFAULT, GcDecision(Verdict.KEEP, "StatefulSetMember")),
    ("G10 sts pod restarted with this IP: keep", STS_HOLDER,
     seen(replace(ALIVE, uid="uid-b", pod_ips=("10.0.0.7",), statefulset="db"),
          statefulset=StatefulSetSeen("db", replicas=3)),
     DEFAULT, GcDecision(Verdict.KEEP, "StatefulSetMember")),
    ("G10 sts pod restarted with other IPs: release the old record", STS_HOLDER,
     seen(replace(ALIVE, uid="uid-b", pod_ips=("10.0.0.9",), statefulset="db"),
          statefulset=StatefulSetSeen("db", replicas=3)),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.UID_MISMATCH)),
    ("G05 sts pod terminating, ordinal wanted: keep", STS_HOLDER,
     seen(replace(terminating(at=NOW - 100), statefulset="db"), statefulset=StatefulSetSeen("db", replicas=3)),
     DEFAULT, GcDecision(Verdict.KEEP, "StatefulSetMember")),
    ("G05 sts scaled down: release", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=StatefulSetSeen("db", replicas=2)),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G05 sts deleted: release", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=None),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G05 sts deleting: release", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"),
          statefulset=StatefulSetSeen("db", replicas=3, deleting=True)),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G05 sts scaled down, pod still terminating: release", STS_HOLDER,
     seen(replace(terminating(at=NOW), statefulset="db"), statefulset=StatefulSetSeen("db", replicas=1)),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G09 sts scaled down within the hold: trace", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=StatefulSetSeen("db", replicas=2),
          leak_since=NOW - 10), GcPolicy(statefulset_hold=60),
     GcDecision(Verdict.TRACE, Reason.STATEFULSET_HOLD, until=NOW + 50)),
    ("G09 sts scaled down, hold over: release", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=StatefulSetSeen("db", replicas=2),
          leak_since=NOW - 61), GcPolicy(statefulset_hold=60),
     GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G05 sts ordinals start at 3: ordinal 2 unwanted", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"),
          statefulset=StatefulSetSeen("db", replicas=5, ordinal_start=3)),
     DEFAULT, GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)),
    ("G05 statefulset support off: a gone sts pod is an ordinal pod", STS_HOLDER,
     seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"), statefulset=StatefulSetSeen("db", replicas=3)),
     GcPolicy(enable_statefulset=False), GcDecision(Verdict.RELEASE, Reason.POD_DELETED)),
    # --- an endpoint without any record (no address)
    ("G11 endpoint-only holder, pod gone: release", Holder("ns/web-1", "uid-a"), seen(None), DEFAULT,
     GcDecision(Verdict.RELEASE, Reason.POD_DELETED)),
]


@pytest.mark.parametrize(("holder", "observation", "policy", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_plan(holder: Holder, observation: Observation, policy: GcPolicy, expected: GcDecision) -> None:
    """GP01: Plan."""
    assert plan(holder, observation, policy) == expected


def test_hold_starts_now_when_first_seen() -> None:
    """GP02: Hold starts now when first seen."""
    decision = plan(STS_HOLDER, seen(None, endpoint=EndpointSeen("uid-a", statefulset="db"),
                                     statefulset=StatefulSetSeen("db", replicas=0)), GcPolicy(statefulset_hold=15))
    assert decision == GcDecision(Verdict.TRACE, Reason.STATEFULSET_HOLD, until=NOW + 15)


@pytest.mark.parametrize(("pod", "statefulset", "ordinal"), [
    ("db-0", "db", 0), ("db-12", "db", 12), ("my-db-3", "my-db", 3), ("db-x", "db", None), ("other-1", "db", None),
])
def test_statefulset_ordinal(pod: str, statefulset: str, ordinal: int | None) -> None:
    """GP03: StatefulSet ordinal."""
    assert statefulset_ordinal(pod, statefulset) == ordinal


def test_wanted_by_statefulset_bounds() -> None:
    """GP04: Wanted by StatefulSet bounds."""
    sts = StatefulSetSeen("db", replicas=2, ordinal_start=1)
    assert [wanted_by_statefulset(f"db-{n}", sts) for n in range(4)] == [False, True, True, False]
    assert not wanted_by_statefulset("db-1", None)
