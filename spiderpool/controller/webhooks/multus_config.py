"""SpiderMultusConfig admission: upstream's defaults (mutate), upstream's rules (validate), one error naming the
field and the value. The NAD-name check reads the NetworkAttachmentDefinition of that name from the API server."""

from __future__ import annotations

from typing import Any

from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.core.multus_admission import multus_config_errors
from spiderpool.core.multus_defaults import default_multus_config
from spiderpool.core.multus_render import attachment_name
from spiderpool.core.multus_sync import smc_owner

KIND = "SpiderMultusConfig"


async def mutate(_: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    defaulted = default_multus_config(request.obj)
    patch: list[dict[str, Any]] = []
    if defaulted.get("spec") != request.obj.get("spec"):
        patch.append({"op": "add", "path": "/spec", "value": defaulted["spec"]})
    labels = defaulted["metadata"].get("labels")
    if labels is not None and labels != request.obj.get("metadata", {}).get("labels"):
        patch.append({"op": "add", "path": "/metadata/labels", "value": labels})
    return Verdict(patch=patch)


async def validate(deps: WebhookDeps, request: AdmissionRequest) -> Verdict:
    if request.operation == "DELETE":
        return Verdict()
    owner = None
    if deps.nads is not None:
        namespace = request.obj.get("metadata", {}).get("namespace", "")
        nad = await deps.nads.get(attachment_name(request.obj), namespace=namespace)
        owner = smc_owner(nad) if nad is not None else None
    old = request.old if request.operation == "UPDATE" else None
    errors = multus_config_errors(request.obj, old=old, existing_owner=owner)
    return Verdict.deny(errors, kind=KIND, name=request.name) if errors else Verdict()
