"""Install the project's CRDs into a cluster: create or update each one, then wait until all are Established."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException

from spiderpool.k8s.crd_schema import definitions_to_install

_CONFLICT_RETRIES = 5
_POLL_INTERVAL = 0.1


class CrdNotEstablishedError(TimeoutError):
    """A CRD was not Established in time; the message carries its last conditions."""


async def install_crds(
    api: k8s_client.ApiClient,
    *,
    timeout: float = 60,  # noqa: ASYNC109 - the deadline spans many requests; the signature others code against
    crds: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Create or update ``crds`` (default: every project CRD and the NAD CRD); wait until each is Established and
    served."""
    # Bodies go out as plain dicts and come back as raw JSON (_preload_content=False); the generated signatures only
    # know model objects, hence Any.
    extensions: Any = k8s_client.ApiextensionsV1Api(api)
    definitions = list(crds) if crds is not None else definitions_to_install()
    for crd in definitions:
        await _create_or_replace(extensions, crd)
    deadline = time.monotonic() + timeout
    for crd in definitions:
        await _wait_served(api, extensions, crd, deadline=deadline)


async def _raw(request: Awaitable[Any]) -> dict[str, Any]:
    """The decoded JSON of a ``_preload_content=False`` call, which does not raise on errors by itself."""
    response = await request
    body = await response.read()
    if not 200 <= response.status < 300:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = body
        raise error
    decoded: dict[str, Any] = json.loads(body)
    return decoded


async def _create_or_replace(extensions: Any, crd: Mapping[str, Any]) -> None:
    name = crd["metadata"]["name"]
    try:
        await _raw(extensions.create_custom_resource_definition(dict(crd), _preload_content=False))
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    for _ in range(_CONFLICT_RETRIES):
        current = await _raw(extensions.read_custom_resource_definition(name, _preload_content=False))
        body = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            await _raw(extensions.replace_custom_resource_definition(name, body, _preload_content=False))
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise RuntimeError(f"CRD {name}: {_CONFLICT_RETRIES} update attempts lost to concurrent writers (409 Conflict)")


def is_established(crd: Mapping[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _wait_served(api: k8s_client.ApiClient, extensions: Any, crd: Mapping[str, Any], *, deadline: float) -> None:
    """Established, and listing answers 200: right after Established the apiserver's cache for the new resource is
    still initializing and lists fail with 429 "storage is (re)initializing"."""
    name = crd["metadata"]["name"]
    objects: Any = k8s_client.CustomObjectsApi(api)
    spec = crd["spec"]
    last = "not Established"
    while True:
        current = await _raw(extensions.read_custom_resource_definition(name, _preload_content=False))
        if is_established(current):
            for version in (v["name"] for v in spec["versions"] if v.get("served", True)):
                listing = objects.list_cluster_custom_object(
                    spec["group"], version, spec["names"]["plural"], limit=1, _preload_content=False
                )
                try:
                    await _raw(listing)
                except ApiException as exc:
                    last = f"listing {version} answers HTTP {exc.status}"
                    break
            else:
                return
        if time.monotonic() >= deadline:
            conditions = current.get("status", {}).get("conditions")
            raise CrdNotEstablishedError(f"CRD {name} not served in time ({last}); conditions: {conditions}")
        await asyncio.sleep(_POLL_INTERVAL)
