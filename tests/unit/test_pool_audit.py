"""The audit the e2e tests trust: each kind of inconsistency between pool records, pods and endpoints is reported.

Pure (no control plane): the inputs are API objects as the server returns them.
"""

from __future__ import annotations

from typing import Any

import orjson

from spiderpool.testbed.pool_audit import audit_pools


def pod(name: str, uid: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid}}


def pool(name: str, records: dict[str, tuple[str, str]], *, count: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"allocatedIPCount": len(records) if count is None else count}
    if records:
        body = {ip: {"pod": owner, "podUid": uid} for ip, (owner, uid) in records.items()}
        status["allocatedIPs"] = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
    return {"metadata": {"name": name}, "status": status}


def endpoint(name: str, uid: str, nics: list[dict[str, Any]], namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "status": {"current": {"uid": uid, "ips": nics}}}


def v4(ip: str, pool_name: str, interface: str = "eth0") -> dict[str, Any]:
    return {"interface": interface, "ipv4": f"{ip}/24", "ipv4Pool": pool_name}


def test_consistent_state_is_clean() -> None:
    """A01: records, live pods and endpoints that agree: clean, counted, addresses found by pod UID."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-a"), "10.0.0.2": ("ns/b", "u-b")})]
    endpoints = [endpoint("a", "u-a", [v4("10.0.0.1", "p")]), endpoint("b", "u-b", [v4("10.0.0.2", "p")])]
    verdict = audit_pools(pools, pods=[pod("a", "u-a"), pod("b", "u-b")], endpoints=endpoints)
    assert verdict.clean, verdict.describe()
    assert verdict.record_count() == 2
    assert verdict.addresses_of("u-b") == ["10.0.0.2"]
    assert verdict.describe() == "clean"


def test_record_of_a_gone_or_replaced_pod_is_a_leak() -> None:
    """A02: a record whose pod is gone, or re-created with a new UID, is a leak."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-old"), "10.0.0.2": ("ns/gone", "u-gone")})]
    verdict = audit_pools(pools, pods=[pod("a", "u-new")], endpoints=[], check_endpoints=False)
    problems = sorted(finding.problem for finding in verdict.findings)
    assert problems == ["leaked: no live pod ns/a with UID u-old", "leaked: no live pod ns/gone with UID u-gone"]


def test_two_records_for_one_pod_in_a_pool_are_duplicates() -> None:
    """A03: two records of one pod in a pool are duplicates, unless the pod may hold that many."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-a"), "10.0.0.7": ("ns/a", "u-a")})]
    verdict = audit_pools(pools, pods=[pod("a", "u-a")], endpoints=[], check_endpoints=False)
    assert [str(finding) for finding in verdict.findings] == [
        "p 10.0.0.1,10.0.0.7 (u-a): duplicated: 2 records for one pod"
    ]
    assert audit_pools(pools, pods=[pod("a", "u-a")], endpoints=[], check_endpoints=False, per_pod=2).clean


def test_count_that_disagrees_with_the_records_is_reported() -> None:
    """A04: an ``allocatedIPCount`` that disagrees with the records is reported."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-a")}, count=2)]
    verdict = audit_pools(pools, pods=[pod("a", "u-a")], endpoints=[], check_endpoints=False)
    assert [finding.problem for finding in verdict.findings] == ["allocatedIPCount 2 but 1 records"]


def test_record_missing_from_the_endpoint_is_unindexed_and_the_reverse_dangling() -> None:
    """A05: a record missing from the pod's endpoint is unindexed; an endpoint address without a record dangles."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-a")})]
    endpoints = [endpoint("a", "u-a", [v4("10.0.0.9", "p")])]
    verdict = audit_pools(pools, pods=[pod("a", "u-a")], endpoints=endpoints)
    assert sorted(str(finding) for finding in verdict.findings) == [
        "p 10.0.0.1 (ns/a): unindexed: not in the pod's SpiderEndpoint",
        "p 10.0.0.9 (ns/a): dangling: endpoint names an address its pod does not hold",
    ]


def test_endpoint_addresses_of_pools_outside_the_audit_are_ignored() -> None:
    """A06: endpoint addresses of pools outside the audit are ignored."""
    pools = [pool("p", {"10.0.0.1": ("ns/a", "u-a")})]
    nics = [v4("10.0.0.1", "p"), v4("10.1.0.1", "elsewhere", interface="net1")]
    assert audit_pools(pools, pods=[pod("a", "u-a")], endpoints=[endpoint("a", "u-a", nics)]).clean
