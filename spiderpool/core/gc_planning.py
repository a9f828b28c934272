"""Leak collection decisions: given one address holder and what is known of its pod, keep, trace or release.

A holder is a pod incarnation (``namespace/name`` + UID) as named by a pool record (with its address) or by a
SpiderEndpoint (no address).  :func:`plan` is pure: the collector feeds it its cached view, and before any release
it feeds it again with state read directly from the API server, so a stale cache alone never frees an address.
Upstream's rules (reference section 5) with its defects fixed: a StatefulSet pod that is being re-created under its
name (new UID, its endpoint reused) is kept, and a scaled-down StatefulSet ordinal is held for
``GcPolicy.statefulset_hold`` seconds before release.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

_STATEFULSET_POD: Final = re.compile(r"(.*)-([0-9]+)")
DEFAULT_TERMINATION_GRACE: Final = 30.0


class Verdict(enum.Enum):
    KEEP = "keep"
    TRACE = "trace"  # not a leak yet: look again at ``GcDecision.until``
    RELEASE = "release"


class Reason(enum.StrEnum):
    """Why a holder is released or traced (the ``reason`` label of the GC metrics)."""

    POD_DELETED = "PodDeleted"
    TERMINATING = "Terminating"
    COMPLETED = "Completed"
    STATEFULSET_SCALED_DOWN = "StatefulSetScaledDown"
    STATEFULSET_HOLD = "StatefulSetHold"
    NODE_GONE = "NodeGone"
    UID_MISMATCH = "UidMismatch"
    EMPTY_POD_IPS = "EmptyPodIPs"


@dataclass(frozen=True, slots=True)
class GcDecision:
    verdict: Verdict
    reason: str
    until: float | None = None


class NodeState(enum.Enum):
    READY = "ready"
    NOT_READY = "not-ready"  # also: no Ready condition reported (upstream's IsNodeReady is false then)
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class GcPolicy:
    """The settings the decisions depend on (built from ``GcSettings`` and the cluster flags)."""

    terminating_on_ready_node: bool = True
    terminating_on_not_ready_node: bool = True
    running_pod_on_empty_pod_ips: bool = False
    additional_grace_delay: float = 0.0
    statefulset_hold: float = 0.0
    enable_statefulset: bool = True


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds an address: ``pod`` is ``namespace/name``; ``ip`` is None for an endpoint without a record."""

    pod: str
    pod_uid: str
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class PodSeen:
    """The facts of a Pod the decisions use (times in seconds since the epoch)."""

    uid: str
    phase: str = "Running"
    deletion_timestamp: float | None = None
    deletion_grace: float = 0.0
    termination_grace: float = DEFAULT_TERMINATION_GRACE
    finished_at: float | None = None
    node_name: str = ""
    pod_ips: tuple[str, ...] = ()
    statefulset: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSeen:
    uid: str
    statefulset: str | None = None  # ownerControllerName when ownerControllerType is StatefulSet


@dataclass(frozen=True, slots=True)
class StatefulSetSeen:
    name: str
    replicas: int = 1
    ordinal_start: int = 0
    deleting: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything known about one holder at ``now``; ``leak_since`` is when the collector first saw it as a leak."""

    pod: PodSeen | None
    node: NodeState
    endpoint: EndpointSeen | None
    statefulset: StatefulSetSeen | None
    now: float
    leak_since: float | None = None


def statefulset_ordinal(pod_name: str, statefulset: str) -> int | None:
    match = _STATEFULSET_POD.fullmatch(pod_name)
    if match is None or match.group(1) != statefulset:
        return None
    return int(match.group(2))


def wanted_by_statefulset(pod_name: str, statefulset: StatefulSetSeen | None) -> bool:
    """Whether the StatefulSet still wants a pod of this name (ordinal in ``[start, start + replicas)``)."""
    if statefulset is None or statefulset.deleting:
        return False
    ordinal = statefulset_ordinal(pod_name, statefulset.name)
    start = statefulset.ordinal_start
    return ordinal is not None and start <= ordinal < start + statefulset.replicas


def _keep(reason: str) -> GcDecision:
    return GcDecision(Verdict.KEEP, reason)


def _at(deadline: float, reason: str, *, now: float) -> GcDecision:
    """Release once ``deadline`` has passed; trace until then."""
    if now >= deadline:
        return GcDecision(Verdict.RELEASE, reason)
    return GcDecision(Verdict.TRACE, reason, until=deadline)


def _statefulset_of(seen: Observation) -> str | None:
    if seen.pod is not None and seen.pod.statefulset:
        return seen.pod.statefulset
    return seen.endpoint.statefulset if seen.endpoint is not None else None


def _scaled_down(seen: Observation, policy: GcPolicy) -> GcDecision:
    """An ordinal no longer wanted: held for ``statefulset_hold`` seconds (beyond upstream), then released."""
    since = seen.leak_since if seen.leak_since is not None else seen.now
    if policy.statefulset_hold > 0 and seen.now < since + policy.statefulset_hold:
        return GcDecision(Verdict.TRACE, Reason.STATEFULSET_HOLD, until=since + policy.statefulset_hold)
    return GcDecision(Verdict.RELEASE, Reason.STATEFULSET_SCALED_DOWN)


def _is_statefulset_member(holder: Holder, seen: Observation, policy: GcPolicy) -> bool:
    statefulset = _statefulset_of(seen)
    name = holder.pod.partition("/")[2]
    return policy.enable_statefulset and statefulset is not None and statefulset_ordinal(name, statefulset) is not None


def plan(holder: Holder, seen: Observation, policy: GcPolicy) -> GcDecision:
    """Keep, trace or release what ``holder`` holds (see the module doc and ``docs/gc.md`` for the cases)."""
    name = holder.pod.partition("/")[2]
    member = _is_statefulset_member(holder, seen, policy)
    if member and wanted_by_statefulset(name, seen.statefulset):
        return _planned_for_wanted_member(holder, seen)
    pod = seen.pod
    if pod is None or pod.uid != holder.pod_uid:
        if member:
            return _scaled_down(seen, policy)
        if pod is None:
            since = seen.leak_since if seen.leak_since is not None else seen.now
            return _at(since + policy.additional_grace_delay, Reason.POD_DELETED, now=seen.now)
        return GcDecision(Verdict.RELEASE, Reason.UID_MISMATCH)
    if member and (pod.deletion_timestamp is not None or pod.phase in ("Succeeded", "Failed")):
        return _scaled_down(seen, policy)
    return _planned_for_same_pod(pod, seen, policy)


def _planned_for_wanted_member(holder: Holder, seen: Observation) -> GcDecision:
    """The StatefulSet wants this name: the pod comes back under it and the agent rebinds its records (#2442)."""
    pod = seen.pod
    if pod is not None and pod.uid != holder.pod_uid and pod.pod_ips and holder.ip is not None \
            and holder.ip not in pod.pod_ips:
        # The new incarnation runs with other addresses: this old record will never be rebound.
        return GcDecision(Verdict.RELEASE, Reason.UID_MISMATCH)
    return _keep("StatefulSetMember")


def _node_allows(seen: Observation, policy: GcPolicy) -> bool:
    if seen.node is NodeState.READY:
        return policy.terminating_on_ready_node
    return policy.terminating_on_not_ready_node


def _planned_for_same_pod(pod: PodSeen, seen: Observation, policy: GcPolicy) -> GcDecision:
    """The holder is this very pod: it leaks only once it can no longer run (terminating past grace, completed...)."""
    delay = policy.additional_grace_delay
    if pod.deletion_timestamp is not None:
        if not _node_allows(seen, policy):
            return _keep("TerminatingGcDisabledForNodeState")
        deadline = pod.deletion_timestamp + pod.deletion_grace + delay
        return _at(deadline, Reason.TERMINATING, now=seen.now)
    if pod.phase in ("Succeeded", "Failed"):
        if not _node_allows(seen, policy):
            return _keep("CompletedGcDisabledForNodeState")
        finished = pod.finished_at if pod.finished_at is not None else (seen.leak_since or seen.now)
        return _at(finished + pod.termination_grace + delay, Reason.COMPLETED, now=seen.now)
    if seen.node is NodeState.GONE:
        if not policy.terminating_on_not_ready_node:
            return _keep("NodeGoneGcDisabled")
        since = seen.leak_since if seen.leak_since is not None else seen.now
        return _at(since + pod.termination_grace + delay, Reason.NODE_GONE, now=seen.now)
    if pod.phase == "Running" and not pod.pod_ips and policy.running_pod_on_empty_pod_ips:
        return GcDecision(Verdict.RELEASE, Reason.EMPTY_POD_IPS)
    return _keep("Alive")
