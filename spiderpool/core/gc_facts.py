"""From API objects (plain JSON dicts) to the facts :mod:`spiderpool.core.gc_planning` decides on.

Shared by the controller's collector and ``spiderpoolctl gc --dry-run``, so both judge the same facts the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from spiderpool.core.gc_planning import (
    DEFAULT_TERMINATION_GRACE,
    EndpointSeen,
    NodeState,
    PodSeen,
    StatefulSetSeen,
)

STATEFULSET: Final = "StatefulSet"


def timestamp(text: object) -> float | None:
    """RFC 3339 time as seconds since the epoch; None when absent."""
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _finished_at(status: Mapping[str, Any]) -> float | None:
    finished = [timestamp(((container.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                for container in status.get("containerStatuses") or ()]
    known = [value for value in finished if value is not None]
    return max(known) if known else None


def _statefulset_owner(meta: Mapping[str, Any]) -> str | None:
    for owner in meta.get("ownerReferences") or ():
        if owner.get("controller") and owner.get("kind") == STATEFULSET:
            return str(owner.get("name"))
    return None


def pod_seen(pod: Mapping[str, Any]) -> PodSeen:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    grace = spec.get("terminationGracePeriodSeconds")
    return PodSeen(
        uid=str(meta.get("uid", "")),
        phase=str(status.get("phase") or "Pending"),
        deletion_timestamp=timestamp(meta.get("deletionTimestamp")),
        deletion_grace=float(meta.get("deletionGracePeriodSeconds") or 0),
        termination_grace=DEFAULT_TERMINATION_GRACE if grace is None else float(grace),
        finished_at=_finished_at(status),
        node_name=str(spec.get("nodeName") or ""),
        pod_ips=tuple(str(entry.get("ip")) for entry in status.get("podIPs") or () if entry.get("ip")),
        statefulset=_statefulset_owner(meta),
    )


def node_state(node: Mapping[str, Any] | None) -> NodeState:
    if node is None:
        return NodeState.GONE
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return NodeState.READY if condition.get("status") == "True" else NodeState.NOT_READY
    return NodeState.NOT_READY


def endpoint_uid(endpoint: Mapping[str, Any]) -> str:
    return str(endpoint.get("status", {}).get("current", {}).get("uid", ""))


def endpoint_seen(endpoint: Mapping[str, Any]) -> EndpointSeen:
    status = endpoint.get("status", {})
    owner = status.get("ownerControllerName") if status.get("ownerControllerType") == STATEFULSET else None
    return EndpointSeen(uid=endpoint_uid(endpoint), statefulset=owner or None)


def endpoint_holdings(endpoint: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(pool, bare address) of every family of every NIC the endpoint lists."""
    held = set()
    for entry in endpoint.get("status", {}).get("current", {}).get("ips") or ():
        for family in ("ipv4", "ipv6"):
            address, pool = entry.get(family), entry.get(f"{family}Pool")
            if address and pool:
                held.add((str(pool), str(address).partition("/")[0]))
    return held


def statefulset_seen(statefulset: Mapping[str, Any] | None) -> StatefulSetSeen | None:
    if statefulset is None:
        return None
    spec = statefulset.get("spec") or {}
    replicas = spec.get("replicas")
    return StatefulSetSeen(
        name=str(statefulset["metadata"]["name"]),
        replicas=1 if replicas is None else int(replicas),
        ordinal_start=int((spec.get("ordinals") or {}).get("start") or 0),
        deleting=bool(statefulset["metadata"].get("deletionTimestamp")),
    )
