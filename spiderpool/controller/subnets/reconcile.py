"""One reconcile pass: adopt manual pools, bring every live application's auto-pools to size, retire the pools
nobody wants, then write each subnet's status. Level-triggered: a pass reads everything afresh and is safe to
repeat, so a failure (a conflict, a full subnet) is logged and retried by the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spiderpool.controller.subnets.adoption import adopt_manual_pools, sync_subnet_status
from spiderpool.controller.subnets.auto_pools import AutoPoolReconciler
from spiderpool.controller.subnets.snapshot import ClusterSnapshot
from spiderpool.core.errors import PoolSelectionError
from spiderpool.core.subnet_planning import (
    LABEL_APP_KIND,
    LABEL_APP_NAME,
    LABEL_APP_NAMESPACE,
    LABEL_SUBNET,
    AppRef,
    AutoPoolWant,
    ResizeError,
    app_replicas,
    plan_app_pools,
    pod_template,
)
from spiderpool.core.validation import is_auto_pool
from spiderpool.k8s.store import SpiderStores, StoreError

log = logging.getLogger(__name__)

# Kinds whose objects are not top controllers when a controller of this kind owns them (upstream skips them).
_PARENT_KINDS = {"ReplicaSet": "Deployment", "Job": "CronJob"}


@dataclass(frozen=True, slots=True)
class AppObject:
    """An application object as a watch cache holds it, with the apiVersion and kind its list items lack."""

    api_version: str
    kind: str
    body: Mapping[str, Any]


@dataclass(slots=True)
class PassOutcome:
    wanted: set[str] = field(default_factory=set)
    # Applications whose annotations could not be read: their pools are left alone rather than retired.
    protected: set[tuple[str, str, str]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def app_ref(app: AppObject) -> AppRef | None:
    """The application, when it is a live top controller whose pods are not on the host network."""
    meta = app.body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    parent = _PARENT_KINDS.get(app.kind)
    owners = meta.get("ownerReferences") or []
    if parent and any(o.get("controller") and o.get("kind") == parent for o in owners):
        return None
    if (pod_template(app.kind, app.body).get("spec") or {}).get("hostNetwork"):
        return None
    return AppRef(api_version=app.api_version, kind=app.kind, namespace=str(meta.get("namespace", "")),
                  name=str(meta.get("name", "")), uid=str(meta.get("uid", "")))


def app_wants(app: AppObject, *, default_flexible: int, enable_ipv4: bool, enable_ipv6: bool
              ) -> tuple[AutoPoolWant, ...]:
    annotations = (pod_template(app.kind, app.body).get("metadata") or {}).get("annotations") or {}
    return plan_app_pools(annotations, replicas=app_replicas(app.kind, app.body), default_flexible=default_flexible,
                          enable_ipv4=enable_ipv4, enable_ipv6=enable_ipv6)


@dataclass(frozen=True, slots=True)
class PassSettings:
    default_flexible: int = 1
    enable_ipv4: bool = True
    enable_ipv6: bool = True


async def reconcile_once(stores: SpiderStores, apps: Iterable[AppObject], *, settings: PassSettings) -> PassOutcome:
    snapshot = await ClusterSnapshot.read(stores)
    outcome = PassOutcome()
    await _guard(outcome, "adoption", adopt_manual_pools(stores, snapshot))
    pools = AutoPoolReconciler(stores, snapshot)
    for app in apps:
        ref = app_ref(app)
        if ref is None:
            continue
        try:
            wants = app_wants(app, default_flexible=settings.default_flexible, enable_ipv4=settings.enable_ipv4,
                              enable_ipv6=settings.enable_ipv6)
        except PoolSelectionError as error:
            outcome.protected.add((ref.kind, ref.namespace, ref.name))
            outcome.errors.append(f"{ref.kind} {ref.namespace}/{ref.name}: {error}")
            log.error("%s %s/%s: auto-pools not reconciled: %s", ref.kind, ref.namespace, ref.name, error)
            continue
        for want in wants:
            outcome.wanted.add(pools.pool_name(ref, want))
            await _guard(outcome, f"auto-pool of {ref.kind} {ref.namespace}/{ref.name}", pools.ensure(ref, want))
    for pool in list(snapshot.pools.values()):
        if _retirable(pool.labels, deleting=pool.deleting, name=pool.name, outcome=outcome):
            await _guard(outcome, f"retiring auto-pool {pool.name}", pools.retire(pool))
    pending = outcome.wanted - set(snapshot.pools)
    for subnet in list(snapshot.subnets.values()):
        await _guard(outcome, f"status of SpiderSubnet {subnet.name}",
                     sync_subnet_status(stores, snapshot, subnet, pending=pending))
    return outcome


def _retirable(labels: Mapping[str, str], *, deleting: bool, name: str, outcome: PassOutcome) -> bool:
    if deleting or not is_auto_pool(labels) or LABEL_SUBNET not in labels or name in outcome.wanted:
        return False
    app = (labels.get(LABEL_APP_KIND, ""), labels.get(LABEL_APP_NAMESPACE, ""), labels.get(LABEL_APP_NAME, ""))
    return app not in outcome.protected


async def _guard(outcome: PassOutcome, what: str, step: Any) -> None:
    """Run one step; an expected failure is logged and left to the next pass instead of ending this one."""
    try:
        await step
    except (ResizeError, StoreError, ValueError) as error:
        outcome.errors.append(f"{what}: {error}")
        log.warning("%s: %s (retried on the next pass)", what, error)
