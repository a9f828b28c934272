"""Cross-checking pool records, live pods and SpiderEndpoints: the "no duplicate, no leak" verdict of a run.

Rules (design.md: the pool status is the truth, the endpoint an index rebuilt from it):
- every record names a live pod by UID and by ``namespace/name`` (else: leaked);
- a pod holds at most ``per_pod`` records in one pool (else: duplicated; an address can only be in one record, the
  status being a map);
- ``status.allocatedIPCount`` equals the number of records (else: miscounted);
- every record's address is listed in its pod's SpiderEndpoint under that pool, with the pod's UID (else: unindexed);
- every endpoint address points back at a record of its pod in the pool it names (else: dangling).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any

from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips


@dataclass(frozen=True, slots=True)
class Finding:
    pool: str
    ip: str
    pod: str
    problem: str

    def __str__(self) -> str:
        return f"{self.pool} {self.ip} ({self.pod}): {self.problem}"


@dataclass(frozen=True, slots=True)
class PoolAudit:
    """The verdict; ``records`` is every pool's ``ip -> record`` as read."""

    records: Mapping[str, Mapping[str, PoolIPAllocation]]
    findings: tuple[Finding, ...] = field(default=())

    @property
    def clean(self) -> bool:
        return not self.findings

    def addresses_of(self, pod_uid: str) -> list[str]:
        return sorted(ip for records in self.records.values() for ip, r in records.items() if r.pod_uid == pod_uid)

    def record_count(self) -> int:
        return sum(len(records) for records in self.records.values())

    def describe(self, limit: int = 20) -> str:
        lines = [str(finding) for finding in self.findings[:limit]]
        more = len(self.findings) - limit
        return "\n".join(lines + ([f"... and {more} more"] if more > 0 else [])) or "clean"


def _endpoint_index(endpoints: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, set[tuple[str, str]]]]:
    """``namespace/name -> (uid, {(pool, ip)})`` from each endpoint's ``status.current``."""
    index: dict[str, tuple[str, set[tuple[str, str]]]] = {}
    for endpoint in endpoints:
        meta = endpoint["metadata"]
        current = endpoint.get("status", {}).get("current", {})
        held: set[tuple[str, str]] = set()
        for nic in current.get("ips") or []:
            for family in ("ipv4", "ipv6"):
                if nic.get(family) and nic.get(f"{family}Pool"):
                    held.add((nic[f"{family}Pool"], str(ip_interface(nic[family]).ip)))
        index[f"{meta['namespace']}/{meta['name']}"] = (str(current.get("uid", "")), held)
    return index


def _pool_findings(
    name: str, records: Mapping[str, PoolIPAllocation], status: Mapping[str, Any], live: Mapping[str, str], per_pod: int
) -> list[Finding]:
    findings = []
    count = status.get("allocatedIPCount", 0)
    if count != len(records):
        findings.append(Finding(name, "*", "*", f"allocatedIPCount {count} but {len(records)} records"))
    by_uid: dict[str, list[str]] = defaultdict(list)
    for ip, record in records.items():
        by_uid[record.pod_uid].append(ip)
        if live.get(record.pod_uid) != record.pod:
            problem = f"leaked: no live pod {record.pod} with UID {record.pod_uid}"
            findings.append(Finding(name, ip, record.pod, problem))
    for uid, ips in by_uid.items():
        if len(ips) > per_pod:
            findings.append(Finding(name, ",".join(sorted(ips)), uid, f"duplicated: {len(ips)} records for one pod"))
    return findings


def audit_pools(
    pools: Iterable[Mapping[str, Any]],
    *,
    pods: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Mapping[str, Any]],
    per_pod: int = 1,
    check_endpoints: bool = True,
) -> PoolAudit:
    """Audit ``pools`` against the live ``pods`` and the ``endpoints`` (API objects as read)."""
    live = {pod["metadata"]["uid"]: f"{pod['metadata']['namespace']}/{pod['metadata']['name']}" for pod in pods}
    index = _endpoint_index(endpoints)
    all_records: dict[str, dict[str, PoolIPAllocation]] = {}
    findings: list[Finding] = []
    for pool in pools:
        name, status = pool["metadata"]["name"], pool.get("status", {})
        records = decode_allocated_ips(status.get("allocatedIPs"))
        all_records[name] = records
        findings += _pool_findings(name, records, status, live, per_pod)
        if check_endpoints:
            findings += _unindexed(name, records, index)
    if check_endpoints:
        findings += _dangling(all_records, index)
    return PoolAudit(records=all_records, findings=tuple(findings))


def _unindexed(
    pool: str, records: Mapping[str, PoolIPAllocation], index: Mapping[str, tuple[str, set[tuple[str, str]]]]
) -> list[Finding]:
    findings = []
    for ip, record in records.items():
        uid, held = index.get(record.pod, ("", set()))
        if uid != record.pod_uid or (pool, ip) not in held:
            findings.append(Finding(pool, ip, record.pod, "unindexed: not in the pod's SpiderEndpoint"))
    return findings


def _dangling(
    records: Mapping[str, Mapping[str, PoolIPAllocation]], index: Mapping[str, tuple[str, set[tuple[str, str]]]]
) -> list[Finding]:
    findings = []
    for pod, (uid, held) in index.items():
        for pool, ip in sorted(held):
            if pool not in records:
                continue  # a pool outside this audit
            record = records[pool].get(ip)
            if record is None or record.pod_uid != uid:
                findings.append(Finding(pool, ip, pod, "dangling: endpoint names an address its pod does not hold"))
    return findings
