"""The agent's IPAM service: the ``CniBackend`` the CNI endpoint calls, and what upstream's agent API calls.

Everything is served from memory (watch caches and the pool book) and made durable through the batched status
writer before an address is returned.  Requests for one pod are serialised on this agent (a per-pod lock), so an
ADD and a DEL of the same pod never interleave; different pods proceed concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from spiderpool.agent import metrics as reasons
from spiderpool.agent.assignment import PodAssigner, PodRequest
from spiderpool.agent.context import IpamContext
from spiderpool.agent.detection import AddressChecker, ConflictNotice, Detection
from spiderpool.agent.endpoints import endpoint_entries, endpoint_uid
from spiderpool.agent.health import Readiness
from spiderpool.agent.ipam_errors import IpamError, try_again
from spiderpool.agent.metrics import AgentMetrics
from spiderpool.agent.release import EndpointRelease
from spiderpool.agent.results import assembled_from_entries, entry_holdings, ipam_result
from spiderpool.core.allocator import parse_address
from spiderpool.core.cni_types import Attachment, CniCode, CniError, CniRequest, IpamResult
from spiderpool.core.result import AllocatedAddress, AssembledResult, assemble_result
from spiderpool.core.selection_types import CniPoolDefaults
from spiderpool.k8s.bodies import SpiderEndpoint
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _pod_of(request: CniRequest) -> tuple[str, str, str]:
    """Namespace, name and interface of an ADD/DEL/CHECK (the CNI layer has checked they are set)."""
    namespace, name, nic = request.k8s.pod_namespace, request.k8s.pod_name, request.ifname
    if not namespace or not name or not nic:
        raise CniError(CniCode.INVALID_CONFIG, f"pod namespace, name and interface required, got "
                                               f"{namespace!r}, {name!r}, {nic!r}")
    return namespace, name, nic


def pod_request(request: CniRequest) -> PodRequest:
    """The ADD of a validated CNI request (the CNI layer guarantees the pod name, namespace and ifname)."""
    namespace, name, nic = _pod_of(request)
    return PodRequest(
        namespace=namespace,
        name=name,
        uid=request.k8s.pod_uid,
        nic=nic,
        container_id=request.container_id or "",
        cni=CniPoolDefaults(ipv4=request.ipam.default_ipv4_ippool, ipv6=request.ipam.default_ipv6_ippool,
                            clean_gateway=request.ipam.clean_gateway),
    )


class IpamService:
    def __init__(self, context: IpamContext, *, metrics: AgentMetrics, readiness: Readiness,
                 on_conflict: ConflictNotice | None = None) -> None:
        self.context = context
        self._metrics = metrics
        self._readiness = readiness
        self._assigner = PodAssigner(context)
        detection = Detection.from_settings(context.settings)
        self._checker = None if detection is None else \
            AddressChecker(context, detection, metrics=metrics, on_conflict=on_conflict)
        self._release = EndpointRelease(context)
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    # ------------------------------------------------------------------------------------------------ CniBackend

    async def add(self, request: CniRequest) -> IpamResult:
        add = pod_request(request)
        if self._checker is None or not request.netns:
            return ipam_result(await self.allocate(add), add.nic)
        return ipam_result(await self._allocate_checked(add, self._checker, request.netns), add.nic)

    async def delete(self, request: CniRequest) -> None:
        namespace, name, _ = _pod_of(request)
        await self.release(namespace, name, request.k8s.pod_uid)

    async def check(self, request: CniRequest) -> IpamResult:
        self._require_ready()
        namespace, name, nic = _pod_of(request)
        try:
            endpoint = await self.context.endpoints.get(namespace, name)
        except StoreError as error:
            raise try_again("the pod's SpiderEndpoint could not be read", str(error)) from error
        uid = request.k8s.pod_uid
        if endpoint is None or (uid and endpoint_uid(endpoint) != uid):
            # A lean pod (enableStatelessSpiderEndpoint: false) has no endpoint: its pool records are the answer.
            return ipam_result(self.held_records(uid, nic=nic), nic)
        return ipam_result(self.held(endpoint, uid=uid), nic)

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        self._require_ready()
        await self._release.collect(valid)

    async def status(self, request: CniRequest) -> None:
        problem = self._readiness.problem()
        if problem is not None:
            raise CniError(CniCode.NOT_AVAILABLE, "spiderpool agent not ready", problem)

    # ------------------------------------------------------------------------------------------------ shared

    async def allocate(self, request: PodRequest) -> AssembledResult:
        """Every NIC's addresses of the pod once ``request.nic`` has its own (upstream's ``IpamAddResponse``)."""
        self._require_ready()
        async with self._pod_lock(request.namespace, request.name):
            return await self._measured(self._metrics.allocation.succeeded, self._metrics.allocation.failed,
                                        lambda: self._assigner.assign(request))

    async def _allocate_checked(self, request: PodRequest, checker: AddressChecker, netns: str) -> AssembledResult:
        """``allocate`` with IP conflict and gateway detection from inside ``netns`` (``agent.detection``)."""
        self._require_ready()
        async with self._pod_lock(request.namespace, request.name):
            return await self._measured(
                self._metrics.allocation.succeeded, self._metrics.allocation.failed,
                lambda: checker.checked(lambda: self._assigner.assign(request), netns=netns, nic=request.nic,
                                        pod=request.pod))

    async def release(self, namespace: str, name: str, uid: str | None) -> None:
        """DEL: release the pod's records unless it (or its StatefulSet ordinal) lives on."""
        if not self._readiness.synced:
            raise try_again("spiderpool agent not ready", self._readiness.problem() or "")
        async with self._pod_lock(namespace, name):
            await self._measured(self._metrics.release.succeeded, self._metrics.release.failed,
                                 lambda: self._release.release_pod(namespace, name, uid))

    async def release_all(self, namespace: str, name: str, uid: str) -> int:
        """Release every record of ``uid`` and its endpoint, alive or not (upstream's ``DELETE /v1/ipam/ips``)."""
        self._require_ready()
        async with self._pod_lock(namespace, name):
            endpoint = await self.context.endpoints.get(namespace, name)
            return await self._measured(self._metrics.release.succeeded, self._metrics.release.failed,
                                        lambda: self._release.release_uid(uid, endpoint, pod=f"{namespace}/{name}"))

    def held(self, endpoint: SpiderEndpoint | None, *, uid: str | None) -> AssembledResult:
        """The endpoint's addresses whose pool records still name the pod (the endpoint's UID unless ``uid``)."""
        if endpoint is None:
            return AssembledResult(ips=(), routes=())
        uid = uid or endpoint_uid(endpoint)
        book = self.context.book
        entries = [entry for entry in endpoint_entries(endpoint)
                   if all((record := book.record(pool, ip)) is not None and record.pod_uid == uid
                          for pool, ip in entry_holdings(entry))]
        return assembled_from_entries(entries)

    def held_records(self, uid: str | None, *, nic: str | None = None) -> AssembledResult:
        """What the pool records give pod ``uid``: of NIC ``nic`` (records that name no NIC, written by upstream,
        count for any), or of every NIC the records name."""
        if not uid:
            return AssembledResult(ips=(), routes=())
        book = self.context.book
        allocations = []
        for pool, ip in sorted(book.held_by(uid)):
            record, view = book.record(pool, ip), book.view(pool)
            if record is None or view is None or (nic is not None and record.nic not in ("", nic)):
                continue
            allocations.append(AllocatedAddress(nic=nic or record.nic, pool=view, address=parse_address(ip)[1],
                                                clean_gateway=False))
        return assemble_result(allocations)

    def problem(self) -> str | None:
        """Why the agent is not ready for ADD, or None."""
        return self._readiness.problem()

    def _require_ready(self) -> None:
        problem = self._readiness.problem()
        if problem is not None:
            raise try_again("spiderpool agent not ready", problem)

    async def _measured(self, succeeded: Callable[[float], None], failed: Callable[[float, str], None],
                        call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await call()
        except IpamError as error:
            failed(time.perf_counter() - started, error.reason or "")
            raise
        except CniError:
            failed(time.perf_counter() - started, "")
            raise
        except Exception:
            failed(time.perf_counter() - started, reasons.INTERNAL)
            raise
        succeeded(time.perf_counter() - started)
        return result

    @asynccontextmanager
    async def _pod_lock(self, namespace: str, name: str) -> AsyncIterator[None]:
        key = (namespace, name)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
