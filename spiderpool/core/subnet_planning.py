"""SpiderSubnet auto-pool planning: which pools an application wants, their names, labels and sizes, and which
subnet addresses they take.

Pure decisions over plain data: the controller (``spiderpool.controller.subnets``) reads the cluster, asks these
functions what to write, and writes it. Upstream's formats are kept exactly: pool names
``auto{4|6}-{app}-{nic}-{uid5}``, the ``ipam.spidernet.io/owner-application-*`` labels the agent looks pools up by,
and ``SpiderSubnet.status.controlledIPPools``, a JSON string ``{"pool": {"ips": [...], "application": "..."}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from spiderpool.core.addressing import (
    IPRange,
    count_addresses,
    format_ip_ranges,
    merge_ranges,
    parse_ip_ranges,
    subtract_ranges,
)
from spiderpool.core.annotations import (
    POOL_IP_NUMBER,
    POOL_RECLAIM,
    PoolIPNumber,
    parse_pool_ip_number,
    parse_pool_reclaim,
    parse_subnet_annotations,
)
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.selection_types import split_api_version

LABEL_SUBNET: Final = "ipam.spidernet.io/owner-spider-subnet"
LABEL_INTERFACE: Final = "ipam.spidernet.io/interface"
LABEL_IP_VERSION: Final = "ipam.spidernet.io/ip-version"
LABEL_RECLAIM: Final = "ipam.spidernet.io/ippool-reclaim"
LABEL_APP_GV: Final = "ipam.spidernet.io/owner-application-gv"
LABEL_APP_KIND: Final = "ipam.spidernet.io/owner-application-kind"
LABEL_APP_NAMESPACE: Final = "ipam.spidernet.io/owner-application-namespace"
LABEL_APP_NAME: Final = "ipam.spidernet.io/owner-application-name"
LABEL_APP_UID: Final = "ipam.spidernet.io/owner-application-uid"
# The labels that say "this application's pool for this NIC and family from this subnet" (the UID excluded, so a
# kept pool (reclaim false) is found again by a re-created application of the same kind and name).
IDENTITY_LABELS: Final = (LABEL_SUBNET, LABEL_INTERFACE, LABEL_IP_VERSION, LABEL_APP_KIND, LABEL_APP_NAMESPACE,
                          LABEL_APP_NAME)
APP_KINDS: Final = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
_MAX_NAME: Final = 253
_CONTROLLED_FIELD: Final = "status.controlledIPPools"


class ResizeError(ValueError):
    """The pool cannot reach the wanted size; the message names the pool, the subnet and the counts."""


@dataclass(frozen=True, slots=True)
class AppRef:
    """An application (top controller) that may own auto-pools."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @property
    def application(self) -> str:
        """``controlledIPPools[*].application``: ``group_version_Kind_ns_name`` (``version_Kind_...`` for core)."""
        return f"{self.api_version.replace('/', '_')}_{self.kind}_{self.namespace}_{self.name}"

    @property
    def group_and_version(self) -> tuple[str, str]:
        return split_api_version(self.api_version)


@dataclass(frozen=True, slots=True)
class AutoPoolWant:
    """One auto-pool an application needs: NIC ``nic``'s IPv``version`` pool from SpiderSubnet ``subnet``."""

    subnet: str
    version: int
    nic: str
    ip_count: int
    reclaim: bool


@dataclass(frozen=True, slots=True)
class ControlledPool:
    """One entry of ``status.controlledIPPools``: the subnet addresses handed to a pool (and its application)."""

    ips: tuple[IPRange, ...]
    application: str | None = None


# ------------------------------------------------------------------------------------------------ sizing


def _int_field(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_pod_count(job_spec: Mapping[str, Any]) -> int:
    """Upstream's ``CalculateJobPodNum``: completions when both are set, else parallelism, never below 1."""
    parallelism = _int_field(job_spec, "parallelism")
    completions = _int_field(job_spec, "completions")
    if parallelism is None:
        return 1
    count = parallelism if completions is None else completions
    return count or 1


def app_replicas(kind: str, obj: Mapping[str, Any]) -> int:
    """How many pods ``obj`` (a ``kind`` object) runs: what a flexible ``+N`` pool adds N to."""
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        replicas = _int_field(spec, "replicas")
        return 1 if replicas is None else replicas
    if kind == "DaemonSet":
        return _int_field(obj.get("status") or {}, "desiredNumberScheduled") or 0
    if kind == "Job":
        return job_pod_count(spec)
    if kind == "CronJob":
        return job_pod_count((spec.get("jobTemplate") or {}).get("spec") or {})
    raise ValueError(f"kind: {kind!r} is not one of {', '.join(APP_KINDS)}")


def pod_template(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template of a ``kind`` object ({} when absent)."""
    spec = obj.get("spec") or {}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") or {}
    return template if isinstance(template, Mapping) else {}


def desired_ip_count(ip_number: PoolIPNumber | None, *, replicas: int, default_flexible: int) -> int:
    """``N`` fixed; ``+N`` replicas + N; absent: replicas + the cluster's default flexible count."""
    if ip_number is None:
        return replicas + default_flexible
    return replicas + ip_number.count if ip_number.flexible else ip_number.count


def plan_app_pools(
    annotations: Mapping[str, str], *, replicas: int, default_flexible: int, enable_ipv4: bool = True,
    enable_ipv6: bool = True,
) -> tuple[AutoPoolWant, ...]:
    """The auto-pools a pod template's subnet annotations ask for (() without them); AnnotationError if malformed."""
    requests = parse_subnet_annotations(annotations)
    if requests is None:
        return ()
    ip_number = parse_pool_ip_number(annotations[POOL_IP_NUMBER]) if POOL_IP_NUMBER in annotations else None
    reclaim = parse_pool_reclaim(annotations[POOL_RECLAIM]) if POOL_RECLAIM in annotations else True
    count = desired_ip_count(ip_number, replicas=replicas, default_flexible=default_flexible)
    return tuple(
        AutoPoolWant(subnet=subnet, version=version, nic=request.nic, ip_count=count, reclaim=reclaim)
        for request in requests
        for version, subnet, enabled in ((4, request.ipv4, enable_ipv4), (6, request.ipv6, enable_ipv6))
        if subnet and enabled
    )


# ------------------------------------------------------------------------------------------------ names and labels


def auto_pool_name(*, version: int, app: AppRef, nic: str) -> str:
    """``auto{4|6}-{lower(app name)}-{lower(nic)}-{first 5 chars of the UID's last segment}``, at most 253 chars."""
    uid_part = app.uid.rsplit("-", 1)[-1][:5]
    return f"auto{version}-{app.name.lower()}-{nic.lower()}-{uid_part}"[:_MAX_NAME]


def auto_pool_labels(*, app: AppRef, want: AutoPoolWant) -> dict[str, str]:
    return {
        LABEL_SUBNET: want.subnet,
        LABEL_INTERFACE: want.nic,
        LABEL_IP_VERSION: f"IPv{want.version}",
        LABEL_RECLAIM: "true" if want.reclaim else "false",
        LABEL_APP_GV: app.api_version.replace("/", "_"),
        LABEL_APP_KIND: app.kind,
        LABEL_APP_NAMESPACE: app.namespace,
        LABEL_APP_NAME: app.name,
        LABEL_APP_UID: app.uid,
    }


def identity_of(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The labels that identify an auto-pool's purpose (application kind/namespace/name, NIC, family, subnet)."""
    return tuple(labels.get(key, "") for key in IDENTITY_LABELS)


# ------------------------------------------------------------------------------------------------ controlledIPPools


def decode_controlled_pools(text: str | None, *, version: int) -> dict[str, ControlledPool]:
    """``status.controlledIPPools`` (None or "" -> {}); InvalidSpec naming the field and the bad value."""
    if not text:
        return {}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidSpec([FieldError(field=_CONTROLLED_FIELD, value=text, reason=f"not JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise InvalidSpec([FieldError(field=_CONTROLLED_FIELD, value=text, reason="must be a JSON object")])
    pools: dict[str, ControlledPool] = {}
    for name, entry in data.items():
        where = f"{_CONTROLLED_FIELD}[{name}]"
        if not isinstance(entry, dict):
            raise InvalidSpec([FieldError(field=where, value=entry, reason="must be an object {ips, application}")])
        ranges = parse_ip_ranges(entry.get("ips") or [], version=version, field=f"{where}.ips")
        application = entry.get("application")
        pools[name] = ControlledPool(ips=tuple(ranges), application=application if application else None)
    return pools


def encode_controlled_pools(pools: Mapping[str, ControlledPool], *, version: int) -> str | None:
    """The status string (keys sorted as Go's ``json.Marshal``); None when no pool is controlled."""
    if not pools:
        return None
    body: dict[str, dict[str, object]] = {}
    for name, pool in pools.items():
        entry: dict[str, object] = {"ips": format_ip_ranges(pool.ips, version=version)}
        if pool.application:
            entry["application"] = pool.application
        body[name] = entry
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def controlled_ip_count(pools: Mapping[str, ControlledPool]) -> int:
    """``status.allocatedIPCount`` of a subnet: the addresses handed to pools (not to pods)."""
    return count_addresses(merge_ranges(r for pool in pools.values() for r in pool.ips))


# ------------------------------------------------------------------------------------------------ addresses


def free_ranges(usable: Sequence[IPRange], *, taken: Iterable[Sequence[IPRange]]) -> list[IPRange]:
    """``usable`` (the subnet's ``ips - excludeIPs``, merged) minus every range of ``taken``."""
    return subtract_ranges(usable, merge_ranges(r for ranges in taken for r in ranges))


def lowest_addresses(ranges: Sequence[IPRange], count: int) -> list[IPRange]:
    """The ``count`` lowest addresses of merged ``ranges`` (fewer when they hold fewer)."""
    picked: list[IPRange] = []
    for first, last in ranges:
        if count <= 0:
            break
        end = min(last, first + count - 1)
        picked.append((first, end))
        count -= end - first + 1
    return picked


def plan_resize(
    *, pool: str, subnet: str, current: Sequence[IPRange], allocated: Iterable[int], desired: int,
    free: Sequence[IPRange],
) -> list[IPRange]:
    """The pool's new ``ips`` for ``desired`` addresses: growth takes the subnet's lowest free addresses, shrinking
    drops only unallocated addresses (the lowest first, as upstream); ResizeError when either cannot be done."""
    current = merge_ranges(current)
    have = count_addresses(current)
    if desired > have:
        grow = lowest_addresses(free, desired - have)
        if count_addresses(grow) < desired - have:
            raise ResizeError(f"SpiderSubnet {subnet} has {count_addresses(free)} free IPs, IPPool {pool} needs "
                              f"{desired - have} more (has {have}, wants {desired})")
        return merge_ranges([*current, *grow])
    if desired == have:
        return current
    held = merge_ranges((ip, ip) for ip in allocated)
    unallocated = subtract_ranges(current, held)
    drop = lowest_addresses(unallocated, have - desired)
    if count_addresses(drop) < have - desired:
        raise ResizeError(f"IPPool {pool} available free IPs are not enough to shrink to {desired}: "
                          f"{count_addresses(held)} of its {have} IPs are allocated")
    return subtract_ranges(current, drop)
