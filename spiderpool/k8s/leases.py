"""``coordination.k8s.io/v1`` Leases: read, create, and compare-and-swap replace (plain JSON).

Leader election and the webhooks' per-family admission ledger both build on the Lease's resourceVersion: a replace
carrying a stale version fails with ``Conflict``, so two writers can never both believe they won.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import AlreadyExists, Conflict, NotFound
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.routes import ROUTES

__all__ = ["AlreadyExists", "Conflict", "LeaseStore", "NotFound", "micro_time"]


def micro_time(moment: datetime | None = None) -> str:
    """Kubernetes' MicroTime text (RFC 3339, microseconds, UTC)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseStore:
    """The Leases of one namespace."""

    def __init__(self, api: ApiClient, *, namespace: str, request_timeout: float = 10.0) -> None:
        self.namespace = namespace
        self._api = api
        self._timeout = request_timeout
        self._collection = ROUTES[("coordination.k8s.io/v1", "Lease")].collection(namespace)

    def _what(self, verb: str, name: str) -> str:
        return f"{verb} Lease {self.namespace}/{name}"

    async def get(self, name: str) -> dict[str, Any]:
        return await request_json(self._api, "GET", f"{self._collection}/{name}", what=self._what("get", name),
                                  timeout=self._timeout)

    async def create(self, name: str, *, spec: dict[str, Any], annotations: dict[str, str] | None = None
                     ) -> dict[str, Any]:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": self.namespace, "annotations": annotations or {}},
                "spec": spec}
        return await request_json(self._api, "POST", self._collection, what=self._what("create", name), body=body,
                                  timeout=self._timeout)

    async def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Compare-and-swap on ``metadata.resourceVersion`` (required); ``Conflict`` when someone wrote first."""
        meta = lease["metadata"]
        version = str(meta.get("resourceVersion") or "")
        if not version:
            raise ValueError(f"metadata.resourceVersion: required to replace Lease {meta.get('name')}, got ''")
        return await request_json(self._api, "PUT", f"{self._collection}/{meta['name']}", body=lease,
                                  what=self._what("replace", meta["name"]), timeout=self._timeout,
                                  resource_version=version)

    async def delete(self, name: str) -> bool:
        try:
            await request_json(self._api, "DELETE", f"{self._collection}/{name}", what=self._what("delete", name),
                               timeout=self._timeout)
        except NotFound:
            return False
        return True
