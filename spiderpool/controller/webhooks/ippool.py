"""SpiderIPPool admission: mutation (finalizer, labels, canonical spec, subnet ownership) and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.ledger import PendingEntry
from spiderpool.controller.webhooks.peers import list_pools, list_subnets
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.pool_admission import (
    ippool_peer_errors,
    ippool_subnet_errors,
    terminating_spec_errors,
)
from spiderpool.core.pool_mutation import LABEL_OWNER_SUBNET, mutate_ippool
from spiderpool.core.specs import IPPoolSpec, parse_ippool_spec
from spiderpool.core.validation import validate_ippool_spec, validate_ippool_update

KIND = "SpiderIPPool"


async def mutate(deps: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    subnets = await list_subnets(deps.stores) if deps.cluster.enable_spider_subnet else []
    return Verdict(patch=mutate_ippool(request.obj, subnets=subnets, subnet_feature=deps.cluster.enable_spider_subnet))


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def _update_errors(old_obj: Mapping[str, Any], new: IPPoolSpec, new_obj: Mapping[str, Any]) -> list[FieldError]:
    if old_obj.get("metadata", {}).get("deletionTimestamp") is not None:
        errors = terminating_spec_errors(old_obj.get("spec"), new_obj.get("spec"))
        if errors:
            return errors
    old = parse_ippool_spec(old_obj.get("spec"))
    records = decode_allocated_ips((old_obj.get("status") or {}).get("allocatedIPs"), version=old.ip_version)
    try:
        validate_ippool_update(old, new, allocated={ip: record.pod for ip, record in records.items()})
    except InvalidSpec as invalid:
        return list(invalid.errors)
    return []


async def _peer_errors(deps: WebhookDeps, request: AdmissionRequest, spec: IPPoolSpec,
                       pending: list[PendingEntry]) -> list[FieldError]:
    errors = ippool_peer_errors(request.name, spec, await list_pools(deps.stores, pending))
    owner_name = _labels(request.obj).get(LABEL_OWNER_SUBNET)
    if owner_name and deps.cluster.enable_spider_subnet:
        owner = next((s for s in await list_subnets(deps.stores, pending) if s.name == owner_name), None)
        if owner is not None:
            errors += ippool_subnet_errors(spec, owner)
    return errors


def _addresses_changed(request: AdmissionRequest, spec: IPPoolSpec) -> bool:
    if request.old is None:
        return True
    try:
        old = parse_ippool_spec(request.old.get("spec"))
    except InvalidSpec:
        return True
    return (old.ips, old.exclude_ips) != (spec.ips, spec.exclude_ips) or _labels(request.old) != _labels(request.obj)


async def validate(deps: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        await _forget(deps, request)
        return Verdict()
    flags = deps.cluster
    try:
        spec = validate_ippool_spec(request.obj.get("spec") or {}, labels=_labels(request.obj),
                                    enable_ipv4=flags.enable_ipv4, enable_ipv6=flags.enable_ipv6)
    except InvalidSpec as invalid:
        return Verdict.deny(invalid.errors, kind=KIND, name=request.name)
    errors = _update_errors(request.old, spec, request.obj) if request.old is not None else []
    if not errors and _addresses_changed(request, spec):
        async def decide(pending: list[PendingEntry]) -> list[FieldError]:
            return await _peer_errors(deps, request, spec, pending)

        errors = await deps.ledger.admit(version=spec.ip_version, kind=KIND, name=request.name,
                                         spec=spec.to_dict(), decide=decide, record=not request.dry_run)
    return Verdict.deny(errors, kind=KIND, name=request.name) if errors else Verdict()


async def _forget(deps: WebhookDeps, request: AdmissionRequest) -> None:
    try:
        spec = parse_ippool_spec(request.obj.get("spec"))
    except InvalidSpec:
        return
    await deps.ledger.forget(version=spec.ip_version, kind=KIND, name=request.name)
