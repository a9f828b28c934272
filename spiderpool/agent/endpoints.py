"""SpiderEndpoint: the per-pod index of addresses, written after the pool records, in upstream's shape.

``status.current {uid, node, ips[]}``, ``status.ownerControllerType/Name``, an ownerReference to the Pod unless the
pod belongs to a StatefulSet (whose endpoint outlives the pod), and one annotation upstream does not have:
``ipam.spidernet.io/container-id`` (the sandbox of the last ADD, for CNI GC).

Upstream's finalizer ``spiderpool.spidernet.io`` only on the endpoints of StatefulSet and kubevirt pods: theirs
outlive the pod and are what gives the next pod of that name its addresses back, so an accidental delete must wait
for the agent or the controller.  Any other pod's endpoint goes without it: it protects nothing there (the pool
records are the truth and every release is by pod UID), and dropping it saves a write per pod (create + delete, not
create + finalizer removal + delete).  Endpoints written by upstream still carry it: the next write of such an
endpoint drops it, and removing one drops it before the delete, so switching from upstream leaves nothing stuck.

Reads prefer the watch cache, but an endpoint this agent has just written is served from its own copy until the
watch catches up (a second NIC's ADD follows the first within milliseconds).  Writes are compare-and-swap: a lost
race re-reads the endpoint and rebuilds the body from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final, cast

from spiderpool.core.selection_types import PodView, TopController
from spiderpool.k8s.bodies import IPAllocationDetail, ObjectMeta, OwnerReference, SpiderEndpoint
from spiderpool.k8s.store import AlreadyExists, Conflict, CustomObjectStore, NotFound
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent

log = logging.getLogger(__name__)

FINALIZER: Final = "spiderpool.spidernet.io"
CONTAINER_ID_ANNOTATION: Final = "ipam.spidernet.io/container-id"
STATEFULSET: Final = "StatefulSet"
# Top controllers whose pods keep their addresses across re-creation: they always get an endpoint (lean mode too).
ENDPOINT_CONTROLLERS: Final = frozenset({STATEFULSET, "VirtualMachineInstance"})
_MAX_RACES: Final = 8

Builder = Callable[[SpiderEndpoint | None], SpiderEndpoint | None]
"""(current endpoint or None) -> the body to write, or None when nothing needs writing."""


def _version_number(endpoint: SpiderEndpoint) -> int:
    try:
        return int(endpoint["metadata"].get("resourceVersion", "0"))
    except ValueError:  # not etcd's integer revisions: trust the watch cache
        return -1


def endpoint_uid(endpoint: SpiderEndpoint) -> str:
    return endpoint.get("status", {}).get("current", {}).get("uid", "")


def endpoint_entries(endpoint: SpiderEndpoint) -> list[IPAllocationDetail]:
    return list(endpoint.get("status", {}).get("current", {}).get("ips") or ())


def owner_type(endpoint: SpiderEndpoint) -> str:
    return endpoint.get("status", {}).get("ownerControllerType", "")


def container_id_of(endpoint: SpiderEndpoint) -> str:
    return (endpoint["metadata"].get("annotations") or {}).get(CONTAINER_ID_ANNOTATION, "")


def new_endpoint(pod: PodView, *, node: str, container_id: str, entries: Sequence[IPAllocationDetail]
                 ) -> SpiderEndpoint:
    controller: TopController = pod.controller
    meta: ObjectMeta = {
        "name": pod.name,
        "namespace": pod.namespace,
        "annotations": {CONTAINER_ID_ANNOTATION: container_id},
    }
    if controller.kind != STATEFULSET:
        owner: OwnerReference = {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}
        meta["ownerReferences"] = [owner]
    if controller.kind in ENDPOINT_CONTROLLERS:
        meta["finalizers"] = [FINALIZER]
    return {
        "metadata": meta,
        "status": {
            "current": {"uid": pod.uid, "node": node, "ips": list(entries)},
            "ownerControllerType": controller.kind,
            "ownerControllerName": controller.name,
        },
    }


def merged_endpoint(current: SpiderEndpoint, pod: PodView, *, node: str, container_id: str,
                    entries: Sequence[IPAllocationDetail]) -> SpiderEndpoint:
    """``current`` (of the same pod UID) with ``entries`` replacing its entries of the same NICs."""
    replaced = {entry["interface"] for entry in entries}
    kept = [entry for entry in endpoint_entries(current) if entry["interface"] not in replaced]
    fresh = new_endpoint(pod, node=node, container_id=container_id, entries=[*kept, *entries])
    meta: ObjectMeta = {**current["metadata"]}
    meta["annotations"] = {**(meta.get("annotations") or {}), CONTAINER_ID_ANNOTATION: container_id}
    finalizers = [name for name in meta.get("finalizers") or () if name != FINALIZER]
    if pod.controller.kind in ENDPOINT_CONTROLLERS and (FINALIZER in (meta.get("finalizers") or ())
                                                        or not meta.get("deletionTimestamp")):
        finalizers.append(FINALIZER)  # (no finalizer may be added to an object being deleted)
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    return cast(SpiderEndpoint, {**current, "metadata": meta, "status": fresh["status"]})


class EndpointBook:
    def __init__(self, store: CustomObjectStore[SpiderEndpoint], cache: WatchCache[SpiderEndpoint]) -> None:
        self._store = store
        self._cache = cache
        self._written: dict[tuple[str, str], SpiderEndpoint] = {}
        self._removed: dict[tuple[str, str], str] = {}  # endpoints this agent deleted -> their uid
        cache.add_handler(self._forget_seen)

    def _forget_seen(self, event: WatchEvent[SpiderEndpoint]) -> None:
        """Drop this agent's own copies once the watch has caught up with them (they are only a bridge)."""
        meta = event.object["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        mine = self._written.get(key)
        if mine is not None and _version_number(event.object) >= _version_number(mine):
            del self._written[key]
        if event.type == "DELETED" and self._removed.get(key) == meta.get("uid"):
            del self._removed[key]

    def cached(self, namespace: str, name: str) -> SpiderEndpoint | None:
        """The newest copy known without a request (this agent's last write, or the watch cache's)."""
        key = (namespace, name)
        cached = self._cache.get(name, namespace=namespace)
        removed_uid = self._removed.get(key)
        if removed_uid is not None:
            if cached is None or cached["metadata"].get("uid") != removed_uid:
                del self._removed[key]  # the watch has seen the deletion, or this is a newer endpoint
                return cached
            return None
        mine = self._written.get(key)
        if mine is None:
            return cached
        if cached is not None and _version_number(cached) >= _version_number(mine):
            del self._written[key]
            return cached
        return mine

    async def get(self, namespace: str, name: str) -> SpiderEndpoint | None:
        """The cached copy, else a direct read (the watch may lag behind an endpoint written moments ago)."""
        found = self.cached(namespace, name)
        if found is not None:
            return found
        try:
            return await self._store.get(name, namespace=namespace)
        except NotFound:
            return None

    def items(self) -> list[SpiderEndpoint]:
        return self._cache.items()

    async def write(self, namespace: str, name: str, build: Builder) -> SpiderEndpoint | None:
        """Create or replace the endpoint with ``build(current)``, re-reading and rebuilding after a lost race."""
        current = await self.get(namespace, name)
        for _ in range(_MAX_RACES):
            body = build(current)
            if body is None:
                return current
            try:
                if current is None:
                    stored = await self._store.create(body)
                else:
                    stored = await self._store.replace(body)
            except (AlreadyExists, Conflict, NotFound):
                current = await self._fresh(namespace, name)
                continue
            self._written[(namespace, name)] = stored
            self._removed.pop((namespace, name), None)
            return stored
        raise Conflict(f"SpiderEndpoint {namespace}/{name}: lost {_MAX_RACES} write races",
                       stale_resource_version="")

    async def _fresh(self, namespace: str, name: str) -> SpiderEndpoint | None:
        try:
            return await self._store.get(name, namespace=namespace)
        except NotFound:
            return None

    async def remove(self, endpoint: SpiderEndpoint) -> None:
        """Delete the endpoint (only this very object: preconditioned on its UID), first dropping upstream's finalizer
        when it has one."""
        meta = endpoint["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        current: SpiderEndpoint | None = endpoint
        for _ in range(_MAX_RACES):
            if current is None or current["metadata"].get("uid") != meta.get("uid"):
                break
            finalizers = [f for f in current["metadata"].get("finalizers") or () if f != FINALIZER]
            try:
                if finalizers != list(current["metadata"].get("finalizers") or ()):
                    current = await self._store.replace(
                        {**current, "metadata": {**current["metadata"], "finalizers": finalizers}})
                await self._store.delete(name, namespace=namespace, uid=meta.get("uid"))
                break
            except (Conflict, NotFound):
                current = await self._fresh(namespace, name)
        else:
            raise Conflict(f"SpiderEndpoint {namespace}/{name}: lost {_MAX_RACES} races removing it",
                           stale_resource_version="")
        self._written.pop((namespace, name), None)
        self._removed[(namespace, name)] = str(meta.get("uid", ""))
