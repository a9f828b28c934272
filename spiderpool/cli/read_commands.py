"""The read-only commands: ``get pools``, ``get subnets``, ``who-has``, ``describe pod``, ``check``, ``gc --dry-run``.

Each turns a :class:`ClusterState` into a :class:`CommandView`; none of them does I/O.
"""

from __future__ import annotations

from typing import Any

from spiderpool.cli.cluster_state import ClusterState
from spiderpool.cli.consistency import bare_address, check_consistency, endpoint_addresses, pool_records
from spiderpool.cli.exit_codes import CliError, ExitCode
from spiderpool.cli.gc_preview import preview_gc
from spiderpool.cli.rendering import CommandView, Table
from spiderpool.cli.usage import pool_usage, reserved_ranges, subnet_usage
from spiderpool.core.allocations import AllocationsFormatError, PoolIPAllocation
from spiderpool.core.gc_planning import GcPolicy, Verdict

_USAGE_HEADERS = ("NAME", "VERSION", "SUBNET", "TOTAL", "ALLOCATED", "FREE", "RESERVED", "DEFAULT", "AFFINITY")


def get_pools(state: ClusterState) -> CommandView:
    reserved = reserved_ranges(state.reserved_ips)
    usages = sorted((pool_usage(pool, reserved) for pool in state.pools), key=lambda usage: usage.name)
    rows = [(u.name, u.version, u.subnet, u.total, u.allocated, u.free, u.reserved, u.default, u.affinity)
            for u in usages]
    warnings = [f"SpiderIPPool {u.name}: {u.problem}" for u in usages if u.problem]
    return CommandView([u.as_document() for u in usages], Table(_USAGE_HEADERS, rows), warnings)


def get_subnets(state: ClusterState) -> CommandView:
    reserved = reserved_ranges(state.reserved_ips)
    usages = sorted((subnet_usage(subnet, reserved) for subnet in state.subnets), key=lambda usage: usage.name)
    headers = _USAGE_HEADERS[:7]
    rows = [(u.name, u.version, u.subnet, u.total, u.allocated, u.free, u.reserved) for u in usages]
    warnings = [f"SpiderSubnet {u.name}: {u.problem}" for u in usages if u.problem]
    documents = [{key: value for key, value in u.as_document().items() if key not in ("default", "affinity")}
                 for u in usages]
    return CommandView(documents, Table(headers, rows), warnings)


def _readable_records(state: ClusterState) -> tuple[dict[str, dict[str, PoolIPAllocation]], list[str]]:
    records, warnings = {}, []
    for pool in state.pools:
        name = str(pool["metadata"]["name"])
        try:
            records[name] = pool_records(pool)
        except AllocationsFormatError as error:
            warnings.append(f"SpiderIPPool {name}: skipped: {error}")
    return records, warnings


def _nic_of(state: ClusterState, record: PoolIPAllocation, pool: str, ip: str) -> tuple[str, str]:
    """(node, interface) of a record, from the pod's SpiderEndpoint, else from the record and the pod (lean pods)."""
    endpoint = state.endpoints.get((record.namespace, record.name)) or {}
    current = (endpoint.get("status") or {}).get("current") or {}
    interface = next((a.interface for a in endpoint_addresses(endpoint) if a.pool == pool and a.ip == ip), "")
    interface = interface or record.nic
    node = str(current.get("node") or "")
    if not node:
        pod = state.pods.get((record.namespace, record.name)) or {}
        node = str((pod.get("spec") or {}).get("nodeName") or "")
    return node, interface


def who_has(state: ClusterState, ip_text: str) -> CommandView:
    try:
        ip = bare_address(ip_text)
    except ValueError:
        raise CliError(f"IP: {ip_text!r} is not an IP address", code=ExitCode.USAGE) from None
    records, warnings = _readable_records(state)
    holders: list[dict[str, Any]] = []
    for pool, held in sorted(records.items()):
        if (record := held.get(ip)) is not None:
            node, interface = _nic_of(state, record, pool, ip)
            holders.append({"ip": ip, "pool": pool, "pod": record.pod, "podUid": record.pod_uid, "node": node,
                            "interface": interface})
    if not holders:
        raise CliError(f"IP {ip}: no SpiderIPPool has a record of it", code=ExitCode.NOT_FOUND)
    headers = ("IP", "POOL", "POD", "UID", "NODE", "NIC")
    rows = [tuple(holder[key] for key in ("ip", "pool", "pod", "podUid", "node", "interface")) for holder in holders]
    return CommandView(holders, Table(headers, rows), warnings)


def describe_pod(state: ClusterState, namespace: str, name: str) -> CommandView:
    pod, endpoint = state.pods.get((namespace, name)), state.endpoints.get((namespace, name))
    records, warnings = _readable_records(state)
    held = [{"pool": pool, "ip": ip, "podUid": record.pod_uid, "nic": record.nic}
            for pool, by_ip in sorted(records.items()) for ip, record in sorted(by_ip.items())
            if record.pod == f"{namespace}/{name}"]
    if pod is None and endpoint is None and not held:
        raise CliError(f"pod {namespace}/{name}: no Pod, SpiderEndpoint or pool record of it", code=ExitCode.NOT_FOUND)
    current = ((endpoint or {}).get("status") or {}).get("current") or {}
    nics = [dict(entry) for entry in current.get("ips") or ()]
    if endpoint is None:  # a lean pod: its NICs are what its pool records say (those of its current UID)
        uid = None if pod is None else pod["metadata"].get("uid")
        nics = _nics_from_records([record for record in held if uid is None or record["podUid"] == uid])
    document = {
        "pod": f"{namespace}/{name}",
        "podUid": None if pod is None else pod["metadata"].get("uid"),
        "podPhase": None if pod is None else (pod.get("status") or {}).get("phase"),
        "node": current.get("node") or (None if pod is None else (pod.get("spec") or {}).get("nodeName")),
        "endpointUid": current.get("uid"),
        "nics": nics,
        "records": held,
    }
    notes = [f"{key}: {document[key] if document[key] is not None else '<none>'}"
             for key in ("pod", "podUid", "podPhase", "node", "endpointUid")]
    notes.append("records: " + (", ".join(f"{r['ip']} ({r['pool']})" for r in held) or "<none>"))
    headers = ("NIC", "IPV4", "IPV4 POOL", "IPV6", "IPV6 POOL", "VLAN", "MAC")
    rows = [(nic.get("interface"), nic.get("ipv4"), nic.get("ipv4Pool"), nic.get("ipv6"), nic.get("ipv6Pool"),
             nic.get("vlan", 0), nic.get("mac")) for nic in nics]
    table = Table(headers, rows, notes=notes, empty_message="No NIC in a SpiderEndpoint or pool record.")
    return CommandView(document, table, warnings)


def _nics_from_records(held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per NIC the records name (records without a NIC, written by upstream, under "")."""
    nics: dict[str, dict[str, Any]] = {}
    for record in held:
        family = "ipv6" if ":" in record["ip"] else "ipv4"
        row = nics.setdefault(record["nic"], {"interface": record["nic"]})
        row[family], row[f"{family}Pool"] = record["ip"], record["pool"]
    return [nics[nic] for nic in sorted(nics)]


def check(state: ClusterState) -> CommandView:
    findings = check_consistency(state.pools, list(state.endpoints.values()), state.pods)
    document = {"consistent": not findings, "pools": len(state.pools), "endpoints": len(state.endpoints),
                "findings": [finding.as_document() for finding in findings]}
    rows = [(f.kind, f.pool, f.ip, f.pod, f.detail) for f in findings]
    table = Table(("KIND", "POOL", "IP", "POD", "DETAIL"), rows,
                  empty_message=f"Consistent: {len(state.pools)} pools, {len(state.endpoints)} endpoints.")
    return CommandView(document, table, exit_code=ExitCode.INCONSISTENT if findings else ExitCode.OK)


def gc_dry_run(state: ClusterState, *, policy: GcPolicy, now: float, show_all: bool) -> CommandView:
    lines = [line for line in preview_gc(state.snapshot(), policy=policy, now=now)
             if show_all or line.decision.verdict is not Verdict.KEEP]
    documents = [line.as_document() for line in lines]
    headers = ("VERDICT", "REASON", "POOL", "IP", "POD", "UID", "UNTIL")
    rows = [(d["verdict"], d["reason"], d["pool"] or "-", d["ip"] or "-", d["pod"], d["podUid"], d["until"] or "-")
            for d in documents]
    return CommandView(documents, Table(headers, rows, empty_message="Nothing to collect."))
