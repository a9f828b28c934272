"""Upstream's pod and namespace annotations that steer pool selection, parsed into typed values.

Values are JSON, decoded the way Go's ``encoding/json`` decodes them into upstream's structs: field names match
case-insensitively, unknown fields are ignored, ``null`` is the zero value, and a wrong type is an error. Every error
is an ``AnnotationError`` naming the annotation and carrying its raw value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from spiderpool.core.addressing import parse_cidr, parse_ip
from spiderpool.core.errors import AnnotationError, FieldError
from spiderpool.core.specs import Route

IPPOOL: Final = "ipam.spidernet.io/ippool"
IPPOOLS: Final = "ipam.spidernet.io/ippools"
SUBNET: Final = "ipam.spidernet.io/subnet"
SUBNETS: Final = "ipam.spidernet.io/subnets"
POOL_IP_NUMBER: Final = "ipam.spidernet.io/ippool-ip-number"
POOL_RECLAIM: Final = "ipam.spidernet.io/ippool-reclaim"
ROUTES: Final = "ipam.spidernet.io/routes"
NS_DEFAULT_IPV4_POOL: Final = "ipam.spidernet.io/default-ipv4-ippool"
NS_DEFAULT_IPV6_POOL: Final = "ipam.spidernet.io/default-ipv6-ippool"
DEFAULT_INTERFACE: Final = "eth0"

_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True, slots=True)
class PoolNames:
    """Pool names (or wildcard patterns) per IP family, in the user's order."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()

    def for_version(self, version: int) -> tuple[str, ...]:
        return self.ipv4 if version == 4 else self.ipv6

    @property
    def is_empty(self) -> bool:
        return not self.ipv4 and not self.ipv6


@dataclass(frozen=True, slots=True)
class NicPools:
    """One item of ``ipam.spidernet.io/ippools``: the pools of one NIC of the pod."""

    nic: str
    pools: PoolNames
    clean_gateway: bool = False


@dataclass(frozen=True, slots=True)
class SubnetRequest:
    """One NIC's subnets from ``ipam.spidernet.io/subnet(s)``; upstream uses only the first name per family."""

    nic: str
    ipv4: str | None = None
    ipv6: str | None = None


@dataclass(frozen=True, slots=True)
class PoolIPNumber:
    """``ipam.spidernet.io/ippool-ip-number``: ``"N"`` (fixed) or ``"+N"`` (replicas + N)."""

    count: int
    flexible: bool


class _Decoder:
    """Decodes one annotation's JSON value and raises AnnotationError naming it."""

    def __init__(self, annotation: str, value: str) -> None:
        self.annotation = annotation
        self.value = value

    def fail(self, reason: str) -> AnnotationError:
        return AnnotationError(annotation=self.annotation, value=self.value, reason=reason)

    def load(self) -> object:
        try:
            return orjson.loads(self.value)
        except orjson.JSONDecodeError as error:
            raise self.fail(f"not valid JSON: {error}") from None

    def object_fields(self, raw: object, names: tuple[str, ...], *, where: str) -> dict[str, object]:
        """The known fields of a JSON object, matched case-insensitively, the last duplicate winning (as in Go)."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(f"{where} must be a JSON object")
        folded = {name.lower(): name for name in names}
        fields: dict[str, object] = {}
        for key, value in raw.items():
            name = folded.get(key.lower())
            if name is not None:
                fields[name] = value
        return fields

    def names(self, raw: object, *, where: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise self.fail(f"{where} must be a list of names")
        if not all(raw):
            raise self.fail(f"{where} must not contain an empty name")
        return tuple(raw)

    def string(self, raw: object, *, where: str) -> str:
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise self.fail(f"{where} must be a string")
        return raw

    def boolean(self, raw: object, *, where: str) -> bool:
        if raw is None:
            return False
        if not isinstance(raw, bool):
            raise self.fail(f"{where} must be true or false")
        return raw

    def pool_names(self, raw: object, *, where: str) -> PoolNames:
        fields = self.object_fields(raw, ("ipv4", "ipv6"), where=where)
        return PoolNames(
            ipv4=self.names(fields.get("ipv4"), where=f"{where}.ipv4"),
            ipv6=self.names(fields.get("ipv6"), where=f"{where}.ipv6"),
        )


def parse_ippool_annotation(value: str) -> PoolNames:
    """``ipam.spidernet.io/ippool``: ``{"ipv4": [...], "ipv6": [...]}`` for the NIC being added."""
    decoder = _Decoder(IPPOOL, value)
    return decoder.pool_names(decoder.load(), where="value")


def parse_ippools_annotation(value: str, *, current_nic: str) -> tuple[tuple[NicPools, ...], bool]:
    """``ipam.spidernet.io/ippools``: the pools of every NIC of the pod, and whether the NICs are unnamed.

    Upstream's rules: at least one item; either every item names ``interface`` or none does; unnamed items are
    named by position (``"0"``, ``"1"``, ...); no NIC twice; with named items the NIC being added must be listed.
    """
    decoder = _Decoder(IPPOOLS, value)
    raw = decoder.load()
    if not isinstance(raw, list):
        raise decoder.fail("must be a JSON list of {interface, ipv4, ipv6, cleangateway} items")
    if not raw:
        raise decoder.fail("needs at least one item")
    items = [_nic_pools(decoder, item, index) for index, item in enumerate(raw)]
    named = [item.nic != "" for item in items]
    if any(named) and not all(named):
        raise decoder.fail("either every item names its interface or none does")
    unnamed = not any(named)
    if unnamed:
        items = [NicPools(nic=str(index), pools=item.pools, clean_gateway=item.clean_gateway)
                 for index, item in enumerate(items)]
    seen: set[str] = set()
    for item in items:
        if item.nic in seen:
            raise decoder.fail(f"interface {item.nic} is listed twice")
        seen.add(item.nic)
    if not unnamed and current_nic not in seen:
        raise decoder.fail(f"no item for interface {current_nic}, the interface being added")
    return tuple(items), unnamed


def _nic_pools(decoder: _Decoder, raw: object, index: int) -> NicPools:
    where = f"item {index}"
    fields = decoder.object_fields(raw, ("interface", "ipv4", "ipv6", "cleangateway"), where=where)
    return NicPools(
        nic=decoder.string(fields.get("interface"), where=f"{where}.interface"),
        pools=PoolNames(
            ipv4=decoder.names(fields.get("ipv4"), where=f"{where}.ipv4"),
            ipv6=decoder.names(fields.get("ipv6"), where=f"{where}.ipv6"),
        ),
        clean_gateway=decoder.boolean(fields.get("cleangateway"), where=f"{where}.cleangateway"),
    )


def has_subnet_annotation(annotations: Mapping[str, str]) -> bool:
    return SUBNETS in annotations or SUBNET in annotations


def parse_subnet_annotations(annotations: Mapping[str, str]) -> tuple[SubnetRequest, ...] | None:
    """``ipam.spidernet.io/subnets`` (beats ``.../subnet``) as one request per NIC; None when neither is set.

    As upstream: only the first subnet per family counts, it may not be empty, an item needs at least one family,
    interfaces and subnets are unique across items, and a single ``subnet`` item defaults to ``eth0``. Unlike
    upstream, an item of ``subnets`` must name its interface (upstream silently never matches an unnamed one).
    """
    if SUBNETS in annotations:
        decoder = _Decoder(SUBNETS, annotations[SUBNETS])
        raw = decoder.load()
        if not isinstance(raw, list) or not raw:
            raise decoder.fail("must be a non-empty JSON list of {interface, ipv4, ipv6} items")
        requests = tuple(_subnet_request(decoder, item, where=f"item {i}", default_nic=None)
                         for i, item in enumerate(raw))
        _check_unique_subnets(decoder, requests)
        return requests
    if SUBNET in annotations:
        decoder = _Decoder(SUBNET, annotations[SUBNET])
        return (_subnet_request(decoder, decoder.load(), where="value", default_nic=DEFAULT_INTERFACE),)
    return None


def _subnet_request(decoder: _Decoder, raw: object, *, where: str, default_nic: str | None) -> SubnetRequest:
    fields = decoder.object_fields(raw, ("interface", "ipv4", "ipv6"), where=where)
    nic = decoder.string(fields.get("interface"), where=f"{where}.interface") or default_nic
    if not nic:
        raise decoder.fail(f"{where}.interface must name the interface")
    ipv4 = decoder.names(fields.get("ipv4"), where=f"{where}.ipv4")
    ipv6 = decoder.names(fields.get("ipv6"), where=f"{where}.ipv6")
    if not ipv4 and not ipv6:
        raise decoder.fail(f"{where} names neither an IPv4 nor an IPv6 subnet")
    return SubnetRequest(nic=nic, ipv4=ipv4[0] if ipv4 else None, ipv6=ipv6[0] if ipv6 else None)


def _check_unique_subnets(decoder: _Decoder, requests: tuple[SubnetRequest, ...]) -> None:
    for label, values in (
        ("interface", [r.nic for r in requests]),
        ("IPv4 subnet", [r.ipv4 for r in requests if r.ipv4]),
        ("IPv6 subnet", [r.ipv6 for r in requests if r.ipv6]),
    ):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise decoder.fail(f"{label} {duplicates[0]} is used by more than one item")


def parse_pool_ip_number(value: str) -> PoolIPNumber:
    """``"N"`` or ``"+N"`` with N >= 0 (upstream accepts at most one ``+``)."""
    digits = value[1:] if value.startswith("+") else value
    if not digits.isascii() or not digits.isdigit():
        raise AnnotationError(annotation=POOL_IP_NUMBER, value=value,
                              reason="must be 'N' (a fixed count) or '+N' (replicas plus N), N >= 0")
    return PoolIPNumber(count=int(digits), flexible=value.startswith("+"))


def parse_pool_reclaim(value: str) -> bool:
    """``ipam.spidernet.io/ippool-reclaim`` with Go's ``strconv.ParseBool`` spellings."""
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise AnnotationError(annotation=POOL_RECLAIM, value=value, reason="must be true or false")


def parse_routes_annotation(value: str) -> tuple[Route, ...]:
    """``ipam.spidernet.io/routes``: ``[{"dst": CIDR, "gw": IP}]``, dst and gw of one family."""
    decoder = _Decoder(ROUTES, value)
    raw = decoder.load()
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise decoder.fail("must be a JSON list of {dst, gw} items")
    routes = []
    for index, item in enumerate(raw):
        fields = decoder.object_fields(item, ("dst", "gw"), where=f"item {index}")
        dst_text = decoder.string(fields.get("dst"), where=f"item {index}.dst")
        gw_text = decoder.string(fields.get("gw"), where=f"item {index}.gw")
        try:
            dst = parse_cidr(dst_text, field=f"item {index}.dst")
            gw = parse_ip(gw_text, version=dst.version, field=f"item {index}.gw")
        except FieldError as error:
            raise decoder.fail(str(error)) from None
        routes.append(Route(dst=dst, gw=gw))
    return tuple(routes)


def parse_namespace_default_pools(annotations: Mapping[str, str]) -> PoolNames:
    """The namespace's ``default-ipv4-ippool`` / ``default-ipv6-ippool`` (JSON string lists)."""
    families: list[tuple[str, ...]] = []
    for annotation in (NS_DEFAULT_IPV4_POOL, NS_DEFAULT_IPV6_POOL):
        if annotation not in annotations:
            families.append(())
            continue
        decoder = _Decoder(annotation, annotations[annotation])
        families.append(decoder.names(decoder.load(), where="value"))
    return PoolNames(ipv4=families[0], ipv6=families[1])
