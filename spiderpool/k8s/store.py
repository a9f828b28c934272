"""The store for the spiderpool kinds: create / get / list / replace / delete, and compare-and-swap status writes.

Every write that changes an existing object carries the ``metadata.resourceVersion`` it was derived from, so the API
server applies it only if nobody wrote in between (compare-and-swap).  A lost race is reported as data
(:class:`Conflicted` from :meth:`CustomObjectStore.swap_status`) or as a typed :class:`Conflict` error, never as a
generic HTTP failure.  Objects go in and come out as the plain JSON dicts typed in :mod:`spiderpool.k8s.bodies`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast

import orjson
from kubernetes_asyncio.client import ApiClient, CustomObjectsApi, V1DeleteOptions, V1Preconditions
from kubernetes_asyncio.client.exceptions import ApiException

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
    "AlreadyExists",
    "Conflict",
    "Conflicted",
    "CrdKind",
    "CustomObjectStore",
    "Invalid",
    "NotFound",
    "ObjectList",
    "SpiderStores",
    "StoreError",
    "Swapped",
    "error_for_status",
]

BodyT = TypeVar("BodyT", bound=Mapping[str, Any])


# ------------------------------------------------------------------------------------------------------------ errors


class StoreError(Exception):
    """An API request about one object failed; ``status`` is the HTTP code (0 when no response came back)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Invalid(StoreError):
    """The API server rejected the body (HTTP 422); the message carries the server's field errors."""


class Conflict(StoreError):
    """A compare-and-swap lost: the object changed after ``stale_resource_version`` was read."""

    def __init__(self, message: str, *, stale_resource_version: str) -> None:
        super().__init__(message, status=409)
        self.stale_resource_version = stale_resource_version


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


def _api_message(exc: ApiException) -> tuple[str, str]:
    """The ``reason`` and ``message`` of the Status body the API server sends with an error, when it sent one."""
    try:
        status = orjson.loads(exc.body) if exc.body else {}
    except orjson.JSONDecodeError:
        return "", str(exc.body)[:500]
    if not isinstance(status, dict):
        return "", str(status)[:500]
    return str(status.get("reason", "")), str(status.get("message", exc.reason))


def error_for_status(status: int, *, reason: str, message: str, what: str, resource_version: str = "") -> StoreError:
    """The typed error for an API server response with HTTP ``status`` and its Status ``reason`` and ``message``.

    ``what`` names the request; ``resource_version`` is the one a lost compare-and-swap was based on.
    """
    detail = f"{what}: HTTP {status} {reason}: {message}"
    if status == 404:
        return NotFound(detail, status=status)
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(detail, status=status)
    if status == 409:
        return Conflict(detail, stale_resource_version=resource_version)
    if status == 422:
        return Invalid(detail, status=status)
    return StoreError(detail, status=status)


def _translate(exc: ApiException, *, what: str, resource_version: str | None = None) -> StoreError:
    reason, message = _api_message(exc)
    return error_for_status(int(exc.status or 0), reason=reason, message=message, what=what,
                            resource_version=resource_version or "")


# ------------------------------------------------------------------------------------------------------------ store


class CustomObjectStore(Generic[BodyT]):
    """CRUD and compare-and-swap writes for one custom kind.

    ``request_timeout`` bounds every request, so a hung API server turns into a :class:`StoreError` instead of a
    caller that waits forever.
    """

    def __init__(self, api: ApiClient, kind: CrdKind, *, request_timeout: float = 30.0) -> None:
        self.kind = kind
        self._api = CustomObjectsApi(api)
        self._timeout = request_timeout

    def _what(self, verb: str, name: str, namespace: str | None) -> str:
        where = f"{namespace}/{name}" if namespace else name
        return f"{verb} {self.kind.kind} {where}"

    def _method(self, operation: str, namespace: str | None, *, status: bool = False) -> Callable[..., Awaitable[Any]]:
        """The generated client call for ``operation`` at this kind's scope, group/version/(namespace)/plural bound."""
        if self.kind.namespaced and not namespace:
            raise ValueError(f"metadata.namespace: {self.kind.kind} is namespaced, got {namespace!r}")
        if not self.kind.namespaced and namespace:
            raise ValueError(f"metadata.namespace: {self.kind.kind} is cluster-scoped, got {namespace!r}")
        suffix = "_status" if status else ""
        if namespace:
            method = getattr(self._api, f"{operation}_namespaced_custom_object{suffix}")
            return partial(method, GROUP, VERSION, namespace, self.kind.plural)
        method = getattr(self._api, f"{operation}_cluster_custom_object{suffix}")
        return partial(method, GROUP, VERSION, self.kind.plural)

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
        call = self._method("create", namespace)
        try:
            created = await call(self._with_type(body), _request_timeout=self._timeout)
        except ApiException as exc:
            raise _translate(exc, what=self._what("create", name, namespace)) from exc
        return cast(BodyT, created)

    async def get(self, name: str, *, namespace: str | None = None) -> BodyT:
        """A direct (uncached) read: use it for fresh state after a conflict, not on a hot path."""
        call = self._method("get", namespace)
        try:
            found = await call(name, _request_timeout=self._timeout)
        except ApiException as exc:
            raise _translate(exc, what=self._what("get", name, namespace)) from exc
        return cast(BodyT, found)

    async def list(
        self, *, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> ObjectList[BodyT]:
        """All objects (of ``namespace`` for namespaced kinds, of every namespace when it is None)."""
        kwargs: dict[str, Any] = {"_request_timeout": self._timeout}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        try:
            if self.kind.namespaced and not namespace:
                all_namespaces = self._api.list_custom_object_for_all_namespaces
                found = await all_namespaces(GROUP, VERSION, self.kind.plural, **kwargs)
            else:
                found = await self._method("list", namespace)(**kwargs)
        except ApiException as exc:
            raise _translate(exc, what=self._what("list", "*", namespace)) from exc
        return ObjectList(items=found.get("items") or [], resource_version=found["metadata"]["resourceVersion"])

    async def replace(self, body: BodyT) -> BodyT:
        """Replace the whole object (status too, for kinds without a status subresource); compare-and-swap."""
        name, namespace, version = _cas_identity(body)
        call = self._method("replace", namespace)
        try:
            stored = await call(name, self._with_type(body), _request_timeout=self._timeout)
        except ApiException as exc:
            raise _translate(exc, what=self._what("replace", name, namespace), resource_version=version) from exc
        return cast(BodyT, stored)

    async def replace_status(self, body: BodyT) -> BodyT:
        """Write ``body["status"]`` through the status subresource if ``resourceVersion`` is still current.

        Raises :class:`Conflict` when it is not; :meth:`swap_status` reports that as data instead.
        """
        if not self.kind.status_subresource:
            raise ValueError(f"status: {self.kind.kind} has no status subresource; use replace()")
        name, namespace, version = _cas_identity(body)
        call = self._method("replace", namespace, status=True)
        try:
            stored = await call(name, self._with_type(body), _request_timeout=self._timeout)
        except ApiException as exc:
            what = self._what("update status of", name, namespace)
            raise _translate(exc, what=what, resource_version=version) from exc
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
        call = self._method("delete", namespace)
        options = V1DeleteOptions(preconditions=V1Preconditions(resource_version=resource_version, uid=uid))
        try:
            await call(name, body=options, _request_timeout=self._timeout)
        except ApiException as exc:
            error = _translate(exc, what=self._what("delete", name, namespace), resource_version=resource_version)
            if isinstance(error, NotFound):
                return False
            raise error from exc
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
