"""ARP / NDP exchanges on a pod's interface, from inside its network namespace (see ``agent.netns``).

Blocking code for one worker thread: the interface is brought up (IPAM runs before the main plugin does it; upstream
does the same), a raw ``AF_PACKET`` socket bound to it sends the frames of ``core.neighbor_frames`` and reads the
answers until the check's timeout. Nothing here touches the pod's addresses or routes.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from spiderpool.core.neighbor_frames import (
    ETH_P_ARP,
    ETH_P_IPV6,
    arp_probe,
    arp_request,
    conflict_answer,
    format_mac,
    gateway_answer,
    gratuitous_arp,
    neighbor_solicitation,
    unsolicited_advertisement,
)

_SIOCGIFFLAGS: Final = 0x8913
_SIOCSIFFLAGS: Final = 0x8914
_SIOCGIFHWADDR: Final = 0x8927
_IFF_UP: Final = 0x1
_PACKET_OUTGOING: Final = 4
_FRAME_BYTES: Final = 2048

Address = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Each check lasts at most ``timeout`` seconds (upstream's 100 ms) and sends ``retries`` probes (upstream's 3)
    spread over it: a free address or a dead gateway costs ``timeout``, a live gateway one round trip."""

    timeout: float = 0.1
    retries: int = 3


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One address of the pod's interface: check it is free (``conflict``), and that ``gateway`` answers."""

    address: Address
    gateway: Address | None
    conflict: bool
    check_gateway: bool


@dataclass(slots=True)
class ProbeReport:
    conflicts: dict[Address, str] = field(default_factory=dict)  # address -> MAC of the host that holds it
    unreachable: list[Address] = field(default_factory=list)  # gateways that did not answer
    gateways: dict[Address, str] = field(default_factory=dict)  # gateway -> its MAC


def _ifreq(ifname: str) -> bytes:
    return struct.pack("16s24x", ifname.encode())


def link_up(ifname: str) -> bytes:
    """Brings ``ifname`` up (if down) and returns its MAC address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        flags = struct.unpack_from("16xH", fcntl.ioctl(control, _SIOCGIFFLAGS, _ifreq(ifname)))[0]
        if not flags & _IFF_UP:
            fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack("16sH22x", ifname.encode(), flags | _IFF_UP))
        return fcntl.ioctl(control, _SIOCGIFHWADDR, _ifreq(ifname))[18:24]


def _open(ifname: str, ethertype: int) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        sock.bind((ifname, ethertype))
    except BaseException:
        sock.close()
        raise
    return sock


def _exchange(sock: socket.socket, frame: bytes, answer: Callable[[bytes], bytes | None],
              settings: ProbeSettings) -> bytes | None:
    """The first answer (what ``answer`` finds in a frame read) within ``settings.timeout``; ``frame`` is sent
    ``settings.retries`` times, spread evenly over that window (a lost probe or answer costs nothing more)."""
    start = time.monotonic()
    deadline, interval = start + settings.timeout, settings.timeout / settings.retries
    sent = 0
    while (now := time.monotonic()) < deadline:
        if sent < settings.retries and now >= start + sent * interval:
            sock.send(frame)
            sent += 1
        until = min(deadline, start + sent * interval) if sent < settings.retries else deadline
        if until <= now:
            continue
        sock.settimeout(until - now)
        try:
            data, origin = sock.recvfrom(_FRAME_BYTES)
        except TimeoutError:
            continue
        if origin[2] == _PACKET_OUTGOING:
            continue
        found = answer(data)
        if found is not None:
            return found
    return None


def probe_family(ifname: str, targets: list[ProbeTarget], settings: ProbeSettings) -> ProbeReport:
    """Checks ``targets`` (one IP family) on ``ifname``: conflicts first, then gateways of the free addresses (so a
    gateway never learns a conflicting address from us, as upstream orders it)."""
    report = ProbeReport()
    if not targets:
        return report
    mac = link_up(ifname)
    version4 = isinstance(targets[0].address, IPv4Address)
    with _open(ifname, ETH_P_ARP if version4 else ETH_P_IPV6) as sock:
        for target in targets:
            address = target.address
            if target.conflict:
                probe = arp_probe(mac, address) if isinstance(address, IPv4Address) else \
                    neighbor_solicitation(mac, source=None, target=address)
                holder = _exchange(sock, probe, partial(conflict_answer, own_mac=mac, address=address), settings)
                if holder is not None:
                    report.conflicts[address] = format_mac(holder)
                    continue
            gateway = target.gateway
            if target.check_gateway and gateway is not None:
                request = arp_request(mac, sender=address, target=gateway) \
                    if isinstance(address, IPv4Address) and isinstance(gateway, IPv4Address) else \
                    neighbor_solicitation(mac, source=address, target=gateway)  # type: ignore[arg-type]
                found = _exchange(sock, request, partial(gateway_answer, gateway=gateway), settings)
                if found is None:
                    report.unreachable.append(gateway)
                else:
                    report.gateways[gateway] = format_mac(found)
    return report


def announce(ifname: str, addresses: list[Address]) -> None:
    """A gratuitous ARP / unsolicited neighbour advertisement for each of ``addresses`` on ``ifname``."""
    mac = link_up(ifname)
    for address in addresses:
        if isinstance(address, IPv4Address):
            with _open(ifname, ETH_P_ARP) as sock:
                sock.send(gratuitous_arp(mac, address))
        else:
            with _open(ifname, ETH_P_IPV6) as sock:
                sock.send(unsolicited_advertisement(mac, address))
