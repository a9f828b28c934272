"""Per-object validation of SpiderIPPool / SpiderSubnet / SpiderReservedIP specs, as upstream's webhooks check them.

Each ``validate_*`` parses the raw spec (format errors), then applies the semantic rules of one object and raises one
``InvalidSpec`` listing every broken rule with its field path and offending value. Rules that need other objects
(overlap with other pools, subnet ownership) belong to the controller's webhook; the pure helpers they need are here
(``ranges_outside``) and in ``addressing`` (``overlaps``, ``is_canonical_cidr``, ``cidr_label_value``).

Deliberate differences from upstream v1.2.1:
- a subnet with host bits set (``10.6.0.1/16``, used by upstream's own multi-NIC example) is accepted and stored
  canonical (``to_dict`` writes ``10.6.0.0/16``); upstream's validating webhook rejects it as "unformatted subnet";
- every rule is reported, not only the first; node and namespace affinities get the same syntax check as podAffinity;
- a route whose ``dst`` is a default route written another way (``1.2.3.4/0``) is rejected like ``0.0.0.0/0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from spiderpool.core.addressing import (
    IPV4,
    Cidr,
    IPRange,
    contains_address,
    format_ip,
    merge_ranges,
    parse_ip,
    parse_ip_range_items,
    subtract_ranges,
)
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.selectors import LabelSelector, validate_label_selector
from spiderpool.core.specs import (
    IPPoolSpec,
    PoolView,
    ReservedIPSpec,
    Route,
    SubnetSpec,
    parse_ippool_object,
    parse_ippool_spec,
    parse_reservedip_spec,
    parse_subnet_spec,
)

LABEL_OWNER_APPLICATION_NAME = "ipam.spidernet.io/owner-application-name"
AUTO_POOL_AFFINITY_KEYS = (
    "ipam.spidernet.io/app-api-group",
    "ipam.spidernet.io/app-api-version",
    "ipam.spidernet.io/app-kind",
    "ipam.spidernet.io/app-namespace",
    "ipam.spidernet.io/app-name",
)


def ranges_outside(ranges: Sequence[IPRange], cidr: Cidr) -> list[IPRange]:
    """The parts of ``ranges`` (merged) that are not inside ``cidr``."""
    return subtract_ranges(ranges, [(cidr.first, cidr.last)])


def is_auto_pool(labels: Mapping[str, str]) -> bool:
    """Upstream's ``IsAutoCreatedIPPool``: only pools made from a SpiderSubnet carry the owner-application label."""
    return LABEL_OWNER_APPLICATION_NAME in labels


def _version_errors(version: int, *, path: str, enable_ipv4: bool, enable_ipv6: bool) -> list[FieldError]:
    enabled = enable_ipv4 if version == IPV4 else enable_ipv6
    if enabled:
        return []
    return [FieldError(field=f"{path}.ipVersion", value=version, reason=f"IPv{version} is disabled in this cluster")]


def _items_outside_subnet(items: object, subnet: Cidr, *, field: str) -> list[FieldError]:
    """Per written item (so the error points at ``spec.ips[i]``), those not inside ``subnet``."""
    if items is None:
        return []
    ranges = parse_ip_range_items(items, version=subnet.version, field=field)
    assert isinstance(items, list | tuple)
    return [
        FieldError(field=f"{field}[{index}]", value=items[index], reason=f"outside spec.subnet {subnet.text}")
        for index, (first, last) in enumerate(ranges)
        if not subnet.contains_range(first, last)
    ]


def _gateway_errors(raw: Mapping[str, object], spec: IPPoolSpec | SubnetSpec, *, path: str) -> list[FieldError]:
    gateway = spec.gateway
    if gateway is None:
        return []
    if not spec.subnet.contains(gateway):
        return [FieldError(field=f"{path}.gateway", value=raw.get("gateway"),
                           reason=f"outside spec.subnet {spec.subnet.text}")]
    if contains_address(spec.exclude_ips, gateway):
        return []
    items = raw.get("ips") or []
    assert isinstance(items, list | tuple)
    ranges = parse_ip_range_items(items, version=spec.ip_version, field=f"{path}.ips")
    gateway_text = format_ip(gateway, version=spec.ip_version)
    reason = (f"conflicts with spec.gateway {gateway_text}: add the gateway to spec.excludeIPs "
              "or remove it from spec.ips")
    return [
        FieldError(field=f"{path}.ips[{index}]", value=items[index], reason=reason)
        for index, (first, last) in enumerate(ranges)
        if first <= gateway <= last
    ]


def route_errors(routes: Sequence[Route], subnet: Cidr, *, field: str) -> list[FieldError]:
    """Upstream's route rules: dst is not the default route (use spec.gateway), dst unique, gw inside the subnet."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, route in enumerate(routes):
        item = f"{field}[{index}]"
        if route.dst.prefix_len == 0:
            errors.append(FieldError(field=f"{item}.dst", value=route.dst_text,
                                     reason="the default route comes from spec.gateway; set that instead"))
        if route.dst_text in seen:
            errors.append(FieldError(field=f"{item}.dst", value=route.dst_text, reason="duplicate route dst"))
        seen.add(route.dst_text)
        if not subnet.contains(route.gw):
            errors.append(FieldError(field=f"{item}.gw", value=route.gw_text,
                                     reason=f"outside spec.subnet {subnet.text}"))
    return errors


def _pod_affinity_errors(selector: LabelSelector | None, *, labels: Mapping[str, str], path: str) -> list[FieldError]:
    field = f"{path}.podAffinity"
    if selector is None:
        return []
    if is_auto_pool(labels):
        reason = "an auto-created IPPool's podAffinity may only use the ipam.spidernet.io/app-* keys"
        errors = [FieldError(field=f"{field}.matchLabels", value=key, reason=reason)
                  for key, _ in selector.match_labels if key not in AUTO_POOL_AFFINITY_KEYS]
        if selector.match_expressions:
            errors.append(FieldError(field=f"{field}.matchExpressions", value=len(selector.match_expressions),
                                     reason="an auto-created IPPool's podAffinity may not use matchExpressions"))
        return errors
    errors = validate_label_selector(selector, field=field)
    if selector.is_empty:
        errors.append(FieldError(field=field, value={}, reason="an empty podAffinity matches every pod; it is invalid"))
    return errors


def _name_errors(spec: IPPoolSpec, *, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, names in (("nodeName", spec.node_name), ("namespaceName", spec.namespace_name)):
        errors.extend(FieldError(field=f"{path}.{key}[{i}]", value=name, reason="must not be empty")
                      for i, name in enumerate(names) if not name)
    for index, name in enumerate(spec.multus_name):
        parts = name.split("/")
        if len(parts) > 2 or not all(parts):
            errors.append(FieldError(field=f"{path}.multusName[{index}]", value=name,
                                     reason="must be 'namespace/name' or 'name'"))
    return errors


def _addressing_errors(raw: Mapping[str, object], spec: IPPoolSpec | SubnetSpec, *, path: str) -> list[FieldError]:
    errors = _items_outside_subnet(raw.get("ips"), spec.subnet, field=f"{path}.ips")
    errors += _items_outside_subnet(raw.get("excludeIPs"), spec.subnet, field=f"{path}.excludeIPs")
    errors += _gateway_errors(raw, spec, path=path)
    errors += route_errors(spec.routes, spec.subnet, field=f"{path}.routes")
    return errors


def validate_ippool_spec(
    raw: Mapping[str, object],
    *,
    labels: Mapping[str, str] | None = None,
    enable_ipv4: bool = True,
    enable_ipv6: bool = True,
    path: str = "spec",
) -> IPPoolSpec:
    """Parse and validate one SpiderIPPool spec; ``labels`` (the object's) tell an auto-created pool apart."""
    spec = parse_ippool_spec(raw, path=path)
    errors = _version_errors(spec.ip_version, path=path, enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6)
    errors += _addressing_errors(raw, spec, path=path)
    errors += _pod_affinity_errors(spec.pod_affinity, labels=labels or {}, path=path)
    for key, selector in (("nodeAffinity", spec.node_affinity), ("namespaceAffinity", spec.namespace_affinity)):
        if selector is not None:
            errors += validate_label_selector(selector, field=f"{path}.{key}")
    errors += _name_errors(spec, path=path)
    if errors:
        raise InvalidSpec(errors)
    return spec


def validate_ippool_object(
    obj: Mapping[str, object], *, enable_ipv4: bool = True, enable_ipv6: bool = True
) -> PoolView:
    """A whole SpiderIPPool checked with the webhook's per-object rules: what the agent serves from.

    The agent does not trust admission (the controller may be down, or a pool may predate its webhooks): a pool
    whose addresses, gateway or routes leave its subnet is refused, with every broken rule in the InvalidSpec.
    """
    view = parse_ippool_object(obj)
    spec = obj.get("spec")
    validate_ippool_spec(spec if isinstance(spec, Mapping) else {}, labels=view.labels, enable_ipv4=enable_ipv4,
                         enable_ipv6=enable_ipv6)
    return view


def validate_subnet_spec(
    raw: Mapping[str, object], *, enable_ipv4: bool = True, enable_ipv6: bool = True, path: str = "spec"
) -> SubnetSpec:
    """Parse and validate one SpiderSubnet spec (the same addressing rules as a pool)."""
    spec = parse_subnet_spec(raw, path=path)
    errors = _version_errors(spec.ip_version, path=path, enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6)
    errors += _addressing_errors(raw, spec, path=path)
    if errors:
        raise InvalidSpec(errors)
    return spec


def validate_reservedip_spec(
    raw: Mapping[str, object], *, enable_ipv4: bool = True, enable_ipv6: bool = True, path: str = "spec"
) -> ReservedIPSpec:
    """Parse and validate one SpiderReservedIP spec (non-empty ``ips``, every range of the one family)."""
    spec = parse_reservedip_spec(raw, path=path)
    errors = _version_errors(spec.ip_version, path=path, enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6)
    if errors:
        raise InvalidSpec(errors)
    return spec


def _immutable_errors(old: IPPoolSpec | SubnetSpec, new: IPPoolSpec | SubnetSpec, *, path: str) -> list[FieldError]:
    errors = []
    if old.ip_version != new.ip_version:
        errors.append(FieldError(field=f"{path}.ipVersion", value=new.ip_version, reason="is immutable"))
    if old.subnet != new.subnet:
        errors.append(FieldError(field=f"{path}.subnet", value=new.subnet.text, reason="is immutable"))
    return errors


def validate_ippool_update(
    old: IPPoolSpec, new: IPPoolSpec, *, allocated: Mapping[str, str], path: str = "spec"
) -> None:
    """Update rules: ipVersion and subnet are immutable; no allocated IP may leave ``ips - excludeIPs``.

    ``allocated`` maps each allocated IP (``status.allocatedIPs`` keys) to its pod ``ns/name``.
    """
    errors = _immutable_errors(old, new, path=path)
    usable = merge_ranges(new.usable_ranges)
    for ip_text, pod in sorted(allocated.items()):
        value = parse_ip(ip_text, version=new.ip_version, field="status.allocatedIPs")
        if not contains_address(usable, value):
            errors.append(FieldError(
                field=f"{path}.ips", value=ip_text,
                reason=f"removes an IP address in use by Pod {pod}; an IPPool's addresses are spec.ips minus "
                       "spec.excludeIPs"))
    if errors:
        raise InvalidSpec(errors)
