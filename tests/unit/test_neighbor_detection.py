"""IP conflict and gateway detection, the pure parts: ARP/NDP frames built and parsed, which answers count, the
quarantine of conflicting addresses in the pool book, the settings and what gets probed."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from spiderpool.agent.conflicts import ConflictQuarantine
from spiderpool.agent.detection import Detection
from spiderpool.agent.pool_book import PoolBook
from spiderpool.agent.upstream_api import with_detection_flags
from spiderpool.cluster_config import ClusterSettings, ConfigError, parse_conf_yml
from spiderpool.core.neighbor_frames import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_P_ARP,
    ETH_P_IPV6,
    arp_probe,
    arp_request,
    conflict_answer,
    gateway_answer,
    gratuitous_arp,
    icmpv6_checksum,
    neighbor_solicitation,
    parse_advertisement,
    parse_arp,
    solicited_node,
    unsolicited_advertisement,
)
from spiderpool.core.result import AssignedIP
from spiderpool.k8s.watch_cache import WatchEvent

OURS = bytes.fromhex("0a0000000001")
THEIRS = bytes.fromhex("0a00000000ff")
V4 = IPv4Address("192.0.2.10")
V6 = IPv6Address("2001:db8::10")


def add_pool(book: PoolBook, name: str, ips: list[str]) -> None:
    body: Any = {"metadata": {"name": name}, "spec": {"subnet": "10.0.0.0/24", "ips": ips}}
    book.on_pool_event(WatchEvent("ADDED", body, None))


def arp_reply(sender_mac: bytes, sender: IPv4Address, target: IPv4Address) -> bytes:
    frame = bytearray(arp_request(sender_mac, sender=sender, target=target))
    frame[20:22] = struct.pack("!H", ARP_REPLY)
    return bytes(frame)


def checksum_holds(frame: bytes) -> bool:
    """RFC 8200: the checksum over the pseudo-header and the message, checksum included, is 0 (one's complement)."""
    source, destination = IPv6Address(frame[22:38]), IPv6Address(frame[38:54])
    return icmpv6_checksum(source, destination, frame[54:]) == 0


def test_nd01_arp_probe_asks_from_no_address() -> None:
    """ND01: an ARP probe is a broadcast request from our MAC with sender address 0.0.0.0 (RFC 5227) for the
    address; parsing it gives the fields back."""
    frame = arp_probe(OURS, V4)
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12] == OURS
    assert struct.unpack_from("!H", frame, 12)[0] == ETH_P_ARP
    assert len(frame) == 42
    parsed = parse_arp(frame)
    assert parsed is not None
    assert (parsed.operation, parsed.sender_mac, parsed.sender_ip, parsed.target_ip) == (
        ARP_REQUEST, OURS, IPv4Address("0.0.0.0"), V4)


def test_nd02_gratuitous_arp_announces_the_address() -> None:
    """ND02: a gratuitous ARP names the address as both sender and target, at our MAC."""
    parsed = parse_arp(gratuitous_arp(OURS, V4))
    assert parsed is not None
    assert (parsed.sender_mac, parsed.sender_ip, parsed.target_ip) == (OURS, V4, V4)


def test_nd03_duplicate_address_solicitation() -> None:
    """ND03: the IPv6 conflict probe is a solicitation from :: to the target's solicited-node group (Ethernet
    33:33:ff:..), hop limit 255, no link-layer option, with a valid ICMPv6 checksum."""
    frame = neighbor_solicitation(OURS, source=None, target=V6)
    assert solicited_node(V6) == IPv6Address("ff02::1:ff00:10")
    assert frame[:6] == bytes.fromhex("3333ff000010")
    assert frame[6:12] == OURS
    assert struct.unpack_from("!H", frame, 12)[0] == ETH_P_IPV6
    assert frame[20:22] == bytes([58, 255])  # next header ICMPv6, hop limit 255
    assert IPv6Address(frame[22:38]) == IPv6Address("::")
    assert IPv6Address(frame[38:54]) == solicited_node(V6)
    assert frame[54] == 135
    assert IPv6Address(frame[62:78]) == V6
    assert len(frame) == 78
    assert struct.unpack_from("!H", frame, 18)[0] == 24
    assert checksum_holds(frame)


def test_nd04_gateway_solicitation_carries_our_link_layer_address() -> None:
    """ND04: the gateway probe is a solicitation from the pod's address with our MAC as source link-layer
    option, so the gateway can answer before the address is configured."""
    gateway = IPv6Address("2001:db8::1")
    frame = neighbor_solicitation(OURS, source=V6, target=gateway)
    assert IPv6Address(frame[22:38]) == V6
    assert frame[78:80] == bytes([1, 1])
    assert frame[80:86] == OURS
    assert checksum_holds(frame)


def test_nd05_unsolicited_advertisement_round_trip() -> None:
    """ND05: an unsolicited advertisement goes to all nodes with the override flag and our MAC as target
    link-layer option; parsing it gives the target and the MAC."""
    frame = unsolicited_advertisement(OURS, V6)
    assert frame[:6] == bytes.fromhex("333300000001")
    assert IPv6Address(frame[38:54]) == IPv6Address("ff02::1")
    assert frame[54] == 136
    assert struct.unpack_from("!I", frame, 58)[0] == 0x20000000
    assert checksum_holds(frame)
    parsed = parse_advertisement(frame)
    assert parsed is not None
    assert (parsed.target, parsed.sender_mac) == (V6, OURS)


def test_nd06_a_conflict_is_another_mac_speaking_for_the_address() -> None:
    """ND06: an ARP packet sent for the address, or an advertisement of it, from another MAC is a conflict (its MAC);
    our own frames, other addresses and solicitations are not."""
    assert conflict_answer(arp_reply(THEIRS, V4, IPv4Address("0.0.0.0")), own_mac=OURS, address=V4) == THEIRS
    assert conflict_answer(gratuitous_arp(THEIRS, V4), own_mac=OURS, address=V4) == THEIRS
    assert conflict_answer(gratuitous_arp(OURS, V4), own_mac=OURS, address=V4) is None
    assert conflict_answer(arp_reply(THEIRS, IPv4Address("192.0.2.11"), V4), own_mac=OURS, address=V4) is None
    assert conflict_answer(arp_probe(THEIRS, V4), own_mac=OURS, address=V4) is None
    assert conflict_answer(unsolicited_advertisement(THEIRS, V6), own_mac=OURS, address=V6) == THEIRS
    assert conflict_answer(unsolicited_advertisement(OURS, V6), own_mac=OURS, address=V6) is None
    assert conflict_answer(neighbor_solicitation(THEIRS, source=None, target=V6), own_mac=OURS, address=V6) is None
    assert conflict_answer(unsolicited_advertisement(THEIRS, V6), own_mac=OURS, address=V4) is None


def test_nd07_a_gateway_answers_with_a_reply_or_an_advertisement() -> None:
    """ND07: the gateway is reachable on an ARP reply from its address (a request from it is no answer, as
    upstream reads it) or an advertisement of its address."""
    gateway4, gateway6 = IPv4Address("192.0.2.1"), IPv6Address("2001:db8::1")
    assert gateway_answer(arp_reply(THEIRS, gateway4, V4), gateway=gateway4) == THEIRS
    assert gateway_answer(arp_request(THEIRS, sender=gateway4, target=V4), gateway=gateway4) is None
    assert gateway_answer(arp_reply(THEIRS, V4, gateway4), gateway=gateway4) is None
    assert gateway_answer(unsolicited_advertisement(THEIRS, gateway6), gateway=gateway6) == THEIRS
    assert gateway_answer(unsolicited_advertisement(THEIRS, V6), gateway=gateway6) is None


def test_nd08_parsers_refuse_what_is_not_theirs() -> None:
    """ND08: truncated frames, other ethertypes, a hop limit other than 255 and other ICMPv6 messages parse as
    nothing, and an advertisement without a link-layer option names the Ethernet source."""
    advertisement = unsolicited_advertisement(THEIRS, V6)
    assert parse_arp(arp_probe(OURS, V4)[:41]) is None
    assert parse_arp(advertisement) is None
    assert parse_advertisement(arp_probe(OURS, V4)) is None
    assert parse_advertisement(advertisement[:77]) is None
    assert parse_advertisement(advertisement[:21] + b"\x40" + advertisement[22:]) is None
    assert parse_advertisement(neighbor_solicitation(THEIRS, source=V6, target=V6)) is None
    bare = advertisement[:18] + struct.pack("!H", 24) + advertisement[20:78]
    parsed = parse_advertisement(bare)
    assert parsed is not None
    assert parsed.sender_mac == THEIRS
    with pytest.raises(ValueError, match="6-byte MAC"):
        arp_probe(b"\x00" * 5, V4)


def test_nd09_the_book_keeps_a_conflicting_address_out_until_its_quarantine_ends() -> None:
    """ND09: an address found conflicting is not chosen again from its pool (even once its record is gone) until
    its quarantine ends."""
    now = [0.0]
    book = PoolBook()
    book.quarantine = ConflictQuarantine(clock=lambda: now[0])
    add_pool(book, "p", ["10.0.0.1-10.0.0.3"])
    assert book.choose("p", "u1") == "10.0.0.1"
    book.settle("p", "10.0.0.1", ip=None, pod="ns/u1", pod_uid="u1")  # its write failed: free again
    book.conflicted("p", "10.0.0.1")
    assert ("p", "10.0.0.1") in book.quarantine
    assert book.choose("p", "u2") == "10.0.0.2"
    assert book.choose("p", "u4") == "10.0.0.3"
    book.settle("p", "10.0.0.2", ip=None, pod="ns/u2", pod_uid="u2")
    book.settle("p", "10.0.0.3", ip=None, pod="ns/u4", pod_uid="u4")
    now[0] = 601.0
    assert book.choose("p", "u3") == "10.0.0.1"
    assert ("p", "10.0.0.1") not in book.quarantine


def test_nd10_settings_of_spiderpool_conf() -> None:
    """ND10: upstream's enableIPConflictDetection / enableGatewayDetection (default off: no detection at all) and
    our detectionTimeout (Go-style duration or seconds) / detectionRetries, with errors naming the key."""
    assert Detection.from_settings(ClusterSettings()) is None
    fields = parse_conf_yml("enableIPConflictDetection: true\ndetectionTimeout: 250ms\ndetectionRetries: 5\n")
    detection = Detection.from_settings(ClusterSettings(**fields))  # type: ignore[arg-type]
    assert detection is not None
    assert (detection.conflict, detection.gateway) == (True, False)
    assert (detection.settings.timeout, detection.settings.retries) == (0.25, 5)
    assert parse_conf_yml("detectionTimeout: 1s")["detection_timeout"] == 1.0
    assert parse_conf_yml("detectionTimeout: 0.5")["detection_timeout"] == 0.5
    for text, key in (("detectionTimeout: 0ms", "detectionTimeout"), ("detectionTimeout: fast", "detectionTimeout"),
                      ("detectionTimeout: 11s", "detectionTimeout"), ("detectionRetries: 0", "detectionRetries"),
                      ("enableGatewayDetection: yes please", "enableGatewayDetection")):
        with pytest.raises(ConfigError, match=key):
            parse_conf_yml(text)


def test_nd11_what_is_probed_of_a_nics_addresses() -> None:
    """ND11: each address is checked for conflicts when that is on, and its gateway when that is on and the pool
    has one; an address with nothing to check is left out; targets are grouped by IP version."""
    detection = Detection.from_settings(ClusterSettings(enable_gateway_detection=True))
    assert detection is not None
    ips = [AssignedIP(4, "192.0.2.10/24", "eth0", "v4", "192.0.2.1"), AssignedIP(6, "2001:db8::10/64", "eth0", "v6",
                                                                                    None)]
    targets = detection.targets(ips)
    assert list(targets) == [4]
    assert targets[4][0].address == V4
    assert targets[4][0].gateway == IPv4Address("192.0.2.1")
    assert (targets[4][0].conflict, targets[4][0].check_gateway) == (False, True)
    both = Detection.from_settings(ClusterSettings(enable_gateway_detection=True, enable_ip_conflict_detection=True))
    assert both is not None
    found = both.targets(ips)
    assert sorted(found) == [4, 6]
    assert (found[6][0].address, found[6][0].conflict, found[6][0].check_gateway) == (V6, True, False)


def test_nd12_upstream_api_answers_carry_upstreams_detection_flags() -> None:
    """ND12: upstream's ``POST /v1/ipam/ip`` answer marks each address with ``enableIPConflictDetection`` /
    ``enableGatewayDetection`` as upstream's agent does (its executable then probes itself), and leaves them out
    when off (upstream's omitempty)."""
    document = {"ips": [{"version": 4, "address": "192.0.2.10/24", "nic": "eth0", "ipPool": "v4"}], "routes": []}
    assert with_detection_flags(document, ClusterSettings()) == document
    marked = with_detection_flags(document, ClusterSettings(enable_ip_conflict_detection=True))
    assert marked["ips"] == [{**document["ips"][0], "enableIPConflictDetection": True}]
    both = with_detection_flags(document, ClusterSettings(enable_ip_conflict_detection=True,
                                                          enable_gateway_detection=True))
    assert both["ips"][0]["enableGatewayDetection"] is True
    assert both["routes"] == []
