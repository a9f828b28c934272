"""Conversions between assembled results, SpiderEndpoint entries and CNI results; pod liveness; StatefulSet ordinals."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import pytest

from spiderpool.agent.pod_state import (
    in_grace_period,
    is_valid_statefulset_pod,
    not_alive_reason,
    statefulset_ordinal,
)
from spiderpool.agent.results import assembled_from_entries, entry_holdings, ipam_result, nic_entries
from spiderpool.core.cni_types import IpConfig, Route
from spiderpool.core.result import AllocatedAddress, assemble_result
from spiderpool.core.specs import PoolView, parse_ippool_object


def view(name: str, subnet: str, gateway: str, **spec: Any) -> PoolView:
    return parse_ippool_object({"metadata": {"name": name},
                                "spec": {"subnet": subnet, "ips": [], "gateway": gateway, **spec}})


def test_entries_round_trip_and_default_routes_are_derived() -> None:
    """AR01: Entries round trip and default routes are derived."""
    v4 = view("v4", "10.1.0.0/16", "10.1.0.1", routes=[{"dst": "10.9.0.0/16", "gw": "10.1.0.254"}])
    v6 = view("v6", "fd00:1::/64", "fd00:1::1")
    net1 = view("n1", "10.2.0.0/24", "10.2.0.1")
    assembled = assemble_result([
        AllocatedAddress(nic="eth0", pool=v4, address=int(ip_address("10.1.0.5"))),
        AllocatedAddress(nic="eth0", pool=v6, address=int(ip_address("fd00:1::5"))),
        AllocatedAddress(nic="net1", pool=net1, address=int(ip_address("10.2.0.5")), clean_gateway=True),
    ])
    entries = nic_entries(assembled, clean_gateway={"eth0": False, "net1": True})
    assert entries == [
        {"interface": "eth0", "vlan": 0, "cleanGateway": False, "ipv4": "10.1.0.5/16", "ipv4Pool": "v4",
         "ipv4Gateway": "10.1.0.1", "ipv6": "fd00:1::5/64", "ipv6Pool": "v6", "ipv6Gateway": "fd00:1::1",
         "routes": [{"dst": "10.9.0.0/16", "gw": "10.1.0.254"}]},
        {"interface": "net1", "vlan": 0, "cleanGateway": True, "ipv4": "10.2.0.5/24", "ipv4Pool": "n1",
         "ipv4Gateway": "10.2.0.1"},
    ]
    again = assembled_from_entries(entries)
    assert set(again.ips) == set(assembled.ips)
    assert set(again.routes) == set(assembled.routes)
    assert ipam_result(again, "eth0").routes == (
        Route(ip_network("10.9.0.0/16"), ip_address("10.1.0.254")),
        Route(ip_network("0.0.0.0/0"), ip_address("10.1.0.1")),
        Route(ip_network("::/0"), ip_address("fd00:1::1")),
    )
    assert ipam_result(again, "net1").ips == (IpConfig(ip_interface("10.2.0.5/24"), ip_address("10.2.0.1")),)
    assert entry_holdings(entries[0]) == [("v4", "10.1.0.5"), ("v6", "fd00:1::5")]


def pod(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", **fields.pop("metadata", {})}, "spec": fields.pop("spec", {}),
            "status": fields.pop("status", {})}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        pytest.param(pod(), None, id="pending"),
        pytest.param(pod(metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}), "is terminating", id="deleting"),
        pytest.param(pod(status={"phase": "Succeeded"}, spec={"restartPolicy": "Never"}),
                     "has succeeded (restartPolicy Never)", id="job-done"),
        pytest.param(pod(status={"phase": "Succeeded"}), None, id="restarts-always"),
        pytest.param(pod(status={"phase": "Failed"}, spec={"restartPolicy": "Never"}),
                     "has failed (restartPolicy Never)", id="failed"),
        pytest.param(pod(status={"phase": "Failed", "reason": "Evicted"}), "was evicted", id="evicted"),
    ],
)
def test_pod_liveness(obj: dict[str, Any], reason: str | None) -> None:
    """AR02: Pod liveness."""
    assert not_alive_reason(obj) == reason


def statefulset(replicas: int | None, start: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    if start is not None:
        spec["ordinals"] = {"start": start}
    return {"metadata": {"name": "web"}, "spec": spec}


def test_statefulset_ordinals() -> None:
    """AR03: StatefulSet ordinals."""
    assert statefulset_ordinal("web-12", "web") == 12
    assert statefulset_ordinal("web-x", "web") is None
    assert statefulset_ordinal("webapp-1", "web") is None
    assert is_valid_statefulset_pod("web-1", statefulset(2))
    assert not is_valid_statefulset_pod("web-2", statefulset(2))
    assert is_valid_statefulset_pod("web-0", statefulset(None))
    assert is_valid_statefulset_pod("web-5", statefulset(2, start=4))
    assert not is_valid_statefulset_pod("web-3", statefulset(2, start=4))
    assert not is_valid_statefulset_pod("web-0", None)


def test_grace_period() -> None:
    """AR04: Grace period."""
    terminating = pod(metadata={"deletionTimestamp": "2026-01-01T00:00:30Z"})
    deadline = 1767225630.0  # 2026-01-01T00:00:30Z
    assert in_grace_period(terminating, now=deadline - 1)
    assert not in_grace_period(terminating, now=deadline + 1)
    assert not in_grace_period(pod(), now=deadline)
