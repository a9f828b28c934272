"""The simulated underlay: one "fabric" namespace with a bridge per master name, and each node's master interfaces.

A node's master ``ens192`` is a veth whose peer is enslaved to the fabric's ``br-ens192``, so macvlan pods of every
node on ``ens192`` share one L2 segment, as pods on a real underlay VLAN do (and ``ens224`` is a second segment, for
multi-NIC pods).  The names are those of upstream's multi-NIC examples, whose NetworkAttachmentDefinitions name
``ens192``/``ens224`` as masters.  Nothing is ever created in the host's own namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from spiderpool.testbed.netns import add_bridge, add_netns, add_veth, enslave

DEFAULT_MASTERS: Final = ("ens192", "ens224")
_IFNAME_MAX: Final = 15


def _check_ifname(name: str) -> str:
    if not name or len(name) > _IFNAME_MAX or "/" in name or name.strip() != name:
        raise ValueError(f"interface name: 1 to {_IFNAME_MAX} characters without '/' or spaces, got {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Fabric:
    netns: str
    masters: tuple[str, ...]

    def bridge(self, master: str) -> str:
        return _check_ifname(f"br-{master}")


def build_fabric(*, prefix: str, masters: Sequence[str] = DEFAULT_MASTERS) -> Fabric:
    """The fabric namespace ``<prefix>-fabric`` with one bridge per master name."""
    fabric = Fabric(netns=f"{prefix}-fabric", masters=tuple(_check_ifname(m) for m in masters))
    add_netns(fabric.netns)
    for master in fabric.masters:
        add_bridge(name=fabric.bridge(master), netns=fabric.netns)
    return fabric


def build_node_network(fabric: Fabric, *, netns: str, index: int) -> None:
    """The node namespace with one master per fabric segment, each a veth plugged into that segment's bridge."""
    add_netns(netns)
    for segment, master in enumerate(fabric.masters):
        port = _check_ifname(f"n{index}s{segment}")
        add_veth(name=master, netns=netns, peer_name=port, peer_netns=fabric.netns)
        enslave(link=port, bridge=fabric.bridge(master), netns=fabric.netns)
