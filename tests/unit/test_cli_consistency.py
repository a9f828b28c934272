"""spiderpoolctl check (pure): leaked records, count drift, records and endpoints that disagree."""

from __future__ import annotations

from typing import Any

from spiderpool.cli.consistency import Finding, bare_address, check_consistency
from spiderpool.core.allocations import PoolIPAllocation, encode_allocated_ips


def pool(name: str, records: dict[str, tuple[str, str]], *, total: int | None = 8, count: int | None = None,
         raw: str | None = None) -> dict[str, Any]:
    encoded = encode_allocated_ips({ip: PoolIPAllocation(pod, uid) for ip, (pod, uid) in records.items()})
    status: dict[str, Any] = {"allocatedIPCount": len(records) if count is None else count, "totalIPCount": total}
    if raw is not None or encoded is not None:
        status["allocatedIPs"] = raw if raw is not None else encoded
    spec = {"ipVersion": 4, "subnet": "10.77.0.0/24", "ips": ["10.77.0.1-10.77.0.8"]}
    return {"metadata": {"name": name}, "spec": spec, "status": status}


def pod(ns_name: str, uid: str) -> dict[str, Any]:
    namespace, name = ns_name.split("/")
    return {"metadata": {"namespace": namespace, "name": name, "uid": uid}, "status": {"phase": "Running"}}


def endpoint(ns_name: str, uid: str, *entries: tuple[str, str, str]) -> dict[str, Any]:
    namespace, name = ns_name.split("/")
    ips = [{"interface": nic, "ipv4": f"{ip}/24", "ipv4Pool": pool_name} for nic, ip, pool_name in entries]
    return {"metadata": {"namespace": namespace, "name": name},
            "status": {"current": {"uid": uid, "node": "n1", "ips": ips}}}


def pods_of(*items: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(item["metadata"]["namespace"], item["metadata"]["name"]): item for item in items}


def kinds(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return [(finding.kind, finding.pool, finding.ip) for finding in findings]


def test_a_consistent_state_has_no_findings() -> None:
    """CLC01: A consistent state has no findings."""
    pools = [pool("p", {"10.77.0.1": ("ns/a", "u1")})]
    endpoints = [endpoint("ns/a", "u1", ("eth0", "10.77.0.1", "p"))]
    assert check_consistency(pools, endpoints, pods_of(pod("ns/a", "u1"))) == []


def test_records_of_gone_pods_and_of_other_uids_are_leaks_that_say_why() -> None:
    """CLC02: Records of gone pods and of other uids are leaks that say why."""
    pools = [pool("p", {"10.77.0.1": ("ns/gone", "u0"), "10.77.0.2": ("ns/b", "old")})]
    findings = check_consistency(pools, [], pods_of(pod("ns/b", "new")))
    assert kinds(findings) == [("LeakedRecord", "p", "10.77.0.1"), ("LeakedRecord", "p", "10.77.0.2")]
    assert "pod ns/gone (UID u0) is gone" in findings[0].detail
    assert "record names UID old, pod ns/b now has UID new" in findings[1].detail


def test_count_drift_names_the_stored_and_the_true_figures() -> None:
    """CLC03: Count drift names the stored and the true figures."""
    findings = check_consistency([pool("p", {}, total=5, count=3)], [], {})
    assert kinds(findings) == [("AllocatedCountDrift", "p", None), ("TotalCountDrift", "p", None)]
    assert "allocatedIPCount is 3 but status.allocatedIPs holds 0 records" in findings[0].detail
    assert "totalIPCount is 5 but |spec.ips - spec.excludeIPs| is 8" in findings[1].detail


def test_a_live_pods_record_missing_from_its_endpoint_and_the_reverse() -> None:
    """CLC04: A live pods record missing from its endpoint and the reverse."""
    pools = [pool("p", {"10.77.0.1": ("ns/a", "u1")})]
    endpoints = [endpoint("ns/a", "u1", ("net1", "10.77.0.3", "p"))]
    findings = check_consistency(pools, endpoints, pods_of(pod("ns/a", "u1")))
    assert kinds(findings) == [("RecordWithoutEndpoint", "p", "10.77.0.1"), ("EndpointWithoutRecord", "p", "10.77.0.3")]
    assert findings[1].detail == "net1 lists 10.77.0.3, pool p has no record of it"


def test_an_endpoint_naming_a_missing_pool_is_reported() -> None:
    """CLC05: An endpoint naming a missing pool is reported."""
    findings = check_consistency([], [endpoint("ns/a", "u1", ("eth0", "10.77.0.1", "nope"))], {})
    assert kinds(findings) == [("EndpointWithoutRecord", "nope", "10.77.0.1")]
    assert "pool nope, which does not exist" in findings[0].detail


def test_malformed_records_are_reported_and_the_pool_is_not_judged_further() -> None:
    """CLC06: Malformed records are reported and the pool is not judged further."""
    findings = check_consistency([pool("p", {}, raw="{not json", count=9)],
                                 [endpoint("ns/a", "u1", ("eth0", "10.77.0.1", "p"))], {})
    assert kinds(findings) == [("MalformedRecords", "p", None)]
    assert "not valid JSON" in findings[0].detail


def test_endpoint_addresses_are_compared_in_canonical_form() -> None:
    """CLC07: Endpoint addresses are compared in canonical form."""
    assert bare_address("fd00::0:1/64") == "fd00::1"
    assert bare_address("10.0.0.5") == "10.0.0.5"
