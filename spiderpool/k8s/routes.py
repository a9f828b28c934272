"""Where the API server serves each kind this package reads or writes: one table of routes, one way to build a path.

``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` for the others (the spiderpool kinds come from the
CRD schema, so the routes cannot drift from the installed CRDs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from spiderpool.k8s.crd_schema import GROUP, KINDS, VERSION

__all__ = ["ROUTES", "ObjectRoute", "route_of"]


@dataclass(frozen=True, slots=True)
class ObjectRoute:
    """The paths of one kind: its collection (of one namespace, or of all), and an object of it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def _prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    def collection(self, namespace: str | None) -> str:
        if self.namespaced:
            if not namespace:
                raise ValueError(f"metadata.namespace: {self.kind} is namespaced, got {namespace!r}")
            return f"{self._prefix}/namespaces/{namespace}/{self.plural}"
        if namespace:
            raise ValueError(f"metadata.namespace: {self.kind} is cluster-scoped, got {namespace!r}")
        return f"{self._prefix}/{self.plural}"

    def listing(self, namespace: str | None = None) -> str:
        """The collection to list or watch: of ``namespace``, or of every namespace when it is None."""
        if self.namespaced and not namespace:
            return f"{self._prefix}/{self.plural}"
        return self.collection(namespace)

    def item(self, name: str, namespace: str | None) -> str:
        if not name:
            raise ValueError(f"metadata.name: required for a {self.kind}, got {name!r}")
        return f"{self.collection(namespace)}/{name}"


def _routes() -> dict[tuple[str, str], ObjectRoute]:
    builtin = [
        ObjectRoute("v1", "Namespace", "namespaces", namespaced=False),
        ObjectRoute("v1", "Node", "nodes", namespaced=False),
        ObjectRoute("v1", "Pod", "pods", namespaced=True),
        ObjectRoute("v1", "Event", "events", namespaced=True),
        ObjectRoute("apps/v1", "Deployment", "deployments", namespaced=True),
        ObjectRoute("apps/v1", "ReplicaSet", "replicasets", namespaced=True),
        ObjectRoute("apps/v1", "StatefulSet", "statefulsets", namespaced=True),
        ObjectRoute("apps/v1", "DaemonSet", "daemonsets", namespaced=True),
        ObjectRoute("batch/v1", "Job", "jobs", namespaced=True),
        ObjectRoute("batch/v1", "CronJob", "cronjobs", namespaced=True),
        ObjectRoute("coordination.k8s.io/v1", "Lease", "leases", namespaced=True),
        ObjectRoute("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                    "mutatingwebhookconfigurations", namespaced=False),
        ObjectRoute("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                    "validatingwebhookconfigurations", namespaced=False),
        ObjectRoute("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False),
        ObjectRoute("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions", True),
    ]
    spiderpool = [ObjectRoute(f"{GROUP}/{VERSION}", kind.kind, kind.plural, kind.namespaced) for kind in KINDS]
    return {(route.api_version, route.kind): route for route in builtin + spiderpool}


ROUTES: Final[Mapping[tuple[str, str], ObjectRoute]] = _routes()


def route_of(body: Mapping[str, Any]) -> ObjectRoute:
    """The route of a manifest's ``apiVersion``/``kind``; ValueError naming both when the kind is not served here."""
    key = (str(body.get("apiVersion", "")), str(body.get("kind", "")))
    try:
        return ROUTES[key]
    except KeyError:
        known = ", ".join(f"{v} {k}" for v, k in ROUTES)
        raise ValueError(f"apiVersion/kind: {key[0]!r} {key[1]!r} is not one of: {known}") from None
