"""Result assembly: from allocated addresses to the addresses and routes of every NIC of the pod.

The output is neutral data the agent turns into upstream's ``IpamAddResponse``
(``ips: [{version, address, nic, ipPool, gateway, vlan}]``, ``routes: [{ifName, dst, gw}]``); ``to_dict`` gives that
body. As upstream, per allocation and in order: the address with the pool's prefix length, then the pool's routes,
then the ``ipam.spidernet.io/routes`` annotation routes whose gateway lies in that allocation's subnet (each route
goes to the first such NIC), then the default route via the pool gateway unless the NIC cleans its gateway.
Annotation routes no NIC can reach are returned in ``dropped_routes`` (upstream only logs them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spiderpool.core.addressing import format_ip
from spiderpool.core.annotations import ROUTES, parse_routes_annotation
from spiderpool.core.specs import PoolView, Route

DEFAULT_ROUTE_DST = {4: "0.0.0.0/0", 6: "::/0"}


@dataclass(frozen=True, slots=True)
class AllocatedAddress:
    """One address the allocator handed to one NIC from one pool."""

    nic: str
    pool: PoolView
    address: int
    clean_gateway: bool = False
    vlan: int = 0


@dataclass(frozen=True, slots=True)
class AssignedIP:
    version: int
    address: str
    nic: str
    pool: str
    gateway: str | None
    vlan: int = 0

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"version": self.version, "address": self.address, "nic": self.nic,
                                   "ipPool": self.pool, "vlan": self.vlan}
        if self.gateway is not None:
            body["gateway"] = self.gateway
        return body


@dataclass(frozen=True, slots=True)
class AssignedRoute:
    nic: str
    dst: str
    gw: str

    def to_dict(self) -> dict[str, str]:
        return {"ifName": self.nic, "dst": self.dst, "gw": self.gw}


@dataclass(frozen=True, slots=True)
class AssembledResult:
    ips: tuple[AssignedIP, ...]
    routes: tuple[AssignedRoute, ...]
    dropped_routes: tuple[Route, ...] = ()

    def for_nic(self, nic: str) -> AssembledResult:
        """The part of the result for one NIC (the CNI plugin keeps the entries of ``CNI_IFNAME``)."""
        return AssembledResult(
            ips=tuple(ip for ip in self.ips if ip.nic == nic),
            routes=tuple(route for route in self.routes if route.nic == nic),
        )

    def to_dict(self) -> dict[str, object]:
        return {"ips": [ip.to_dict() for ip in self.ips], "routes": [route.to_dict() for route in self.routes]}


def routes_from_annotations(annotations: Mapping[str, str]) -> tuple[Route, ...]:
    """The pod's ``ipam.spidernet.io/routes``; AnnotationError when malformed."""
    return parse_routes_annotation(annotations[ROUTES]) if ROUTES in annotations else ()


def assemble_result(
    allocations: Sequence[AllocatedAddress], *, annotation_routes: Sequence[Route] = ()
) -> AssembledResult:
    ips: list[AssignedIP] = []
    routes: list[AssignedRoute] = []
    pending = list(annotation_routes)
    for allocation in allocations:
        spec = allocation.pool.spec
        version = spec.ip_version
        gateway = spec.gateway_text
        address = f"{format_ip(allocation.address, version=version)}/{spec.subnet.prefix_len}"
        ips.append(AssignedIP(version=version, address=address, nic=allocation.nic, pool=allocation.pool.name,
                              gateway=gateway, vlan=allocation.vlan))
        routes.extend(AssignedRoute(allocation.nic, route.dst_text, route.gw_text) for route in spec.routes)
        # The NIC's subnet is that of the allocated address: the pool's subnet.
        reachable = [route for route in pending if route.dst.version == version and spec.subnet.contains(route.gw)]
        routes.extend(AssignedRoute(allocation.nic, route.dst_text, route.gw_text) for route in reachable)
        pending = [route for route in pending if route not in reachable]
        if gateway is not None and not allocation.clean_gateway:
            routes.append(AssignedRoute(allocation.nic, DEFAULT_ROUTE_DST[version], gateway))
    return AssembledResult(ips=tuple(ips), routes=tuple(routes), dropped_routes=tuple(pending))

