"""Conversions between the three shapes of a pod's addresses.

- ``AssembledResult`` (``core.result``): every NIC's addresses and routes, strings, upstream's ``IpamAddResponse``;
- the SpiderEndpoint's ``status.current.ips`` entries (one per NIC, upstream's ``IPAllocationDetail``);
- ``IpamResult`` (``core.cni_types``): one NIC, typed, rendered by the CNI layer in the configuration's version.

The endpoint entry is the stored form: an ADD builds its answer from the entries it writes, so a repeated ADD,
served from the endpoint, returns exactly the same result.  The default route is not stored (upstream stores the
gateway and ``cleanGateway``); it is derived again from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import ip_address, ip_interface, ip_network
from typing import cast

from spiderpool.core.cni_types import IpamResult, IpConfig
from spiderpool.core.cni_types import Route as CniRoute
from spiderpool.core.result import DEFAULT_ROUTE_DST, AssembledResult, AssignedIP, AssignedRoute
from spiderpool.k8s.bodies import IPAllocationDetail, Route

_FAMILIES = ((4, "ipv4"), (6, "ipv6"))


def _field(entry: IPAllocationDetail, name: str) -> object:
    """An entry's field named at run time (``ipv4Pool``, ``ipv6Gateway``, ...)."""
    return cast(Mapping[str, object], entry).get(name)


def _is_derived_default(route: AssignedRoute, gateways: Mapping[str, str]) -> bool:
    return route.dst in DEFAULT_ROUTE_DST.values() and gateways.get(route.dst) == route.gw


def nic_entries(assembled: AssembledResult, *, clean_gateway: Mapping[str, bool]) -> list[IPAllocationDetail]:
    """One endpoint entry per NIC of ``assembled``, in the order the NICs first appear."""
    entries: dict[str, IPAllocationDetail] = {}
    gateways: dict[str, dict[str, str]] = {}
    for ip in assembled.ips:
        clean = clean_gateway.get(ip.nic, False)
        entry = entries.setdefault(ip.nic, {"interface": ip.nic, "vlan": ip.vlan, "cleanGateway": clean})
        field = "ipv4" if ip.version == 4 else "ipv6"
        fields = cast(dict[str, object], entry)
        fields[field] = ip.address
        fields[f"{field}Pool"] = ip.pool
        if ip.gateway is not None:
            fields[f"{field}Gateway"] = ip.gateway
            if not clean:
                gateways.setdefault(ip.nic, {})[DEFAULT_ROUTE_DST[ip.version]] = ip.gateway
    for route in assembled.routes:
        if route.nic in entries and not _is_derived_default(route, gateways.get(route.nic, {})):
            entries[route.nic].setdefault("routes", []).append(Route(dst=route.dst, gw=route.gw))
    return list(entries.values())


def assembled_from_entries(entries: Sequence[IPAllocationDetail]) -> AssembledResult:
    """Every NIC's addresses and routes as stored, default routes derived from gateway and ``cleanGateway``."""
    ips: list[AssignedIP] = []
    routes: list[AssignedRoute] = []
    for entry in entries:
        nic = entry["interface"]
        stored = [AssignedRoute(nic, route["dst"], route["gw"]) for route in entry.get("routes") or ()]
        defaults: list[AssignedRoute] = []
        for version, field in _FAMILIES:
            address = _field(entry, field)
            if not address:
                continue
            gateway = _field(entry, f"{field}Gateway") or None
            pool = _field(entry, f"{field}Pool") or ""
            ips.append(AssignedIP(version=version, address=str(address), nic=nic, pool=str(pool),
                                  gateway=None if gateway is None else str(gateway), vlan=entry.get("vlan") or 0))
            dst = DEFAULT_ROUTE_DST[version]
            if gateway and not entry.get("cleanGateway") and all(route.dst != dst for route in stored):
                defaults.append(AssignedRoute(nic, dst, str(gateway)))
        routes.extend(stored)
        routes.extend(defaults)
    return AssembledResult(ips=tuple(ips), routes=tuple(routes))


def ipam_result(assembled: AssembledResult, nic: str) -> IpamResult:
    """The CNI result of one NIC."""
    part = assembled.for_nic(nic)
    return IpamResult(
        ips=tuple(
            IpConfig(address=ip_interface(ip.address), gateway=None if ip.gateway is None else ip_address(ip.gateway))
            for ip in part.ips
        ),
        routes=tuple(CniRoute(dst=ip_network(route.dst, strict=False), gw=ip_address(route.gw))
                     for route in part.routes),
    )


def entry_holdings(entry: IPAllocationDetail) -> list[tuple[str, str]]:
    """(pool, bare address) of each family an endpoint entry holds."""
    holdings = []
    for _, field in _FAMILIES:
        address, pool = _field(entry, field), _field(entry, f"{field}Pool")
        if address and pool:
            holdings.append((str(pool), str(address).partition("/")[0]))
    return holdings
