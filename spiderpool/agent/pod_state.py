"""What the agent decides from a Pod or StatefulSet object alone: is the pod alive, is a StatefulSet ordinal valid.

Upstream's rules (``IsPodAlive``, ``IsValidStatefulSetPod``), pure functions over the JSON dicts of the watch cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from spiderpool.core.selection_types import PodView, TopController

_STATEFULSET_POD: Final = re.compile(r"(.*)-([0-9]+)")


def not_alive_reason(pod: Mapping[str, Any]) -> str | None:
    """Why the pod will never run again (terminating, Succeeded/Failed for good, evicted), or None if it may."""
    if pod["metadata"].get("deletionTimestamp"):
        return "is terminating"
    phase = pod.get("status", {}).get("phase")
    restart_policy = pod.get("spec", {}).get("restartPolicy", "Always")
    if phase == "Succeeded" and restart_policy != "Always":
        return f"has succeeded (restartPolicy {restart_policy})"
    if phase == "Failed" and restart_policy == "Never":
        return "has failed (restartPolicy Never)"
    if phase == "Failed" and pod.get("status", {}).get("reason") == "Evicted":
        return "was evicted"
    return None


def in_grace_period(pod: Mapping[str, Any], *, now: float) -> bool:
    """Whether a terminating pod's deadline (``deletionTimestamp``) is still ahead: its containers may still run."""
    deadline = pod["metadata"].get("deletionTimestamp")
    if not deadline:
        return False
    return datetime.fromisoformat(str(deadline).replace("Z", "+00:00")).timestamp() > now


def is_pod_alive(pod: Mapping[str, Any]) -> bool:
    return not_alive_reason(pod) is None


def statefulset_ordinal(pod_name: str, statefulset_name: str) -> int | None:
    """The ordinal of ``<statefulset>-<n>``; None when the name does not have that shape."""
    match = _STATEFULSET_POD.fullmatch(pod_name)
    if match is None or match.group(1) != statefulset_name:
        return None
    return int(match.group(2))


def is_valid_statefulset_pod(pod_name: str, statefulset: Mapping[str, Any] | None) -> bool:
    """Whether the StatefulSet still wants a pod of this name (ordinal within ``ordinals.start`` + ``replicas``)."""
    if statefulset is None or statefulset["metadata"].get("deletionTimestamp"):
        return False
    ordinal = statefulset_ordinal(pod_name, statefulset["metadata"]["name"])
    if ordinal is None:
        return False
    spec = statefulset.get("spec", {})
    replicas = spec.get("replicas")
    replicas = 1 if replicas is None else int(replicas)
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    return start <= ordinal < start + replicas


def pod_view(pod: Mapping[str, Any], controller: TopController) -> PodView:
    meta = pod["metadata"]
    return PodView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        node_name=pod.get("spec", {}).get("nodeName", ""),
        controller=controller,
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
    )
