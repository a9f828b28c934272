"""What the controller does to keep a SpiderMultusConfig's NetworkAttachmentDefinition in sync (a decision, no I/O).

As upstream: create the NAD when missing (controlling ownerReference to the SpiderMultusConfig), overwrite its
annotations, ``spec.config`` and ownerReference on drift, wait while an old NAD is terminating. Beyond upstream
(**fix**), a NAD of that name that no SpiderMultusConfig owns, or that another one owns, is never touched: the
decision is ``refuse`` and the controller records a Warning Event on the SpiderMultusConfig.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from spiderpool.core.multus_render import NetworkAttachment, owner_reference

SMC_KIND: Final = "SpiderMultusConfig"
Action = Literal["create", "update", "none", "refuse", "wait"]


@dataclass(frozen=True, slots=True)
class NadDecision:
    action: Action
    body: Mapping[str, Any] | None = None  # the NAD to create, or the updated NAD (with its resourceVersion)
    reason: str = ""


def smc_owner(nad: Mapping[str, Any]) -> str | None:
    """The name of the SpiderMultusConfig among the NAD's owners, if any."""
    for ref in nad.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == SMC_KIND:
            return str(ref.get("name", ""))
    return None


def _controlled_by(nad: Mapping[str, Any], smc: Mapping[str, Any]) -> bool:
    uid = smc["metadata"].get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in nad.get("metadata", {}).get("ownerReferences") or [])


def plan_nad_sync(smc: Mapping[str, Any], rendered: NetworkAttachment, current: Mapping[str, Any] | None
                  ) -> NadDecision:
    """``current``: the NAD of ``rendered.name`` as read from the API server (None when it does not exist)."""
    if current is None:
        return NadDecision("create", body=rendered.body(owner=smc))
    meta = current.get("metadata", {})
    where = f"{rendered.namespace}/{rendered.name}"
    owner = smc_owner(current)
    if owner is None:
        return NadDecision("refuse", reason=f"NetworkAttachmentDefinition {where} exists and is not managed by any "
                                            "SpiderMultusConfig; it is left untouched (delete it, or name another "
                                            "one with the multus.spidernet.io/cr-name annotation)")
    if owner != smc["metadata"]["name"]:
        return NadDecision("refuse", reason=f"NetworkAttachmentDefinition {where} is managed by SpiderMultusConfig "
                                            f"{rendered.namespace}/{owner}")
    if meta.get("deletionTimestamp"):
        return NadDecision("wait", reason=f"NetworkAttachmentDefinition {where} is terminating")
    config = (current.get("spec") or {}).get("config") or ""
    annotations = meta.get("annotations") or {}
    if config == rendered.config and annotations == dict(rendered.annotations) and _controlled_by(current, smc):
        return NadDecision("none")
    return NadDecision("update", body=_updated(current, rendered, smc))


def _updated(current: Mapping[str, Any], rendered: NetworkAttachment, smc: Mapping[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(dict(current))
    meta = body.setdefault("metadata", {})
    meta["annotations"] = dict(rendered.annotations)
    others = [ref for ref in meta.get("ownerReferences") or [] if ref.get("kind") != SMC_KIND]
    meta["ownerReferences"] = [*others, owner_reference(smc)]
    body["spec"] = {**(body.get("spec") or {}), "config": rendered.config}
    return body
