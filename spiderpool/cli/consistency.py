"""``spiderpoolctl check``: what disagrees between pool records, SpiderEndpoints and pods.  Pure.

Findings, each naming the pool, address and pod it is about:

- ``MalformedRecords``: a pool's ``status.allocatedIPs`` cannot be decoded (nothing else is judged for that pool);
- ``AllocatedCountDrift`` / ``TotalCountDrift``: ``status.allocatedIPCount`` is not the number of records, or
  ``status.totalIPCount`` is not ``|spec.ips - spec.excludeIPs|``;
- ``LeakedRecord``: a record whose pod is gone, or exists under another UID;
- ``RecordWithoutEndpoint``: a live pod's record that its SpiderEndpoint does not list, or the record of a pod that
  needs an endpoint and has none (a StatefulSet or kubevirt pod, or an ``ipam.spidernet.io/ippools`` pod; other pods
  go without one under ``enableStatelessSpiderEndpoint: false``, their pool records being the truth);
- ``EndpointWithoutRecord``: an address a SpiderEndpoint lists that no record of that pool gives to its pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spiderpool.core.addressing import format_ip, parse_ip_text
from spiderpool.core.allocations import AllocationsFormatError, PoolIPAllocation, decode_allocated_ips
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.gc_facts import endpoint_uid
from spiderpool.core.specs import parse_ippool_spec

PodKey = tuple[str, str]  # (namespace, name)
_ENDPOINT_CONTROLLERS = frozenset({"StatefulSet", "VirtualMachineInstance"})
_IPPOOLS_ANNOTATION = "ipam.spidernet.io/ippools"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    pool: str | None
    ip: str | None
    pod: str | None
    detail: str

    def as_document(self) -> dict[str, object]:
        return {"kind": self.kind, "pool": self.pool, "ip": self.ip, "pod": self.pod, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class EndpointAddress:
    """One address a SpiderEndpoint lists: its pool, bare canonical address and interface."""

    pool: str
    ip: str
    interface: str


def bare_address(text: str) -> str:
    """``10.0.0.5/24`` or ``fd00::0:1`` as records key them (``10.0.0.5``, ``fd00::1``); ValueError if not an IP."""
    version, value = parse_ip_text(text.partition("/")[0])
    return format_ip(value, version=version)


def _listed_address(text: str) -> str:
    try:
        return bare_address(text)
    except ValueError:
        return text  # kept as written: no record can match it, so it is reported, not dropped


def endpoint_addresses(endpoint: Mapping[str, Any]) -> list[EndpointAddress]:
    found = []
    for entry in ((endpoint.get("status") or {}).get("current") or {}).get("ips") or ():
        for family in ("ipv4", "ipv6"):
            address, pool = entry.get(family), entry.get(f"{family}Pool")
            if address and pool:
                found.append(EndpointAddress(str(pool), _listed_address(str(address)), str(entry.get("interface", ""))))
    return found


def pod_key(obj: Mapping[str, Any]) -> PodKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def pool_records(pool: Mapping[str, Any]) -> dict[str, PoolIPAllocation]:
    """The pool's records; AllocationsFormatError when they cannot be read."""
    return decode_allocated_ips((pool.get("status") or {}).get("allocatedIPs"))


def needs_endpoint(pod: Mapping[str, Any]) -> bool:
    """Whether the agent writes the pod's SpiderEndpoint in every mode (the lean mode's exceptions)."""
    meta = pod.get("metadata") or {}
    if _IPPOOLS_ANNOTATION in (meta.get("annotations") or {}):
        return True
    return any(ref.get("controller") and ref.get("kind") in _ENDPOINT_CONTROLLERS
               for ref in meta.get("ownerReferences") or ())


def count_findings(pool: Mapping[str, Any], records: Mapping[str, PoolIPAllocation]) -> list[Finding]:
    name, status = str(pool["metadata"]["name"]), pool.get("status") or {}
    findings = []
    stored = status.get("allocatedIPCount")
    if (stored or 0) != len(records):
        detail = f"status.allocatedIPCount is {stored!r} but status.allocatedIPs holds {len(records)} records"
        findings.append(Finding("AllocatedCountDrift", name, None, None, detail))
    try:
        expected = parse_ippool_spec(pool.get("spec")).total_ip_count
    except (InvalidSpec, ValueError) as error:
        return [*findings, Finding("InvalidSpec", name, None, None, str(error))]
    total = status.get("totalIPCount")
    if total != expected:
        detail = f"status.totalIPCount is {total!r} but |spec.ips - spec.excludeIPs| is {expected}"
        findings.append(Finding("TotalCountDrift", name, None, None, detail))
    return findings


def record_findings(pool: str, ip: str, record: PoolIPAllocation, *, pods: Mapping[PodKey, Mapping[str, Any]],
                    listed: Mapping[PodKey, set[tuple[str, str]]], endpoint_uids: Mapping[PodKey, str]
                    ) -> list[Finding]:
    key = (record.namespace, record.name)
    pod = pods.get(key)
    if pod is None:
        return [Finding("LeakedRecord", pool, ip, record.pod, f"pod {record.pod} (UID {record.pod_uid}) is gone")]
    uid = str(pod["metadata"].get("uid", ""))
    if uid != record.pod_uid:
        detail = f"record names UID {record.pod_uid}, pod {record.pod} now has UID {uid}"
        return [Finding("LeakedRecord", pool, ip, record.pod, detail)]
    if key not in endpoint_uids:
        if not needs_endpoint(pod):
            return []
        return [Finding("RecordWithoutEndpoint", pool, ip, record.pod, f"pod {record.pod} has no SpiderEndpoint")]
    if endpoint_uids[key] != uid or (pool, ip) not in listed.get(key, set()):
        detail = f"SpiderEndpoint {record.pod} (UID {endpoint_uids[key] or '<none>'}) does not list {ip} of {pool}"
        return [Finding("RecordWithoutEndpoint", pool, ip, record.pod, detail)]
    return []


def endpoint_findings(endpoint: Mapping[str, Any], records_by_pool: Mapping[str, Mapping[str, PoolIPAllocation]],
                      unreadable: set[str]) -> list[Finding]:
    namespace, name = pod_key(endpoint)
    uid, pod = endpoint_uid(endpoint), f"{namespace}/{name}"
    findings = []
    for address in endpoint_addresses(endpoint):
        if address.pool in unreadable:
            continue
        records = records_by_pool.get(address.pool)
        if records is None:
            detail = f"{address.interface or 'NIC'} lists {address.ip} of pool {address.pool}, which does not exist"
        elif (record := records.get(address.ip)) is None:
            detail = f"{address.interface or 'NIC'} lists {address.ip}, pool {address.pool} has no record of it"
        elif record.pod_uid != uid or record.pod != pod:
            detail = f"{address.ip} is recorded for {record.pod} (UID {record.pod_uid}), endpoint has UID {uid}"
        else:
            continue
        findings.append(Finding("EndpointWithoutRecord", address.pool, address.ip, pod, detail))
    return findings


def check_consistency(pools: Sequence[Mapping[str, Any]], endpoints: Sequence[Mapping[str, Any]],
                      pods: Mapping[PodKey, Mapping[str, Any]]) -> list[Finding]:
    """Every finding, pools in name order, records in address order, then endpoints."""
    listed: dict[PodKey, set[tuple[str, str]]] = {}
    endpoint_uids: dict[PodKey, str] = {}
    for endpoint in endpoints:
        key = pod_key(endpoint)
        endpoint_uids[key] = endpoint_uid(endpoint)
        listed[key] = {(address.pool, address.ip) for address in endpoint_addresses(endpoint)}
    findings: list[Finding] = []
    records_by_pool: dict[str, dict[str, PoolIPAllocation]] = {}
    unreadable: set[str] = set()
    for pool in sorted(pools, key=lambda item: str(item["metadata"]["name"])):
        name = str(pool["metadata"]["name"])
        try:
            records = records_by_pool[name] = pool_records(pool)
        except AllocationsFormatError as error:
            unreadable.add(name)
            findings.append(Finding("MalformedRecords", name, None, None, str(error)))
            continue
        findings.extend(count_findings(pool, records))
        for ip in sorted(records, key=lambda text: parse_ip_text(text)):
            findings.extend(record_findings(name, ip, records[ip], pods=pods, listed=listed,
                                            endpoint_uids=endpoint_uids))
    for endpoint in sorted(endpoints, key=pod_key):
        findings.extend(endpoint_findings(endpoint, records_by_pool, unreadable))
    return findings
