"""Typed, frozen SpiderIPPool / SpiderSubnet / SpiderReservedIP specs and their parsers from Kubernetes object dicts.

Parsing checks types and formats (every address parses in the pool's family, ranges are ordered, CIDRs are CIDRs)
and collects every problem into one ``InvalidSpec``; the semantic per-object rules (IPs inside the subnet, gateway
rules, route rules) live in ``validation``. ``ipVersion`` may be absent: it is derived from ``subnet`` (from
``ips[0]`` for reserved IPs), as upstream's mutating webhook does. Unknown fields are ignored, as the API server
prunes them (upstream examples still carry the removed ``vlan`` field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar

from spiderpool.core.addressing import (
    Cidr,
    IPRange,
    check_version,
    format_ip,
    format_ip_ranges,
    ip_version_of,
    parse_cidr,
    parse_ip,
    parse_ip_ranges,
    subtract_ranges,
    total_ip_count,
)
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.selectors import LabelSelector, parse_label_selector

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Route:
    dst: Cidr
    gw: int

    @property
    def dst_text(self) -> str:
        return self.dst.text

    @property
    def gw_text(self) -> str:
        return format_ip(self.gw, version=self.dst.version)

    def to_dict(self) -> dict[str, str]:
        return {"dst": self.dst_text, "gw": self.gw_text}


@dataclass(frozen=True, slots=True)
class IPPoolSpec:
    ip_version: int
    subnet: Cidr
    ips: tuple[IPRange, ...] = ()
    exclude_ips: tuple[IPRange, ...] = ()
    gateway: int | None = None
    routes: tuple[Route, ...] = ()
    pod_affinity: LabelSelector | None = None
    namespace_affinity: LabelSelector | None = None
    node_affinity: LabelSelector | None = None
    namespace_name: tuple[str, ...] = ()
    node_name: tuple[str, ...] = ()
    multus_name: tuple[str, ...] = ()
    default: bool = False
    disable: bool = False

    @property
    def usable_ranges(self) -> list[IPRange]:
        """``ips - excludeIPs``: what the allocator may hand out (reserved IPs are removed by the allocator)."""
        return subtract_ranges(self.ips, self.exclude_ips)

    @property
    def total_ip_count(self) -> int:
        return total_ip_count(self.ips, self.exclude_ips)

    @property
    def gateway_text(self) -> str | None:
        return None if self.gateway is None else format_ip(self.gateway, version=self.ip_version)

    def to_dict(self) -> dict[str, object]:
        """The canonical wire form: merged ranges, canonical subnet, explicit ``ipVersion``."""
        body = _addressing_dict(self.ip_version, self.subnet, self.ips, self.exclude_ips, self.gateway, self.routes)
        for key, selector in (
            ("podAffinity", self.pod_affinity),
            ("namespaceAffinity", self.namespace_affinity),
            ("nodeAffinity", self.node_affinity),
        ):
            if selector is not None:
                body[key] = selector.to_dict()
        for key, names in (
            ("namespaceName", self.namespace_name),
            ("nodeName", self.node_name),
            ("multusName", self.multus_name),
        ):
            if names:
                body[key] = list(names)
        body["default"] = self.default
        body["disable"] = self.disable
        return body


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    ip_version: int
    subnet: Cidr
    ips: tuple[IPRange, ...] = ()
    exclude_ips: tuple[IPRange, ...] = ()
    gateway: int | None = None
    routes: tuple[Route, ...] = ()

    @property
    def usable_ranges(self) -> list[IPRange]:
        return subtract_ranges(self.ips, self.exclude_ips)

    @property
    def total_ip_count(self) -> int:
        return total_ip_count(self.ips, self.exclude_ips)

    def to_dict(self) -> dict[str, object]:
        return _addressing_dict(self.ip_version, self.subnet, self.ips, self.exclude_ips, self.gateway, self.routes)


@dataclass(frozen=True, slots=True)
class ReservedIPSpec:
    ip_version: int
    ips: tuple[IPRange, ...]

    def to_dict(self) -> dict[str, object]:
        return {"ipVersion": self.ip_version, "ips": format_ip_ranges(self.ips, version=self.ip_version)}


@dataclass(frozen=True, slots=True)
class PoolView:
    """A SpiderIPPool as pool selection sees it; cheap to build from a watch cache entry."""

    name: str
    spec: IPPoolSpec
    labels: Mapping[str, str] = field(default_factory=dict)
    deleting: bool = False


def _addressing_dict(
    version: int,
    subnet: Cidr,
    ips: tuple[IPRange, ...],
    exclude_ips: tuple[IPRange, ...],
    gateway: int | None,
    routes: tuple[Route, ...],
) -> dict[str, object]:
    body: dict[str, object] = {"ipVersion": version, "subnet": subnet.text}
    if ips:
        body["ips"] = format_ip_ranges(ips, version=version)
    if exclude_ips:
        body["excludeIPs"] = format_ip_ranges(exclude_ips, version=version)
    if gateway is not None:
        body["gateway"] = format_ip(gateway, version=version)
    if routes:
        body["routes"] = [route.to_dict() for route in routes]
    return body


class _Collector:
    """Runs field parsers, keeps their results, and gathers every FieldError instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def run(self, parse: Callable[[], _T], fallback: _T) -> _T:
        try:
            return parse()
        except FieldError as error:
            self.errors.append(error)
        except InvalidSpec as error:
            self.errors.extend(error.errors)
        return fallback

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidSpec(self.errors)


def _spec_mapping(raw: object, *, path: str) -> Mapping[str, object]:
    if raw is None:
        raise InvalidSpec([FieldError.required(path)])
    if not isinstance(raw, Mapping):
        raise InvalidSpec([FieldError(field=path, value=raw, reason="must be an object")])
    return raw


def _parse_bool(raw: object, *, field: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise FieldError(field=field, value=raw, reason="must be true or false")
    return raw


def _parse_names(raw: object, *, field: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldError(field=field, value=raw, reason="must be a list of strings")
    errors = [FieldError(field=f"{field}[{i}]", value=v, reason="must be a string") for i, v in enumerate(raw)
              if not isinstance(v, str)]
    if errors:
        raise InvalidSpec(errors)
    return tuple(raw)


def _version_and_subnet(spec: Mapping[str, object], *, path: str) -> tuple[int, Cidr]:
    """``ipVersion`` (explicit or derived from ``subnet``) and the subnet; both must agree."""
    raw_subnet = spec.get("subnet")
    if raw_subnet is None:
        raise InvalidSpec([FieldError.required(f"{path}.subnet")])
    c = _Collector()
    raw_version = spec.get("ipVersion")
    version = None if raw_version is None else c.run(lambda: check_version(raw_version, field=f"{path}.ipVersion"),
                                                     None)
    subnet = c.run(lambda: parse_cidr(raw_subnet, version=version, field=f"{path}.subnet"), None)
    c.raise_if_any()
    assert subnet is not None
    return subnet.version, subnet


def _parse_gateway(raw: object, *, version: int, field: str) -> int | None:
    return None if raw is None else parse_ip(raw, version=version, field=field)


def _parse_routes(raw: object, *, version: int, field: str) -> tuple[Route, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldError(field=field, value=raw, reason="must be a list of {dst, gw} objects")
    routes: list[Route] = []
    errors: list[FieldError] = []
    for index, item in enumerate(raw):
        try:
            routes.append(_parse_route(item, version=version, field=f"{field}[{index}]"))
        except InvalidSpec as error:
            errors.extend(error.errors)
    if errors:
        raise InvalidSpec(errors)
    return tuple(routes)


def _parse_route(raw: object, *, version: int, field: str) -> Route:
    if not isinstance(raw, Mapping):
        raise InvalidSpec([FieldError(field=field, value=raw, reason="must be an object with dst and gw")])
    collector = _Collector()
    if raw.get("dst") is None:
        collector.errors.append(FieldError.required(f"{field}.dst"))
    if raw.get("gw") is None:
        collector.errors.append(FieldError.required(f"{field}.gw"))
    collector.raise_if_any()
    dst = collector.run(lambda: parse_cidr(raw["dst"], version=version, field=f"{field}.dst"), None)
    gw = collector.run(lambda: parse_ip(raw["gw"], version=version, field=f"{field}.gw"), 0)
    collector.raise_if_any()
    assert dst is not None
    return Route(dst=dst, gw=gw)


def _ranges(raw: object, *, version: int, field: str) -> tuple[IPRange, ...]:
    return () if raw is None else tuple(parse_ip_ranges(raw, version=version, field=field))


def _selector(raw: object, *, field: str) -> LabelSelector | None:
    return parse_label_selector(raw, field=field)


class _AddressFields(TypedDict):
    """The fields SpiderIPPool and SpiderSubnet share, as both specs' constructor arguments."""

    ip_version: int
    subnet: Cidr
    ips: tuple[IPRange, ...]
    exclude_ips: tuple[IPRange, ...]
    gateway: int | None
    routes: tuple[Route, ...]


def _address_fields(spec: Mapping[str, object], *, path: str, c: _Collector) -> _AddressFields:
    """``ipVersion`` and ``subnet`` (InvalidSpec at once when wrong), then the rest, their errors gathered in ``c``."""
    version, subnet = _version_and_subnet(spec, path=path)
    return _AddressFields(
        ip_version=version,
        subnet=subnet,
        ips=c.run(lambda: _ranges(spec.get("ips"), version=version, field=f"{path}.ips"), ()),
        exclude_ips=c.run(lambda: _ranges(spec.get("excludeIPs"), version=version, field=f"{path}.excludeIPs"), ()),
        gateway=c.run(lambda: _parse_gateway(spec.get("gateway"), version=version, field=f"{path}.gateway"), None),
        routes=c.run(lambda: _parse_routes(spec.get("routes"), version=version, field=f"{path}.routes"), ()),
    )


def parse_ippool_spec(raw: object, *, path: str = "spec") -> IPPoolSpec:
    """A SpiderIPPool ``spec`` dict as an IPPoolSpec; InvalidSpec lists every malformed field."""
    spec = _spec_mapping(raw, path=path)
    c = _Collector()
    pool = IPPoolSpec(
        **_address_fields(spec, path=path, c=c),
        pod_affinity=c.run(lambda: _selector(spec.get("podAffinity"), field=f"{path}.podAffinity"), None),
        namespace_affinity=c.run(
            lambda: _selector(spec.get("namespaceAffinity"), field=f"{path}.namespaceAffinity"), None),
        node_affinity=c.run(lambda: _selector(spec.get("nodeAffinity"), field=f"{path}.nodeAffinity"), None),
        namespace_name=c.run(lambda: _parse_names(spec.get("namespaceName"), field=f"{path}.namespaceName"), ()),
        node_name=c.run(lambda: _parse_names(spec.get("nodeName"), field=f"{path}.nodeName"), ()),
        multus_name=c.run(lambda: _parse_names(spec.get("multusName"), field=f"{path}.multusName"), ()),
        default=c.run(lambda: _parse_bool(spec.get("default"), field=f"{path}.default"), False),
        disable=c.run(lambda: _parse_bool(spec.get("disable"), field=f"{path}.disable"), False),
    )
    c.raise_if_any()
    return pool


def parse_subnet_spec(raw: object, *, path: str = "spec") -> SubnetSpec:
    """A SpiderSubnet ``spec`` dict as a SubnetSpec; InvalidSpec lists every malformed field."""
    c = _Collector()
    result = SubnetSpec(**_address_fields(_spec_mapping(raw, path=path), path=path, c=c))
    c.raise_if_any()
    return result


def parse_reservedip_spec(raw: object, *, path: str = "spec") -> ReservedIPSpec:
    """A SpiderReservedIP ``spec``: ``ipVersion`` (explicit or from ``ips[0]``) and a non-empty ``ips``."""
    spec = _spec_mapping(raw, path=path)
    ips = spec.get("ips")
    if not isinstance(ips, list) or not ips:
        raise InvalidSpec([FieldError(field=f"{path}.ips", value=ips, reason="must be a non-empty list of IP ranges")])
    raw_version = spec.get("ipVersion")
    if raw_version is None:
        derived = ip_version_of(ips[0]) if isinstance(ips[0], str) else None
        if derived is None:
            raise InvalidSpec([FieldError(field=f"{path}.ips[0]", value=ips[0], reason="not an IP address or range")])
        version = derived
    else:
        try:
            version = check_version(raw_version, field=f"{path}.ipVersion")
        except FieldError as error:
            raise InvalidSpec([error]) from None
    return ReservedIPSpec(ip_version=version, ips=tuple(parse_ip_ranges(ips, version=version, field=f"{path}.ips")))


def _metadata(obj: Mapping[str, object]) -> tuple[str, Mapping[str, str], bool]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise InvalidSpec([FieldError.required("metadata.name")])
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise InvalidSpec([FieldError(field="metadata.labels", value=labels, reason="must be a map")])
    return str(meta["name"]), dict(labels), meta.get("deletionTimestamp") is not None


def parse_ippool_object(obj: Mapping[str, object]) -> PoolView:
    """A whole SpiderIPPool object (``metadata`` + ``spec``) as the PoolView selection works with."""
    name, labels, deleting = _metadata(obj)
    return PoolView(name=name, spec=parse_ippool_spec(obj.get("spec")), labels=labels, deleting=deleting)
