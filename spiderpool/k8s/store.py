"""The store for the spiderpool kinds: create / get / list / replace / delete, and compare-and-swap status writes.

Every write that changes an existing object carries the ``metadata.resourceVersion`` it was derived from, so the API
server applies it only if nobody wrote in between (compare-and-swap).  A lost race is reported as data
(:class:`Conflicted` from :meth:`CustomObjectStore.swap_status`) or as a typed :class:`Conflict` error, never as a
generic HTTP failure.  Objects go in and come out as the plain JSON dicts typed in :mod:`spiderpool.k8s.bodies`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    StoreError,
    TooManyRequests,
    Transient,
    Unauthorized,
    Unavailable,
    error_for_status,
)
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.bodies import (
    SpiderCoordinator,
    SpiderEndpoint,
    SpiderIPPool,
    SpiderMultusConfig,
    SpiderReservedIP,
    SpiderSubnet,
)
from spiderpool.k8s.crd_schema import (
    API_VERSION,
    COORDINATOR,
    ENDPOINT,
    GROUP,
    IPPOOL,
    KINDS,
    MULTUS_CONFIG,
    RESERVED_IP,
    SUBNET,
    VERSION,
    CrdKind,
)
from spiderpool.k8s.routes import ROUTES, ObjectRoute

# The kinds' names and scopes come from the CRD schema (one source), so the store cannot drift from the installed CRDs.
__all__ = [
    "API_VERSION",
    "COORDINATOR",
    "ENDPOINT",
    "GROUP",
    "IPPOOL",
    "KINDS",
    "MULTUS_CONFIG",
    "RESERVED_IP",
    "SUBNET",
    "VERSION",
    "AccessDenied",
    "AlreadyExists",
    "Conflict",
    "Conflicted",
    "CrdKind",
    "CustomObjectStore",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ObjectList",
    "ServerError",
    "SpiderStores",
    "StoreError",
    "Swapped",
    "TooManyRequests",
    "Transient",
    "Unauthorized",
    "Unavailable",
    "error_for_status",
]

BodyT = TypeVar("BodyT", bound=Mapping[str, Any])


# The errors live in spiderpool.k8s.api_errors (the one mapping of answers to types); they are re-exported here.


@dataclass(frozen=True, slots=True)
class Swapped(Generic[BodyT]):
    """The compare-and-swap won; ``object`` is the object as stored, with its new resourceVersion."""

    object: BodyT


@dataclass(frozen=True, slots=True)
class Conflicted:
    """The compare-and-swap lost; read the object again and re-derive the write from it."""

    kind: str
    name: str
    stale_resource_version: str


@dataclass(frozen=True, slots=True)
class ObjectList(Generic[BodyT]):
    items: list[BodyT]
    resource_version: str


# ------------------------------------------------------------------------------------------------------------ store


class CustomObjectStore(Generic[BodyT]):
    """CRUD and compare-and-swap writes for one custom kind.

    ``request_timeout`` bounds every request, so a hung API server turns into a :class:`StoreError` instead of a
    caller that waits forever.
    """

    def __init__(self, api: ApiClient, kind: CrdKind, *, request_timeout: float = 30.0) -> None:
        self.kind = kind
        self._api = api
        self._route: ObjectRoute = ROUTES[(API_VERSION, kind.kind)]
        self._timeout = request_timeout

    def _what(self, verb: str, name: str, namespace: str | None) -> str:
        where = f"{namespace}/{name}" if namespace else name
        return f"{verb} {self.kind.kind} {where}"

    async def _request(self, method: str, path: str, *, what: str, resource_version: str = "", **options: Any
                       ) -> dict[str, Any]:
        return await request_json(self._api, method, path, what=what, timeout=self._timeout,
                                  resource_version=resource_version, **options)

    def _with_type(self, body: BodyT) -> dict[str, Any]:
        """The body with ``apiVersion``/``kind`` filled in, refusing a body that names another kind."""
        for field, expected in (("apiVersion", API_VERSION), ("kind", self.kind.kind)):
            given = body.get(field)
            if given is not None and given != expected:
                raise ValueError(f"{field}: expected {expected!r} for this store, got {given!r}")
        return {**body, "apiVersion": API_VERSION, "kind": self.kind.kind}

    async def create(self, body: BodyT) -> BodyT:
        meta = _metadata(body)
        name, namespace = meta.get("name", ""), meta.get("namespace")
        path = self._route.collection(namespace)
        created = await self._request("POST", path, what=self._what("create", name, namespace),
                                      body=self._with_type(body))
        return cast(BodyT, created)

    async def get(self, name: str, *, namespace: str | None = None) -> BodyT:
        """A direct (uncached) read: use it for fresh state after a conflict, not on a hot path."""
        found = await self._request("GET", self._route.item(name, namespace), what=self._what("get", name, namespace))
        return cast(BodyT, found)

    async def list(
        self, *, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> ObjectList[BodyT]:
        """All objects (of ``namespace`` for namespaced kinds, of every namespace when it is None)."""
        if namespace and not self.kind.namespaced:
            raise ValueError(f"metadata.namespace: {self.kind.kind} is cluster-scoped, got {namespace!r}")
        query = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None}
        found = await self._request("GET", self._route.listing(namespace), what=self._what("list", "*", namespace),
                                    query=query)
        return ObjectList(items=found.get("items") or [], resource_version=found["metadata"]["resourceVersion"])

    async def replace(self, body: BodyT) -> BodyT:
        """Replace the whole object (status too, for kinds without a status subresource); compare-and-swap."""
        name, namespace, version = _cas_identity(body)
        stored = await self._request("PUT", self._route.item(name, namespace), body=self._with_type(body),
                                     what=self._what("replace", name, namespace), resource_version=version)
        return cast(BodyT, stored)

    async def replace_status(self, body: BodyT) -> BodyT:
        """Write ``body["status"]`` through the status subresource if ``resourceVersion`` is still current.

        Raises :class:`Conflict` when it is not; :meth:`swap_status` reports that as data instead.
        """
        if not self.kind.status_subresource:
            raise ValueError(f"status: {self.kind.kind} has no status subresource; use replace()")
        name, namespace, version = _cas_identity(body)
        path = f"{self._route.item(name, namespace)}/status"
        stored = await self._request("PUT", path, body=self._with_type(body), resource_version=version,
                                     what=self._what("update status of", name, namespace))
        return cast(BodyT, stored)

    async def swap_status(self, body: BodyT) -> Swapped[BodyT] | Conflicted:
        """Compare-and-swap the status; a lost race comes back as :class:`Conflicted`, every other failure raises."""
        try:
            return Swapped(await self.replace_status(body))
        except Conflict as conflict:
            return Conflicted(self.kind.kind, _metadata(body).get("name", ""), conflict.stale_resource_version)

    async def delete(
        self, name: str, *, namespace: str | None = None, resource_version: str | None = None, uid: str | None = None
    ) -> bool:
        """Delete; False when the object was already gone.  ``resource_version``/``uid`` make it conditional."""
        preconditions = {key: value for key, value in (("resourceVersion", resource_version), ("uid", uid)) if value}
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
        try:
            await self._request("DELETE", self._route.item(name, namespace), body=options,
                                 what=self._what("delete", name, namespace), resource_version=resource_version or "")
        except NotFound:
            return False
        return True


def _metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        raise ValueError(f"metadata: expected an object, got {meta!r}")
    return meta


def _cas_identity(body: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """Name, namespace and the resourceVersion a compare-and-swap write is conditioned on (required)."""
    meta = _metadata(body)
    name, version = meta.get("name"), meta.get("resourceVersion")
    if not name:
        raise ValueError(f"metadata.name: required for a write to an existing object, got {name!r}")
    if not version:
        raise ValueError(f"metadata.resourceVersion: required for compare-and-swap on {name}, got {version!r}")
    return name, meta.get("namespace"), version


class SpiderStores:
    """One store per spiderpool kind, sharing one ApiClient."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 30.0) -> None:
        timeout = request_timeout
        self.ippools = CustomObjectStore[SpiderIPPool](api, IPPOOL, request_timeout=timeout)
        self.subnets = CustomObjectStore[SpiderSubnet](api, SUBNET, request_timeout=timeout)
        self.reserved_ips = CustomObjectStore[SpiderReservedIP](api, RESERVED_IP, request_timeout=timeout)
        self.endpoints = CustomObjectStore[SpiderEndpoint](api, ENDPOINT, request_timeout=timeout)
        self.multus_configs = CustomObjectStore[SpiderMultusConfig](api, MULTUS_CONFIG, request_timeout=timeout)
        self.coordinators = CustomObjectStore[SpiderCoordinator](api, COORDINATOR, request_timeout=timeout)
