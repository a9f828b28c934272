"""IP conflict and gateway detection of a CNI ADD (upstream's ``enableIPConflictDetection`` /
``enableGatewayDetection`` of ``spiderpool-conf``; both off by default, and then nothing is probed).

Upstream's IPAM executable probes after the agent answered and, on a conflict, releases the pod's addresses and
fails the ADD, so the retried ADD is given the same lowest free address again. Here the agent probes from inside the
pod's network namespace (``agent.netns``, ``agent.neighbor_probe``) before it answers: an address another host
answers for is quarantined in this agent's allocator, its record released, the conflict counted and reported in an
Event, and the NIC allocated again (at most ``MAX_CONFLICT_RETRIES`` times). A gateway that does not answer fails the
ADD (code 106) after releasing the NIC's records. After success, a gratuitous ARP / unsolicited advertisement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from ipaddress import ip_address, ip_interface
from typing import Final

from spiderpool.agent.context import IpamContext
from spiderpool.agent.ipam_errors import IpamCode, IpamError, internal
from spiderpool.agent.metrics import AgentMetrics
from spiderpool.agent.neighbor_probe import Address, ProbeReport, ProbeSettings, ProbeTarget, announce, probe_family
from spiderpool.agent.netns import run_in_netns_async
from spiderpool.cluster_config import ClusterSettings
from spiderpool.core.result import AssembledResult, AssignedIP

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES: Final = 3
ConflictNotice = Callable[[str, str], None]
"""Called with (pool, message) for each conflicting address found."""


@dataclass(frozen=True, slots=True)
class Detection:
    conflict: bool
    gateway: bool
    settings: ProbeSettings

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> Detection | None:
        """The detection ``spiderpool-conf`` asks for, or None when it asks for none."""
        if not settings.enable_ip_conflict_detection and not settings.enable_gateway_detection:
            return None
        return cls(conflict=settings.enable_ip_conflict_detection, gateway=settings.enable_gateway_detection,
                   settings=ProbeSettings(timeout=settings.detection_timeout, retries=settings.detection_retries))

    def targets(self, ips: Sequence[AssignedIP]) -> dict[int, list[ProbeTarget]]:
        """What to check of a NIC's addresses, by IP version."""
        by_version: dict[int, list[ProbeTarget]] = {}
        for ip in ips:
            gateway = ip_address(ip.gateway) if ip.gateway else None
            target = ProbeTarget(address=ip_interface(ip.address).ip, gateway=gateway, conflict=self.conflict,
                                 check_gateway=self.gateway and gateway is not None)
            if target.conflict or target.check_gateway:
                by_version.setdefault(ip.version, []).append(target)
        return by_version


def _bare(ip: AssignedIP) -> str:
    return str(ip_interface(ip.address).ip)


class AddressChecker:
    """Runs an ADD's allocation until its NIC's addresses pass detection (see the module)."""

    def __init__(self, context: IpamContext, detection: Detection, *, metrics: AgentMetrics,
                 on_conflict: ConflictNotice | None = None) -> None:
        self._ctx = context
        self._detection = detection
        self._metrics = metrics
        self._on_conflict = on_conflict

    async def checked(self, allocate: Callable[[], Awaitable[AssembledResult]], *, netns: str, nic: str,
                      pod: str) -> AssembledResult:
        skipped: list[str] = []
        mine: list[AssignedIP] = []
        for _ in range(MAX_CONFLICT_RETRIES + 1):
            result = await allocate()
            mine = [ip for ip in result.ips if ip.nic == nic]
            try:
                report = await self.probe(netns, nic, mine)
            except IpamError:
                await self._release(mine, pod=pod)  # a failed ADD keeps nothing
                raise
            if report.conflicts:
                skipped += await self._skip(mine, report, pod=pod)
                continue
            if report.unreachable:
                await self._release(mine, pod=pod)
                self._metrics.gateway_unreachable.inc(len(report.unreachable))
                gateways = ", ".join(str(gateway) for gateway in report.unreachable)
                raise IpamError(IpamCode.GATEWAY_UNREACHABLE, f"gateway {gateways} of interface {nic} is unreachable",
                                f"no answer to {self._detection.settings.retries} ARP/NDP probes within "
                                f"{self._detection.settings.timeout * 1000:g} ms from the pod's network "
                                f"namespace; the addresses of {nic} were released")
            await self._announce(netns, nic, mine)
            return result
        await self._release(mine, pod=pod)  # the NIC's other family, which did not conflict: a failed ADD keeps nothing
        raise IpamError(IpamCode.IP_CONFLICT, f"every address tried for interface {nic} is held by another host",
                        f"conflicting: {', '.join(skipped)}")

    async def probe(self, netns: str, nic: str, ips: Sequence[AssignedIP]) -> ProbeReport:
        """Each IP family checked on a thread of its own inside ``netns``; one report."""
        families = self._detection.targets(ips)
        try:
            reports = await asyncio.gather(*(
                run_in_netns_async(netns, partial(probe_family, nic, targets, self._detection.settings))
                for _, targets in sorted(families.items())))
        except OSError as error:
            raise internal(f"IP conflict / gateway detection on interface {nic} failed", str(error)) from error
        merged = ProbeReport()
        for report in reports:
            merged.conflicts.update(report.conflicts)
            merged.unreachable += report.unreachable
            merged.gateways.update(report.gateways)
        return merged

    async def _skip(self, mine: Sequence[AssignedIP], report: ProbeReport, *, pod: str) -> list[str]:
        conflicting = [ip for ip in mine if ip_interface(ip.address).ip in report.conflicts]
        skipped = []
        for ip in conflicting:
            holder = report.conflicts[ip_interface(ip.address).ip]
            message = (f"IP conflict: {_bare(ip)} of SpiderIPPool {ip.pool} is answered by {holder} on the network"
                       f" of interface {ip.nic} of pod {pod} (node {self._ctx.node_name}); skipped, the pod gets"
                       " another")
            log.warning("%s", message)
            self._ctx.book.conflicted(ip.pool, _bare(ip))
            self._metrics.ip_conflicts.labels(pool=ip.pool).inc()
            if self._on_conflict is not None:
                self._on_conflict(ip.pool, message)
            skipped.append(f"{_bare(ip)} ({holder})")
        await self._release(conflicting, pod=pod)
        return skipped

    async def _release(self, ips: Sequence[AssignedIP], *, pod: str) -> None:
        """Release the records of ``ips`` that name ``pod`` (by its UID, never by address alone)."""
        book = self._ctx.book
        for ip in ips:
            record = book.record(ip.pool, _bare(ip))
            if record is not None and record.pod == pod:
                await self._ctx.records.release([(ip.pool, _bare(ip))], pod_uid=record.pod_uid)

    async def _announce(self, netns: str, nic: str, ips: Sequence[AssignedIP]) -> None:
        addresses: list[Address] = [ip_interface(ip.address).ip for ip in ips]
        if not addresses:
            return
        try:
            await run_in_netns_async(netns, partial(announce, nic, addresses))
        except OSError as error:  # a courtesy to the neighbours, as upstream: logged, never fails the ADD
            log.warning("gratuitous ARP / unsolicited advertisement on %s failed: %s", nic, error)
