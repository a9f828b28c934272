"""Ethernet frames of IP conflict and gateway detection: ARP (IPv4) and NDP (IPv6), built and parsed (pure).

The agent sends these on a raw ``AF_PACKET`` socket inside the pod's network namespace, before the pod's address is
configured there (IPAM runs before the main plugin sets the address), so every frame is complete: Ethernet header,
and for NDP the IPv6 header and the ICMPv6 checksum over its pseudo-header.

- conflict, IPv4: an ARP probe (RFC 5227: sender address 0.0.0.0, so no host learns the pod's address from it);
- conflict, IPv6: a duplicate address detection solicitation (RFC 4862: source ``::``, no link-layer option), which
  the owner of the address answers with an advertisement to all nodes;
- gateway: an ARP request / neighbour solicitation from the pod's own address, answered by the gateway;
- after success: a gratuitous ARP (sender = target = the address) / an unsolicited advertisement (override flag).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Final

ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
BROADCAST: Final = b"\xff" * 6
_ANY4: Final = IPv4Address("0.0.0.0")
_ANY6: Final = IPv6Address("::")
_ALL_NODES: Final = IPv6Address("ff02::1")
_ICMPV6: Final = 58
_NEIGHBOR_SOLICITATION: Final = 135
_NEIGHBOR_ADVERTISEMENT: Final = 136
_OPT_SOURCE_LL: Final = 1
_OPT_TARGET_LL: Final = 2
_NA_OVERRIDE: Final = 0x20000000
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2


def format_mac(mac: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in mac)


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"expected a 6-byte MAC address, got {len(mac)} bytes")


def _ethernet(destination: bytes, source: bytes, ethertype: int) -> bytes:
    _check_mac(source)
    return destination + source + struct.pack("!H", ethertype)


# ---------------------------------------------------------------------------------------------------------- ARP

def arp_request(mac: bytes, *, sender: IPv4Address, target: IPv4Address) -> bytes:
    """A broadcast ARP request of ``mac`` asking who has ``target``, from ``sender`` (0.0.0.0 for a probe)."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST) + mac + sender.packed + b"\x00" * 6 + target.packed
    return _ethernet(BROADCAST, mac, ETH_P_ARP) + body


def arp_probe(mac: bytes, address: IPv4Address) -> bytes:
    """RFC 5227's probe: does anyone hold ``address``? (sender 0.0.0.0: no cache learns anything from it)."""
    return arp_request(mac, sender=_ANY4, target=address)


def gratuitous_arp(mac: bytes, address: IPv4Address) -> bytes:
    """An announcement of ``address`` at ``mac`` (sender = target), as upstream sends after a successful ADD."""
    return arp_request(mac, sender=address, target=address)


@dataclass(frozen=True, slots=True)
class ArpPacket:
    operation: int
    sender_mac: bytes
    sender_ip: IPv4Address
    target_ip: IPv4Address


def parse_arp(frame: bytes) -> ArpPacket | None:
    """The ARP packet of an Ethernet frame, or None when it is not an Ethernet/IPv4 ARP packet."""
    if len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
        return None
    hardware, protocol, hlen, plen, operation = struct.unpack_from("!HHBBH", frame, 14)
    if (hardware, protocol, hlen, plen) != (1, 0x0800, 6, 4):
        return None
    return ArpPacket(operation=operation, sender_mac=frame[22:28], sender_ip=IPv4Address(frame[28:32]),
                     target_ip=IPv4Address(frame[38:42]))


# ---------------------------------------------------------------------------------------------------------- NDP

def solicited_node(address: IPv6Address) -> IPv6Address:
    """The solicited-node multicast group of ``address`` (ff02::1:ffXX:XXXX)."""
    return IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + address.packed[13:])


def _multicast_mac(group: IPv6Address) -> bytes:
    return b"\x33\x33" + group.packed[12:]


def icmpv6_checksum(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """The ICMPv6 checksum of ``message`` (its checksum field zero) over RFC 8200's pseudo-header."""
    data = source.packed + destination.packed + struct.pack("!I3xB", len(message), _ICMPV6) + message
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv6_frame(mac: bytes, source: IPv6Address, destination: IPv6Address, icmp: bytes) -> bytes:
    checksum = icmpv6_checksum(source, destination, icmp)
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    header = struct.pack("!IHBB", 6 << 28, len(icmp), _ICMPV6, 255) + source.packed + destination.packed
    return _ethernet(_multicast_mac(destination), mac, ETH_P_IPV6) + header + icmp


def neighbor_solicitation(mac: bytes, *, source: IPv6Address | None, target: IPv6Address) -> bytes:
    """A solicitation for ``target`` to its solicited-node group; ``source`` None: duplicate address detection
    (source ``::`` and, as RFC 4861 requires then, no source link-layer option)."""
    icmp = struct.pack("!BBHI", _NEIGHBOR_SOLICITATION, 0, 0, 0) + target.packed
    if source is not None:
        icmp += struct.pack("!BB", _OPT_SOURCE_LL, 1) + mac
    return _ipv6_frame(mac, source or _ANY6, solicited_node(target), icmp)


def unsolicited_advertisement(mac: bytes, address: IPv6Address) -> bytes:
    """An unsolicited advertisement of ``address`` at ``mac`` to all nodes, override set (RFC 4861 7.2.6)."""
    icmp = (struct.pack("!BBHI", _NEIGHBOR_ADVERTISEMENT, 0, 0, _NA_OVERRIDE) + address.packed
            + struct.pack("!BB", _OPT_TARGET_LL, 1) + mac)
    return _ipv6_frame(mac, address, _ALL_NODES, icmp)


@dataclass(frozen=True, slots=True)
class NeighborAdvertisement:
    sender_mac: bytes  # the target link-layer option's address, else the Ethernet source
    target: IPv6Address


def _target_link_layer(options: bytes) -> bytes | None:
    offset = 0
    while offset + 2 <= len(options):
        kind, length = options[offset], options[offset + 1] * 8
        if length == 0 or offset + length > len(options):
            return None
        if kind == _OPT_TARGET_LL and length >= 8:
            return options[offset + 2:offset + 8]
        offset += length
    return None


def parse_advertisement(frame: bytes) -> NeighborAdvertisement | None:
    """The neighbour advertisement of an Ethernet frame, or None (not IPv6/ICMPv6/NA, or hop limit not 255)."""
    if len(frame) < 78 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IPV6:
        return None
    payload_length, next_header, hop_limit = struct.unpack_from("!HBB", frame, 18)
    if next_header != _ICMPV6 or hop_limit != 255 or frame[54] != _NEIGHBOR_ADVERTISEMENT or frame[55] != 0:
        return None
    end = min(len(frame), 54 + payload_length)
    mac = _target_link_layer(frame[78:end]) or frame[6:12]
    return NeighborAdvertisement(sender_mac=mac, target=IPv6Address(frame[62:78]))


# ---------------------------------------------------------------------------------------------------------- answers

def conflict_answer(frame: bytes, *, own_mac: bytes, address: IPv4Address | IPv6Address) -> bytes | None:
    """The MAC of another host that ``frame`` shows holding ``address`` (an ARP packet sent from it, an
    advertisement for it), or None."""
    if isinstance(address, IPv4Address):
        arp = parse_arp(frame)
        if arp is not None and arp.sender_ip == address and arp.sender_mac != own_mac:
            return arp.sender_mac
        return None
    advertisement = parse_advertisement(frame)
    if advertisement is not None and advertisement.target == address and advertisement.sender_mac != own_mac:
        return advertisement.sender_mac
    return None


def gateway_answer(frame: bytes, *, gateway: IPv4Address | IPv6Address) -> bytes | None:
    """The gateway's MAC when ``frame`` is its answer (an ARP reply from it, an advertisement for it), or None."""
    if isinstance(gateway, IPv4Address):
        arp = parse_arp(frame)
        return arp.sender_mac if arp is not None and arp.operation == ARP_REPLY and arp.sender_ip == gateway else None
    advertisement = parse_advertisement(frame)
    return advertisement.sender_mac if advertisement is not None and advertisement.target == gateway else None
