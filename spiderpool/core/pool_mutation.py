"""The mutating webhooks' changes to a SpiderIPPool / SpiderSubnet / SpiderReservedIP, as RFC 6902 JSON Patch ops.

Pure: given the object (and, for a pool, the SpiderSubnets), return the patch that adds the finalizer, the CIDR
label, the explicit ``ipVersion`` and the canonical, merged and sorted ranges, and (subnet feature) makes the
SpiderSubnet of the same subnet the pool's controller owner, inheriting its gateway and routes when the pool has
none.  A spec that does not parse is left alone: the validating webhook rejects it with the precise error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from spiderpool.core.addressing import cidr_label_value
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.pool_admission import PeerSubnet, owning_subnet
from spiderpool.core.specs import parse_ippool_spec, parse_reservedip_spec, parse_subnet_spec

FINALIZER: Final = "spiderpool.spidernet.io"
LABEL_IPPOOL_CIDR: Final = "ipam.spidernet.io/ippool-cidr"
LABEL_SUBNET_CIDR: Final = "ipam.spidernet.io/subnet-cidr"
LABEL_OWNER_SUBNET: Final = "ipam.spidernet.io/owner-spider-subnet"
SPIDER_API_VERSION: Final = "spiderpool.spidernet.io/v2beta1"

PatchOp = dict[str, Any]


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _common_ops(obj: Mapping[str, Any], *, spec: Mapping[str, Any], labels: Mapping[str, str]) -> list[PatchOp]:
    """Finalizer, labels and spec: ``add`` on an object member replaces it, so one op covers present and absent."""
    meta = _metadata(obj)
    ops: list[PatchOp] = []
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER not in finalizers and meta.get("deletionTimestamp") is None:
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": [*finalizers, FINALIZER]})
    current_labels = dict(meta.get("labels") or {})
    if any(current_labels.get(key) != value for key, value in labels.items()):
        ops.append({"op": "add", "path": "/metadata/labels", "value": {**current_labels, **labels}})
    if dict(obj.get("spec") or {}) != dict(spec):
        ops.append({"op": "add", "path": "/spec", "value": dict(spec)})
    return ops


def _canonical_spec(raw: Mapping[str, Any], canonical: Mapping[str, object]) -> dict[str, Any]:
    # Keep fields this version does not model (the API server prunes unknown ones anyway).
    return {**raw, **canonical}


def _adopt(spec: dict[str, Any], owner: PeerSubnet, *, meta: Mapping[str, Any]) -> list[PatchOp]:
    subnet_body = owner.spec.to_dict()
    for key in ("gateway", "routes"):
        if not spec.get(key) and key in subnet_body:
            spec[key] = subnet_body[key]
    references = list(meta.get("ownerReferences") or [])
    if any(ref.get("controller") for ref in references) or not owner.uid:
        return []
    reference = {"apiVersion": SPIDER_API_VERSION, "kind": "SpiderSubnet", "name": owner.name, "uid": owner.uid,
                 "controller": True, "blockOwnerDeletion": True}
    return [{"op": "add", "path": "/metadata/ownerReferences", "value": [*references, reference]}]


def mutate_ippool(obj: Mapping[str, Any], *, subnets: Sequence[PeerSubnet], subnet_feature: bool = True
                  ) -> list[PatchOp]:
    raw = dict(obj.get("spec") or {})
    try:
        parsed = parse_ippool_spec(raw)
    except InvalidSpec:
        return []
    spec = _canonical_spec(raw, parsed.to_dict())
    labels = {LABEL_IPPOOL_CIDR: cidr_label_value(parsed.subnet.text)}
    owner_ops: list[PatchOp] = []
    owner = owning_subnet(parsed, subnets) if subnet_feature else None
    if owner is not None:
        labels[LABEL_OWNER_SUBNET] = owner.name
        owner_ops = _adopt(spec, owner, meta=_metadata(obj))
    return _common_ops(obj, spec=spec, labels=labels) + owner_ops


def mutate_subnet(obj: Mapping[str, Any]) -> list[PatchOp]:
    raw = dict(obj.get("spec") or {})
    try:
        parsed = parse_subnet_spec(raw)
    except InvalidSpec:
        return []
    labels = {LABEL_SUBNET_CIDR: cidr_label_value(parsed.subnet.text)}
    return _common_ops(obj, spec=_canonical_spec(raw, parsed.to_dict()), labels=labels)


def mutate_reservedip(obj: Mapping[str, Any]) -> list[PatchOp]:
    """ipVersion from ``ips[0]`` and merged ranges; no finalizer (nothing waits on a reserved IP's deletion)."""
    raw = dict(obj.get("spec") or {})
    try:
        parsed = parse_reservedip_spec(raw)
    except InvalidSpec:
        return []
    spec = _canonical_spec(raw, parsed.to_dict())
    return [] if spec == raw else [{"op": "add", "path": "/spec", "value": spec}]
