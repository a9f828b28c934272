"""spiderpoolctl get pools/subnets (pure): total, allocated, reserved, free, default, affinity."""

from __future__ import annotations

from typing import Any

from spiderpool.cli.usage import affinity_summary, pool_usage, reserved_ranges, subnet_usage
from spiderpool.core.addressing import parse_ip_text
from spiderpool.core.allocations import PoolIPAllocation, encode_allocated_ips


def reserved(*ips: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"ips": list(ips)}}


def ippool(allocated: list[str], **spec: Any) -> dict[str, Any]:
    records = {ip: PoolIPAllocation("ns/p", f"u-{ip}") for ip in allocated}
    body = {"subnet": "10.78.0.0/24", "ips": ["10.78.0.1-10.78.0.10"], "excludeIPs": ["10.78.0.10"], **spec}
    return {"metadata": {"name": "pool"}, "spec": body, "status": {"allocatedIPs": encode_allocated_ips(records)}}


def test_free_counts_an_allocated_reserved_address_once() -> None:
    """CLU01: Free counts an allocated reserved address once."""
    ranges = reserved_ranges([reserved("10.78.0.1-10.78.0.3"), reserved("10.78.0.9", deleting=True)])
    usage = pool_usage(ippool(["10.78.0.1", "10.78.0.5"]), ranges)
    assert (usage.total, usage.allocated, usage.reserved, usage.free) == (9, 2, 3, 5)
    assert (usage.version, usage.subnet, usage.default, usage.affinity) == (4, "10.78.0.0/24", False, "-")


def test_reserved_ranges_are_per_family_and_skip_terminating_objects() -> None:
    """CLU02: Reserved ranges are per family and skip terminating objects."""
    ranges = reserved_ranges([reserved("fd00::1-fd00::2"), reserved("10.0.0.1", deleting=True)])
    assert ranges[4] == []
    assert ranges[6] == [(parse_ip_text("fd00::1")[1], parse_ip_text("fd00::2")[1])]


def test_affinity_lists_every_constraint_a_pool_has() -> None:
    """CLU03: Affinity lists every constraint a pool has."""
    spec = {"podAffinity": {"matchLabels": {"a": "b"}}, "nodeName": ["n1"], "multusName": [], "default": True}
    assert affinity_summary(spec) == "pod,nodeName"
    usage = pool_usage(ippool([], default=True, nodeName=["n1"]), {4: [], 6: []})
    assert (usage.default, usage.affinity) == (True, "nodeName")


def test_an_invalid_spec_falls_back_to_the_status_and_says_why() -> None:
    """CLU04: An invalid spec falls back to the status and says why."""
    body = {"metadata": {"name": "bad"}, "spec": {"subnet": "not-a-cidr"}, "status": {"totalIPCount": 4}}
    usage = pool_usage(body, {4: [], 6: []})
    assert usage.total == 4
    assert "invalid spec" in usage.problem
    assert "not-a-cidr" in usage.problem


def test_subnet_allocated_is_what_it_handed_to_pools() -> None:
    """CLU05: Subnet allocated is what it handed to pools."""
    subnet = {"metadata": {"name": "s"}, "spec": {"subnet": "10.79.0.0/28", "ips": ["10.79.0.1-10.79.0.14"]},
              "status": {"allocatedIPCount": 4}}
    usage = subnet_usage(subnet, reserved_ranges([reserved("10.79.0.14")]))
    assert (usage.total, usage.allocated, usage.reserved, usage.free, usage.default) == (14, 4, 1, 9, None)
