"""What the coordinator reads before it plans (links, addresses, routes of a namespace) and the steps it plans.

Facts come from netlink dumps (``spiderpool.agent.coordinator_netlink`` turns them into these); steps are what
the agent applies, in order, each in the pod's namespace (``POD``) or the node's (``NODE``). Plain data: the plan
(``core.coordinator_plan``) is a pure function from facts to steps, tested without any namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from spiderpool.core.cni_types import IpAddress, IpInterface, IpNetwork

POD: Final = "pod"
NODE: Final = "node"
Side: TypeAlias = Literal["pod", "node"]
MAIN_TABLE: Final = 254
SCOPE_UNIVERSE: Final = 0
SCOPE_LINK: Final = 253


@dataclass(frozen=True, slots=True)
class LinkFact:
    name: str
    index: int
    mac: str
    up: bool
    # UP, BROADCAST and MULTICAST: upstream's GetUPLinkList (a pod's NICs and veth0, not lo)
    nic_like: bool = True
    # IFLA_LINK of a veth: the peer's index in the peer's namespace
    peer_index: int | None = None
    # unicast, not link-local, in the kernel's order
    addresses: tuple[IpInterface, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteFact:
    """One route of a dump; ``dst`` None is a default route; ``nexthops`` are a multipath route's (index, gw)."""

    family: int
    dst: IpNetwork | None
    table: int = MAIN_TABLE
    dev_index: int | None = None
    gateway: IpAddress | None = None
    source: IpAddress | None = None
    scope: int = SCOPE_UNIVERSE
    nexthops: tuple[tuple[int, IpAddress | None], ...] = ()


@dataclass(frozen=True, slots=True)
class NamespaceFacts:
    links: tuple[LinkFact, ...]
    routes: tuple[RouteFact, ...] = ()  # the main table, unless a reader says otherwise

    def link(self, name: str) -> LinkFact | None:
        return next((link for link in self.links if link.name == name), None)

    def link_by_index(self, index: int) -> LinkFact | None:
        return next((link for link in self.links if link.index == index), None)


# --- steps --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetLinkUp:
    side: Side
    link: str


@dataclass(frozen=True, slots=True)
class CreateVeth:
    """A veth pair made in the node's namespace with its peer moved into the pod's, both MACs set (no systemd race);
    the pod's steps wait for it, the node's others run meanwhile."""

    pod_name: str
    host_name: str
    mtu: int
    pod_mac: str
    host_mac: str
    side: Side = NODE


@dataclass(frozen=True, slots=True)
class DeleteLink:
    side: Side
    link: str


@dataclass(frozen=True, slots=True)
class AddAddress:
    side: Side
    link: str
    address: IpInterface


@dataclass(frozen=True, slots=True)
class SetMac:
    side: Side
    link: str
    mac: str


@dataclass(frozen=True, slots=True)
class SetTxQueueLen:
    side: Side
    link: str
    length: int


@dataclass(frozen=True, slots=True)
class SetSysctl:
    side: Side
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class AddNeighbour:
    """A permanent neighbour entry (replaced if one exists)."""

    side: Side
    link: str
    address: IpAddress
    mac: str


@dataclass(frozen=True, slots=True)
class RouteSpec:
    family: int
    dst: IpNetwork | None
    table: int
    link: str | None = None
    gateway: IpAddress | None = None
    source: IpAddress | None = None
    scope: int = SCOPE_UNIVERSE


@dataclass(frozen=True, slots=True)
class AddRoute:
    """Added, or replaced when ``replace`` (a stale route to the same destination in that table)."""

    side: Side
    route: RouteSpec
    replace: bool = False


@dataclass(frozen=True, slots=True)
class DeleteRoute:
    side: Side
    route: RouteSpec


@dataclass(frozen=True, slots=True)
class RuleSpec:
    family: int
    table: int
    priority: int | None = None
    source: IpNetwork | None = None
    fwmark: int | None = None


@dataclass(frozen=True, slots=True)
class AddRule:
    side: Side
    rule: RuleSpec


@dataclass(frozen=True, slots=True)
class DeleteRule:
    side: Side
    rule: RuleSpec


@dataclass(frozen=True, slots=True)
class MarkReplies:
    """Upstream's makeReplyPacketViaVeth in the pod: iptables mangle rules marking connections that arrive on
    ``link`` (0x1, saved to and restored from the connection), for each IP family."""

    link: str
    families: tuple[int, ...]
    mark: int = 1
    side: Side = POD


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP / unsolicited neighbour advertisements for ``addresses`` from ``link`` (after a new MAC);
    best effort, as upstream's."""

    link: str
    addresses: tuple[IpAddress, ...]
    side: Side = POD


Step: TypeAlias = (
    SetLinkUp | CreateVeth | DeleteLink | AddAddress | SetMac | SetTxQueueLen | SetSysctl | AddNeighbour | AddRoute
    | DeleteRoute | AddRule | DeleteRule | MarkReplies | Announce
)
