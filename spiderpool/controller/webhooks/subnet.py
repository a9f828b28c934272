"""SpiderSubnet admission: mutation (finalizer, label, canonical spec) and validation."""

from __future__ import annotations

from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.ledger import PendingEntry
from spiderpool.controller.webhooks.peers import list_pools, list_subnets
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.pool_admission import subnet_peer_errors, subnet_pool_errors, terminating_spec_errors
from spiderpool.core.pool_mutation import mutate_subnet
from spiderpool.core.specs import SubnetSpec, parse_subnet_spec
from spiderpool.core.validation import validate_subnet_spec

KIND = "SpiderSubnet"


async def mutate(_: WebhookDeps, request: AdmissionRequest) -> Verdict:
    return Verdict() if request.operation == "DELETE" else Verdict(patch=mutate_subnet(request.obj))


def _update_errors(request: AdmissionRequest, new: SubnetSpec) -> list[FieldError]:
    assert request.old is not None
    if request.old.get("metadata", {}).get("deletionTimestamp") is not None:
        errors = terminating_spec_errors(request.old.get("spec"), request.obj.get("spec"))
        if errors:
            return errors
    old = parse_subnet_spec(request.old.get("spec"))
    errors = []
    if old.ip_version != new.ip_version:
        errors.append(FieldError(field="spec.ipVersion", value=new.ip_version, reason="is immutable"))
    if old.subnet != new.subnet:
        errors.append(FieldError(field="spec.subnet", value=new.subnet.text, reason="is immutable"))
    return errors


async def validate(deps: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        try:
            version = parse_subnet_spec(request.obj.get("spec")).ip_version
        except InvalidSpec:
            return Verdict()
        await deps.ledger.forget(version=version, kind=KIND, name=request.name)
        return Verdict()
    flags = deps.cluster
    try:
        spec = validate_subnet_spec(request.obj.get("spec") or {}, enable_ipv4=flags.enable_ipv4,
                                    enable_ipv6=flags.enable_ipv6)
    except InvalidSpec as invalid:
        return Verdict.deny(invalid.errors, kind=KIND, name=request.name)
    errors = _update_errors(request, spec) if request.old is not None else []
    if not errors:
        async def decide(pending: list[PendingEntry]) -> list[FieldError]:
            found = subnet_peer_errors(request.name, spec, await list_subnets(deps.stores, pending))
            return found + subnet_pool_errors(spec, await list_pools(deps.stores, pending))

        errors = await deps.ledger.admit(version=spec.ip_version, kind=KIND, name=request.name,
                                         spec=spec.to_dict(), decide=decide, record=not request.dry_run)
    return Verdict.deny(errors, kind=KIND, name=request.name) if errors else Verdict()
