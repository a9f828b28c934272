"""The controller's decision for a SpiderMultusConfig's NAD (pure): create, update, nothing, refuse, wait."""

from __future__ import annotations

import copy
from typing import Any

from spiderpool.core.multus_defaults import default_multus_config
from spiderpool.core.multus_render import render_network_attachment
from spiderpool.core.multus_sync import plan_nad_sync

SMC: dict[str, Any] = default_multus_config({
    "metadata": {"name": "net", "namespace": "ns", "uid": "u-1", "annotations": {"x": "y"}},
    "spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0"]}}})
RENDERED = render_network_attachment(SMC)


def stored(**meta: Any) -> dict[str, Any]:
    body = RENDERED.body(owner=SMC)
    body["metadata"].update({"resourceVersion": "7", "uid": "nad-1", **meta})
    return body


def test_smc08_decisions() -> None:
    """SMC08: missing -> create (controlling owner); identical -> nothing; config, annotation or owner drift ->
    update keeping resourceVersion and foreign owners; no SpiderMultusConfig owner, or another one -> refuse;
    terminating -> wait."""
    created = plan_nad_sync(SMC, RENDERED, None)
    assert created.action == "create"
    assert created.body is not None
    assert created.body["metadata"]["ownerReferences"] == [
        {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderMultusConfig", "name": "net", "uid": "u-1",
         "controller": True, "blockOwnerDeletion": True}]
    assert plan_nad_sync(SMC, RENDERED, stored()).action == "none"
    drifted = stored()
    drifted["spec"]["config"] = "{}"
    drifted["metadata"]["annotations"] = {"x": "z"}
    drifted["metadata"]["ownerReferences"].append({"kind": "Other", "name": "o", "uid": "o-1"})
    update = plan_nad_sync(SMC, RENDERED, drifted)
    assert update.action == "update"
    assert update.body is not None
    assert update.body["spec"]["config"] == RENDERED.config
    assert update.body["metadata"]["annotations"] == {"x": "y"}
    assert update.body["metadata"]["resourceVersion"] == "7"
    assert [ref["kind"] for ref in update.body["metadata"]["ownerReferences"]] == ["Other", "SpiderMultusConfig"]
    recreated_owner = copy.deepcopy(SMC)
    recreated_owner["metadata"]["uid"] = "u-2"  # the same name re-created: the NAD is re-owned
    assert plan_nad_sync(recreated_owner, RENDERED, stored()).action == "update"
    foreign = stored(ownerReferences=[])
    refused = plan_nad_sync(SMC, RENDERED, foreign)
    assert refused.action == "refuse"
    assert "not managed by any SpiderMultusConfig" in refused.reason
    other = stored(ownerReferences=[{"kind": "SpiderMultusConfig", "name": "other", "uid": "u-9"}])
    assert "managed by SpiderMultusConfig ns/other" in plan_nad_sync(SMC, RENDERED, other).reason
    assert plan_nad_sync(SMC, RENDERED, stored(deletionTimestamp="2026-01-01T00:00:00Z")).action == "wait"
