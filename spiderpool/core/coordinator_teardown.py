"""The coordinator's DEL and CHECK as data: what to remove from the node, and what an ADD must have left behind.

DEL removes what ADD made on the node and nothing else (the pod's side dies with its namespace): the host veth of
the container (its routes and neighbours go with it), the host-table routes to the pod's addresses that sit on the
host peer of the pod's ``eth0`` (where an overlay-mode ADD put them; a route to the same address on any other device
is another pod's, e.g. that of the pod holding an address a stale DEL still names), and the
``from all lookup <hostRuleTable> pref 1000`` rule of a family once that table holds no route of it any more
(upstream leaves the rule behind for ever; nothing else uses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_network

from spiderpool.core.cni_types import IpAddress, IpNetwork
from spiderpool.core.coordinator_facts import (
    NODE,
    DeleteLink,
    DeleteRoute,
    DeleteRule,
    NamespaceFacts,
    RouteFact,
    RouteSpec,
    RuleSpec,
    Step,
)
from spiderpool.core.coordinator_plan import HOST_RULE_PRIORITY, UNDERLAY_VETH, host_veth_name


@dataclass(frozen=True, slots=True)
class NodeTable:
    """The node's ``hostRuleTable``: its routes, and the families whose ``pref 1000`` rule points at it."""

    table: int
    routes: tuple[RouteFact, ...]
    rule_families: frozenset[int]


def _host_route(address: IpAddress) -> IpNetwork:
    return ip_network(f"{address}/{address.max_prefixlen}")


def plan_del(container_id: str, addresses: Sequence[IpAddress], node: NamespaceFacts, table: NodeTable, *,
             host_peer: int | None) -> tuple[Step, ...]:
    """``host_peer``: the node's index of the pod's ``eth0`` peer (None when the pod has no veth ``eth0`` or its
    namespace is gone): the only device, besides the host veth, whose routes to ``addresses`` DEL removes."""
    host_veth = node.link(host_veth_name(container_id))
    steps: list[Step] = [DeleteLink(NODE, host_veth.name)] if host_veth else []
    gone_index = host_veth.index if host_veth else None
    targets = {_host_route(address) for address in addresses}
    remaining: list[RouteFact] = []
    for route in table.routes:
        if route.dev_index is not None and route.dev_index == gone_index:
            continue  # removed with the host veth
        if route.dst in targets and host_peer is not None and route.dev_index == host_peer:
            device = node.link_by_index(route.dev_index) if route.dev_index is not None else None
            spec = RouteSpec(route.family, route.dst, table.table, device.name if device else None, route.gateway,
                             None, route.scope)
            steps.append(DeleteRoute(NODE, spec))
            continue
        remaining.append(route)
    still_used = {route.family for route in remaining}
    steps += [DeleteRule(NODE, RuleSpec(family, table.table, HOST_RULE_PRIORITY))
              for family in sorted(table.rule_families - still_used)]
    return tuple(steps)


def check_underlay(container_id: str, ifname_addresses: Sequence[IpAddress], pod: NamespaceFacts,
                   node: NamespaceFacts, table: NodeTable) -> list[str]:
    """What is missing of an underlay ADD (empty when everything is in place)."""
    problems: list[str] = []
    host_veth = node.link(host_veth_name(container_id))
    if pod.link(UNDERLAY_VETH) is None:
        problems.append(f"the pod has no {UNDERLAY_VETH}")
    if host_veth is None:
        problems.append(f"the node has no {host_veth_name(container_id)}")
        return problems
    for address in ifname_addresses:
        wanted = _host_route(address)
        if not any(r.dst == wanted and r.dev_index == host_veth.index for r in table.routes):
            problems.append(f"the node has no route to {address} via {host_veth.name} in table {table.table}")
        if address.version not in table.rule_families:
            problems.append(f"the node has no rule 'from all lookup {table.table}' for IPv{address.version}")
    return problems
