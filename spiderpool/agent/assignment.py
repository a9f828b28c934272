"""CNI ADD: the addresses of a pod's NIC, from its SpiderEndpoint when it has them, else freshly and durably allocated.

In upstream's order: the pod (alive, on this node), its top controller, its endpoint; a StatefulSet pod re-created
under its old name takes its old addresses back (records rebound to the new UID) unless its pool candidates changed;
an endpoint left by another pod of the same name (stateless) is removed with its records; an endpoint of this very
pod that lists the NIC answers directly (idempotent ADD, and the later NICs of an ``ippools`` pod).  Otherwise the
pool candidates are planned and allocated (``allocation``), and the endpoint is written after the pool records,
except for the "lean" pods of ``enableStatelessSpiderEndpoint: false``, which have only their pool records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from spiderpool.agent.allocation import AllocationFailed, Claim, FamilyFailure
from spiderpool.agent.auto_pools import find_auto_pool
from spiderpool.agent.context import IpamContext
from spiderpool.agent.endpoints import (
    ENDPOINT_CONTROLLERS,
    STATEFULSET,
    container_id_of,
    endpoint_entries,
    endpoint_uid,
    merged_endpoint,
    new_endpoint,
    owner_type,
)
from spiderpool.agent.ipam_errors import IpamCode, IpamError, internal, invalid_config, try_again
from spiderpool.agent.metrics import IP_USED_OUT, NO_AVAILABLE_POOL, RETRIES_EXHAUSTED
from spiderpool.agent.pod_state import not_alive_reason, pod_view
from spiderpool.agent.release import EndpointRelease
from spiderpool.agent.results import assembled_from_entries, entry_holdings, nic_entries
from spiderpool.core.allocator import parse_address
from spiderpool.core.errors import NoAvailablePoolError, PoolSelectionError
from spiderpool.core.result import AllocatedAddress, AssembledResult, assemble_result, routes_from_annotations
from spiderpool.core.selection import plan_pool_candidates, select_candidates
from spiderpool.core.selection_types import CniPoolDefaults, PodView, PoolPlan, PoolRequest, PoolSource, SubnetPlan
from spiderpool.core.specs import Route
from spiderpool.k8s.bodies import IPAllocationDetail, SpiderEndpoint
from spiderpool.k8s.record_rebinding import RecordMissing, RecordOwnedByAnotherPod, rebind_records
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PodRequest:
    """One ADD, from the CNI executable or upstream's ``POST /v1/ipam/ip``."""

    namespace: str
    name: str
    uid: str | None
    nic: str
    container_id: str = ""
    cni: CniPoolDefaults = field(default_factory=CniPoolDefaults)

    @property
    def pod(self) -> str:
        return f"{self.namespace}/{self.name}"


def allocation_error(failed: AllocationFailed) -> IpamError:
    failures: Sequence[FamilyFailure] = failed.failures
    if any(failure.abandoned for failure in failures):
        return try_again(str(failed), reason=RETRIES_EXHAUSTED)
    if any(failure.internal for failure in failures):
        return internal(str(failed))
    return IpamError(IpamCode.POOL_EXHAUSTED, str(failed), reason=IP_USED_OUT)


class PodAssigner:
    def __init__(self, context: IpamContext) -> None:
        self._ctx = context
        self._release = EndpointRelease(context)

    async def assign(self, request: PodRequest) -> AssembledResult:
        """Every NIC's addresses of the pod once ``request.nic`` has its own (all durable)."""
        view = await self._live_pod(request)
        endpoint = self._ctx.endpoints.cached(request.namespace, request.name)
        if endpoint is not None:
            served = await self._from_endpoint(request, view, endpoint)
            if served is not None:
                return served
            endpoint = self._ctx.endpoints.cached(request.namespace, request.name)
        held = self._recorded(endpoint_entries(endpoint), view.uid) \
            if endpoint is not None and endpoint_uid(endpoint) == view.uid else []
        plan = self._plan(request, view)
        routes = self._annotation_routes(view)
        present = {entry["interface"] for entry in held}
        if plan.unnamed_nics and present:
            raise invalid_config(f"pod {request.pod}: interface {request.nic} is beyond the NICs of its "
                                 f"ipam.spidernet.io/ippools annotation (served: {', '.join(sorted(present))})")
        nics = [nic for nic in plan.nics if nic.nic not in present] if plan.source is PoolSource.POD_IPPOOLS \
            else [nic for nic in plan.nics if nic.nic == request.nic]
        keep = frozenset(holding for entry in held for holding in entry_holdings(entry))
        try:
            claims = await self._ctx.records.allocate(nics, pod=request.pod, pod_uid=view.uid, keep=keep)
        except AllocationFailed as failed:
            raise allocation_error(failed) from failed
        entries = self._entries(claims, routes, rename={"0": request.nic} if plan.unnamed_nics else {})
        if endpoint is None and self._lean(view, plan):
            # The pool records (indexed by UID in the book) are the truth; a repeated ADD re-derives the same
            # answer from them (the writer is idempotent per pod UID and pool).
            return assembled_from_entries(entries)
        stored = await self._write(request, view, entries)
        return assembled_from_entries(endpoint_entries(stored))

    async def _live_pod(self, request: PodRequest) -> PodView:
        try:
            pod = await self._ctx.pods.for_add(request.namespace, request.name, request.uid)
        except StoreError as error:
            raise try_again(f"pod {request.pod} could not be read", str(error)) from error
        if pod is None:
            raise try_again(f"pod {request.pod} not found", "the pod does not exist (yet) in the API server")
        uid = pod["metadata"]["uid"]
        if request.uid and uid != request.uid:
            raise IpamError(IpamCode.POD_NOT_ALIVE, f"pod {request.pod} of uid {request.uid} no longer exists",
                            f"a pod of the same name has uid {uid}")
        reason = not_alive_reason(pod)
        if reason is not None:
            raise IpamError(IpamCode.POD_NOT_ALIVE, f"pod {request.pod} {reason}: no address is allocated to it")
        node = pod.get("spec", {}).get("nodeName", "")
        if node != self._ctx.node_name:
            raise invalid_config(f"pod {request.pod} is bound to node {node or '(none)'}, "
                                 f"not to this agent's node {self._ctx.node_name}")
        try:
            controller = await self._ctx.owners.top_controller(pod)
        except StoreError as error:
            raise try_again(f"the owner of pod {request.pod} could not be read", str(error)) from error
        return pod_view(pod, controller)

    # ------------------------------------------------------------------------------------------------ endpoint

    async def _from_endpoint(self, request: PodRequest, view: PodView, endpoint: SpiderEndpoint
                             ) -> AssembledResult | None:
        if endpoint_uid(endpoint) == view.uid:
            return await self._same_pod(request, view, endpoint)
        if (self._ctx.settings.enable_statefulset and view.controller.kind == STATEFULSET
                and owner_type(endpoint) == STATEFULSET):
            return await self._statefulset_pod(request, view, endpoint)
        log.info("pod %s (uid %s): removing the endpoint of a former pod of that name (uid %s)",
                 request.pod, view.uid, endpoint_uid(endpoint))
        await self._release.release_endpoint(endpoint)
        return None

    def _recorded(self, entries: Sequence[IPAllocationDetail], uid: str) -> list[IPAllocationDetail]:
        """The entries whose every address still has its pool record for ``uid``: the records are the truth."""
        book = self._ctx.book
        return [entry for entry in entries
                if all((record := book.record(pool, ip)) is not None and record.pod_uid == uid
                       for pool, ip in entry_holdings(entry))]

    async def _same_pod(self, request: PodRequest, view: PodView, endpoint: SpiderEndpoint
                        ) -> AssembledResult | None:
        entries = endpoint_entries(endpoint)
        recorded = self._recorded(entries, view.uid)
        if len(recorded) != len(entries):
            lost = [entry["interface"] for entry in entries if entry not in recorded]
            log.warning("pod %s: the pool records of interface(s) %s are gone; allocating them again",
                        request.pod, ", ".join(lost))
            if any(entry["interface"] == request.nic for entry in entries if entry not in recorded):
                return None
            entries = recorded
        names = [entry["interface"] for entry in entries]
        if request.nic not in names:
            numbered = sorted((name for name in names if name.isdigit()), key=int)
            if not numbered:
                return None  # a NIC of its own network (one NetworkAttachmentDefinition per NIC): allocate it
            # Upstream's unnamed ``ippools`` NICs: the next ADD takes the next one, in annotation order.
            entries = [cast(IPAllocationDetail, {**entry, "interface": request.nic})
                       if entry["interface"] == numbered[0] else entry for entry in entries]
        elif container_id_of(endpoint) == request.container_id:
            return assembled_from_entries(entries)
        stored = await self._write(request, view, entries, replace_all=True)
        return assembled_from_entries(endpoint_entries(stored))

    async def _statefulset_pod(self, request: PodRequest, view: PodView, endpoint: SpiderEndpoint
                               ) -> AssembledResult | None:
        entries = endpoint_entries(endpoint)
        plan = self._plan(request, view)
        if not _still_candidates(entries, plan):
            log.info("StatefulSet pod %s: its pool candidates changed; allocating afresh", request.pod)
            await self._release.release_endpoint(endpoint)
            return None
        try:
            await self._rebind(entries, view)
        except (RecordMissing, RecordOwnedByAnotherPod) as error:
            log.warning("StatefulSet pod %s: %s; allocating afresh", request.pod, error)
            await self._release.release_endpoint(endpoint)
            return None
        except StoreError as error:
            raise try_again(f"StatefulSet pod {request.pod}: rebinding its addresses failed", str(error)) from error
        stored = await self._write(request, view, entries, replace_all=True)
        if request.nic not in {entry["interface"] for entry in entries}:
            return None
        log.info("StatefulSet pod %s (uid %s) keeps its addresses", request.pod, view.uid)
        return assembled_from_entries(endpoint_entries(stored))

    async def _rebind(self, entries: Sequence[IPAllocationDetail], view: PodView) -> None:
        by_pool: dict[str, list[str]] = {}
        for pool, ip in (holding for entry in entries for holding in entry_holdings(entry)):
            by_pool.setdefault(pool, []).append(ip)
        pod = f"{view.namespace}/{view.name}"
        await asyncio.gather(*(rebind_records(self._ctx.pool_store, pool=pool, ips=ips, pod=pod, pod_uid=view.uid)
                               for pool, ips in by_pool.items()))
        for pool, ips in by_pool.items():
            for ip in ips:
                self._ctx.book.rebound(pool, ip, pod=pod, pod_uid=view.uid)

    async def _write(self, request: PodRequest, view: PodView, entries: Sequence[IPAllocationDetail], *,
                     replace_all: bool = False) -> SpiderEndpoint:
        node, container_id = self._ctx.node_name, request.container_id

        def build(current: SpiderEndpoint | None) -> SpiderEndpoint | None:
            if current is None:
                return new_endpoint(view, node=node, container_id=container_id, entries=entries)
            if endpoint_uid(current) == view.uid and not replace_all:
                return merged_endpoint(current, view, node=node, container_id=container_id, entries=entries)
            fresh = new_endpoint(view, node=node, container_id=container_id, entries=entries)
            body = merged_endpoint(current, view, node=node, container_id=container_id, entries=())
            return cast(SpiderEndpoint, {**body, "status": fresh["status"]})

        try:
            stored = await self._ctx.endpoints.write(request.namespace, request.name, build)
        except StoreError as error:
            raise try_again(f"pod {request.pod}: writing its SpiderEndpoint failed (its addresses are kept for "
                            "the retry)", str(error)) from error
        assert stored is not None
        return stored

    def _lean(self, view: PodView, plan: PoolPlan) -> bool:
        """Whether this pod goes without a SpiderEndpoint (``enableStatelessSpiderEndpoint: false``).

        Kept for StatefulSet and kubevirt pods (their addresses outlive the pod) and for ``ippools`` pods (the
        endpoint serves their later NICs).
        """
        return (not self._ctx.settings.enable_stateless_spider_endpoint
                and view.controller.kind not in ENDPOINT_CONTROLLERS
                and plan.source is not PoolSource.POD_IPPOOLS)

    # ------------------------------------------------------------------------------------------------ planning

    def _plan(self, request: PodRequest, view: PodView) -> PoolPlan:
        pools, refused = self._ctx.book.views(), self._ctx.book.refusals()
        pool_request = PoolRequest(pod=view, nic=request.nic, namespace=self._ctx.namespace_view(view.namespace),
                                   node=self._ctx.node_view(), cni=request.cni)
        config = self._ctx.settings.selection_config()
        try:
            plan = plan_pool_candidates(pool_request, pools=pools, config=config, refused=refused)
            if isinstance(plan, SubnetPlan):
                names = {}
                for auto in plan.auto_pools:
                    found = find_auto_pool(auto, view.controller, pools)
                    if found is None:
                        raise IpamError(IpamCode.SUBNET_POOL_MISSING, "the SpiderSubnet auto pool of this application "
                                        "does not exist yet (spiderpool-controller creates it)",
                                        f"no auto-created IPv{auto.version} IPPool of SpiderSubnet {auto.subnet} "
                                        f"for {view.controller.kind} {view.controller.namespace}/"
                                        f"{view.controller.name} interface {auto.nic}", reason=NO_AVAILABLE_POOL)
                    names[auto.version] = found
                plan = select_candidates(plan.with_pools(names), request=pool_request, pools=pools, config=config,
                                         refused=refused)
        except NoAvailablePoolError as error:
            raise IpamError(IpamCode.NO_AVAILABLE_POOL, str(error), reason=NO_AVAILABLE_POOL) from error
        except PoolSelectionError as error:
            raise invalid_config(str(error)) from error
        return plan

    @staticmethod
    def _annotation_routes(view: PodView) -> tuple[Route, ...]:
        try:
            return routes_from_annotations(view.annotations)
        except PoolSelectionError as error:
            raise invalid_config(str(error)) from error

    @staticmethod
    def _entries(claims: Sequence[Claim], routes: Sequence[Route], *, rename: dict[str, str]
                 ) -> list[IPAllocationDetail]:
        allocations = [
            AllocatedAddress(nic=rename.get(claim.nic, claim.nic), pool=claim.pool,
                             address=parse_address(claim.ip)[1], clean_gateway=claim.clean_gateway)
            for claim in claims
        ]
        assembled = assemble_result(allocations, annotation_routes=routes)
        for route in assembled.dropped_routes:
            log.warning("route %s via %s of ipam.spidernet.io/routes matches no NIC's subnet; dropped",
                        route.dst_text, route.gw_text)
        return nic_entries(assembled, clean_gateway={a.nic: a.clean_gateway for a in allocations})


def _still_candidates(entries: Sequence[IPAllocationDetail], plan: PoolPlan) -> bool:
    """Whether every pool of the endpoint is still a candidate of its NIC and family (NICs the plan covers)."""
    for entry in entries:
        nic = plan.nic(entry["interface"])
        if nic is None:
            continue
        for version, field_name in ((4, "ipv4Pool"), (6, "ipv6Pool")):
            pool = entry.get(field_name)
            if not pool:
                continue
            family = nic.family(version)
            if family is None or pool not in family.names:
                return False
    return True
