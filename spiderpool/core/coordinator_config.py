"""The body of upstream's agent ``GET /v1/coordinator/config`` (``models.CoordinatorConfig``), as go-swagger emits it.

Field order and ``omitempty`` follow the generated model: ``hijackCIDR``, ``policyRoutes`` and ``serviceCIDR`` are
``null`` when unset, zero integers and empty strings are left out, ``overlayPodCIDR`` is ``[]`` when unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from spiderpool.core.coordinator_spec import SYNCED

DEFAULT_ROUTE_NIC: Final = "ipam.spidernet.io/default-route-nic"


class CoordinatorNotReady(Exception):
    """Upstream answers 500 with this message (a JSON string)."""


def ready_coordinator(coordinators: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The first SpiderCoordinator, which must be Synced (as upstream: the list's first item)."""
    if not coordinators:
        raise CoordinatorNotReady("coordinator config not found")
    first = coordinators[0]
    if (first.get("status") or {}).get("phase") != SYNCED:
        raise CoordinatorNotReady(f"spidercoordinator: {first['metadata']['name']} no ready")
    return first


def coordinator_config(coordinator: Mapping[str, Any], pod_annotations: Mapping[str, str]) -> dict[str, Any]:
    spec: Mapping[str, Any] = coordinator.get("spec") or {}
    status: Mapping[str, Any] = coordinator.get("status") or {}
    nic = pod_annotations.get(DEFAULT_ROUTE_NIC, spec.get("podDefaultRouteNIC") or "")
    routes = [_drop_empty({"dst": r.get("dst", ""), "gw": r.get("gw", "")}) for r in spec.get("policyRoutes") or []]
    fields: dict[str, Any] = {
        "hijackCIDR": spec.get("hijackCIDR"),
        "hostRuleTable": spec.get("hostRuleTable") or 0,
        "mode": spec.get("mode"),
        "overlayPodCIDR": status.get("overlayPodCIDR") or [],
        "podDefaultRouteNIC": nic,
        "podMACPrefix": spec.get("podMACPrefix") or "",
        "podRPFilter": spec.get("podRPFilter") or 0,
        "policyRoutes": routes or None,
        # upstream's handler means to default this to [] but defaults overlayPodCIDR instead: null stays null
        "serviceCIDR": status.get("serviceCIDR"),
        "tunePodRoutes": spec.get("tunePodRoutes"),
        "txQueueLen": spec.get("txQueueLen") or 0,
        "vethLinkAddress": spec.get("vethLinkAddress") or "",
        "vethMTU": spec.get("vethMTU") or 0,
    }
    omit_empty = ("hostRuleTable", "podDefaultRouteNIC", "podMACPrefix", "podRPFilter", "txQueueLen",
                  "vethLinkAddress", "vethMTU")
    return {key: value for key, value in fields.items() if key not in omit_empty or value}


def _drop_empty(fields: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in fields.items() if value}
