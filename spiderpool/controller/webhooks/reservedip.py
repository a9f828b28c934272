"""SpiderReservedIP admission: ipVersion from ``ips[0]`` and merged ranges; immutable ipVersion; beyond upstream, an
address allocated right now cannot be reserved (the error names the pool and the pod)."""

from __future__ import annotations

from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.peers import list_pools
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.pool_admission import reserved_allocated_errors
from spiderpool.core.pool_mutation import mutate_reservedip
from spiderpool.core.specs import parse_reservedip_spec
from spiderpool.core.validation import validate_reservedip_spec

KIND = "SpiderReservedIP"


async def mutate(_: WebhookDeps, request: AdmissionRequest) -> Verdict:
    return Verdict() if request.operation == "DELETE" else Verdict(patch=mutate_reservedip(request.obj))


async def validate(deps: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    try:
        spec = validate_reservedip_spec(request.obj.get("spec") or {}, enable_ipv4=deps.cluster.enable_ipv4,
                                        enable_ipv6=deps.cluster.enable_ipv6)
    except InvalidSpec as invalid:
        return Verdict.deny(invalid.errors, kind=KIND, name=request.name)
    errors: list[FieldError] = []
    if request.old is not None:
        try:
            old_version = parse_reservedip_spec(request.old.get("spec")).ip_version
        except InvalidSpec:
            old_version = spec.ip_version
        if old_version != spec.ip_version:
            errors.append(FieldError(field="spec.ipVersion", value=spec.ip_version, reason="is immutable"))
    errors += reserved_allocated_errors(spec, await list_pools(deps.stores))
    return Verdict.deny(errors, kind=KIND, name=request.name) if errors else Verdict()
