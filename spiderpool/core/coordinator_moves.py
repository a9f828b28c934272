"""Moving a pod NIC's routes to a policy-routing table (upstream's MoveRouteTable / CopyDefaultRoute) and the
``from <address> lookup <table>`` rules that send its traffic there."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_network

from spiderpool.core.cni_types import IpInterface
from spiderpool.core.coordinator_facts import (
    MAIN_TABLE,
    POD,
    AddRoute,
    AddRule,
    DeleteRoute,
    NamespaceFacts,
    RouteFact,
    RouteSpec,
    RuleSpec,
    Step,
)

_IPV6_LINK_LOCAL = ip_network("fe80::/64")


def source_rules(addresses: Iterable[IpInterface], table: int) -> list[Step]:
    return [AddRule(POD, RuleSpec(a.version, table, None, ip_network(f"{a.ip}/{a.max_prefixlen}")))
            for a in addresses]


def route_moves(pod: NamespaceFacts, link_name: str, wanted: frozenset[int], table: int, *,
                only_default: bool) -> list[Step]:
    """Copy the main-table routes of ``link_name`` to ``table``; default routes leave main unless ``only_default``
    (which copies nothing but them)."""
    link = pod.link(link_name)
    if link is None:
        return []
    steps: list[Step] = []
    for route in pod.routes:
        if route.table != MAIN_TABLE or route.family not in wanted or route.dst == _IPV6_LINK_LOCAL:
            continue
        steps += _move(route, link.name, link.index, table, only_default)
    return steps


def _move(route: RouteFact, name: str, index: int, table: int, only_default: bool) -> list[Step]:
    if route.dev_index == index:
        if route.dst is None:
            moved = RouteSpec(route.family, None, table, name, route.gateway, None, route.scope)
            if only_default:
                return [AddRoute(POD, moved)]
            kept = RouteSpec(route.family, None, MAIN_TABLE, name, route.gateway, None, route.scope)
            return [AddRoute(POD, moved), DeleteRoute(POD, kept)]
        if only_default:
            return []
        return [AddRoute(POD, RouteSpec(route.family, route.dst, table, name, route.gateway, route.source,
                                        route.scope))]
    hop = next((gw for hop_index, gw in route.nexthops if hop_index == index), None)
    if not any(hop_index == index for hop_index, _ in route.nexthops):
        return []
    steps: list[Step] = [AddRoute(POD, RouteSpec(route.family, route.dst, table, name, hop))]
    if not only_default:
        steps.append(DeleteRoute(POD, RouteSpec(route.family, route.dst, MAIN_TABLE, name, hop)))
    return steps
