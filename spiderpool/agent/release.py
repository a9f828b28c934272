"""CNI DEL and GC: release what a pod that will not run again holds, and nothing of a pod that still may.

A release removes only records that name the pod's UID (the writer checks it on the server), then the pod's
SpiderEndpoint if it has one (lean pods do not: their records are found by UID in the pool book).  Kept: an alive
pod of the same UID (its sandbox is being re-created) and a StatefulSet pod whose ordinal the StatefulSet still
wants (it comes back under the same name and takes its addresses back).  "Alive" is confirmed with a direct read
before anything is kept, so a lagging watch never decides alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from spiderpool.agent.allocation import ReleaseFailed
from spiderpool.agent.context import IpamContext
from spiderpool.agent.endpoints import (
    ENDPOINT_CONTROLLERS,
    STATEFULSET,
    container_id_of,
    endpoint_entries,
    endpoint_uid,
    owner_type,
)
from spiderpool.agent.ipam_errors import try_again
from spiderpool.agent.metrics import RETRIES_EXHAUSTED
from spiderpool.agent.pod_state import in_grace_period, is_pod_alive, is_valid_statefulset_pod
from spiderpool.agent.results import entry_holdings
from spiderpool.cluster_config import ClusterSettings
from spiderpool.core.annotations import IPPOOLS as IPPOOLS_ANNOTATION
from spiderpool.core.cni_types import Attachment, CniCode, CniError
from spiderpool.k8s.bodies import Pod, SpiderEndpoint
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)


class EndpointRelease:
    def __init__(self, context: IpamContext) -> None:
        self._ctx = context

    async def release_endpoint(self, endpoint: SpiderEndpoint) -> None:
        """Release the records of the endpoint's pod UID, then remove the endpoint."""
        meta = endpoint["metadata"]
        await self.release_uid(endpoint_uid(endpoint), endpoint, pod=f"{meta['namespace']}/{meta['name']}")

    async def release_uid(self, uid: str, endpoint: SpiderEndpoint | None, *, pod: str) -> int:
        holdings = self._ctx.book.held_by(uid)
        if endpoint is not None and endpoint_uid(endpoint) == uid:
            holdings |= {holding for entry in endpoint_entries(endpoint) for holding in entry_holdings(entry)}
        try:
            removed = await self._ctx.records.release(holdings, pod_uid=uid)
            if endpoint is not None and endpoint_uid(endpoint) == uid:
                await self._ctx.endpoints.remove(endpoint)
        except (ReleaseFailed, StoreError) as error:
            raise try_again(f"pod {pod} (uid {uid}): releasing its addresses failed", str(error),
                            reason=RETRIES_EXHAUSTED) from error
        if holdings:
            log.info("pod %s (uid %s): released %d of %d records", pod, uid, removed, len(holdings))
        return removed

    async def _confirmed_alive(self, pod: Pod, uid: str) -> bool:
        """Whether the pod of ``uid`` is alive, confirmed by a direct read when the cache says so."""
        if pod["metadata"].get("uid") != uid or not is_pod_alive(pod):
            return False
        meta = pod["metadata"]
        try:
            fresh = await self._ctx.reader.pod(meta["namespace"], meta["name"])
        except StoreError as error:
            raise try_again(f"pod {meta['namespace']}/{meta['name']} could not be read", str(error)) from error
        return fresh is not None and fresh["metadata"].get("uid") == uid and is_pod_alive(fresh)

    async def _statefulset_keeps(self, namespace: str, name: str, endpoint: SpiderEndpoint | None,
                                 pod: Pod | None) -> bool:
        if not self._ctx.settings.enable_statefulset:
            return False
        statefulset = _statefulset_name(endpoint, pod)
        if statefulset is None:
            return False
        try:
            found = await self._ctx.reader.stateful_set(namespace, statefulset)
        except StoreError as error:
            raise try_again(f"StatefulSet {namespace}/{statefulset} could not be read", str(error)) from error
        if is_valid_statefulset_pod(name, found):
            return True
        # Beyond upstream (#3893): a scaled-down ordinal keeps its addresses for the hold, so a scale-up gives it
        # the same ones; the controller's leak collection releases them when the hold is over.
        return self._ctx.statefulset_hold > 0 and found is not None and not found["metadata"].get("deletionTimestamp")

    async def release_pod(self, namespace: str, name: str, uid: str | None) -> None:
        """DEL: release the pod's records unless the pod (or its StatefulSet ordinal) lives on."""
        try:
            pod = await self._ctx.pods.for_release(namespace, name)
        except StoreError as error:
            raise try_again(f"pod {namespace}/{name} could not be read", str(error)) from error
        target = uid or (pod["metadata"].get("uid") if pod is not None else None)
        if not target:
            log.info("DEL of pod %s/%s: the pod is gone and CNI_ARGS has no K8S_POD_UID; nothing to release",
                     namespace, name)
            return
        if pod is not None and await self._confirmed_alive(pod, target):
            log.info("DEL of pod %s/%s: the pod is alive (sandbox re-created); its addresses are kept",
                     namespace, name)
            return
        endpoint = await self._endpoint_for_release(namespace, name, pod, target)
        if await self._statefulset_keeps(namespace, name, endpoint, pod):
            log.info("DEL of StatefulSet pod %s/%s: its ordinal is still wanted; its addresses are kept",
                     namespace, name)
            return
        await self.release_uid(target, endpoint, pod=f"{namespace}/{name}")

    async def _endpoint_for_release(self, namespace: str, name: str, pod: Pod | None, uid: str
                                    ) -> SpiderEndpoint | None:
        """The pod's SpiderEndpoint: a direct read (the watch may lag behind an endpoint written moments ago),
        except for a pod that goes without one (:func:`goes_without_endpoint`): nobody writes one for it, so one it
        has from an earlier mode is long in the watch cache, and the read would only ever answer 404."""
        if pod is not None and pod["metadata"].get("uid") == uid and goes_without_endpoint(pod, self._ctx.settings):
            return self._ctx.endpoints.cached(namespace, name)
        try:
            return await self._ctx.endpoints.get(namespace, name)
        except StoreError as error:
            raise try_again(f"SpiderEndpoint {namespace}/{name} could not be read", str(error)) from error

    async def collect(self, valid: Sequence[Attachment]) -> None:
        """GC: release the pods of this node whose sandbox is not in ``valid`` and that will not run again.

        GC is per network and the endpoint does not say which networks a sandbox is attached to, so the pod is the
        judge: kept while alive, or terminating within its grace period (its containers may still use the address).
        """
        valid_ids = {attachment.container_id for attachment in valid}
        failures = await self._collect_lean()
        for endpoint in self._ctx.endpoints.items():
            current = endpoint.get("status", {}).get("current", {})
            container_id = container_id_of(endpoint)
            if current.get("node") != self._ctx.node_name or not container_id or container_id in valid_ids:
                continue
            meta = endpoint["metadata"]
            try:
                await self._collect_one(meta["namespace"], meta["name"], endpoint)
            except CniError as error:
                failures.append(f"{meta['namespace']}/{meta['name']}: {error.msg}")
        if failures:
            raise CniError(CniCode.TRY_AGAIN_LATER, f"GC could not release {len(failures)} pod(s)",
                           "; ".join(failures))

    async def _collect_lean(self) -> list[str]:
        """GC of the pods without an endpoint (lean mode): no container ID is recorded, so the pod alone judges.

        Only this node's pods are in the pod cache; a pod that is gone is left to the controller's leak collection
        (its records do not say which node it ran on).
        """
        failures: list[str] = []
        for uid, pod_name in self._ctx.book.holders().items():
            namespace, _, name = pod_name.partition("/")
            endpoint = self._ctx.endpoints.cached(namespace, name)
            pod = self._ctx.pods.cached(namespace, name)
            if (endpoint is not None and endpoint_uid(endpoint) == uid) or pod is None \
                    or pod["metadata"].get("uid") != uid or pod.get("spec", {}).get("nodeName") != self._ctx.node_name:
                continue
            if is_pod_alive(pod) or in_grace_period(pod, now=time.time()):
                continue
            log.info("GC: pod %s (uid %s, no SpiderEndpoint) will not run again; releasing", pod_name, uid)
            try:
                await self.release_uid(uid, None, pod=pod_name)
            except CniError as error:
                failures.append(f"{pod_name}: {error.msg}")
        return failures

    async def _collect_one(self, namespace: str, name: str, endpoint: SpiderEndpoint) -> None:
        uid = endpoint_uid(endpoint)
        try:
            pod = await self._ctx.pods.for_release(namespace, name)
        except StoreError as error:
            raise try_again(f"pod {namespace}/{name} could not be read", str(error)) from error
        if pod is not None and pod["metadata"].get("uid") == uid and in_grace_period(pod, now=time.time()):
            return  # terminating, but its containers may still run (and use the address) until the grace ends
        if pod is not None and await self._confirmed_alive(pod, uid):
            return
        if await self._statefulset_keeps(namespace, name, endpoint, pod):
            return
        log.info("GC: pod %s/%s (uid %s, container %s) is not a valid attachment; releasing", namespace, name, uid,
                 container_id_of(endpoint))
        await self.release_uid(uid, endpoint, pod=f"{namespace}/{name}")


def goes_without_endpoint(pod: Pod, settings: ClusterSettings) -> bool:
    """Whether the agent writes no SpiderEndpoint for ``pod``: lean mode, and no owner of a kind that keeps one
    (StatefulSet, kubevirt) and no ``ipam.spidernet.io/ippools`` annotation (judged on the pod alone, erring towards
    "may have one")."""
    meta = pod["metadata"]
    owners = {ref.get("kind") for ref in meta.get("ownerReferences") or ()}
    return (not settings.enable_stateless_spider_endpoint and not owners & ENDPOINT_CONTROLLERS
            and IPPOOLS_ANNOTATION not in (meta.get("annotations") or {}))


def _statefulset_name(endpoint: SpiderEndpoint | None, pod: Pod | None) -> str | None:
    if endpoint is not None and owner_type(endpoint) == STATEFULSET:
        return endpoint.get("status", {}).get("ownerControllerName") or None
    if pod is not None:
        refs: list[Any] = list(pod["metadata"].get("ownerReferences") or ())
        owner = next((ref for ref in refs if ref.get("controller") and ref.get("kind") == STATEFULSET), None)
        return None if owner is None else str(owner["name"])
    return None
