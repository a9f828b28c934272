"""A pod's top controller: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, StatefulSet, DaemonSet, third-party.

One level of ownership is read from the pod itself; the second (who owns the ReplicaSet or the Job) needs a GET, which
is cached for ``ttl`` seconds per owner object (keyed by its UID, so a re-created ReplicaSet is read afresh).  An
owner the agent cannot read (deleted meanwhile) is taken as the top controller itself, as is any kind it does not
know (a third-party controller, a kubevirt VirtualMachineInstance).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from spiderpool.core.selection_types import TopController
from spiderpool.k8s.workloads import WorkloadReader

# (apiVersion group, kind) of the owners whose own owner is looked up, and that owner's expected group and kind.
_SECOND_LEVEL: Final = {("apps", "ReplicaSet"): ("apps", "Deployment"), ("batch", "Job"): ("batch", "CronJob")}

OwnerReference = Mapping[str, Any]


def controller_reference(meta: Mapping[str, Any]) -> OwnerReference | None:
    """The owner reference marked ``controller: true`` (upstream ignores other owners)."""
    return next((ref for ref in meta.get("ownerReferences") or () if ref.get("controller")), None)


def _group(api_version: str) -> str:
    group, slash, _ = api_version.partition("/")
    return group if slash else ""


def _controller(ref: OwnerReference, namespace: str) -> TopController:
    return TopController(kind=ref["kind"], name=ref["name"], namespace=namespace, uid=ref.get("uid", ""),
                         api_version=ref["apiVersion"])


class OwnerResolver:
    def __init__(self, reader: WorkloadReader, *, ttl: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reader = reader
        self._ttl = ttl
        self._clock = clock
        self._parents: dict[str, tuple[float, OwnerReference | None]] = {}
        self._getters: dict[str, Callable[[str, str], Awaitable[dict[str, Any] | None]]] = {
            "ReplicaSet": reader.replica_set,
            "Job": reader.job,
        }

    async def top_controller(self, pod: Mapping[str, Any]) -> TopController:
        meta = pod["metadata"]
        namespace = meta["namespace"]
        ref = controller_reference(meta)
        if ref is None:
            return TopController(kind="Pod", name=meta["name"], namespace=namespace, uid=meta.get("uid", ""),
                                 api_version="v1")
        if (_group(ref["apiVersion"]), ref["kind"]) not in _SECOND_LEVEL:
            return _controller(ref, namespace)
        parent = await self._parent(namespace, ref)
        return _controller(parent if parent is not None else ref, namespace)

    async def _parent(self, namespace: str, ref: OwnerReference) -> OwnerReference | None:
        key = ref.get("uid") or f"{namespace}/{ref['kind']}/{ref['name']}"
        now = self._clock()
        cached = self._parents.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        owner = await self._getters[ref["kind"]](namespace, ref["name"])
        parent = None if owner is None else controller_reference(owner["metadata"])
        if len(self._parents) > 4096:
            self._parents = {k: v for k, v in self._parents.items() if v[0] > now}
        self._parents[key] = (now + self._ttl, parent)
        return parent
