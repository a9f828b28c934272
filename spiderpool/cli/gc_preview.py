"""``spiderpoolctl gc --dry-run``: what the leak collector would decide now for every holder, and why.  Pure.

The decisions are :func:`spiderpool.core.gc_planning.plan`'s, fed from one snapshot of the cluster as the collector's
confirmation step would feed them; ``leak_since`` is unknown to a one-shot reader, so the collector's grace delays
count from now (a TRACE line says until when).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spiderpool.cli.consistency import PodKey, pod_key, pool_records
from spiderpool.core.allocations import AllocationsFormatError
from spiderpool.core.gc_facts import endpoint_seen, endpoint_uid, node_state, pod_seen, statefulset_seen
from spiderpool.core.gc_planning import GcDecision, GcPolicy, Holder, NodeState, Observation, plan


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The objects one preview decides on, keyed as the API names them."""

    pools: Sequence[Mapping[str, Any]]
    endpoints: Mapping[PodKey, Mapping[str, Any]]
    pods: Mapping[PodKey, Mapping[str, Any]]
    nodes: Mapping[str, Mapping[str, Any]]
    statefulsets: Mapping[PodKey, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class PreviewLine:
    pool: str | None
    holder: Holder
    decision: GcDecision

    def as_document(self) -> dict[str, object]:
        until = self.decision.until
        return {
            "pool": self.pool, "ip": self.holder.ip, "pod": self.holder.pod, "podUid": self.holder.pod_uid,
            "verdict": self.decision.verdict.value, "reason": str(self.decision.reason),
            "until": None if until is None else datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
        }


def observation_of(key: PodKey, snapshot: Snapshot, *, now: float) -> Observation:
    pod, endpoint = snapshot.pods.get(key), snapshot.endpoints.get(key)
    seen_pod = None if pod is None else pod_seen(pod)
    seen_endpoint = None if endpoint is None else endpoint_seen(endpoint)
    node_name = seen_pod.node_name if seen_pod is not None and seen_pod.node_name else \
        str(((endpoint or {}).get("status") or {}).get("current", {}).get("node") or "")
    statefulset = (seen_pod.statefulset if seen_pod is not None else None) or \
        (seen_endpoint.statefulset if seen_endpoint is not None else None)
    return Observation(
        pod=seen_pod,
        # A holder with no known node is judged on its pod alone, as the collector does.
        node=node_state(snapshot.nodes.get(node_name)) if node_name else NodeState.NOT_READY,
        endpoint=seen_endpoint,
        statefulset=statefulset_seen(snapshot.statefulsets.get((key[0], statefulset))) if statefulset else None,
        now=now,
    )


def preview_gc(snapshot: Snapshot, *, policy: GcPolicy, now: float) -> list[PreviewLine]:
    """A decision for every pool record and for every endpoint's own claim (the line without an address)."""
    lines: list[PreviewLine] = []
    for pool in sorted(snapshot.pools, key=lambda item: str(item["metadata"]["name"])):
        try:
            records = pool_records(pool)
        except AllocationsFormatError:
            continue  # the collector leaves an unreadable pool alone; ``check`` reports it
        name = str(pool["metadata"]["name"])
        for ip, record in sorted(records.items()):
            holder = Holder(pod=record.pod, pod_uid=record.pod_uid, ip=ip)
            seen = observation_of((record.namespace, record.name), snapshot, now=now)
            lines.append(PreviewLine(name, holder, plan(holder, seen, policy)))
    for key, endpoint in sorted(snapshot.endpoints.items()):
        uid = endpoint_uid(endpoint)
        if uid:
            holder = Holder(pod=f"{key[0]}/{key[1]}", pod_uid=uid)
            lines.append(PreviewLine(None, holder, plan(holder, observation_of(key, snapshot, now=now), policy)))
    return lines


__all__ = ["PreviewLine", "Snapshot", "node_state", "observation_of", "pod_key", "pod_seen", "preview_gc"]
