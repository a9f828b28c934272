"""SpiderCoordinator admission: upstream's defaults and finalizer (mutate, never refusing), upstream's validation
(``podCIDRType`` and ``podRPFilter`` required, CIDRs, routes, MAC prefix, txQueueLen, veth address and MTU)."""

from __future__ import annotations

from typing import Any

from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.core.coordinator_spec import coordinator_spec_errors, default_coordinator

KIND = "SpiderCoordinator"


async def mutate(_: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    defaulted = default_coordinator(request.obj)
    patch: list[dict[str, Any]] = []
    if defaulted.get("spec") != request.obj.get("spec"):
        patch.append({"op": "add", "path": "/spec", "value": defaulted["spec"]})
    finalizers = defaulted["metadata"].get("finalizers")
    if finalizers and finalizers != request.obj.get("metadata", {}).get("finalizers"):
        patch.append({"op": "add", "path": "/metadata/finalizers", "value": finalizers})
    return Verdict(patch=patch)


async def validate(_: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    errors = coordinator_spec_errors(request.obj.get("spec") or {}, require_optional=True)
    return Verdict.deny(errors, kind=KIND, name=request.name) if errors else Verdict()
